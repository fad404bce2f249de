"""Constants, folded once: each `const` gets its value with other constants substituted, before any use.

A cycle is one E006 at the reference that closes it. Uses read the folded table (`resolve`), which
only records that the constant (and those it reads) is used.
May import: r1dsl.ast, .scope.
"""

from __future__ import annotations

from r1dsl import ast
from r1dsl.checker.scope import BAD, Context


def fold(cx: Context) -> None:
    """Fill `cx.folded` and `cx.const_deps` for every constant, in declaration order."""
    for name in cx.consts:
        _const(cx, name, [], None)


def _const(cx: Context, name: str, stack: list[str], span) -> tuple[object, set[str]]:
    if name in stack:
        cycle = " -> ".join(stack[stack.index(name):] + [name])
        cx.d.error("E006", f"constants refer to each other in a cycle: {cycle}", span, help="give one of them a literal value")
        return BAD, set()
    if name not in cx.folded:
        stack.append(name)
        value, deps = _value(cx, cx.consts[name], stack)
        stack.pop()
        cx.folded[name], cx.const_deps[name] = value, deps
    return cx.folded[name], {name} | cx.const_deps[name]


def _value(cx: Context, value: ast.Value, stack: list[str]) -> tuple[object, set[str]]:
    if isinstance(value, ast.Ref) and value.name in cx.consts:
        return _const(cx, value.name, stack, value.span)
    if isinstance(value, ast.List):
        folded = [_value(cx, v, stack) for v in value.items]
        deps = set().union(*(d for _, d in folded))
        if any(v is BAD for v, _ in folded):
            return BAD, deps
        return ast.List([v for v, _ in folded], value.span), deps
    return value, set()


def resolve(cx: Context, value: ast.Value) -> ast.Value | object:
    """`value` with constants substituted (inside lists too), from the folded table; BAD after a cycle."""
    if isinstance(value, ast.Ref) and value.name in cx.consts:
        cx.used.add(value.name)
        cx.used.update(cx.const_deps.get(value.name, ()))
        return cx.folded.get(value.name, BAD)
    if isinstance(value, ast.List):
        items = [resolve(cx, v) for v in value.items]
        if any(i is BAD for i in items):
            return BAD
        return ast.List(items, value.span)
    return value
