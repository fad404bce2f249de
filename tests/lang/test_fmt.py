"""`r1dsl fmt`: idempotent, comment-preserving, and meaning-preserving on every shipped recipe."""

import dataclasses
import re

import pytest

from r1dsl.fmt import format_text
from r1dsl.frontend import check_file
from tests.lang.conftest import RECIPES, TINY


def _comments(text: str) -> list[str]:
    text = re.sub(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"', "", text)
    return [c.strip() for c in re.findall(r"#[^\n]*", text)]


def _without_spans(value):
    if dataclasses.is_dataclass(value):
        return tuple((f.name, _without_spans(getattr(value, f.name))) for f in dataclasses.fields(value) if f.name != "span")
    if isinstance(value, dict) or hasattr(value, "items"):
        return tuple(sorted((k, _without_spans(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_without_spans(v) for v in value)
    return value


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_fmt_is_idempotent_and_keeps_comments(path):
    text = path.read_text()
    once = format_text(text, str(path))
    assert format_text(once, str(path)) == once
    assert sorted(_comments(once)) == sorted(_comments(text))


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_fmt_round_trips_the_recipe(path, tmp_path):
    formatted = tmp_path / path.name
    formatted.write_text(format_text(path.read_text(), str(path)))
    before, after = check_file(str(path)), check_file(str(formatted))
    assert [d.code for d in before.diagnostics] == [d.code for d in after.diagnostics]
    if before.ok:
        a, b = before.recipe, after.recipe
        # the same IR up to spans and the file name (relative paths resolve against tmp_path for the copy)
        assert _without_spans(a.stages) == _without_spans(b.stages)
        assert _without_spans(a.rewards) == _without_spans(b.rewards)
        assert _without_spans(a.templates) == _without_spans(b.templates)


def test_canonical_layout():
    messy = ('recipe x  # the name\n\n\n\nmodel m{tiny{}}\n# about d\ndataset d {generator="arithmetic" size=5}\n'
             'stage s: grpo {  # header\n from=m data=[d,d,]  # trailing\n\n grpo{steps=5}\n # end\n}\n')
    assert format_text(messy) == (
        "recipe x  # the name\n\n"
        "model m { tiny {} }\n"
        "# about d\n"
        'dataset d { generator = "arithmetic"  size = 5 }\n'
        "stage s: grpo {  # header\n"
        "  from = m  data = [d, d]  # trailing\n\n"
        "  grpo { steps = 5 }\n"
        "  # end\n"
        "}\n"
    )


def test_multi_line_strings_are_kept_verbatim():
    text = 'template t = """\n  indented {prompt}\n\n  blank line above"""\n'
    assert format_text(text) == text


def test_tiny_fixture_round_trips():
    once = format_text(TINY)
    assert format_text(once) == once
