"""Source text -> syntax tree (r1dsl.ast) with spans and comments; syntax errors become E001 diagnostics."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from r1dsl import ast
from r1dsl.diagnostics import Diagnostic, did_you_mean
from r1dsl.ir import Span

GRAMMAR = Path(__file__).with_name("grammar.lark")
KEYWORDS = ("recipe", "import", "include", "const", "model", "dataset", "template", "reward", "stage")
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


@lru_cache(maxsize=1)
def _lark():
    """The LALR parser; its transformer builds the AST while parsing (no intermediate parse tree)."""
    from lark import Lark

    transformer = _transformer_class()("<recipe>")
    parser = Lark(
        GRAMMAR.read_text(),
        parser="lalr",
        maybe_placeholders=False,
        start=["start", "value"],
        transformer=transformer,
        cache=True,  # the LALR tables are kept in the temp folder: `r1dsl check` must start fast
    )
    return parser, transformer


def _run(text: str, start: str, path: str, line_offset: int = 0, col_offset: int = 0):
    from lark.exceptions import UnexpectedInput, VisitError

    parser, transformer = _lark()
    transformer.path, transformer.line_offset, transformer.col_offset = path, line_offset, col_offset
    try:
        return parser.parse(text, start=start)
    except UnexpectedInput as e:
        raise ParseError(_syntax_error(e, text, path)) from None
    except VisitError as e:  # a keyword or escape the transformer rejected
        if isinstance(e.orig_exc, ParseError):
            raise e.orig_exc from None
        raise


class ParseError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def parse(text: str, path: str) -> ast.Module:
    """Parse one file; raises ParseError (an E001 diagnostic) on a syntax error."""
    module = _run(text, "start", path)
    module.text = text
    _attach_comments(module, text)
    return module


def parse_value(text: str, path: str, line: int = 1, col_offset: int = 0) -> ast.Value:
    """Parse a lone value (used by `--set`); raises ParseError."""
    return _run(text, "value", path, line - 1, col_offset)


# ---------------------------------------------------------------- parse tree -> AST


def _unescape(raw: str, span: Span) -> str:
    table = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}

    def one(m: re.Match) -> str:
        c = m.group(1)
        if c not in table:
            raise ParseError(
                Diagnostic("E001", f"unknown escape `\\{c}` in a string", span, help='use \\n, \\t, \\" or \\\\, or a """ string, which keeps text verbatim')
            )
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
            return ast.Str(_unescape(str(c[0]), span), str(c[0]), span)

        def long_string(self, c):
            raw = str(c[0])
            text = raw[3:-3]
            if text.startswith("\n"):  # a newline right after the opening quotes is layout, not text
                text = text[1:]
            return ast.Str(text, raw, self.tok(c[0]))

        def number(self, c):
            raw = str(c[0])
            is_int = not any(ch in raw for ch in ".eE")
            value = int(raw.replace("_", "")) if is_int else float(raw.replace("_", ""))
            return ast.Num(value, raw, self.tok(c[0]))

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
        def keyword(self, tok, allowed: tuple[str, ...], shape: str) -> str:
            word = str(tok)
            if word in allowed:
                return word
            span = self.tok(tok)
            if word in KEYWORDS:
                message = f"malformed `{word}` declaration"
                help = f"`{word}` is written {_SHAPES[word]}"
            else:
                message = f"unknown declaration `{word}`"
                help = did_you_mean(word, allowed) or f"{shape} starts with {' or '.join(f'`{a}`' for a in allowed)}"
            raise ParseError(Diagnostic("E001", message, span, help))

        def recipe_decl(self, c):
            self.keyword(c[0], ("recipe",), "`NAME NAME`")
            return ast.RecipeDecl(str(c[1]), self.tok(c[1]), self.join(c[0], c[1]))

        def import_decl(self, c):
            word = self.keyword(c[0], ("import", "include"), "`NAME \"file\"`")
            return ast.ImportDecl(word, self.string([c[1]]), self.join(c[0], c[1]))

        def named_value(self, c):
            word = self.keyword(c[0], ("const", "template"), "`NAME NAME = value`")
            cls = ast.ConstDecl if word == "const" else ast.TemplateDecl
            return cls(str(c[1]), self.tok(c[1]), c[2], self.join(c[0], c[2].span))

        def block_decl(self, c):
            word = self.keyword(c[0], ("model", "dataset", "reward"), "`NAME NAME { ... }`")
            return ast.BlockDecl(word, str(c[1]), self.tok(c[1]), c[2], self.join(c[0], c[2].span))

        def stage_decl(self, c):
            self.keyword(c[0], ("stage",), "`NAME NAME: KIND { ... }`")
            return ast.StageDecl(str(c[1]), self.tok(c[1]), str(c[2]), self.tok(c[2]), c[3], self.join(c[0], c[3].span))

        def start(self, c):
            return ast.Module(self.path, "", list(c))

    return ToAst


@lru_cache(maxsize=1)
def _transformer_class():
    return _make_transformer()


# ---------------------------------------------------------------- syntax errors that teach

_TERMINALS = {
    "NAME": "a name",
    "STRING": "a string",
    "LONG_STRING": 'a """ string',
    "NUMBER": "a number",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "EQUAL": "`=`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "TRUE": "`true`",
    "FALSE": "`false`",
    "NULL": "`null`",
    "$END": "the end of the file",
}


def _human(terminals) -> list[str]:
    names = {_TERMINALS.get(t, f"`{t.lower()}`") for t in terminals}
    if any(f"`{k}`" in names for k in KEYWORDS):  # top level: say "a declaration" once
        names = {n for n in names if n.strip("`") not in KEYWORDS} | {"a declaration (" + ", ".join(KEYWORDS) + ")"}
    if {"a string", "a number", "a name"} <= names:
        names -= {"a string", 'a """ string', "a number", "a name", "`true`", "`false`", "`null`", "`[`"}
        names.add("a value")
    return sorted(names)


def _syntax_error(e, text: str, path: str) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    lines = text.split("\n")
    if isinstance(e, UnexpectedToken) and e.token.type != "$END":
        tok = e.token
        span = Span(path, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1)
        got = str(tok).split("\n")[0]
        expected = _human(e.expected)
        help = None
        if tok.type == "COLON" and "EQUAL" in e.expected:
            help = "settings are written `key = value`"
        elif tok.type == "NAME" and any(k.upper() in e.expected for k in KEYWORDS):
            hint = did_you_mean(got, KEYWORDS)
            help = hint or "a recipe is a list of declarations such as `model NAME { ... }` or `stage NAME: KIND { ... }`"
        elif tok.type == "EQUAL" and "LBRACE" in e.expected:
            help = "this declaration takes a `{ ... }` body"
        elif tok.type == "LBRACE" and "EQUAL" in e.expected:
            help = "this declaration is written `NAME = value`"
        elif tok.type == "NAME" and "COMMA" in e.expected:
            help = "separate list items with `,`"
        elif tok.type == "NAME" and "COLON" in e.expected:
            help = "a stage names its kind: `stage NAME: grpo { ... }`"
        return Diagnostic("E001", f"unexpected `{got}`; expected {' or '.join(expected)}", span, help)
    if isinstance(e, (UnexpectedEOF, UnexpectedToken)):
        line = len(lines)
        col = len(lines[-1]) + 1
        span = Span(path, line, col, line, col + 1)
        opened = _unclosed_brace(text, path)
        if opened:
            return Diagnostic("E001", "unexpected end of file: a `{` is never closed", opened, "add the matching `}`")
        return Diagnostic("E001", "unexpected end of file", span, "the last declaration is incomplete")
    if isinstance(e, UnexpectedCharacters):
        line, col = e.line, e.column
        char = e.char
        span = Span(path, line, col, line, col + 1)
        if char == '"':
            return Diagnostic(
                "E001",
                "unterminated string",
                span,
                'close it with `"` on the same line, or use a """ string for text that spans lines',
            )
        message = f"unexpected character `{char}`"
        help = None
        if char == "'":
            help = 'strings use double quotes: "text"'
        elif char == ":":
            help = "settings are written `key = value`"
        elif char in "-./":
            help = "names use letters, digits and `_`; write a file or hub id as a string"
        return Diagnostic("E001", message, span, help)
    return Diagnostic("E001", f"syntax error: {e}", Span(path, 1, 1, 1, 2))


def _unclosed_brace(text: str, path: str) -> Span | None:
    """The position of the first `{` that is never closed, skipping strings and comments."""
    stack: list[tuple[int, int]] = []
    for m in re.finditer(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*|[{}]', text):
        tok = m.group(0)
        if tok == "{":
            line = text.count("\n", 0, m.start()) + 1
            col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
            stack.append((line, col))
        elif tok == "}" and stack:
            stack.pop()
    if stack:
        line, col = stack[0] if len(stack) == 1 else stack[-1]
        return Span(path, line, col, line, col + 1)
    return None


# ---------------------------------------------------------------- comments (kept for `fmt`)

_COMMENT_SCAN = re.compile(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|(#[^\n]*)')


def _children(node) -> list:
    if isinstance(node, ast.Module):
        return node.items
    body = getattr(node, "body", None)
    return body.entries if isinstance(body, ast.Body) else []


def _attach_comments(module: ast.Module, text: str) -> None:
    comments: list[tuple[int, int, bool, str]] = []  # (line, column, own_line, text)
    for m in _COMMENT_SCAN.finditer(text):
        if m.group(1) is None:
            continue
        start = m.start(1)
        line_start = text.rfind("\n", 0, start) + 1
        own = text[line_start:start].strip() == ""
        comments.append((text.count("\n", 0, start) + 1, start - line_start + 1, own, m.group(1).rstrip()))

    # every node that can carry trivia, with its depth and container
    nodes: list[tuple[int, object, object]] = []  # (depth, node, container)

    def walk(container, depth):
        for child in _children(container):
            nodes.append((depth, child, container))
            if isinstance(getattr(child, "body", None), ast.Body):
                walk(child, depth + 1)

    walk(module, 0)
    first_line: dict[int, int] = {id(n): n.span.line for _, n, _ in nodes}

    def containing_block(line: int):
        """The deepest node whose braces enclose `line` (None: the module)."""
        best = None
        for depth, node, _ in nodes:
            body = getattr(node, "body", None)
            if isinstance(body, ast.Body) and body.span.line < line < body.span.end_line:
                if best is None or depth > best[0]:
                    best = (depth, node)
        return best[1] if best else None

    def attach_before(line: int, text_: str) -> None:
        for _, node, _ in nodes:  # inside a multi-line value (a list): goes above that setting
            if isinstance(node, ast.Assign) and node.span.line <= line <= node.span.end_line:
                node.trivia.before.append(text_)
                first_line[id(node)] = min(first_line[id(node)], line)
                return
        block = containing_block(line)
        siblings = _children(block) if block is not None else module.items
        for child in siblings:
            if child.span.line > line:
                child.trivia.before.append(text_)
                first_line[id(child)] = min(first_line[id(child)], line)
                return
        if block is None:
            module.end_comments.append(text_)
        else:
            block.body.end_comments.append(text_)

    for line, col, own, text_ in comments:
        if own:
            attach_before(line, text_)
            continue
        ending = [(d, n) for d, n, _ in nodes if n.span.end_line == line]
        if ending:
            depth = min(d for d, _ in ending)
            node = [n for d, n in ending if d == depth][-1]
            if node.trivia.trailing is None:
                node.trivia.trailing_col = col
            node.trivia.trailing = _join(node.trivia.trailing, text_)
            continue
        opening = [(d, n) for d, n, _ in nodes if isinstance(getattr(n, "body", None), ast.Body) and n.body.span.line == line]
        if opening:
            node = max(opening, key=lambda x: x[0])[1]
            if node.trivia.header is None:
                node.trivia.header_col = col
            node.trivia.header = _join(node.trivia.header, text_)
            continue
        attach_before(line, text_)

    # blank lines that separate a node from the previous one (outside strings)
    blank = _blank_lines(text)
    for container in [module] + [n for _, n, _ in nodes if isinstance(getattr(n, "body", None), ast.Body)]:
        for i, child in enumerate(_children(container)):
            if i > 0 and (first_line[id(child)] - 1) in blank:
                child.trivia.blank_before = True


def _join(a: str | None, b: str) -> str:
    return b if a is None else f"{a} {b.lstrip('#').strip()}"


def _blank_lines(text: str) -> set[int]:
    in_string: set[int] = set()
    for m in re.finditer(r'"""[\s\S]*?"""', text):
        first = text.count("\n", 0, m.start()) + 1
        last = first + m.group(0).count("\n")
        in_string.update(range(first + 1, last + 1))
    return {i + 1 for i, line in enumerate(text.split("\n")) if not line.strip() and (i + 1) not in in_string}
