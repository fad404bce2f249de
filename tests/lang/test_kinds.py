"""The kinds table (r1dsl/kinds.py) is the one list of stage kinds: every part that knows kinds agrees with it."""

from __future__ import annotations

import ast as pyast
import importlib.util
import json
import re
import subprocess
from pathlib import Path

from r1dsl.frontend import load_recipe
from r1dsl.kinds import KINDS
from r1dsl.schema import SECTIONS

ROOT = Path(__file__).resolve().parents[2]


def test_every_runnable_kind_has_a_runner_module_with_run():
    for name, row in KINDS.items():
        if row.runner is None:
            assert row.lowered_to in KINDS and KINDS[row.lowered_to].runner, f"{name}: neither a runner nor lowered to a runnable kind"
            continue
        spec = importlib.util.find_spec(row.runner)
        assert spec is not None and spec.origin, f"{name}: {row.runner} is missing"
        tree = pyast.parse(Path(spec.origin).read_text())
        assert any(isinstance(n, pyast.FunctionDef) and n.name == "run" for n in tree.body), f"{row.runner} has no run(cfg)"


def test_every_kind_has_a_docs_entry():
    text = (ROOT / "docs" / "language.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)` \|", text, flags=re.M))
    assert set(KINDS) <= rows, f"docs/language.md has no kinds-table row for {set(KINDS) - rows}"


def test_every_kind_is_in_both_editor_grammars():
    for grammar in ("editors/textmate/r1.tmLanguage.json", "editors/vscode/syntaxes/r1.tmLanguage.json"):
        text = json.dumps(json.loads((ROOT / grammar).read_text()))
        listed = re.search(r"\(\?:\\\\b\(([a-z_|]+)\)", text)
        assert listed, f"{grammar}: no stage-kind alternation"
        assert set(listed.group(1).split("|")) == set(KINDS), grammar


def test_every_kind_has_a_golden_example_that_checks():
    used: set[str] = set()
    for recipe in sorted((ROOT / "recipes").glob("*.r1")):
        text = recipe.read_text()
        load_recipe(str(recipe))  # it checks
        used |= set(re.findall(r"^stage \w+\s*:\s*(\w+)", text, flags=re.M))
    assert set(KINDS) <= used, f"no shipped recipe uses {set(KINDS) - used}"


def test_the_table_is_consistent():
    for name, row in KINDS.items():
        assert set(row.sections) <= set(SECTIONS), name
        assert "resources" in row.sections, name
        assert (row.steps_section is None) or row.steps_section in row.sections, name
        assert row.produces in ("policy", "scorer", "data", "report"), name
        assert row.lowered_to is None or KINDS[row.lowered_to].lowered_to is None, name


def test_no_other_module_lists_the_kinds():
    """`git grep` for a tuple of kind names finds only the table."""
    out = subprocess.run(["git", "grep", "-n", "-E", r'"(pretrain|sft|grpo|rejection_sample|eval|reward_model)", "(pretrain|sft|grpo|rejection_sample|eval|reward_model|distill)"',
                          "--", "*.py"], cwd=ROOT, capture_output=True, text=True).stdout
    hits = [line for line in out.splitlines() if not line.startswith(("r1dsl/kinds.py", "tests/"))]
    assert hits == [], "\n".join(hits)
