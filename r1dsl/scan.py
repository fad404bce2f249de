"""Source text -> Lark tokens, with a scanner built from the grammar's own terminals (one definition of each
token), so that bad characters, unterminated strings and a stray byte-order mark each get their own message
(r1dsl/syntax_errors.py `bad_text`) and the scan goes on."""

from __future__ import annotations

import re
from functools import lru_cache

from r1dsl import syntax_errors
from r1dsl.diagnostics import Diagnostic
from r1dsl.ir import Span
from r1dsl.lalr import lark
from r1dsl.syntax_errors import KEYWORDS

MAX_NAME = 64  # a stage name becomes a folder and a job name (a distill job joins two names)


_SKIP = ("WS", "COMMENT")
_ORDER = ("WS", "COMMENT", "LONG_STRING", "STRING", "NUMBER", "NAME", "LBRACE", "RBRACE", "LSQB", "RSQB", "EQUAL",
          "COLON", "COMMA")


@lru_cache(maxsize=1)
def _scanner():
    parser, _ = lark()
    terminals = {t.name: t for t in parser.terminals}
    regex = re.compile("|".join(f"(?P<{name}>{terminals[name].pattern.to_regexp()})" for name in _ORDER))
    words = {t.pattern.value: t.name for t in parser.terminals if t.pattern.type == "str" and t.pattern.value.isalpha()}
    return regex, words


_DECL_LINE = re.compile(r"\n(?=(?:" + "|".join(KEYWORDS) + r")[ \t]+[A-Za-z_\"])")


def tokenize(text: str, path: str, errors: list[Diagnostic], line_offset: int = 0, col_offset: int = 0) -> list:
    from lark import Token

    regex, words = _scanner()
    tokens = []
    pos, line, line_start, n = 0, 1, 0, len(text)

    def span(a: int, b: int) -> Span:  # a..b on the current line
        return Span(path, line + line_offset, a - line_start + 1 + col_offset, line + line_offset, b - line_start + 1 + col_offset)

    def token(kind: str, value: str, a: int, b: int) -> None:
        nl = text.count("\n", a, b)
        end_line = line + nl
        end_col = (b - (text.rfind("\n", a, b) + 1) + 1) if nl else (b - line_start + 1)
        tokens.append(Token(kind, value, a, line + line_offset, a - line_start + 1 + col_offset,
                            end_line + line_offset, end_col + (0 if nl else col_offset), b))

    while pos < n:
        m = regex.match(text, pos)
        if m is not None and m.end() > pos and not (m.lastgroup == "STRING" and text.startswith('"""', pos)):
            kind, value, end = m.lastgroup, m.group(), m.end()
            if kind not in _SKIP:
                token(words.get(value, kind) if kind == "NAME" else kind, value, pos, end)
                if kind == "NAME" and len(value) > MAX_NAME:
                    errors.append(Diagnostic("E001", f"a name of {len(value)} characters; names have at most {MAX_NAME}",
                                             span(pos, pos + len(value)),
                                             "shorten it: names become folder, job and file names, which have limits"))
        else:  # no token starts here: say what it is, and go on
            eol = text.find("\n", pos)
            eol = n if eol < 0 else eol
            end, kind, value = syntax_errors.bad_text(text, pos, eol, n, _DECL_LINE, errors, span)
            if kind is not None:
                token(kind, value, pos, end)
        nl = text.count("\n", pos, end)
        if nl:
            line += nl
            line_start = text.rfind("\n", pos, end) + 1
        pos = end
    return tokens
