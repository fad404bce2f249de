"""The recipe grammar (grammar.lark) and its one LALR parser, whose transformer builds the AST while parsing.

Read by the parser (r1dsl/parser.py) and by the syntax-error table (r1dsl/syntax_errors.py), which parses its
labelled snippets with the same tables; neither imports the other for it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from r1dsl.transform import transformer_class

GRAMMAR = Path(__file__).with_name("grammar.lark")


@lru_cache(maxsize=1)
def lark():
    """The LALR parser; its transformer builds the AST while parsing (no intermediate parse tree)."""
    from lark import Lark

    transformer = transformer_class()("<recipe>")
    parser = Lark(
        GRAMMAR.read_text(),
        parser="lalr",
        maybe_placeholders=False,
        start=["start", "value"],
        transformer=transformer,
        cache=True,  # the LALR tables are kept in the temp folder: `r1dsl check` must start fast
    )
    return parser, transformer
