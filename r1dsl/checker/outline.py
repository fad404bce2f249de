"""Stages, first pass: sort each stage body into references, sections and settings; find what it reads.

Only the outline: the body is checked once the run order is known (stages.py).
May import: r1dsl.ast, r1dsl.ir, r1dsl.schema, r1dsl.kinds, .scope, .constants, .values.
"""

from __future__ import annotations

from r1dsl import ast, ir
from r1dsl.checker.constants import resolve
from r1dsl.checker.scope import BAD, Context, StageInfo
from r1dsl.checker.values import article, flat, unknown, unknown_setting
from r1dsl.ir import Span
from r1dsl.kinds import KINDS
from r1dsl.schema import NAMED_SECTIONS, SECTIONS, SHORTHAND_NAMES, STAGE_KEYS, shorthand


def outlines(cx: Context) -> None:
    for decl, _ in list(cx.decls.values()):
        if isinstance(decl, ast.StageDecl):
            stage_outline(cx, decl)


def stage_outline(cx: Context, decl: ast.StageDecl) -> None:
    """Sort a stage's body into references, sections and knobs; find the stages it depends on."""
    info = StageInfo(decl)
    cx.stages[decl.name] = info
    row = KINDS.get(decl.kind)
    if row is None:
        unknown(cx, decl.kind, decl.kind_span, "stage kind", KINDS, help_extra="kinds: " + ", ".join(KINDS))
    where = f"stage {decl.name}"
    seen: dict[str, Span] = {}
    for entry in decl.body.entries:
        if entry.key in seen:
            cx.d.error("E003", f"`{entry.key}` is set twice in {where}", entry.key_span,
                       help="keep one of them", notes=[("first set here", seen[entry.key])])
            continue
        seen[entry.key] = entry.key_span
        if isinstance(entry, ast.Assign):
            canon = shorthand(decl.kind, entry.key)
            if entry.key in STAGE_KEYS and entry.key not in NAMED_SECTIONS:
                info.refs[entry.key] = entry
            elif canon:
                add_knob(cx, info, canon, entry)
            elif entry.key in SECTIONS or entry.key in NAMED_SECTIONS:
                cx.d.error("E004", f"`{entry.key}` is a section", entry.key_span,
                           help=f"write `{entry.key} {{ key = value }}`")
            elif entry.key in SHORTHAND_NAMES:
                cx.d.warn("W104", f"`{entry.key}` is not used by {article(decl.kind)} {decl.kind} stage", entry.key_span,
                          help="remove it")
            else:
                unknown_setting(cx, entry.key, entry.key_span, where,
                                [k for k in STAGE_KEYS if k not in NAMED_SECTIONS] + list(SHORTHAND_NAMES))
        else:
            if entry.key in SECTIONS:
                if row is not None and entry.key not in row.sections:
                    cx.d.warn("W104", f"{article(decl.kind)} {decl.kind} stage does not use `{entry.key} {{ ... }}`", entry.key_span,
                              help=f"its sections: {', '.join(row.sections)}; remove this one")
                settings, _ = flat(cx, entry.body, f"{where}.{entry.key}")
                for key, setting in settings.items():
                    add_knob(cx, info, (entry.key, key), setting)
            elif entry.key in NAMED_SECTIONS or entry.key == "students":
                info.sections[entry.key] = entry
            elif entry.key in STAGE_KEYS:
                cx.d.error("E004", f"`{entry.key}` is a setting, not a section", entry.key_span,
                           help=f"write `{entry.key} = ...`")
            else:
                unknown(cx, entry.key, entry.key_span, f"section in {where}", list(SECTIONS) + [*NAMED_SECTIONS, "students"],
                        help_extra="sections: " + ", ".join(list(SECTIONS) + [*NAMED_SECTIONS, "students"]))
    if "students" in info.sections or "students" in info.refs:
        if row is None or row.lowered_to is None:
            span = (info.sections.get("students") or info.refs["students"]).key_span
            cx.d.warn("W104", f"`students` is only read by distill stages, not {decl.kind}", span, help="remove it")
        else:
            for name, span in student_entries(cx, info):
                cx.job_names[f"{decl.name}_{name}"] = decl.name
    # dependencies on other stages
    for key in ("from", "data", "eval"):
        for item in ref_items(cx, info, key):
            prefer = ("model", "stage") if key == "from" else ("dataset", "stage")
            if isinstance(item, ast.Ref) and cx.kind_of(item.name, prefer) in ("stage", None):
                info.deps.setdefault(item.name, item.span)  # unknown names: maybe a distill job (see order)
    if row is not None and row.lowered_to is not None:
        for name, span in student_entries(cx, info):
            if cx.kind_of(name, ("model", "stage")) == "stage":
                info.deps.setdefault(name, span)
    for reward in reward_names(cx, info):  # a reward whose model an earlier stage trains
        for value in getattr(cx.rewards.get(reward), "params", {}).values():
            if isinstance(value, ir.StageModel):
                info.deps.setdefault(value.stage, info.refs["rewards"].value.span)


def ref_items(cx: Context, info: StageInfo, key: str) -> list[ast.Value]:
    """The resolved items of the stage's `key` setting (one value or a list); none when unset or unresolvable."""
    entry = info.refs.get(key)
    if entry is None:
        return []
    value = resolve(cx, entry.value)
    if value is BAD:
        return []
    return list(value.items) if isinstance(value, ast.List) else [value]


def reward_names(cx: Context, info: StageInfo) -> list[str]:
    return [v.name for v in ref_items(cx, info, "rewards") if isinstance(v, ast.Ref)]


def add_knob(cx: Context, info: StageInfo, key: tuple[str, str], entry: ast.Assign) -> None:
    first = info.knobs.get(key)
    if first is not None:
        cx.d.error("E003", f"`{key[0]}.{key[1]}` is set twice in stage {info.decl.name}", entry.key_span,
                   help="a shorthand (lr, steps, group_size) and its section setting name the same knob; keep one",
                   notes=[("first set here", first.key_span)])
        return
    info.knobs[key] = entry


def student_entries(cx: Context, info: StageInfo) -> list[tuple[str, Span]]:
    if "students" in info.sections:
        return [(e.key, e.key_span) for e in info.sections["students"].body.entries]
    if "students" in info.refs:
        value = resolve(cx, info.refs["students"].value)
        items = value.items if isinstance(value, ast.List) else [value]
        return [(v.name, v.span) for v in items if isinstance(v, ast.Ref)]
    return []
