"""One bad recipe per diagnostic code, and the exact text `r1dsl check` prints for it.

Regenerate after an intended wording change: `python tests/lang/test_golden.py --regen`, then read the diff.
"""

import sys
from pathlib import Path

import pytest

from r1dsl.codes import CODES
from r1dsl.diagnostics import render_text
from r1dsl.frontend import check_file

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p for p in GOLDEN.glob("*.r1") if not p.stem.endswith("_other"))


def rendered(case: Path, monkeypatch=None) -> str:
    overrides_file = case.with_suffix(".set")
    overrides = [l for l in overrides_file.read_text().split("\n") if l] if overrides_file.exists() else []
    result = check_file(case.name, overrides)
    return "\n".join(render_text(d, result.sources) for d in result.diagnostics) + "\n"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_diagnostics(case, monkeypatch):
    monkeypatch.chdir(GOLDEN)
    expected = case.with_suffix(".expected").read_text()
    assert rendered(case) == expected


def test_every_code_has_a_golden_file():
    covered = {c.stem.split("_")[0] for c in CASES}
    assert covered == set(CODES)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_file_shows_its_own_code(case):
    code = case.stem.split("_")[0]
    assert f"[{code}]" in case.with_suffix(".expected").read_text()


if __name__ == "__main__" and "--regen" in sys.argv:
    import os

    os.chdir(GOLDEN)
    for case in CASES:
        case.with_suffix(".expected").write_text(rendered(case))
        print("wrote", case.with_suffix(".expected").name)
