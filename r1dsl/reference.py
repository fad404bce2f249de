"""The settings tables of docs/language.md, rendered from the settings' own declarations (`knob()` in r1dsl/ir.py).

A setting's default, limits and doc are written once, in its declaration; the docs show them through
these tables, and a test fails when docs/language.md no longer holds what this module renders.

    python -m r1dsl.reference            # rewrite the tables in docs/language.md
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from r1dsl import ir
from r1dsl.schema import SECTIONS, knobs

# section name (as a recipe writes it) -> its settings class; `tiny` is the model declaration's section
TABLES: dict[str, type] = {"tiny": ir.TinyModelConfig, **SECTIONS}
DOC = Path(__file__).resolve().parents[1] / "docs" / "language.md"
_HEAD = "| setting | default | limits | meaning |\n|---|---|---|---|\n"


def value_text(value: Any) -> str:
    """A value as a recipe writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:_}"  # 1_048_576: digits grouped the way a recipe may write them
    if isinstance(value, float) and abs(value) >= 10_000:
        short = f"{value:.0e}".replace("e+0", "e").replace("e+", "e")  # 1e6
        return short if float(short) == value else repr(value)
    return repr(value)


def limits_text(meta: dict[str, Any]) -> str:
    if "choices" in meta:
        return " / ".join(str(c) for c in meta["choices"])
    parts = []
    if "min" in meta:
        parts.append(f">= {value_text(meta['min'])}")
    if "min_exclusive" in meta:
        parts.append(f"> {value_text(meta['min_exclusive'])}")
    if "max" in meta:
        parts.append(f"<= {value_text(meta['max'])}")
    return ", ".join(parts)


def settings_table(cls: type) -> str:
    rows = []
    for name, (fld, _) in knobs(cls).items():
        meta = fld.metadata
        rows.append(f"| `{name}` | {value_text(fld.default)} | {limits_text(meta)} | {meta.get('doc', '')} |\n")
    return _HEAD + "".join(rows)


def _table_after(section: str, cls: type) -> re.Pattern:
    """The table that follows the "`section`  (Class)" paragraph in the docs."""
    return re.compile(rf"(^`{section}`  \({cls.__name__}\)[^\n]*\n(?:[^|\n][^\n]*\n)*\n){re.escape(_HEAD)}(?:\|[^\n]*\n)*",
                      re.MULTILINE)


def render(doc: str) -> str:
    """`doc` with every settings table rendered anew; a section whose paragraph is missing is an error."""
    for section, cls in TABLES.items():
        pattern = _table_after(section, cls)
        if not pattern.search(doc):
            raise ValueError(f"docs/language.md has no \"`{section}`  ({cls.__name__})\" paragraph followed by a "
                             "settings table; add one (this module fills in the rows)")
        doc = pattern.sub(lambda m, cls=cls: m.group(1) + settings_table(cls), doc, count=1)
    return doc


if __name__ == "__main__":
    text = DOC.read_text(encoding="utf-8")
    new = render(text)
    DOC.write_text(new, encoding="utf-8")
    print(f"{DOC}: {'rewritten' if new != text else 'already up to date'}", file=sys.stderr)
