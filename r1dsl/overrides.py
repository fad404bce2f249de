"""`--set KEY=VALUE`: edits of the syntax tree applied before checking, so the checker validates them.

KEY is `const`, `template`, `decl.key`, `decl.section.key` (any depth), or a stage shorthand
(`zero.group_size`, `zero.lr`, `zero.steps`). VALUE is recipe syntax (`8`, `"text"`, `[a, b]`);
anything that does not parse as a value, or a bare word that names no declaration, is taken as a
string (`--set gsm.jsonl=data/x.jsonl`, `--set zero.optim.lr_schedule=constant`).
Errors point into a pseudo-file named `--set` whose line N is the N-th override.
"""

from __future__ import annotations

import re

from r1dsl import ast
from r1dsl.diagnostics import Diagnostics, did_you_mean
from r1dsl.ir import Span
from r1dsl.parser import ParseError, parse_value
from r1dsl.schema import shorthand

SOURCE = "--set"
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def apply(modules: list[ast.Module], overrides: list[str], diags: Diagnostics) -> None:
    if not overrides:
        return
    diags.sources[SOURCE] = "\n".join(overrides)
    decls: dict = {}  # name -> declarations; a template and a stage may share a name
    for module in modules:
        for item in module.items:
            if isinstance(item, (ast.ConstDecl, ast.TemplateDecl, ast.BlockDecl, ast.StageDecl)):
                decls.setdefault(item.name, []).append(item)
    for line, text in enumerate(overrides, start=1):
        _apply_one(decls, text, line, diags)


def _apply_one(decls: dict, text: str, line: int, diags: Diagnostics) -> None:
    whole = Span(SOURCE, line, 1, line, len(text) + 1)
    key, eq, raw = text.partition("=")
    key = key.strip()
    if not eq or not _KEY.match(key):
        diags.error("E014", f"malformed override `{text}`", whole,
                    help="write --set NAME=VALUE, e.g. --set zero.grpo.kl_penalty=0.01 or --set seed=3")
        return
    value = _value(raw, line, len(text) - len(raw), decls)
    path = key.split(".")
    key_span = Span(SOURCE, line, 1, line, len(key) + 1)
    named = decls.get(path[0], [])
    # `NAME=VALUE` replaces a value (const, template); `NAME.KEY=VALUE` a setting (block, stage)
    wants_settings = len(path) > 1
    decl = next((d for d in named if isinstance(d, (ast.BlockDecl, ast.StageDecl)) == wants_settings), named[0] if named else None)
    if decl is None:
        diags.error("E002", f"unknown name `{path[0]}` in --set", Span(SOURCE, line, 1, line, len(path[0]) + 1),
                    help=did_you_mean(path[0], decls) or "name a const, template, model, dataset, reward or stage")
        return
    if len(path) == 1:
        if isinstance(decl, (ast.ConstDecl, ast.TemplateDecl)):
            decl.value = value
        else:
            diags.error("E014", f"`{path[0]}` is a {ast.decl_keyword(decl)}, not a value", key_span,
                        help=f"name one of its settings: --set {path[0]}.KEY=VALUE")
        return
    if not isinstance(decl, (ast.BlockDecl, ast.StageDecl)):
        diags.error("E014", f"`{path[0]}` is a {ast.decl_keyword(decl)} and has no settings", key_span,
                    help=f"replace its value: --set {path[0]}=VALUE")
        return
    keys = path[1:]
    body = decl.body
    if isinstance(decl, ast.StageDecl):
        canon = shorthand(decl.kind, keys[0]) if len(keys) == 1 else None
        if canon or len(keys) == 2:
            target = canon or (keys[0], keys[1])
            for entry in body.entries:  # a stage-level shorthand already setting the same knob
                if isinstance(entry, ast.Assign) and shorthand(decl.kind, entry.key) == target:
                    entry.value = value
                    return
            if canon:
                keys = list(canon)
    for name in keys[:-1]:
        section = next((e for e in body.entries if e.key == name), None)
        if isinstance(section, ast.Assign):
            diags.error("E014", f"`{name}` is a setting, not a section", key_span,
                        help=f"set it directly: --set {'.'.join(path[: path.index(name) + 1])}=VALUE")
            return
        if section is None:
            section = ast.Section(name, key_span, ast.Body([], key_span), key_span)
            body.entries.append(section)
        body = section.body
    last = keys[-1]
    existing = next((e for e in body.entries if e.key == last), None)
    if isinstance(existing, ast.Section):
        diags.error("E014", f"`{last}` is a section, not a setting", key_span,
                    help=f"set one of its settings: --set {key}.KEY=VALUE")
    elif existing is not None:
        existing.value = value
    else:
        body.entries.append(ast.Assign(last, key_span, value, whole))


def _value(raw: str, line: int, offset: int, decls: dict) -> ast.Value:
    """The override's value: recipe syntax; a bare word that names nothing (`constant`) is a string."""
    span = Span(SOURCE, line, offset + 1, line, offset + len(raw) + 1)
    try:
        value = parse_value(raw, SOURCE, line=line, col_offset=offset)
    except ParseError:
        return ast.Str(raw, raw, span)
    if isinstance(value, ast.Ref) and value.name not in decls:
        return ast.Str(raw, raw, span)
    return value
