"""`r1dsl fmt`: the canonical layout of a recipe, comments kept.

Canonical spacing and indentation (two spaces), one space around `=`, two spaces between settings
that share a line, `[a, b]` lists, at most one blank line, and `{` aligned across a run of one-line
declarations of the same keyword. The author's line breaks are kept (a body
written on one line stays on one line, settings grouped on a line stay grouped), and a trailing
comment keeps its column when the code before it leaves room. Formatting is idempotent.
"""

from __future__ import annotations

from r1dsl import ast

INDENT = "  "


def format_text(text: str, path: str = "<recipe>") -> str:
    """Formatted text; raises parser.ParseError on a syntax error."""
    from r1dsl.parser import parse

    return format_module(parse(text, path))


def format_module(module: ast.Module) -> str:
    out: list[str] = []
    widths = _name_widths(module.items)
    for i, item in enumerate(module.items):
        if i and item.trivia.blank_before:
            out.append("")
        out += [c for c in item.trivia.before]
        out += _item(item, widths[i])
    if module.end_comments:
        if out:
            out.append("")
        out += module.end_comments
    return "\n".join(out) + "\n" if out else ""


def _name_widths(items: list[ast.Item]) -> list[int]:
    """Align `{` across a run of one-line declarations of the same keyword (a blank line or comment ends it)."""
    def key(item):
        if isinstance(item, ast.BlockDecl) and _one_line(item.body) and not item.trivia.header:
            return item.keyword
        return None

    widths = [0] * len(items)
    i = 0
    while i < len(items):
        k = key(items[i])
        j = i + 1
        while k and j < len(items) and key(items[j]) == k and not items[j].trivia.before and not items[j].trivia.blank_before:
            j += 1
        if k:
            width = max(len(items[m].name) for m in range(i, j))
            for m in range(i, j):
                widths[m] = width
        i = j
    return widths


def _item(item: ast.Item, width: int = 0) -> list[str]:
    if isinstance(item, ast.RecipeDecl):
        head, body = f"recipe {item.name}", None
    elif isinstance(item, ast.ImportDecl):
        head, body = f"{item.keyword} {item.path.raw}", None
    elif isinstance(item, ast.ConstDecl):
        head, body = f"const {item.name} = {_value(item.value, '')}", None
    elif isinstance(item, ast.TemplateDecl):
        head, body = f"template {item.name} = {_value(item.value, '')}", None
    elif isinstance(item, ast.BlockDecl):
        head, body = f"{item.keyword} {item.name.ljust(width)}", item.body
    else:
        head, body = f"stage {item.name}: {item.kind}", item.body
    if body is None:
        return _with_trailing(head.split("\n"), item.trivia)
    return _with_trailing(_block(head, body, item.trivia, ""), item.trivia)


def _with_trailing(lines: list[str], trivia: ast.Trivia) -> list[str]:
    if trivia.trailing:
        lines[-1] = _pad(lines[-1], trivia.trailing_col) + trivia.trailing
    return lines


def _pad(line: str, col: int) -> str:
    """`line` followed by spaces up to column `col` (1-based), or two spaces when it is already that long."""
    return line + " " * (col - 1 - len(line)) if len(line) + 2 <= col - 1 else line + "  "


def _one_line(body: ast.Body) -> bool:
    return body.span.line == body.span.end_line and not body.end_comments


def _block(head: str, body: ast.Body, trivia: ast.Trivia, indent: str) -> list[str]:
    """`head { ... }` on one line when it was written on one line, else one group of settings per line."""
    if _one_line(body) and not trivia.header:
        inner = "  ".join(_entry_inline(e) for e in body.entries)
        return [f"{indent}{head} {{ {inner} }}" if inner else f"{indent}{head} {{}}"]
    first = f"{indent}{head} {{"
    if trivia.header:
        first = _pad(first, trivia.header_col) + trivia.header
    lines = [first]
    lines += _entries(body, indent + INDENT)
    if body.end_comments:
        lines += [indent + INDENT + c for c in body.end_comments]
    lines.append(f"{indent}}}")
    return lines


def _entries(body: ast.Body, indent: str) -> list[str]:
    entries = body.entries
    joined = [False] + [
        entries[i].span.line == entries[i - 1].span.end_line
        and not entries[i - 1].trivia.trailing
        and not entries[i].trivia.before
        and not entries[i].trivia.blank_before
        and _single(entries[i - 1])
        and _single(entries[i])
        for i in range(1, len(entries))
    ]
    lines: list[str] = []
    for i, entry in enumerate(entries):
        if joined[i]:
            lines[-1] += "  " + _entry_inline(entry)
            lines[-1:] = _with_trailing(lines[-1:], entry.trivia)
            continue
        if i and entry.trivia.blank_before:
            lines.append("")
        lines += [indent + c for c in entry.trivia.before]
        lines += _with_trailing(_entry(entry, indent), entry.trivia)
    return lines


def _single(entry: ast.Entry) -> bool:
    if isinstance(entry, ast.Section):
        return _one_line(entry.body) and not entry.trivia.header
    return "\n" not in _value(entry.value, "")


def _entry_inline(entry: ast.Entry) -> str:
    if isinstance(entry, ast.Section):
        inner = "  ".join(_entry_inline(e) for e in entry.body.entries)
        return f"{entry.key} {{ {inner} }}" if inner else f"{entry.key} {{}}"
    return f"{entry.key} = {_value(entry.value, '')}"


def _entry(entry: ast.Entry, indent: str, width: int = 0) -> list[str]:
    if isinstance(entry, ast.Section):
        return _block(entry.key, entry.body, entry.trivia, indent)
    return (indent + f"{entry.key.ljust(width)} = {_value(entry.value, indent)}").split("\n")


def _value(value: ast.Value, indent: str) -> str:
    if isinstance(value, (ast.Str, ast.Num)):
        return value.raw
    if isinstance(value, ast.Bool):
        return "true" if value.value else "false"
    if isinstance(value, ast.Null):
        return "null"
    if isinstance(value, ast.Ref):
        return value.name
    items = [_value(v, indent + INDENT) for v in value.items]
    if value.span.line != value.span.end_line and items:  # written one item per line: keep it so
        return "[\n" + "".join(f"{indent}{INDENT}{item},\n" for item in items) + f"{indent}]"
    return "[" + ", ".join(items) + "]"
