"""References and routing: what `from`, `data`, `template`, `rewards` and `route { }` of a stage name.

May import: r1dsl.ast, r1dsl.ir, r1dsl.schema, r1dsl.kinds, r1dsl.diagnostics, .scope, .constants, .values,
.declarations (a template warning).
"""

from __future__ import annotations

from dataclasses import replace

from r1dsl import ast, ir
from r1dsl.checker.constants import resolve
from r1dsl.checker.declarations import template_warning
from r1dsl.checker.scope import BAD, Context, StageInfo
from r1dsl.checker.values import article, describe, flat, unknown
from r1dsl.diagnostics import did_you_mean
from r1dsl.kinds import KINDS, listed
from r1dsl.schema import STAGE_DATA_PROVIDES

# the kinds `from` may name: their output is a policy model (distill names one of its jobs instead)
POLICY_KINDS = tuple(name for name, k in KINDS.items() if k.produces == "policy" and not k.lowered_to)


def _scores_data(kind: str) -> bool:
    row = KINDS.get(kind)
    return row is not None and row.scores_data


def start_point(cx: Context, value: ast.Value, key: str) -> tuple[str | None, bool]:
    value = resolve(cx, value)
    if value is BAD:
        return None, False
    if not isinstance(value, ast.Ref):
        cx.d.error("E004", f"`{key}` names a model or an earlier stage, got {describe(value, cx)}", value.span,
                   help='declare the checkpoint as a model: model NAME { hf = "org/name" }, then from = NAME')
        return None, False
    name = value.name
    cx.used.add(name)
    kind = cx.kind_of(name, ("model", "stage"))
    if kind == "model":
        return name, False
    if kind == "stage":
        stage_kind = cx.stages[name].decl.kind
        row = KINDS.get(stage_kind)
        if row is not None and row.produces == "policy" and not row.lowered_to:
            return name, True
        if row is not None and row.lowered_to:
            jobs = [j for j, d in cx.job_names.items() if d == name]
            cx.d.error("E004", f"`{name}` is a distill stage with {len(jobs)} students; name one of its jobs", value.span,
                       help="e.g. " + ", ".join(jobs[:3]) if jobs else None)
            return None, False
        if row is None:  # an unknown kind, reported at the stage: what it produces is unknown, not "nothing"
            return None, False
        cx.d.error("E004", f"`{name}` is a {stage_kind} stage and produces no model", value.span,
                   help=f"start from a model or {article(POLICY_KINDS[0])} {listed(POLICY_KINDS)} stage")
        return None, False
    if name in cx.job_names:
        return name, True
    if kind is not None:
        models = cx.named(("model",))
        cx.d.error("E004", f"`{name}` is a {kind}; `{key}` expects a model or an earlier stage", value.span,
                   help=(f"name a model ({', '.join(f'`{m}`' for m in models[:4])}) or a stage that trains one"
                         if models else 'declare the model: model NAME { hf = "org/name" }, then name it here'))
        return None, False
    candidates = cx.named(("model", "stage")) + list(cx.job_names)
    unknown(cx, name, value.span, "model or stage", candidates,
            help_extra="declare it: model NAME { hf = \"org/name\" }", code="E007")
    return None, False


def data_refs(cx: Context, entry: ast.Assign, key: str) -> list[str]:
    value = resolve(cx, entry.value)
    if value is BAD:
        return []
    items = value.items if isinstance(value, ast.List) else [value]
    names: list[str] = []
    for item in items:
        if not isinstance(item, ast.Ref):
            cx.d.error("E004", f"`{key}` names datasets, got {describe(item, cx)}", item.span,
                       help='declare it: dataset NAME { jsonl = "file.jsonl" }, then use NAME')
            continue
        name = item.name
        cx.used.add(name)
        kind = cx.kind_of(name, ("dataset", "stage"))
        if kind == "dataset":
            if name in cx.datasets or name in cx.provides:
                names.append(name)
        elif kind == "stage":
            stage_kind = cx.stages[name].decl.kind
            if KINDS.get(stage_kind) is None:  # an unknown kind, reported at the stage
                continue
            if KINDS[stage_kind].produces != "data":
                cx.d.error("E004", f"`{name}` is a {stage_kind} stage; only rejection_sample stages produce data",
                           item.span, help="read its model with `from`, or its samples through a rejection_sample stage")
                continue
            if name not in cx.datasets:
                provides = None if name in cx.failed else sampled_fields(cx, name)  # in a cycle: unknown
                cx.datasets[name] = ir.Dataset(name, "stage", None, name, provides=provides or (),
                                               span=cx.stages[name].decl.span)
                cx.provides[name] = provides
            names.append(name)
        elif kind is not None:
            cx.d.error("E004", f"`{key}` names datasets, but `{name}` is a {kind}", item.span)
        else:
            candidates = cx.named(("dataset", "stage"))
            unknown(cx, name, item.span, "dataset", candidates, help_extra='declare it: dataset NAME { ... }')
    return list(dict.fromkeys(names))


def sampled_fields(cx: Context, stage: str) -> tuple[str, ...]:
    """Fields of a rejection_sample stage's rows: prompt and response, plus the ground truth (answer,
    tests) that every dataset it samples from carries along."""
    sources = [ds for job in cx.jobs.get(stage, ()) for ds in job.data]
    carried = [f for f in STAGE_DATA_PROVIDES[2:] + ("tests",)
               if sources and all(f in (cx.provides.get(ds) or ()) for ds in sources)]
    return ("prompt", "response", *carried)


def template_ref(cx: Context, entry: ast.Assign, stage: str) -> str | None:
    value = resolve(cx, entry.value)
    if value is BAD:
        return None
    if isinstance(value, ast.Str):  # written inline in the stage
        name = f"{stage}.template"
        cx.templates[name] = ir.Template(name, value.value, value.span)
        template_warning(cx, value.value, value.span, name)
        return name
    if isinstance(value, ast.Ref):
        cx.used.add(value.name)
        kind = cx.kind_of(value.name, ("template",))
        if kind == "template":
            return value.name if value.name in cx.templates else None
        if kind is not None:
            cx.d.error("E004", f"`template` names a template, but `{value.name}` is a {kind}", value.span)
            return None
        unknown(cx, value.name, value.span, "template", cx.named(("template",)))
        return None
    cx.d.error("E004", f"`template` expects a template name or a string, got {describe(value, cx)}", value.span)
    return None


def reward_refs(cx: Context, entry: ast.Assign | None) -> list[str]:
    if entry is None:
        return []
    value = resolve(cx, entry.value)
    if value is BAD:
        return []
    names = []
    for item in value.items if isinstance(value, ast.List) else [value]:
        if not isinstance(item, ast.Ref):
            cx.d.error("E004", f"`rewards` names reward declarations, got {describe(item, cx)}", item.span,
                       help='declare it: reward NAME { rule = "format" }, then use NAME')
            continue
        cx.used.add(item.name)
        kind = cx.kind_of(item.name, ("reward",))
        if kind == "reward":
            if item.name in cx.rewards:
                names.append(item.name)
        elif kind is not None:
            cx.d.error("E004", f"`rewards` names rewards, but `{item.name}` is a {kind}", item.span)
        else:
            unknown(cx, item.name, item.span, "reward", cx.named(("reward",)),
                    help_extra='declare it: reward NAME { rule = "math_accuracy" }')
    return list(dict.fromkeys(names))


def _written(info: StageInfo, keys: tuple[str, ...], name: str) -> bool:
    """Whether the stage's own `data`/`eval`/`rewards` setting names `name` (resolved or not)."""
    for key in keys:
        entry = info.refs.get(key)
        value = entry.value if entry is not None else None
        items = value.items if isinstance(value, ast.List) else [value]
        if any(isinstance(v, ast.Ref) and v.name == name for v in items):
            return True
    return False


def route(cx: Context, info: StageInfo, rewards: list[str], data: list[str], eval_data: list[str]) -> tuple[ir.Reward, ...]:
    """Each reward with the datasets it scores: a routed dataset gets exactly its list, others get all."""
    sets = list(dict.fromkeys((data if _scores_data(info.decl.kind) else []) + eval_data))
    per_set: dict[str, list[str]] = {}
    section = info.sections.get("route")
    if section is not None:
        settings, _ = flat(cx, section.body, f"stage {info.decl.name}.route")
        for ds, entry in settings.items():
            if not _names_a_dataset(cx, info, ds, entry, sets, ("data", "eval"), "a dataset"):
                continue
            value = resolve(cx, entry.value)
            if value is BAD:
                continue
            chosen = []
            for item in value.items if isinstance(value, ast.List) else [value]:
                if not isinstance(item, ast.Ref):
                    cx.d.error("E004", f"`route.{ds}` lists reward names, got {describe(item, cx)}", item.span)
                elif item.name not in rewards:
                    if item.name in cx.failed or (item.name not in cx.rewards and _written(info, ("rewards",), item.name)):
                        continue  # its declaration failed, or the rewards list already reported the name
                    if item.name in cx.rewards:
                        cx.d.error("E002", f"reward `{item.name}` is not in this stage's rewards", item.span,
                                   help=f"add it to rewards = [...] of stage {info.decl.name}")
                    else:
                        unknown(cx, item.name, item.span, "reward", rewards)
                else:
                    chosen.append(item.name)
            per_set[ds] = chosen
    out = []
    for name in rewards:
        scored = tuple(ds for ds in sets if name in per_set.get(ds, rewards))
        if not scored and sets:
            cx.d.warn("W110", f"reward `{name}` is routed to none of the stage's datasets", section.key_span if section else info.decl.name_span,
                      help="list it under a dataset in route { ... }, or drop it from rewards")
        out.append(replace(cx.rewards[name], datasets=() if len(scored) == len(sets) else scored))
    return tuple(out)


def data_from_step(cx: Context, info: StageInfo, data: list[str], steps: int | None) -> dict[str, int]:
    """`from_step { DATASET = N }` of a grpo stage: the dataset joins the prompt pool at step N (0-based).

    A dataset not listed is sampled from the first step; at least one must be, or the first steps have no
    prompts. N must be below the stage's steps, or the dataset would never be sampled.
    """
    section = info.sections.get("from_step")
    if section is None:
        return {}
    if info.decl.kind != "grpo":
        cx.d.warn("W104", f"`from_step {{ ... }}` is only read by grpo stages, not {info.decl.kind}", section.key_span,
                  help="remove it")
        return {}
    settings, _ = flat(cx, section.body, f"stage {info.decl.name}.from_step")
    out: dict[str, int] = {}
    for ds, entry in settings.items():
        if not _names_a_dataset(cx, info, ds, entry, data, ("data",), "a training dataset"):
            continue
        value = resolve(cx, entry.value)
        if value is BAD:
            continue
        if not isinstance(value, ast.Num) or isinstance(value.value, bool) or not float(value.value).is_integer():
            cx.d.error("E004", f"`from_step.{ds}` is a step number, got {describe(value, cx)}", entry.value.span,
                       help=f"write `{ds} = 1300`: the dataset's prompts are drawn from step 1300 on")
            continue
        step = int(value.value)
        if step < 0 or (steps is not None and step >= steps):
            cx.d.error("E005", f"`from_step.{ds}` = {step} is outside the stage's steps 0..{(steps or 1) - 1}",
                       entry.value.span, help="a dataset that joins at or after the last step is never sampled; "
                       "0 is the first step")
            continue
        out[ds] = step
    if data and out and all(out.get(ds, 0) > 0 for ds in data):
        cx.d.error("E005", f"every dataset of stage {info.decl.name} starts after step 0: its first "
                   f"{min(out.values())} steps have no prompts", section.key_span,
                   help="let at least one dataset start at step 0 (leave it out of from_step { })")
        return {}
    return out


def _names_a_dataset(cx, info, ds: str, entry, allowed: list[str], listed_in: tuple[str, ...], what: str) -> bool:
    """A section keyed by dataset (`route`, `from_step`): is `ds` one of the stage's `allowed` datasets? An
    unknown name the stage lists (in `listed_in`) was reported there already and is skipped silently."""
    if ds in allowed:
        return True
    if not (cx.kind_of(ds) is None and _written(info, listed_in, ds)):
        cx.d.error("E002", f"`{ds}` is not {what} of stage {info.decl.name}", entry.key_span,
                   help=did_you_mean(ds, allowed) or f"its datasets: {', '.join(allowed) or 'none'}")
    return False
