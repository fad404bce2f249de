"""Mistaken recipes (tests/lang/bad_recipes/*.r1) and what `r1dsl check` says about each.

Each file starts with `# error: LINE CODE` lines: every error of the file, at its line. One run must
report exactly those (no more: a knock-on of an earlier mistake is not reported), each with a help
line, and text, JSON and GitHub output must render them without a traceback. Files named `ok_*`
are unusual but valid: no errors.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from r1dsl.cli import main
from r1dsl.frontend import check_file

FOLDER = Path(__file__).resolve().parent / "bad_recipes"
CASES = sorted(FOLDER.glob("*.r1"))
EXPECTED = re.compile(r"^# error: (\d+) ([EW]\d{3})\s*$", re.M)


def expected(case: Path) -> Counter:
    text = case.read_text(encoding="utf-8-sig")
    return Counter((int(line), code) for line, code in EXPECTED.findall(text))


def test_there_are_enough_cases():
    assert len([c for c in CASES if expected(c)]) >= 40
    assert sum(1 for c in CASES if sum(expected(c).values()) >= 2) >= 8  # files with several mistakes


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_every_error_at_its_line_in_one_run(case, monkeypatch):
    monkeypatch.chdir(FOLDER)
    result = check_file(case.name)
    errors = [d for d in result.diagnostics if d.is_error]
    got = Counter((d.span.line, d.code) for d in errors)
    assert got == expected(case), "\n".join(f"{d.span.line}:{d.span.col} {d.code} {d.message}" for d in errors)
    for d in errors:
        assert d.help, f"no help line for {d.code} at line {d.span.line}: {d.message}"
    assert result.ok == (not errors)


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_every_format_renders_every_case_without_a_traceback(fmt, capsys, monkeypatch):
    monkeypatch.chdir(FOLDER)
    for case in CASES:
        status = main(["check", "--format", fmt, case.name])
        out, err = capsys.readouterr()
        assert status == (1 if expected(case) else 0), (case.name, out, err)
        assert "Traceback" not in out + err and "internal error" not in err, case.name
        if fmt == "json":
            rows = [r for r in json.loads(out) if r["severity"] == "error"]
            assert Counter((r["line"], r["code"]) for r in rows) == expected(case), case.name
        elif fmt == "github":
            lines = [line for line in out.splitlines() if line.startswith("::error")]
            assert len(lines) == sum(expected(case).values()), case.name
        else:
            assert out.count(": error[") == sum(expected(case).values()), case.name
