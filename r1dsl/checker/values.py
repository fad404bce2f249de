"""Typed values: a setting's syntax -> a Python value of the annotated type within its limits, or a diagnostic.

One loop (`build`) types, range-checks and fills every IR section from its dataclass field metadata;
the reward-rule parameters go through the same `convert` and `limits`.
May import: r1dsl.ast, r1dsl.ir, r1dsl.schema, r1dsl.kinds, r1dsl.diagnostics, .scope, .constants.
"""

from __future__ import annotations

import math
import os
import types
import typing
from typing import Any

from r1dsl import ast
from r1dsl.checker.constants import resolve
from r1dsl.checker.scope import BAD, Context
from r1dsl.diagnostics import did_you_mean
from r1dsl.ir import Span
from r1dsl.kinds import KINDS
from r1dsl.schema import knobs, section_of


def convert(cx: Context, value: ast.Value, typ: Any, what: str) -> Any:
    """The Python value of `value` if it fits the annotation `typ`, else a diagnostic and BAD."""
    value = resolve(cx, value)
    if value is BAD:
        return BAD
    optional = False
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        optional = len(args) < len(typing.get_args(typ))
        typ = args[0] if len(args) == 1 else tuple(args)
    if isinstance(value, ast.Null):
        if optional:
            return None
        return type_error(cx, value, what, typ)
    accept = typ if isinstance(typ, tuple) else (typ,)
    if typ is Any and isinstance(value, (ast.Bool, ast.Str)):  # a list's items when nothing says more
        return value.value
    if typ is Any and isinstance(value, ast.Num):
        return convert(cx, value, (int, float), what)
    if isinstance(value, ast.Bool):
        return value.value if bool in accept else type_error(cx, value, what, typ)
    if isinstance(value, ast.Num):
        v = value.value
        if float in accept and not isinstance(v, bool):
            if not _finite(v):
                cx.d.error("E005", f"`{what}` must be a finite number a float can hold (got {value.raw})", value.span)
                return BAD
            return float(v) if int not in accept or isinstance(v, float) else v
        if int in accept:
            whole = v if isinstance(v, int) else None
            if whole is None and _finite(v) and v == int(v) and "." not in value.raw:
                whole = int(v)  # 1e4 is an integer written short
            if whole is not None and not INT64_MIN <= whole <= INT64_MAX:
                cx.d.error("E005", f"`{what}` is out of range (got {value.raw})", value.span,
                           help=f"a whole number in a recipe lies between {INT64_MIN} and {INT64_MAX} (64 bits: "
                                "it reaches YAML, torch and C code)")
                return BAD
            if whole is not None:
                return whole
            if not _finite(v):
                cx.d.error("E005", f"`{what}` must be a finite whole number (got {value.raw})", value.span)
                return BAD
            return type_error(cx, value, what, typ)
        return type_error(cx, value, what, typ)
    if isinstance(value, ast.Str):
        return value.value if str in accept else type_error(cx, value, what, typ)
    if isinstance(value, ast.Ref):
        if value.name in cx.names:
            return type_error(cx, value, what, typ)
        literal = {"true": "true", "false": "false", "null": "null", "none": "null"}.get(value.name.lower())
        if literal is not None:  # True, FALSE, None: another language's spelling
            cx.d.error("E002", f"unknown name `{value.name}`", value.span, help=f"write `{literal}` (lowercase)")
            return BAD
        unknown(cx, value.name, value.span, "name", cx.consts, help_extra=_literal_hint(typ))
        return BAD
    if isinstance(value, ast.List):
        if list in accept or tuple in accept:
            scalars = tuple(t for t in accept if t not in (list, tuple))  # `int | list`: a list of ints
            item = Any if not scalars else scalars[0] if len(scalars) == 1 else scalars
            items = [convert(cx, v, item, what) if not isinstance(v, ast.Ref) or item is not Any else v.name
                     for v in value.items]
            return BAD if any(v is BAD for v in items) else items
        return type_error(cx, value, what, typ)
    return type_error(cx, value, what, typ)


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1  # the whole numbers a recipe may hold


def _finite(v: int | float) -> bool:
    """Whether a number literal fits a float: `1e9999` reads as infinity, `10**400` overflows."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def type_error(cx: Context, value, what: str, typ: Any) -> object:
    got = describe(value, cx)
    cx.d.error("E004", f"`{what}` expects {_type_name(typ)}, got {got}", value.span, help=_fix_hint(value, typ))
    return BAD


def _fix_hint(value: Any, typ: Any) -> str | None:
    """How to write this value as `typ`: the help line of a wrong-type error."""
    accept = typ if isinstance(typ, tuple) else (typ,)
    numeric = int in accept or float in accept
    if isinstance(value, ast.Str) and numeric:
        text = value.value.strip().replace(",", "")
        try:
            number = float(text.replace("_", ""))
        except ValueError:
            return f"write {_type_name(typ)}, without quotes"
        if not math.isfinite(number):
            return "write a finite number, without quotes"
        if int in accept and float not in accept and number != int(number):
            return f"write a whole number, without quotes: `{int(number)}`"
        return f"write the number without quotes: `{text}`"
    if isinstance(value, ast.Num) and int in accept and float not in accept:
        if not math.isfinite(value.value):
            return None
        low = math.floor(value.value)
        return f"write a whole number: `{low}` or `{low + 1}`"
    if isinstance(value, ast.Str) and bool in accept:
        return f"write {value.value.strip().lower() if value.value.strip().lower() in ('true', 'false') else 'true or false'} without quotes"
    if isinstance(value, ast.List) and list not in accept and tuple not in accept:
        return "write one value, not a list"
    if isinstance(value, ast.Null):
        return "null is not allowed here: leave the setting out to get its default"
    if list in accept or tuple in accept:
        return "a list is written in brackets: [a, b]"
    return _literal_hint(typ)



def unknown(cx: Context, name: str, span: Span, what: str, candidates, help_extra: str | None = None, code: str = "E002") -> None:
    hint = did_you_mean(name, candidates)
    cx.d.error(code, f"unknown {what} `{name}`", span, help=hint or help_extra)


def limits(cx: Context, value: Any, meta: dict, what: str, span: Span) -> bool:
    """The generic range check from an IR field's metadata; False (with an E005) when out of range.

    A list's numbers are checked item by item (`num_ops = [1, 3]`).
    """
    if isinstance(value, list):
        return all(limits(cx, v, meta, what, span) for v in value if isinstance(v, (int, float)))
    if value is None or value is BAD or isinstance(value, bool):
        return value is not BAD
    doc = meta.get("doc")
    problem = None
    if "choices" in meta and value not in meta["choices"]:
        options = ", ".join(f'"{c}"' for c in meta["choices"])
        hint = did_you_mean(str(value), meta["choices"]) if isinstance(value, str) else None
        cx.d.error("E005", f"`{what}` must be one of {options} (got {show(value)})", span,
                   help=hint or (f"{what}: {doc}" if doc else None))
        return False
    if "min" in meta and value < meta["min"]:
        problem = f"at least {show(meta['min'])}"
    elif "min_exclusive" in meta and value <= meta["min_exclusive"]:
        problem = f"greater than {show(meta['min_exclusive'])}"
    elif "max" in meta and value > meta["max"]:
        problem = f"at most {show(meta['max'])}"
    if problem:
        cx.d.error("E005", f"`{what}` must be {problem} (got {show(value)})", span,
                   help=f"{what}: {doc}" if doc else None)
        return False
    return True


def build(cx: Context, cls: type, settings: dict[str, ast.Assign], where: str) -> tuple[Any, set[str]]:
    """An IR section from its settings: types and limits from the dataclass fields, one loop for all.

    Returns the instance (defaults where a setting was bad or absent) and the names set explicitly.
    """
    schema = knobs(cls)
    values: dict[str, Any] = {}
    for key, entry in settings.items():
        if key not in schema:
            unknown_setting(cx, key, entry.key_span, where, list(schema))
            continue
        fld, typ = schema[key]
        v = convert(cx, entry.value, typ, f"{where}.{key}")
        if v is not BAD and limits(cx, v, fld.metadata, f"{where}.{key}", entry.value.span):
            values[key] = v
    return cls(**values), set(values)


def unknown_setting(cx: Context, key: str, span: Span, where: str, valid: list[str]) -> None:
    hint = did_you_mean(key, valid)
    if hint is None:
        homes = section_of(key)
        if homes:
            hint = f"`{key}` belongs in `{homes[0]} {{ ... }}`"
        else:
            hint = "valid settings: " + ", ".join(valid)
    cx.d.error("E002", f"unknown setting `{key}` in {where}", span, help=hint)


def flat(cx: Context, body: ast.Body, where: str, sections_ok: tuple[str, ...] = ()) -> tuple[dict[str, ast.Assign], dict[str, ast.Section]]:
    """The settings and sections of a body; duplicates are E003, unexpected sections E004."""
    settings: dict[str, ast.Assign] = {}
    sections: dict[str, ast.Section] = {}
    seen: dict[str, Span] = {}
    for entry in body.entries:
        if entry.key in seen:
            cx.d.error("E003", f"`{entry.key}` is set twice in {where}", entry.key_span,
                       help="keep one of them", notes=[("first set here", seen[entry.key])])
            continue
        seen[entry.key] = entry.key_span
        if isinstance(entry, ast.Section):
            if entry.key in sections_ok:
                sections[entry.key] = entry
            else:
                cx.d.error("E004", f"`{entry.key}` in {where} is a setting, not a section", entry.key_span,
                           help=f"write `{entry.key} = value`" if not sections_ok else
                           f"sections here: {', '.join(sections_ok)}")
        else:
            settings[entry.key] = entry
    return settings, sections


def local_path(raw: str, module: ast.Module) -> str:
    """A file path as written, made absolute against the declaring file's folder."""
    path = os.path.expanduser(raw)
    if not os.path.isabs(path):
        path = os.path.join(os.path.dirname(os.path.abspath(module.path)), path)
    return os.path.normpath(path)


def string(cx: Context, entry: ast.Assign, what: str) -> str | None:
    v = convert(cx, entry.value, str, what)
    return None if v is BAD else v


def int_setting(cx: Context, entry: ast.Assign | None, what: str, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
    if entry is None:
        return None
    v = convert(cx, entry.value, int, what)
    if v is BAD:
        return None
    bounds = {k: b for k, b in (("min", minimum), ("max", maximum)) if b is not None}
    if not limits(cx, v, bounds, what, entry.value.span):
        return None
    return v


# ---------------------------------------------------------------- wording


def article(kind: str) -> str:
    """"a" or "an", for "an sft stage" (the kinds table knows)."""
    row = KINDS.get(kind)
    return row.article if row else "a"


def _type_name(typ: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}
    if isinstance(typ, tuple):
        return " or ".join(names.get(t, getattr(t, "__name__", str(t))) for t in typ)
    return names.get(typ, "a value" if typ is Any else getattr(typ, "__name__", str(typ)))


def _literal_hint(typ: Any) -> str | None:
    if typ is str:
        return 'quote text: "like this"'
    if typ is bool:
        return "write true or false"
    return None


def describe(value: Any, cx: Context) -> str:
    if isinstance(value, ast.Str):
        text = value.value if len(value.value) <= 30 else value.value[:27] + "..."
        return f'the string "{text}"'
    if isinstance(value, ast.Num):
        return f"the number {value.raw}"
    if isinstance(value, ast.Bool):
        return "true" if value.value else "false"
    if isinstance(value, ast.Null):
        return "null"
    if isinstance(value, ast.List):
        return "a list"
    if isinstance(value, ast.Ref):
        kind = cx.kind_of(value.name)
        return f"the {kind} `{value.name}`" if kind else f"the name `{value.name}`"
    return "a value"


def show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and value == int(value) and abs(value) < 1e16:
        return str(value)
    return str(value)
