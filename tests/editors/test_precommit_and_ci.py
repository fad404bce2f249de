"""pre-commit hooks and the documented GitHub Actions workflow: valid YAML that runs the right commands on .r1 files."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def yaml_blocks(markdown: Path) -> list:
    """Every ```yaml fenced block of a Markdown file, parsed."""
    return [yaml.safe_load(block) for block in re.findall(r"^```yaml\n(.*?)^```", markdown.read_text(), re.S | re.M)]


def test_pre_commit_hooks_run_check_and_fmt_check_on_r1_files() -> None:
    hooks = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"r1dsl-check", "r1dsl-fmt"}
    assert shlex.split(hooks["r1dsl-check"]["entry"]) == ["r1dsl", "check"]
    assert shlex.split(hooks["r1dsl-fmt"]["entry"]) == ["r1dsl", "fmt", "--check"]
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["name"]
        files = re.compile(hook["files"])  # pre-commit matches with re.search on the repo-relative path
        for recipe in (ROOT / "recipes").glob("*.r1"):
            assert files.search(recipe.relative_to(ROOT).as_posix())
        for other in ("r1dsl/ir.py", "recipes/notes.r1.md", "README.md", "docs/r1.txt"):
            assert not files.search(other), other


def test_pre_commit_entries_name_the_installed_console_script() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^r1dsl = "r1dsl\.cli:main"$', pyproject, re.M)


def test_ci_doc_workflow_checks_recipes_with_github_annotations() -> None:
    workflow, pre_commit_config, local_config = yaml_blocks(ROOT / "docs" / "ci.md")
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    triggers = workflow.get("on", workflow.get(True))
    assert set(triggers) == {"push", "pull_request"}
    (job,) = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert "r1dsl check --format github recipes/*.r1" in runs
    assert "r1dsl fmt --check recipes/*.r1" in runs
    install = next(run for run in runs if run.startswith("pip install"))
    assert runs.index(install) < runs.index("r1dsl check --format github recipes/*.r1")
    assert any(step.get("uses", "").startswith("actions/checkout@") for step in job["steps"])

    shipped = {hook["id"] for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    (repo,) = pre_commit_config["repos"]
    assert {hook["id"] for hook in repo["hooks"]} == shipped
    (local,) = local_config["repos"][0]["hooks"]
    assert local["id"] in shipped and local["entry"] == "r1dsl check" and local["files"] == r"\.r1$"
