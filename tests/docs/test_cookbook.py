"""Every command on the cookbook pages runs: `bash` blocks as written, `bash long` blocks with
`--run` replaced by `--dry-run` (their recipes and flags are checked; the training is not repeated)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs" / "cookbook").glob("*.md"))
FENCE = re.compile(r"^```bash( long)?\n(.*?)^```", re.S | re.M)


def blocks(page: Path) -> list[tuple[bool, str]]:
    return [(bool(m.group(1)), m.group(2)) for m in FENCE.finditer(page.read_text())]


def test_every_page_has_commands_and_the_index_links_every_page():
    index = (ROOT / "docs" / "cookbook" / "README.md").read_text()
    for page in PAGES:
        if page.name != "README.md":
            assert blocks(page), page.name
            assert f"({page.name})" in index, page.name


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "README.md"], ids=lambda p: p.stem)
def test_page_commands_run(page, tmp_path):
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    env = {**os.environ, "R1DSL_PROGRESS": "quiet"}
    for long, script in blocks(page):
        if long:
            script = re.sub(r"--run\b", "--dry-run", script)
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{page.name}:\n{script}\n--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-2000:]}"
