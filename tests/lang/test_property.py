"""Random edits of valid recipes give diagnostics or success, never an exception."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1dsl.diagnostics import render_json, render_text
from r1dsl.fmt import format_text
from r1dsl.frontend import check_file
from r1dsl.parser import ParseError
from tests.lang.conftest import RECIPES, TINY

SOURCES = [TINY] + [p.read_text() for p in RECIPES]
TOKENS = ["{", "}", "[", "]", "=", ":", ",", '"', '"""', "#", "\n", " ", "0", "-1", "1e999", "stage", "grpo", "from",
          "data", "true", "null", "import", '"x.r1"', "zero", "base", "group_size", "é", "\\", "\t", "r1"]


@st.composite
def edited(draw):
    text = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "replace"]))
        if op == "delete":
            end = min(len(text), pos + draw(st.integers(1, 20)))
            text = text[:pos] + text[end:]
        else:
            piece = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=3)))
            end = pos + (draw(st.integers(0, 5)) if op == "replace" else 0)
            text = text[:pos] + piece + text[end:]
    return text


@settings(max_examples=int(os.environ.get("R1DSL_FUZZ_EXAMPLES", 150)), deadline=None, derandomize="R1DSL_FUZZ_EXAMPLES" not in os.environ,
          suppress_health_check=[HealthCheck.too_slow])
@given(edited(), st.lists(st.sampled_from(["zero.group_size=8", "seed=x", "zero.grpo.steps=0", "a.b.c=[", "=", "zero.lr"]), max_size=2))
def test_random_edits_never_raise(tmp_path_factory, text, overrides):
    folder = tmp_path_factory.mktemp("edit")
    path = folder / "r.r1"
    path.write_text(text)
    result = check_file(str(path), overrides)
    for d in result.diagnostics:
        render_text(d, result.sources)
    render_json(result.diagnostics)
    assert result.ok or any(d.is_error for d in result.diagnostics)
    try:
        once = format_text(text)
    except ParseError:
        return
    assert format_text(once) == once
