"""Source text -> syntax tree (r1dsl.ast) with spans and comments; syntax errors become E001 diagnostics.

The layers, each its own module that reads alone: r1dsl/scan.py (text -> tokens), r1dsl/lalr.py (the grammar's
LALR parser), r1dsl/transform.py (parse -> AST nodes), r1dsl/syntax_errors.py (what each mistake is called);
this module drives them, recovers after an error, and keeps comments for `fmt`."""

from __future__ import annotations

import re
from functools import lru_cache

from r1dsl import ast, syntax_errors
from r1dsl.diagnostics import Diagnostic
from r1dsl.lalr import lark
from r1dsl.scan import tokenize
from r1dsl.ir import Span



class ParseError(Exception):
    """A syntax error; `diagnostic` is the first one, `diagnostics` all of them (in source order)."""

    def __init__(self, diagnostic: Diagnostic, diagnostics: list[Diagnostic] | None = None):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.diagnostics = diagnostics or [diagnostic]


BOM = "\ufeff"  # a UTF-8 byte-order mark some editors write at the start of a file: accepted and ignored


def parse(text: str, path: str) -> ast.Module:
    """Parse one file; raises ParseError (E001 diagnostics) on syntax errors."""
    module, errors = parse_recovering(text, path)
    if errors:
        raise ParseError(errors[0], errors)
    return module


def parse_recovering(text: str, path: str) -> tuple[ast.Module, list[Diagnostic]]:
    """Parse one file, reporting every syntax error: each damaged setting or declaration is skipped
    (the module records where, in `skipped`, and the names it lost, in `lost_names`) and parsing
    resumes at the next one, so the rest of the file is still parsed and checked."""
    if text.startswith(BOM):
        text = text[1:]
    errors: list[Diagnostic] = []
    tokens = tokenize(text, path, errors)
    scanned = list(errors)
    suspects: list[tuple[int, object]] = []
    module, skipped, lost = _drive(list(tokens), text, path, "start", errors, suspects)
    if suspects and suspects[0][0] < len(tokens) and any(d.message.startswith(("expected `}`", "unclosed `{`")) for d in errors):
        # (a suspect at the end of the file has no token to put a `}` before: the first reading stands)
        # A `}` less indented than the line that opened its block: that block's own `}` is probably the one
        # missing. Parse again with it added there; keep that reading if it explains the file better.
        from lark import Token

        at, opener = suspects[0]
        brace = tokens[at]
        first = next((k for k, t in enumerate(tokens) if t.start_pos == opener.start_pos), at)
        indent = syntax_errors._indent(text, opener)
        at = next((k for k in range(first + 1, at + 1)  # the block ends before the first line indented like its opener
                   if tokens[k - 1].end_line < tokens[k].line and tokens[k].column <= indent), at)
        t = tokens[at]
        again = tokens[:at] + [Token("RBRACE", "}", t.start_pos, t.line, t.column, t.line, t.column, t.start_pos)] + tokens[at:]
        errors2 = list(scanned) + [syntax_errors.unclosed_before(t, brace, opener, text, path)]
        result = _drive(again, text, path, "start", errors2, [])
        if len(errors2) <= len(errors):
            (module, skipped, lost), errors = result, errors2
    module.text = text
    module.skipped = skipped
    module.lost_names = lost
    _attach_comments(module, text)
    errors = _one_per_line(errors)
    return module, errors


def parse_value(text: str, path: str, line: int = 1, col_offset: int = 0) -> ast.Value:
    """Parse a lone value (used by `--set`); raises ParseError."""
    errors: list[Diagnostic] = []
    tokens = tokenize(text, path, errors, line - 1, col_offset)
    if errors:
        raise ParseError(errors[0], errors)
    value, _, _ = _drive(tokens, text, path, "value", errors)
    if errors:
        raise ParseError(errors[0], errors)
    return value


def _one_per_line(errors: list[Diagnostic]) -> list[Diagnostic]:
    """Source order, and the first syntax error of a line only: what follows it on that line is usually its echo."""
    seen: set[tuple[str, int]] = set()
    out = []
    for d in sorted(errors, key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0)):
        key = (d.span.file, d.span.line) if d.span else ("", 0)
        if key in seen:
            continue
        if not d.notes:  # a `{` left open is reported where the next declaration starts: not an echo
            seen.add(key)
        out.append(d)
    return out


# ---------------------------------------------------------------- parsing with recovery


@lru_cache(maxsize=1)
def examples_table() -> dict:
    """(parser state, token kind) -> the rows that describe an error there, from EXAMPLES."""
    from lark.exceptions import UnexpectedToken

    lark_parser, transformer = lark()
    out: dict = {}
    for row in syntax_errors.EXAMPLES:
        for snippet in row.snippets:
            saved = transformer.errors, transformer.lost
            transformer.errors, transformer.lost = [], set()
            try:
                toks = tokenize(snippet, "<example>", [])
                toks.append(syntax_errors.end_token(snippet, toks))
                state = lark_parser.parse_interactive(start="start").parser_state
                for tok in toks:
                    state.feed_token(tok, is_end=tok.type == "$END")
            except UnexpectedToken as e:
                key = (state.state_stack[-1], e.token.type)
                out.setdefault(key, []).append(row)
            finally:
                transformer.errors, transformer.lost = saved
    return out




def _drive(tokens: list, text: str, path: str, start: str, errors: list[Diagnostic], suspects: list | None = None):
    """Feed the tokens to the LALR parser. On a syntax error: report it (classified by r1dsl.syntax_errors),
    go back to the last point between two settings or declarations, skip to the next one, and go on."""
    from lark import Token
    from lark.exceptions import UnexpectedToken

    parser, transformer = lark()
    transformer.path, transformer.line_offset, transformer.col_offset = path, 0, 0  # the tokens carry any offset
    transformer.errors = errors
    transformer.lost = set()
    state = parser.parse_interactive(start=start).parser_state
    table = state.parse_conf.states
    last = tokens[-1] if tokens else None
    end_line, end_col = (last.end_line, last.end_column) if last else (1, 1)
    toks = tokens + [Token("$END", "", len(text), end_line, end_col, end_line, end_col + 1, len(text))]
    skipped: list[Span] = []
    snapshot = [list(state.state_stack), [], 0]
    boundaries = _boundaries(state.parse_conf) if start == "start" else frozenset()
    i, resumed = 0, -1
    for _ in range(10 * len(toks) + 10):  # each round consumes a token or skips ahead: bounded
        tok = toks[i]
        try:
            if start == "start" and i != resumed:
                early = syntax_errors.before_feed(toks, i, state, table, errors, path)
                if early is syntax_errors.SKIP:
                    i += 1
                    continue
                if early is not None:
                    raise early
            if tok.type == "$END":
                return state.feed_token(tok, is_end=True), skipped, transformer.lost
            if suspects is not None and tok.type == "RBRACE" and (i == 0 or toks[i - 1].end_line < tok.line):
                opener = _innermost_open(state.value_stack)
                if opener is not None and tok.column < syntax_errors._indent(text, opener):
                    suspects.append((i, opener))  # this `}` is less indented than its block's first line
            _feed(state, tok, boundaries, snapshot, i)
            i += 1
        except UnexpectedToken as e:
            if state.state_stack[-1] in boundaries:  # failed right at a point between two settings: go on from here
                snapshot[:] = [list(state.state_stack), list(state.value_stack), i]
            diag = None if i == resumed else syntax_errors.classify(e, toks, i, state, path, examples_table())
            if start != "start":
                raise ParseError(diag or errors[0]) from None
            if getattr(e, "drop", False):  # a stray separator: report it and go on without it
                errors.append(diag)
                i += 1
                continue
            if getattr(e, "fix", None) and diag is not None:  # `from: x`, `data x`: read it as meant, go on
                errors.append(diag)
                how, kind = e.fix
                t = toks[i]
                value = {"EQUAL": "=", "LBRACE": "{", "NAME": str(t).strip('"')}[kind]
                if how == "replace":
                    toks[i] = Token(kind, value, t.start_pos, t.line, t.column, t.end_line, t.end_column, t.end_pos)
                else:
                    toks.insert(i, Token(kind, value, t.start_pos, t.line, t.column, t.line, t.column, t.start_pos))
                resumed = i  # a second error here goes to the general recovery
                continue
            i = resumed = _recover(state, toks, i, snapshot, diag, errors, skipped, transformer.lost, path, text)
    raise AssertionError("syntax recovery did not terminate")  # unreachable: each round makes progress


@lru_cache(maxsize=4)
def _boundaries(conf) -> frozenset:
    """The parser states between two settings (or declarations): a name would start the next one, or the
    block (file) could end."""
    from lark.parsers.lalr_analysis import Shift

    out = set()
    for s, actions in conf.states.items():
        name = actions.get("NAME")
        if name is not None and name[0] is Shift and ("RBRACE" in actions or "$END" in actions):
            out.add(s)
    return frozenset(out)


def _feed(state, tok, boundaries: frozenset, snapshot: list, i: int) -> None:
    """lark's ParserState.feed_token, noting the last point between two settings or declarations in `snapshot`
    (state stack, value stack, token index), the place recovery goes back to."""
    from lark.exceptions import UnexpectedToken
    from lark.parsers.lalr_analysis import Shift

    states, callbacks = state.parse_conf.states, state.parse_conf.callbacks
    state_stack, value_stack = state.state_stack, state.value_stack
    while True:
        s = state_stack[-1]
        try:
            action, arg = states[s][tok.type]
        except KeyError:
            raise UnexpectedToken(tok, {t for t in states[s] if t.isupper()}, state=state) from None
        if action is Shift:
            if s in boundaries:
                snapshot[:] = [list(state_stack), list(value_stack), i]
            state_stack.append(arg)
            value_stack.append(tok if tok.type not in callbacks else callbacks[tok.type](tok))
            return
        rule = arg
        size = len(rule.expansion)
        children = value_stack[-size:] if size else []
        if size:
            del state_stack[-size:]
            del value_stack[-size:]
        value_stack.append(callbacks[rule](children))
        _, goto = states[state_stack[-1]][rule.origin.name]
        state_stack.append(goto)


def _innermost_open(values: list):
    """The `{` of the innermost block still open on the value stack (a `}` not yet reduced closes one)."""
    from lark import Token

    closed = 0
    for v in reversed(values):
        if isinstance(v, Token) and v.type == "RBRACE":
            closed += 1
        elif isinstance(v, Token) and v.type == "LBRACE":
            if closed == 0:
                return v
            closed -= 1
    return None


def _unterminated(tok, text: str) -> bool:
    """A string token the scanner closed itself (its quotes are missing in the source)."""
    if tok.type == "LONG_STRING":
        return text[tok.end_pos - 3:tok.end_pos] != '"""'
    return tok.type == "STRING" and text[tok.end_pos - 1:tok.end_pos] != '"'


def _close_all(state, at, commit: bool = False) -> bool:
    """Whether `}` for every open `{` is accepted here (fed for real when `commit`). The trial moves through
    parser states only: lark's callbacks extend the lists on the value stack in place, so a trial on a copy
    of the stacks would change the real ones."""
    from lark import Token
    from lark.parsers.lalr_analysis import Shift

    opened = sum(1 for v in state.value_stack if isinstance(v, Token) and v.type == "LBRACE")
    if not opened:
        return False
    if commit:
        for _ in range(opened):
            _feed(state, Token("RBRACE", "}", at.start_pos, at.line, at.column, at.line, at.column, at.start_pos),
                  frozenset(), [], 0)
        return True
    states, stack = state.parse_conf.states, list(state.state_stack)
    for _ in range(opened):
        while True:
            action = states[stack[-1]].get("RBRACE")
            if action is None:
                return False
            if action[0] is Shift:
                stack.append(action[1])
                break
            size = len(action[1].expansion)
            if size:
                del stack[-size:]
            stack.append(states[stack[-1]][action[1].origin.name][1])
    return True


def _recover(state, toks, i, snapshot, diag, errors, skipped, lost, path, text) -> int:
    """Restore the parser to `snapshot` (the last point between two settings or declarations), record
    what is skipped, and return the index of the token to go on from."""
    from lark import Token

    if toks[i].type == "$END" and _close_all(state, toks[i]):  # the file ended inside blocks that are complete so far
        opened = [v for v in state.value_stack if isinstance(v, Token) and v.type == "LBRACE"]
        errors.append(syntax_errors.unclosed(toks[i], opened, list(state.value_stack), path, at_end=True))
        _close_all(state, toks[i], commit=True)
        return i
    stack, values, at = snapshot
    state.state_stack[:] = stack
    state.value_stack[:] = values
    opened = [v for v in values if isinstance(v, Token) and v.type == "LBRACE"]
    target, inside = syntax_errors.resync(toks, max(i, at + 1), at, opened, text)
    if inside:  # a declaration starts inside an open `{`: that is the mistake, whatever the parser saw
        diag = syntax_errors.unclosed(toks[target], opened, values, path, at_end=False)
        if target and _unterminated(toks[target - 1], text):  # the string ran to here: that was the mistake
            diag = None
    if diag is not None:
        errors.append(diag)
    if target > at:
        first, last = toks[at], toks[target - 1]
        skipped.append(Span(path, first.line, first.column, last.end_line, last.end_column))
        if not opened and toks[at].type == "NAME" and toks[at + 1].type == "NAME" and at + 1 < target:
            lost.add(str(toks[at + 1]))
    if opened and (inside or toks[target].type == "$END"):  # close what is open, then go on
        if not inside:
            errors.append(syntax_errors.unclosed(toks[target], opened, values, path, at_end=True))
        t = toks[target]
        for _ in opened:
            state.feed_token(Token("RBRACE", "}", t.start_pos, t.line, t.column, t.line, t.column, t.start_pos))
    return target


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
