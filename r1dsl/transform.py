"""Parse tree -> syntax tree (r1dsl.ast): the Lark transformer that builds typed nodes with spans while the LALR
parser runs (r1dsl/lalr.py), and the syntax errors found while building (bad keywords, escapes, long numbers)."""

from __future__ import annotations

import re
from functools import lru_cache

from r1dsl import ast
from r1dsl.diagnostics import Diagnostic
from r1dsl.ir import Span
from r1dsl.syntax_errors import KEYWORDS

MAX_NUMBER_DIGITS = 100  # a number literal longer than this is refused (Python's int() stops at 4,300 digits)
# how each declaration is written, for the help of a misplaced keyword
_SHAPES = {
    "recipe": "`recipe NAME`",
    "import": '`import "file.r1"`',
    "include": '`include "file.r1"`',
    "const": "`const NAME = value`",
    "template": '`template NAME = """..."""`',
    "model": "`model NAME { ... }`",
    "dataset": "`dataset NAME { ... }`",
    "reward": "`reward NAME { ... }`",
    "stage": "`stage NAME: KIND { ... }`",
}




def _unescape(raw: str, span: Span, errors: list) -> str:
    table = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}

    def one(m: re.Match) -> str:
        c = m.group(1)
        if c not in table:
            errors.append(
                Diagnostic("E001", f"unknown escape `\\{c}` in a string", span, help='use \\n, \\t, \\" or \\\\, or a """ string, which keeps text verbatim')
            )
            return "\\" + c
        return table[c]

    return re.sub(r"\\(.)", one, raw[1:-1])


def _make_transformer():
    from lark import Transformer

    class ToAst(Transformer):
        def __init__(self, path: str, line_offset: int = 0, col_offset: int = 0):
            super().__init__()
            self.path = path
            self.line_offset = line_offset
            self.col_offset = col_offset
            self.errors: list[Diagnostic] = []  # syntax errors found while building (bad keywords, escapes)
            self.lost: set[str] = set()  # names of declarations dropped for a syntax error

        # spans -----------------------------------------------------------
        def tok(self, t) -> Span:
            return Span(self.path, t.line + self.line_offset, t.column + self.col_offset, t.end_line + self.line_offset, t.end_column + self.col_offset)

        def join(self, first, last) -> Span:
            """From the start of `first` to the end of `last` (each a token or a span)."""
            a = first if isinstance(first, Span) else self.tok(first)
            b = last if isinstance(last, Span) else self.tok(last)
            return Span(self.path, a.line, a.col, b.end_line, b.end_col)

        # values ----------------------------------------------------------
        def string(self, c):
            span = self.tok(c[0])
            return ast.Str(_unescape(str(c[0]), span, self.errors), str(c[0]), span)

        def long_string(self, c):
            raw = str(c[0])
            text = raw[3:-3]
            if text.startswith("\n"):  # a newline right after the opening quotes is layout, not text
                text = text[1:]
            return ast.Str(text, raw, self.tok(c[0]))

        def number(self, c):
            raw = str(c[0])
            span = self.tok(c[0])
            digits = sum(ch.isdigit() for ch in raw)
            if digits > MAX_NUMBER_DIGITS:  # int() refuses over 4,300 digits; no setting needs a hundred
                self.errors.append(Diagnostic("E001", f"a number of {digits} digits is too long", span,
                                              f"numbers in a recipe have at most {MAX_NUMBER_DIGITS} digits; "
                                              "write a large one with an exponent, e.g. 1e6"))
                return ast.Num(0, raw, span)
            is_int = not any(ch in raw for ch in ".eE")
            value = int(raw.replace("_", "")) if is_int else float(raw.replace("_", ""))
            return ast.Num(value, raw, span)

        def true(self, c):
            return ast.Bool(True, self.tok(c[0]))

        def false(self, c):
            return ast.Bool(False, self.tok(c[0]))

        def null(self, c):
            return ast.Null(self.tok(c[0]))

        def ref(self, c):
            return ast.Ref(str(c[0]), self.tok(c[0]))

        def list(self, c):
            return ast.List(c[1:-1], self.join(c[0], c[-1]))

        # entries ---------------------------------------------------------
        def block(self, c):
            return ast.Body(c[1:-1], self.join(c[0], c[-1]))

        def assign(self, c):
            return ast.Assign(str(c[0]), self.tok(c[0]), c[1], self.join(c[0], c[1].span))

        def section(self, c):
            return ast.Section(str(c[0]), self.tok(c[0]), c[1], self.join(c[0], c[1].span))

        # items -----------------------------------------------------------
        def keyword(self, tok, allowed: tuple[str, ...], shape: str, name=None) -> str | None:
            """The declaration keyword `tok` if it fits this shape; else report it and return the keyword it was
            probably meant to be (`modle` -> model), or None (the declaration is dropped, its name kept as lost)."""
            import difflib

            word = str(tok)
            if word in allowed:
                return word
            span = self.tok(tok)
            guess = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
            if word in KEYWORDS:
                message = f"malformed `{word}` declaration"
                help = f"`{word}` is written {_SHAPES[word]}"
                guess = []
            else:
                message = f"unknown declaration `{word}`"
                help = (f"did you mean `{guess[0]}`?" if guess else
                        f"{shape} starts with {' or '.join(f'`{a}`' for a in allowed)}")
            self.errors.append(Diagnostic("E001", message, span, help))
            if not guess and name is not None:
                self.lost.add(str(name))
            return guess[0] if guess else None

        def recipe_decl(self, c):
            if self.keyword(c[0], ("recipe",), "`NAME NAME`", c[1]) is None:
                return None
            return ast.RecipeDecl(str(c[1]), self.tok(c[1]), self.join(c[0], c[1]))

        def import_decl(self, c):
            word = self.keyword(c[0], ("import", "include"), "`NAME \"file\"`")
            return None if word is None else ast.ImportDecl(word, self.string([c[1]]), self.join(c[0], c[1]))

        def named_value(self, c):
            word = self.keyword(c[0], ("const", "template"), "`NAME NAME = value`", c[1])
            if word is None:
                return None
            cls = ast.ConstDecl if word == "const" else ast.TemplateDecl
            return cls(str(c[1]), self.tok(c[1]), c[2], self.join(c[0], c[2].span))

        def block_decl(self, c):
            word = self.keyword(c[0], ("model", "dataset", "reward"), "`NAME NAME { ... }`", c[1])
            if word is None:
                return None
            return ast.BlockDecl(word, str(c[1]), self.tok(c[1]), c[2], self.join(c[0], c[2].span))

        def stage_decl(self, c):
            if self.keyword(c[0], ("stage",), "`NAME NAME: KIND { ... }`", c[1]) is None:
                return None
            return ast.StageDecl(str(c[1]), self.tok(c[1]), str(c[2]), self.tok(c[2]), c[3], self.join(c[0], c[3].span))

        def start(self, c):
            return ast.Module(self.path, "", [item for item in c if item is not None])

    return ToAst


@lru_cache(maxsize=1)
def transformer_class():
    return _make_transformer()
