"""docs/language.md shows every section's settings as their declarations say (defaults, limits, docs)."""

import dataclasses

import pytest

from r1dsl import reference
from r1dsl.schema import knobs


def test_the_docs_hold_the_tables_rendered_from_the_declarations():
    text = reference.DOC.read_text(encoding="utf-8")
    assert reference.render(text) == text, "docs/language.md is stale: run `python -m r1dsl.reference`"


@pytest.mark.parametrize("section", sorted(reference.TABLES))
def test_every_setting_has_a_row_with_its_default_and_limits(section):
    cls = reference.TABLES[section]
    table = reference.settings_table(cls)
    for name, (fld, _) in knobs(cls).items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        default = fld.default if fld.default is not dataclasses.MISSING else None
        assert f"| {reference.value_text(default)} |" in row
        if "max" in fld.metadata:
            assert f"<= {reference.value_text(fld.metadata['max'])}" in row


def test_a_missing_section_paragraph_is_an_error_that_says_what_to_add():
    with pytest.raises(ValueError, match=r"`tiny`  \(TinyModelConfig\)\" paragraph"):
        reference.render("no tables here\n")
