"""Syntax errors that teach: what each mistake is called, where it is shown, and how parsing goes on.

Mistakes are recognised the way Lark's `match_examples` does: `EXAMPLES` is a table of labelled bad
snippets; each is parsed once (lazily, on a file's first syntax error, by r1dsl/parser.py's `examples_table`)
to find the parser state it
fails in, and an error in the same state, on the same kind of token, gets that row's message and
help. A better message for a mistake is a new row, not a new branch. What a table cannot see (an
unterminated string, a `{` never closed, a value missing before the next declaration) is handled
by the scanner and the recovery in r1dsl/parser.py, with the functions here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

from r1dsl.diagnostics import Diagnostic, did_you_mean
from r1dsl.ir import Span

KEYWORDS = ("recipe", "import", "include", "const", "model", "dataset", "template", "reward", "stage")


@dataclass(frozen=True)
class Example:
    """Snippets that all fail in one parser state; `message`/`help` are format strings over the error's
    context (got: the unexpected token, prev: the one before it, next: the one after it)."""

    snippets: tuple[str, ...]
    message: str
    help: str | None
    when: Callable[[dict], bool] = lambda ctx: True  # a further condition on the context
    drop: bool = False  # recover by dropping the unexpected token alone (a stray separator), not the whole setting
    at_prev: bool = False  # something is missing at the end of a line: point there, not at the next line's token
    fix: tuple[str, str] | None = None  # recover by ("replace", KIND) the token or ("insert", KIND) one before it


def _number_pair(ctx: dict) -> bool:
    return ctx["prev_type"] == "NUMBER" and ctx["next_type"] == "NUMBER"


EXAMPLES: tuple[Example, ...] = (
    Example(('stage s: grpo { grpo: { steps = 1 } }',), "unexpected `:`; a section is written `{prev} {{ ... }}`",
            "delete the `:`", lambda ctx: ctx["next_type"] == "LBRACE", drop=True),
    Example(('stage s: grpo { from: x }', 'model m { hf: "x" }', 'stage s: grpo { grpo { steps: 5 } }'),
            "unexpected `:`; settings are written `key = value`", "write `{prev} = {next}`", fix=("replace", "EQUAL")),
    Example(('stage s: grpo { grpo steps = 5 }',), "expected `{{` after `{prev}`",
            "a section is written `{prev} {{ {got} = ... }}`",
            lambda ctx: not ctx["newline"] and not ctx["declaration"] and ctx["next_type"] == "EQUAL",
            fix=("insert", "LBRACE")),
    Example(('stage s: grpo { data x }', 'model m { hf "x" }', 'stage s: grpo { steps 5 }', 'stage s: grpo { rewards [a] }',
             'stage s: grpo { x true }'),
            "expected `=` after `{prev}`", "settings are written `key = value`: `{prev} = {got}`",
            lambda ctx: not ctx["newline"] and not ctx["declaration"] and ctx["next_type"] != "EQUAL",
            fix=("insert", "EQUAL")),
    Example(('stage s: grpo { data\n x = 1 }',), "expected `=` after `{prev}`", "settings are written `key = value`",
            at_prev=True),
    Example(('stage s: grpo { lr = 1, steps = 2 }',), "unexpected `,` between settings",
            "separate settings with spaces or new lines, not `,`", lambda ctx: ctx["next2_type"] == "EQUAL", drop=True),
    Example(('dataset d { size = 4,000 }',), "unexpected `,` in the number `{prev},{next}`",
            "numbers take no thousands separators: write `{prev}{next}` or `{prev}_{next}`", _number_pair),
    Example(('stage s: grpo { rewards = a, b }',), "unexpected `,` after a value",
            "a list is written in brackets: `[{prev}, {next}]`"),
    Example(('stage s: grpo { rewards = [a b] }', 'stage s: grpo { rewards = [1 2] }'), "expected `,` or `]` before `{got}`",
            "separate list items with `,`: `{prev}, {got}`"),
    Example(('stage s: grpo { rewards = [a, b }', 'stage s: grpo { rewards = [a, b\n lr = 1 }', 'stage s: grpo { rewards = [a\n lr = 1 }'),
            "the list is not closed", "end the list with `]`", lambda ctx: ctx["newline"] or ctx["got"] == "}", at_prev=True),
    Example(('stage s: grpo { lr = }', 'stage s: grpo { lr = = 3 }', 'stage s: grpo { lr = : }', 'stage s: grpo { lr = , }'),
            "missing value after `=`", "write a value: a number, \"text\", true, false, null, a name or a [list]",
            at_prev=True),
    Example(('stage s: grpo { grpo = { steps = 1 } }',), "unexpected `{{` after `=`",
            "a section takes no `=`: write `{prev2} {{ ... }}`"),
    Example(('model m = { hf = "x" }', 'const c = { }'), "unexpected `{{` after `=`",
            "`model`, `dataset` and `reward` take a body without `=`: `model NAME {{ ... }}`; a list is written [a, b]"),
    Example(('}', 'model m { } }', 'stage s: grpo { } }', 'model m { } model n { } }', 'recipe r }', 'const c = 1 }',
              'model m { } stage s: grpo { } }'), "unexpected `}}`: no `{{` is open here", "delete it, or look for a `}}` closed too early above"),
    Example(('stage s: grpo { rewards = [a]] }', 'stage s: grpo { x = 1 ] }'), "unexpected `]`: no `[` is open here",
            "delete it", drop=True),
    Example(('stage s: grpo { "from" = x }', 'stage s: grpo { "from": x }'), "setting names take no quotes",
            "write `{bare} = ...`", lambda ctx: ctx["next_type"] in ("EQUAL", "COLON") and ctx["bare"].isidentifier(),
            fix=("replace", "NAME")),
    Example(('stage s: grpo { = 3 }', 'stage s: grpo { "x" = 3 }', 'stage s: grpo { 3 = 3 }', 'stage s: grpo { [a] }'),
            "expected a setting name, got `{got}`", "settings are written `key = value`; a body ends with `}}`"),
    Example(('seed = 3', 'steps = 3'), "a setting outside any declaration",
            "settings go inside a declaration's `{{ ... }}`; a constant is written `const {prev} = ...`"),
    Example(('stage zero: grpo from = x }', 'model m }', 'stage zero: grpo = 1'), "expected `{{` after `{prev}`",
            "a declaration's body is written in braces: `{prev} {{ ... }}`"),
    Example(('stage zero: { from = x }', 'stage zero: 3 { }', 'stage zero: "grpo" { }'), "expected the stage kind after `:`",
            "write `stage NAME: KIND {{ ... }}` (KIND: pretrain, sft, grpo, rejection_sample, distill, eval, ...)"),
    Example(('model { }', 'stage { }', 'model "m" { }'), "expected a name after `{prev}`",
            "declarations are named: `{prev} NAME {{ ... }}`"),
    Example(('const c 3', 'template t "x"'), "expected `=` after `{prev}`", "write `{prev2} {prev} = {got}`"),
    Example(('recipe', 'model m', 'stage s: grpo {'), "unexpected end of file", "the last declaration is incomplete"),
)

_TERMINALS = {
    "NAME": "a name", "STRING": "a string", "LONG_STRING": 'a """ string', "NUMBER": "a number", "LBRACE": "`{`",
    "RBRACE": "`}`", "LSQB": "`[`", "RSQB": "`]`", "EQUAL": "`=`", "COLON": "`:`", "COMMA": "`,`", "TRUE": "`true`",
    "FALSE": "`false`", "NULL": "`null`", "$END": "the end of the file",
}

_CHAR_HELP = {
    "'": 'strings use double quotes: "text"',
    "-": 'names use letters, digits and `_`; write a file path or hub id as a string: "..."',
    ".": 'names use letters, digits and `_`; write a file path or hub id as a string: "..."',
    "/": 'names use letters, digits and `_`; write a file path or hub id as a string: "..."',
    "$": 'a constant is used by its bare name (`seed = seed`); `${...}` belongs inside a string',
    "(": "r1dsl has no expressions: write the value itself",
    "*": "r1dsl has no expressions: write the value itself",
    "+": "r1dsl has no expressions: write the value itself",
}

_DELIMITERS = set('{}[]=,:"#;\'')
_BOTCHED_CLOSE = re.compile(r'^[^=\n"]*[^=\n"\s]""?[ \t]*$', re.M)  # `Answer:""`: text, then one or two quotes


# ---------------------------------------------------------------- the scanner's errors


def bad_text(text: str, pos: int, eol: int, n: int, decl_line, errors: list, span) -> tuple[int, str | None, str]:
    """Text at `pos` starts no token: report it; return (end, token kind or None, token text) to go on with."""
    c = text[pos]
    if text.startswith('"""', pos):  # the closing quotes are missing: the text runs to a botched closing
        m = decl_line.search(text, pos)  # (a line of text ending in `"` or `""`) or to the next declaration
        end = m.start() if m else n
        closing = _BOTCHED_CLOSE.search(text, eol, end)
        end = closing.end() if closing else end
        errors.append(Diagnostic("E001", f'unterminated """ string ({_excerpt(text, pos + 3)})', span(pos, pos + 3),
                                 'end the text with `"""`'))
        return end, "LONG_STRING", text[pos:end] + '"""'
    if c == '"':  # a "..." string ends on its line
        errors.append(Diagnostic("E001", f"unterminated string ({_excerpt(text, pos + 1)})", span(pos, pos + 1),
                                 'close it with `"` on the same line, or use a """ string for text that spans lines'))
        return eol, "STRING", text[pos:eol].rstrip("\\") + '"'
    if c == "'":
        close = text.find("'", pos + 1, eol)
        if close > 0:
            inner = text[pos + 1:close]
            quoted = '"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"'
            errors.append(Diagnostic("E001", "strings use double quotes", span(pos, close + 1), f"write {quoted}"))
            return close + 1, "STRING", quoted
        errors.append(Diagnostic("E001", "unexpected character `'`", span(pos, pos + 1), _CHAR_HELP["'"]))
        return pos + 1, None, ""
    if c == ";":
        errors.append(Diagnostic("E001", "unexpected `;`", span(pos, pos + 1),
                                 "recipes need no `;`: separate settings with spaces or new lines"))
        return pos + 1, None, ""
    if not c.isascii() and unicodedata.category(c) in ("Cf", "Zs", "Cc", "Zl", "Zp"):  # invisible: ignorable
        what = "a byte-order mark" if c == "\ufeff" else unicodedata.name(c, "an invisible character").lower()
        errors.append(Diagnostic("E001", f"invisible character U+{ord(c):04X} ({what})", span(pos, pos + 1),
                                 "delete it; an editor or a copy from a web page put it there"))
        return pos + 1, None, ""
    end = pos + 1
    while end < eol and not text[end].isspace() and text[end] not in _DELIMITERS:
        end += 1
    if c.isascii():
        message, help = f"unexpected character `{c}`", _CHAR_HELP.get(c)
        if c == "$" and text.startswith("${", pos):
            help = _CHAR_HELP["$"]
    else:
        message = f"unexpected character `{c}` (U+{ord(c):04X} {unicodedata.name(c, '')})".replace(" )", ")")
        help = "names use ASCII letters, digits and `_`; other text goes in a string"
    errors.append(Diagnostic("E001", message, span(pos, end), help))
    return end, "ERROR", text[pos:end]


def _excerpt(text: str, at: int, width: int = 24) -> str:
    body = text[at:at + 200].lstrip("\n").split("\n")[0].strip()
    if not body:
        return "nothing follows it on its line"
    return "it starts `" + (body[:width] + "…" if len(body) > width else body) + "`"


# ---------------------------------------------------------------- checks before a token is fed


SKIP = "skip"  # before_feed: the token is reported and dropped


def before_feed(toks: list, i: int, state, table, errors: list, path: str) -> Exception | None:
    """Mistakes that LALR would see too late; may insert a token. Returns an exception to raise, or None."""
    from lark import Token
    from lark.exceptions import UnexpectedToken

    tok = toks[i]
    if tok.type != "NAME" or i == 0:
        return None
    prev = toks[i - 1]
    if prev.type == "NUMBER" and prev.end_pos == tok.start_pos:  # `30min`: a unit after a number
        errors.append(Diagnostic("E001", f"`{tok}` right after the number {prev}", _span(tok, tok, path),
                                 f"numbers take no unit: write `{prev}`; the setting's name says its unit (`time_limit_min`, `max_tokens`)"))
        return SKIP
    nxt = toks[i + 1]
    if prev.type == "EQUAL" and tok.value in KEYWORDS and tok.line > prev.line and nxt.type in ("NAME", "STRING"):
        e = UnexpectedToken(tok, {"NAME"}, state=state)
        e.missing_value = True
        return e
    if (i >= 2 and toks[i - 2].type == "NAME" and toks[i - 2].value == "stage" and nxt.type == "LBRACE"
            and "COLON" in table[state.state_stack[-1]]):  # `stage zero grpo {`: the colon is missing
        errors.append(Diagnostic("E001", f"expected `:` between the stage name and its kind", _span(tok, prev, path),
                                 f"write `stage {prev.value}: {tok.value} {{ ... }}`"))
        state.feed_token(Token("COLON", ":", tok.start_pos, tok.line, tok.column, tok.line, tok.column, tok.start_pos))
    return None


# ---------------------------------------------------------------- what an unexpected token means


def end_token(text: str, toks: list):
    from lark import Token

    line = text.count("\n") + 1
    col = len(text) - (text.rfind("\n") + 1) + 1
    return Token("$END", "", len(text), line, col, line, col + 1, len(text))


def classify(e, toks: list, i: int, state, path: str, examples: dict) -> Diagnostic | None:
    """The diagnostic for an unexpected token, or None when it was already reported (a bad character);
    `examples` is EXAMPLES compiled to parser states (r1dsl/parser.py `examples_table`)."""
    tok = toks[i]
    if tok.type == "ERROR":
        return None
    open_braces = [v for v in state.value_stack if getattr(v, "type", None) == "LBRACE"]
    prev = toks[i - 1] if i > 0 else None
    if getattr(e, "missing_value", False):
        words = " ".join(str(t) for t in toks[max(0, i - 3):i - 1] if t.type == "NAME")
        return Diagnostic("E001", "missing value after `=`", _span(prev, prev, path),
                          f"write `{words} = VALUE`; without one, the next line's `{tok}` is read as the value")
    if tok.type == "$END" and open_braces:
        return None  # the recovery reports the `{` that is never closed
    ctx = {
        "got": str(tok).split("\n")[0] if tok.type != "$END" else "end of file",
        "prev": str(prev) if prev is not None else "",
        "prev2": str(toks[i - 2]) if i > 1 else "",
        "next": str(toks[i + 1]) if i + 1 < len(toks) else "",
        "prev_type": prev.type if prev is not None else None,
        "next_type": toks[i + 1].type if i + 1 < len(toks) else None,
        "next2_type": toks[i + 2].type if i + 2 < len(toks) else None,
        "newline": prev is not None and tok.line > prev.end_line,
        "bare": str(tok).strip('"'),
        "declaration": prev is not None and prev.value in KEYWORDS and _first_on_line(toks, i - 1),
    }
    where = _span(tok, prev, path) if tok.type != "$END" else _span(prev, prev, path) if prev is not None else Span(path, 1, 1, 1, 2)
    for row in examples.get((state.state_stack[-1], tok.type), []):
        if row.when(ctx):
            e.drop, e.fix = row.drop, row.fix
            if row.at_prev and ctx["newline"]:
                where = Span(path, prev.end_line, prev.end_column, prev.end_line, prev.end_column + 1)
            return Diagnostic("E001", row.message.format(**ctx), where, row.help.format(**ctx) if row.help else None)
    expected = {s for s in state.parse_conf.states[state.state_stack[-1]] if s.isupper() or s == "$END"}
    help = None
    if tok.type == "NAME" and not open_braces:
        help = did_you_mean(str(tok), KEYWORDS) or ("a recipe is a list of declarations such as `model NAME { ... }` "
                                                    "or `stage NAME: KIND { ... }`")
    if tok.type == "$END":
        return Diagnostic("E001", "unexpected end of file", where, "the last declaration is incomplete")
    help = help or ("settings are `key = value`, sections `key { ... }`, lists `[a, b]`, declarations "
                    "`model NAME { ... }` or `stage NAME: KIND { ... }`")
    return Diagnostic("E001", f"unexpected `{ctx['got']}`; expected {' or '.join(_human(expected))}", where, help)


def _human(terminals) -> list[str]:
    names = {_TERMINALS.get(t, f"`{t.lower()}`") for t in terminals}
    if {"a string", "a number", "a name"} <= names:
        names -= {"a string", 'a """ string', "a number", "a name", "`true`", "`false`", "`null`", "`[`"}
        names.add("a value")
    return sorted(names)


def _span(tok, fallback, path: str = "") -> Span:
    t = tok if tok is not None else fallback
    return Span(path, t.line, t.column, t.end_line or t.line, t.end_column or t.column + 1)


# ---------------------------------------------------------------- recovery: where to go on from


def _first_on_line(toks: list, k: int) -> bool:
    return k == 0 or toks[k - 1].end_line < toks[k].line


def _indent(text: str, tok) -> int:
    start = text.rfind("\n", 0, tok.start_pos) + 1
    line = text[start:tok.start_pos]
    return len(line) - len(line.lstrip()) + 1


def declaration_inside(toks: list, k: int, opened: list, text: str) -> bool:
    """A declaration keyword that starts a line no deeper than the outermost open `{`'s line: the `{` was not closed."""
    t = toks[k]
    return (bool(opened) and t.type == "NAME" and t.value in KEYWORDS and toks[k + 1].type in ("NAME", "STRING")
            and _first_on_line(toks, k) and t.column <= _indent(text, opened[0]))


def resync(toks: list, start: int, at: int, opened: list, text: str) -> tuple[int, bool]:
    """The token to go on from after an error: the next setting (or the `}` closing the block) inside a
    block, the next declaration at the top level. Also says whether it is a declaration inside an open block."""
    depth = len(opened)
    if depth and declaration_inside(toks, at, opened, text):
        return at, True
    d = 0
    for k in range(start, len(toks)):
        t = toks[k]
        if t.type == "$END":
            return k, False
        if d == 0:
            if depth:
                if t.type == "RBRACE":
                    return k, False
                if t.type == "NAME" and k > at and (toks[k + 1].type in ("EQUAL", "LBRACE") or
                                                    (k > start and _first_on_line(toks, k))):
                    return k, False
                if declaration_inside(toks, k, opened, text):
                    return k, True
            elif (t.type == "NAME" and toks[k + 1].type in ("NAME", "STRING") and k > at
                  and (t.value in KEYWORDS or _first_on_line(toks, k))):
                return k, False
        if t.type in ("LBRACE", "LSQB"):
            d += 1
        elif t.type in ("RBRACE", "RSQB"):
            d = max(d - 1, 0)
    return len(toks) - 1, False


def unclosed(tok, opened: list, values: list, path: str, at_end: bool) -> Diagnostic:
    """A `{` never closed: named by what it opens (`model tiny`), shown where it opened."""
    brace = opened[-1]
    index = next(j for j, v in enumerate(values) if v is brace)
    words = []
    for v in reversed(values[:index]):
        if getattr(v, "type", None) not in ("NAME", "COLON") or len(words) == 4:
            break
        words.insert(0, str(v))
    owner = " ".join(words).replace(" :", ":") or "this block"
    where = Span(path, brace.line, brace.column, brace.line, brace.column + 1)
    if at_end:
        return Diagnostic("E001", f"unclosed `{{`: `{owner} {{` is never closed", where,
                          f"add the matching `}}` at the end of `{owner}`")
    return Diagnostic("E001", f"expected `}}` before `{tok}`: `{owner} {{` is not closed", _span(tok, tok, path),
                      f"add `}}` to close `{owner}` before this declaration", (("this `{` opened here", where),))


def unclosed_before(end_tok, brace_tok, opener, text: str, path: str) -> Diagnostic:
    """A block whose `}` is missing, found by indentation: it ends before `end_tok` (the first line indented
    like its opener); `brace_tok` is the `}` that closed it instead."""
    start = text.rfind("\n", 0, opener.start_pos) + 1
    words = text[start:opener.start_pos].split()
    owner = " ".join(words[-3:]) if words else "this block"
    where = Span(path, opener.line, opener.column, opener.line, opener.column + 1)
    return Diagnostic("E001", f"unclosed `{{`: `{owner} {{` is not closed", where,
                      f"add `}}` before line {end_tok.line}, where the indentation says the block ends",
                      ((f"without it, the `}}` on line {brace_tok.line} closes `{owner}` instead of the block around it",
                        Span(path, brace_tok.line, brace_tok.column, brace_tok.line, brace_tok.column + 1)),))
