"""Stages, second pass: one stage body (in run order) -> its IR stage(s).

May import: r1dsl.ir, r1dsl.schema, r1dsl.kinds, .scope, .values, .references, .lowering, .rules.
"""

from __future__ import annotations

from typing import Any

from r1dsl import ast, ir
from r1dsl.checker.constants import resolve
from r1dsl.checker.lowering import distill_jobs
from r1dsl.checker.references import data_from_step, data_refs, reward_refs, route, start_point, template_ref
from r1dsl.checker.rules import batch_arithmetic, check_resources, check_rollout, field_needs, stage_warnings
from r1dsl.checker.scope import Context, StageInfo
from r1dsl.checker.values import build
from r1dsl.kinds import KINDS
from r1dsl.schema import SECTIONS


def stage(cx: Context, info: StageInfo) -> None:
    decl = info.decl
    kind = decl.kind
    row = KINDS.get(kind)
    if row is None:
        return
    refs = info.refs
    # from
    init, init_is_stage = None, False
    if "from" in refs:
        if row.lowered_to:
            cx.d.warn("W104", "a distill stage starts each student from its own model; `from` is not used",
                      refs["from"].key_span, help="name the students in `students { ... }`")
        else:
            init, init_is_stage = start_point(cx, refs["from"].value, "from")
    elif not row.lowered_to:
        cx.d.error("E011", f"stage `{decl.name}` has no `from`", decl.name_span,
                   help="say where it starts: from = MODEL or from = EARLIER_STAGE")
    # data and eval sets
    data = data_refs(cx, refs.get("data"), "data") if "data" in refs else []
    eval_data = data_refs(cx, refs.get("eval"), "eval") if "eval" in refs else []
    if "data" not in refs:
        if row.data_is_eval:
            if not eval_data:
                cx.d.warn("W105", f"eval stage `{decl.name}` has no data: it measures nothing", decl.name_span,
                          help="add data = DATASET (or a list of them)")
        else:
            cx.d.error("E011", f"stage `{decl.name}` has no `data`", decl.name_span,
                       help="add data = DATASET, a list of them, or an earlier rejection_sample stage")
    if row.data_is_eval:
        eval_data = list(dict.fromkeys(data + eval_data))
    # template
    template = None
    if "template" in refs:
        template = template_ref(cx, refs["template"], decl.name)
    # rewards and routing
    rewards = reward_refs(cx, refs.get("rewards"))
    written = refs.get("rewards")
    value = resolve(cx, written.value) if written is not None and not rewards else None
    empty = isinstance(value, ast.List) and not value.items
    if not rewards and row.scores_data and (written is None or empty):  # a list of unknown names is reported there
        cx.d.error("E011", f"{kind} stage `{decl.name}` has {'an empty rewards list' if empty else 'no rewards'}: "
                   "nothing scores its samples", written.value.span if empty else decl.name_span,
                   help="add rewards = [accuracy, format] (reward declarations)")
    if not rewards and row.data_is_eval and eval_data:
        cx.d.warn("W108", f"eval stage `{decl.name}` has no rewards: nothing scores its samples", decl.name_span,
                  help="add rewards = [accuracy]")
    routed = route(cx, info, rewards, data, eval_data)
    # sections
    built: dict[str, Any] = {}
    explicit: dict[str, set[str]] = {}
    for section, cls in SECTIONS.items():
        settings = {k: e for (s, k), e in info.knobs.items() if s == section}
        built[section], explicit[section] = build(cx, cls, settings, section)
    if check_resources(cx, built["resources"], info):
        check_rollout(cx, built["rollout"], built["resources"], info, init, init_is_stage)
    field_needs(cx, info, kind, data, eval_data, routed)
    common = dict(
        data=tuple(data),
        template=template,
        rewards=routed,
        resources=built["resources"],
        eval_data=tuple(eval_data),
        span=decl.span,
    )
    if row.lowered_to:
        cx.jobs[decl.name] = distill_jobs(cx, info, built, explicit, common)
        return
    stage = ir.Stage(
        name=decl.name,
        kind=kind,
        init=init or "",
        init_is_stage=init_is_stage,
        optim=built["optim"],
        train=built["train"],
        grpo=built["grpo"] if "grpo" in row.sections else None,
        sampling=built["sampling"] if row.samples or explicit["sampling"] else None,
        filters=built["filters"] if "filters" in row.sections else None,
        rollout=built["rollout"],
        data_from_step=data_from_step(cx, info, data, built["grpo"].steps if "grpo" in row.sections else None),
        after=tuple(info.deps),
        **common,
    )
    stage = batch_arithmetic(cx, stage, explicit, info)
    stage_warnings(cx, stage, info, explicit)
    cx.jobs[decl.name] = [stage]
