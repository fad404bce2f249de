"""`grpo`: Group Relative Policy Optimization (DeepSeekMath eq. 3), as DeepSeek-R1-Zero trains.

    run = StageRun(cfg)                          # Fabric (DDP on gloo under torchrun), folders, logger
    policy, reference = the stage's init model (in its training dtype, sharded under FSDP), and a frozen copy
                        of it under the same precision and wrapping
    for rollout:                                 # resumes from the latest checkpoint
        rows    = this rollout's prompts, sharded over ranks (whole groups per rank)
        metrics = grpo_step(...)                 # rollout -> rewards -> advantages -> updates_per_rollout steps
        refresh the reference every reference_refresh_steps; log; checkpoint (all counted in optimizer steps)
    save <stage>/model, evaluate the eval sets, results.json, DONE

Everything the step does lives in `backends/grpo/` (loss, rollout, step); this file is the I/O around it.
"""

from __future__ import annotations

import copy
import math

import torch

import backends.rewards  # noqa: F401  (registers the built-in reward rules)
from backends.data.loading import DataError, load_rows
from backends.data.schedule import PromptSchedule
from backends.grpo.step import grpo_step, unwrap
from backends.models import disable_dropout, load_policy, prepare_for_training
from backends.stages.eval import evaluate_stage
from backends.stages.lm import batch_indices
from backends.trainer import StageRun, build_optimizer, build_scheduler
from backends.trainer.fabric import setup_frozen, setup_trainable
from backends.vllm_engine import record_engine, stage_engine

SUMMED_METRICS = ("tokens_per_s",)  # summed over ranks; every other metric is averaged


def run(cfg) -> dict[str, float]:
    run = StageRun(cfg)
    grpo, optim = cfg.model.grpo, cfg.model.optim
    rows, starts = [], []  # starts[i]: the first step row i may be drawn (its dataset's from_step)
    for dataset in cfg.model.data.train:
        loaded = load_rows(dataset)
        rows += loaded
        starts += [dataset.from_step] * len(loaded)
    if not rows or any("prompt" not in row for row in rows[:1]):
        raise DataError(f"{cfg.name}: grpo needs rows with a `prompt` field")
    schedule = PromptSchedule(starts)
    rewards = cfg.model.rewards
    steps, prompts_per_step = grpo.steps, grpo.num_prompts_per_step
    # `steps` counts optimizer steps (as the papers do); each rollout makes grpo.updates_per_rollout of them (the
    # checker makes steps, checkpoint_every and reference_refresh_steps whole rollouts of them)
    per_rollout = grpo.updates_per_rollout
    seed = grpo.seed

    model, tokenizer = load_policy(cfg.model.init, run.device, run.precision)
    disable_dropout(model)  # train mode throughout (gradient checkpointing stays on); the same function as sampling
    prepare_for_training(model, cfg.resources)
    # the reference: a copy of the starting policy under the same precision and wrapping (sharded too under FSDP)
    reference = setup_frozen(run.fabric, copy.deepcopy(model)) if grpo.kl_penalty > 0 else None
    model, optimizer, raw_optimizer = setup_trainable(run.fabric, model, lambda params: build_optimizer(params, optim))
    scheduler = build_scheduler(raw_optimizer, optim, steps)
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    if reference is not None:
        state["reference"] = reference  # refreshed during training, so it is part of the resumable state
    start = run.resume(state)
    engine = stage_engine(run, cfg, model, tokenizer)  # None: sample from the policy itself (rollout.engine = hf)
    n_params = sum(p.numel() for p in model.parameters())
    run.print(f"[{run.name}] {n_params / 1e6:.2f}M parameters, {len(rows)} prompts, {run.world_size} process(es), "
              f"G={grpo.num_generations_per_prompt} x {prompts_per_step} prompts/rollout, {per_rollout} optimizer "
              f"step(s)/rollout, steps {start}->{steps}")

    metrics: dict[str, float] = {}
    with run.progress(steps, start, f"{run.name} (grpo)") as bar:
        for rollout in range(start // per_rollout, steps // per_rollout):
            # the rollout's prompts are a pure function of (seed, rollout): a resumed run sees the same ones; a
            # dataset joins the pool from its from_step (an optimizer step: the rollout's first one counts)
            pool = schedule.pool(rollout * per_rollout)
            chosen = [pool[i] for i in batch_indices(rollout, prompts_per_step, len(pool), seed)[run.rank :: run.world_size]]
            generator = torch.Generator(device=run.device).manual_seed(seed * 1_000_003 + rollout * 1009 + run.rank)
            local = grpo_step(run.fabric, model, reference, optimizer, tokenizer, [rows[i] for i in chosen], grpo,
                              rewards, cfg.model.template, optim.max_grad_norm, generator,
                              engine, seed * 1_000_003 + rollout * 1009 + run.rank, on_optimizer_step=scheduler.step)
            step = (rollout + 1) * per_rollout  # optimizer steps done
            if reference is not None and grpo.reference_refresh_steps and step % grpo.reference_refresh_steps == 0:
                reference.load_state_dict(unwrap(model).state_dict())  # R1: the reference becomes the policy
            metrics = reduce_metrics(run.fabric, local)
            metrics["lr"] = scheduler.get_last_lr()[0]
            run.log(step, metrics)
            run.maybe_checkpoint(step, steps, state)
            bar.update(step, reward=metrics["reward"], acc=metrics.get("accuracy", math.nan),
                       fmt=metrics.get("format", math.nan), len=metrics["completion_length"])

    run.save_model(model, tokenizer)
    final = {f"train_{k}": metrics[k] for k in ("reward", "accuracy", "format") if k in metrics}
    final.update(evaluate_stage(run, model, tokenizer, engine=engine))
    record_engine(run, engine)
    run.finish(final)
    return final


def reduce_metrics(fabric, local: dict[str, float]) -> dict[str, float]:
    """Average each metric over ranks (tokens/s is summed); NaN-free metrics stay exact."""
    if fabric.world_size == 1:
        return dict(local)
    names = sorted(local)
    values = torch.tensor([local[k] for k in names], dtype=torch.float64)
    values = fabric.all_reduce(values, reduce_op="sum")
    return {k: float(v) if k in SUMMED_METRICS else float(v) / fabric.world_size for k, v in zip(names, values)}
