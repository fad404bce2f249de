"""Rules: the cross-checks that need a whole stage: fields a kind or reward reads (E008), batch arithmetic
(E009), the parallel layout (E010), suspicious settings (warnings), unused declarations (W106).

May import: r1dsl.ast, r1dsl.ir, r1dsl.kinds, r1dsl.diagnostics, .scope, .constants, .values, .outline.
"""

from __future__ import annotations

import math
from dataclasses import replace

from r1dsl import ast, ir
from r1dsl.checker.scope import Context, StageInfo
from r1dsl.checker.outline import ref_items, reward_names
from r1dsl.checker.values import article
from r1dsl.diagnostics import did_you_mean
from r1dsl.ir import Span
from r1dsl.kinds import KINDS

CORRECTNESS_RULES = ("math_accuracy", "code_accuracy")


def field_needs(cx: Context, info: StageInfo, kind: str, data: list[str], eval_data: list[str], rewards: tuple[ir.Reward, ...]) -> None:
    """E008: every field a stage kind or a routed reward reads must be provided by the dataset."""
    row = KINDS[kind]
    spans = ref_spans(cx, info)
    for ds in dict.fromkeys(data + eval_data):
        provides = cx.provides.get(ds)
        if provides is None:
            continue
        span = spans.get(ds, info.decl.name_span)
        needs: list[tuple[str, str]] = []
        if ds in data:
            needs += [(f, f"{article(kind)} {kind} stage") for f in row.needs]
        elif not row.data_is_eval or ds in eval_data:
            needs += [("prompt", "evaluation")]
        for reward in rewards:
            if ds not in eval_data and not row.scores_data:
                continue
            if not reward.datasets or ds in reward.datasets:
                rule = cx.catalogue.rules.get(reward.rule)
                needs += [(f, f"reward `{reward.name}` ({reward.rule})") for f in (rule.needs if rule else ())]
        for fld, who in dict.fromkeys(needs):
            if fld in provides:
                continue
            source = cx.datasets.get(ds)
            if source is not None and source.source in ("jsonl", "parquet", "hf"):
                help = f"map a column of the file to it: fields {{ {fld} = \"COLUMN\" }} in dataset {ds}"
            elif source is not None and source.source == "generator":
                help = f"generator `{source.generator}` provides {', '.join(provides)}"
            else:
                help = f"`{ds}` provides {', '.join(provides)}"
            if who.startswith("reward"):
                help += "; or route the reward elsewhere: route { " + ds + " = [...] }"
            cx.d.error("E008", f"{who} needs field `{fld}`, which dataset `{ds}` does not provide", span, help=help)


def ref_spans(cx: Context, info: StageInfo) -> dict[str, Span]:
    spans: dict[str, Span] = {}
    for key in ("data", "eval"):
        for item in ref_items(cx, info, key):
            if isinstance(item, ast.Ref):
                spans.setdefault(item.name, item.span)
    return spans


def knob_span(cx: Context, info: StageInfo, section: str, key: str) -> Span:
    entry = info.knobs.get((section, key))
    return entry.value.span if entry else info.decl.name_span


def check_resources(cx: Context, res: ir.Resources, info: StageInfo) -> bool:
    """E010: the GPUs (or CPU processes) must hold the tensor x pipeline parallel layout."""
    layout = res.tensor_parallel * res.pipeline_parallel
    if res.gpus_per_node == 0:
        for key in ("tensor_parallel", "pipeline_parallel", "rollout_gpus"):
            if getattr(res, key) > (0 if key == "rollout_gpus" else 1):
                cx.d.error("E010", f"`resources.{key}` = {getattr(res, key)} needs GPUs, but gpus_per_node is 0",
                           knob_span(cx, info, "resources", key), help="set resources.gpus_per_node, or leave this at its default")
                return False
        return True
    total = res.gpus_per_node * res.nodes
    if res.rollout_gpus >= total:
        cx.d.error("E010", f"`resources.rollout_gpus` = {res.rollout_gpus} leaves no GPU for training ({total} in all)",
                   knob_span(cx, info, "resources", "rollout_gpus"),
                   help=f"use fewer than {total} rollout GPUs, or add nodes")
        return False
    train = total - res.rollout_gpus
    if train % layout:
        which = "tensor_parallel" if ("resources", "tensor_parallel") in info.knobs else "pipeline_parallel"
        extra = f" ({total} minus {res.rollout_gpus} for rollouts)" if res.rollout_gpus else f" ({res.nodes} node(s) x {res.gpus_per_node})"
        cx.d.error("E010", f"{train} training GPUs{extra} cannot hold tensor_parallel {res.tensor_parallel} x "
                   f"pipeline_parallel {res.pipeline_parallel} = {layout}: {train} is not a multiple of {layout}",
                   knob_span(cx, info, "resources", which),
                   help=f"choose parallel sizes whose product divides {train}")
        return False
    return True


# vLLM's CPU attention kernels take head sizes from this value up (a smaller tiny model crashes at run time)
VLLM_MIN_HEAD_SIZE = 32


def root_model(cx: Context, init: str | None, init_is_stage: bool) -> ir.Model | None:
    """The declared model a stage's chain of `from`s starts at (None while unknown)."""
    seen: set[str] = set()
    while init_is_stage and init and init not in seen:
        seen.add(init)
        jobs = cx.jobs.get(init)
        if not jobs:
            return None
        init, init_is_stage = jobs[0].init, jobs[0].init_is_stage
    return cx.models.get(init) if init and not init_is_stage else None


def check_rollout(cx: Context, rollout: ir.Rollout, res: ir.Resources, info: StageInfo,
                  init: str | None = None, init_is_stage: bool = False) -> None:
    """E010: the colocated vLLM engine shares one process with the trainer, so the stage runs one process,
    and its kernels need heads of at least VLLM_MIN_HEAD_SIZE."""
    if rollout.engine != "vllm":
        return
    model = root_model(cx, init, init_is_stage)
    if model is not None and model.tiny is not None:
        head = model.tiny.hidden_size // model.tiny.num_heads
        if head < VLLM_MIN_HEAD_SIZE:
            cx.d.error("E010", f"`rollout.engine` = \"vllm\" needs attention heads of at least {VLLM_MIN_HEAD_SIZE} "
                       f"dimensions, but model `{model.name}` has hidden_size {model.tiny.hidden_size} / num_heads "
                       f"{model.tiny.num_heads} = {head}", knob_span(cx, info, "rollout", "engine"),
                       help=f"use engine = \"hf\", or fewer heads (num_heads <= "
                            f"{max(1, model.tiny.hidden_size // VLLM_MIN_HEAD_SIZE)}) in model `{model.name}`")
    processes = res.world_size
    if processes > 1:
        cx.d.error("E010", f"`rollout.engine` = \"vllm\" runs one engine colocated with one trainer process, but "
                   f"the stage runs {processes} processes", knob_span(cx, info, "rollout", "engine"),
                   help="use one process (nodes = 1 and one GPU, or cpu_processes = 1), or engine = \"hf\"")


def batch_arithmetic(cx: Context, stage: ir.Stage, explicit: dict[str, set[str]], info: StageInfo) -> ir.Stage:
    """E009: a step's sequences must split evenly over data-parallel ranks and micro-batches.

    An unset micro_batch_size defaults to the largest divisor of the per-rank batch not above the IR default.
    """
    res = stage.resources
    layout = res.tensor_parallel * res.pipeline_parallel
    world = res.world_size - res.rollout_gpus  # the training processes
    if world <= 0 or world % layout:
        return stage  # E010 already said why
    dp = world // layout
    section = KINDS[stage.kind].steps_section
    if section == "grpo" and stage.grpo is not None:
        g = stage.grpo
        total = g.num_prompts_per_step * g.num_generations_per_prompt
        what = f"num_prompts_per_step x num_generations_per_prompt = {g.num_prompts_per_step} x {g.num_generations_per_prompt} = {total}"
        section, mbs, is_explicit = "grpo", g.micro_batch_size, "micro_batch_size" in explicit["grpo"]
    elif section == "train":
        total = stage.train.batch_size
        what = f"train.batch_size = {total}"
        section, mbs, is_explicit = "train", stage.train.micro_batch_size, "micro_batch_size" in explicit["train"]
    else:
        return stage
    if section == "grpo" and stage.grpo.num_prompts_per_step % dp:
        # each rank rolls out whole groups (its advantages need the group), so prompts, not sequences, are split
        p = stage.grpo.num_prompts_per_step
        cx.d.error("E009", f"num_prompts_per_step = {p} prompts per step do not split over {dp} data-parallel ranks: each "
                   f"rank rolls out whole groups, {p} / {dp} = {p / dp:g} prompts per rank", knob_span(cx, info, section, "num_prompts_per_step"),
                   help=f"make num_prompts_per_step a multiple of {dp} (e.g. {dp * max(1, -(-p // dp))}), or use fewer ranks "
                        "(data-parallel size = training GPUs / (tensor_parallel x pipeline_parallel); CPU processes on CPU)")
        return stage
    if total % dp:
        cx.d.error("E009", f"{what} sequences per step do not split over {dp} data-parallel ranks", knob_span(cx, info, section, "batch_size" if section == "train" else "num_prompts_per_step"),
                   help=f"make it a multiple of {dp} (data-parallel size = training GPUs / (tensor_parallel x pipeline_parallel))")
        return stage
    if section == "grpo":
        split = rollout_split(cx, stage.grpo, dp, info, explicit["grpo"])
        if split is None:
            return stage
        stage = replace(stage, grpo=split)
        # a micro-batch lives inside one mini-batch (one optimizer step)
        total = stage.grpo.train_global_batch_size or total
        what = f"train_global_batch_size = {total}" if stage.grpo.train_global_batch_size else what
    per_rank = total // dp
    if not is_explicit:
        mbs = math.gcd(per_rank, mbs)
        if section == "grpo":
            return replace(stage, grpo=replace(stage.grpo, micro_batch_size=mbs))
        return replace(stage, train=replace(stage.train, micro_batch_size=mbs))
    if per_rank % mbs:
        divisors = _divisors_near(per_rank, mbs)
        cx.d.error("E009", f"{what} sequences per step is not a multiple of micro_batch_size {mbs} x data-parallel size {dp}",
                   knob_span(cx, info, section, "micro_batch_size"),
                   help=f"each of the {dp} rank(s) gets {per_rank} sequences; choose a micro_batch_size dividing it, e.g. {', '.join(map(str, divisors))}")
    return stage


def rollout_split(cx: Context, g: ir.GRPO, dp: int, info: StageInfo, explicit: set[str]) -> ir.GRPO | None:
    """E009: a rollout splits into mini-batches of whole groups, whole groups per rank, and `steps`,
    `checkpoint_every` and `reference_refresh_steps` count whole rollouts of optimizer steps. None when it fails;
    an unset checkpoint_every is rounded up to whole rollouts."""
    G, rollout, mini = g.num_generations_per_prompt, g.rollout_size, g.train_global_batch_size
    if mini is not None:
        span = knob_span(cx, info, "grpo", "train_global_batch_size")
        if mini % G:
            cx.d.error("E009", f"train_global_batch_size = {mini} outputs per optimizer step is not a whole number of "
                       f"groups of num_generations_per_prompt = {G} (advantages and the shared prompt pass need whole "
                       "groups)", span, help=f"make it a multiple of {G}, e.g. {max(G, mini // G * G)}")
            return None
        if rollout % mini:
            cx.d.error("E009", f"a rollout of num_prompts_per_step x num_generations_per_prompt = {g.num_prompts_per_step} "
                       f"x {G} = {rollout} outputs does not split into mini-batches of train_global_batch_size = {mini}",
                       span, help=f"choose a train_global_batch_size dividing {rollout} in whole groups, e.g. "
                       f"{', '.join(str(G * d) for d in _divisors_near(g.num_prompts_per_step, mini // G))}")
            return None
        if (mini // G) % dp:
            cx.d.error("E009", f"train_global_batch_size = {mini} is {mini // G} groups per optimizer step, which do not "
                       f"split over {dp} data-parallel ranks (each rank trains whole groups)", span,
                       help=f"make train_global_batch_size a multiple of {G} x {dp} = {G * dp}")
            return None
    per_rollout = g.updates_per_rollout
    if per_rollout == 1:
        return g
    if "checkpoint_every" not in explicit:
        g = replace(g, checkpoint_every=-(-g.checkpoint_every // per_rollout) * per_rollout)
    why = (f"a rollout makes {g.mini_batches} mini-batch(es) x inner_epochs {g.inner_epochs} = {per_rollout} "
           "optimizer steps")
    ok = True
    for name in ("steps", "checkpoint_every", "reference_refresh_steps"):
        value = getattr(g, name)
        if value is not None and value % per_rollout:
            cx.d.error("E009", f"{name} = {value} optimizer steps is not a whole number of rollouts: {why}",
                       knob_span(cx, info, "grpo", name),
                       help=f"make {name} a multiple of {per_rollout}, e.g. {max(per_rollout, round(value / per_rollout) * per_rollout)}")
            ok = False
    return g if ok else None


def _divisors_near(n: int, near: int, count: int = 3, scan: int = 10_000) -> list[int]:
    """Up to `count` divisors of `n` at or below 2 x `near`, largest last; a bounded scan (n may be huge)."""
    found = []
    for d in range(min(n, 2 * max(near, 1)), max(0, min(n, 2 * max(near, 1)) - scan), -1):
        if n % d == 0:
            found.append(d)
            if len(found) == count:
                break
    return sorted(set(found) | {math.gcd(n, near)})[-count:]


def stage_warnings(cx: Context, stage: ir.Stage, info: StageInfo, explicit: dict[str, set[str]]) -> None:
    if stage.grpo is not None and stage.grpo.reference_refresh_steps and stage.grpo.kl_penalty == 0:
        cx.d.warn("W101", "a reference refresh has no effect when kl_penalty is 0",
                  knob_span(cx, info, "grpo", "reference_refresh_steps"),
                  help="drop reference_refresh_steps, or set a kl_penalty > 0")
    if stage.sampling is not None and stage.sampling.temperature == 0 and stage.sampling.samples_per_prompt > 1:
        cx.d.warn("W107", f"greedy sampling (temperature 0) gives {stage.sampling.samples_per_prompt} identical samples per prompt",
                  knob_span(cx, info, "sampling", "temperature"), help="use a temperature > 0, or samples_per_prompt = 1")
    if stage.filters is not None:
        rules = {r.rule for r in stage.rewards}
        f = stage.filters
        checks = [
            ("correct", f.correct, set(CORRECTNESS_RULES), "an accuracy reward (math_accuracy or code_accuracy)"),
            ("format", f.format, {"format"}, "a format reward"),
            ("language", f.language is not None, {"language_consistency"}, "a language_consistency reward"),
        ]
        for key, on, needed, what in checks:
            if on and not (rules & needed) and not (cx.failed & set(reward_names(cx, info))):
                cx.d.warn("W109", f"filters.{key} is on, but no reward of this stage is {what}",
                          knob_span(cx, info, "filters", key), help=f"add {what} to rewards, or turn the filter off")
        if f.judge is not None:
            names = {r.name: r for r in stage.rewards}
            if f.judge not in names and f.judge not in cx.failed:
                cx.d.error("E002", f"filters.judge names `{f.judge}`, which is not a reward of this stage",
                           knob_span(cx, info, "filters", "judge"),
                           help=did_you_mean(f.judge, names) or "name a reward (rule = \"judge\") listed in rewards")


def unused(cx: Context) -> None:
    """W106: a declaration of the main file that nothing reads."""
    for decl, module in cx.decls.values():
        name = decl.name
        if module is not cx.main or isinstance(decl, ast.StageDecl) or name in cx.used:
            continue
        cx.d.warn("W106", f"{ast.decl_keyword(decl)} `{name}` is declared but never used", decl.name_span,
                  help="remove it, or use it in a stage")
