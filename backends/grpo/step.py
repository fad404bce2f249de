"""One GRPO step: roll out G completions per prompt, score them, and update the policy.

    rollout    = sample_groups(policy, prompts)                     # B = P * G completions
    r, per_rule = score(rewards, completions, rows, lengths)        # (B,)
    A          = group_advantages(r)                                # (B,)
    old, ref   = log-probs of the rollout policy and the reference  # (B, T), no grad, once per rollout
    for each inner epoch: for each mini-batch (train_global_batch_size outputs):
        for each micro-batch: loss.backward(); then one optimizer step   # later mini-batches: off-policy

Distributed (DDP or FSDP2): each rank rolls out its own prompts (whole groups, so advantages stay local);
the loss normalisers are the step's global counts divided by the world size, so the ranks' gradient average
is exactly the gradient of the global loss.

Precision: every pass (sampling, reference, old policy, training) runs under `fabric.autocast()`, so under
bf16-mixed the reference and the policy compute in the same numerics and the KL is 0 at step 0. The policy
stays in train mode with dropout off (`backends.models.disable_dropout`): gradient checkpointing, when on,
stays on; sampling alone switches to eval mode, since it needs the KV cache.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from backends.grpo.loss import group_advantages, grpo_loss
from backends.generation import DEFAULT_STOP, render_prompt
from backends.grpo.rollout import Rollout, Speedups, recomputes_activations, sample_groups, token_logprobs
from backends.rewards.registry import GROUND_TRUTH_FIELDS, REWARDS, score
from backends.trainer.fabric import unwrap  # noqa: F401  (the plain module behind Fabric's and DDP's wrappers)

TRUNCATION_PENALTY = 1.0  # subtracted from the reward of a truncated completion when truncated == "penalize"


@dataclass
class Scored:
    rollout: Rollout
    num_generations_per_prompt: int
    rewards: Tensor  # (B,) total, after any truncation penalty
    per_rule: dict[str, list[float]]  # reward name -> (B,) raw values (NaN where not routed)
    seconds: dict[str, float] = field(default_factory=dict)  # time per phase: generation, rewards


@contextmanager
def eval_mode(model):
    """Eval mode inside the block (generation keeps a KV cache, which gradient checkpointing turns off), then back."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def rollout_and_score(policy, tokenizer, rows: Sequence[Mapping[str, Any]], grpo, rewards_cfg, template,
                      generator: torch.Generator | None = None, engine=None, seed: int = 0,
                      stop: tuple[str, ...] = DEFAULT_STOP, speedups: Speedups = Speedups()) -> Scored:
    """G completions for each row's prompt (from the policy, or from a vLLM engine holding its weights), scored.
    `speedups`: the HF sampler's speed-ups (all on unless an ablation turns one off)."""
    G = grpo.num_generations_per_prompt
    prompts = [render_prompt(template, str(row["prompt"]), tokenizer) for row in rows]
    lengths = dict(max_prompt_tokens=grpo.max_prompt_tokens, max_completion_tokens=grpo.max_completion_tokens,
                   temperature=grpo.temperature, top_p=grpo.top_p, stop=stop)
    start = time.perf_counter()
    if engine is not None:
        rollout = engine.sample_groups(tokenizer, prompts, G, seed=seed, **lengths)
        device = next(policy.parameters()).device
        moved = {f.name: getattr(rollout, f.name) for f in fields(Rollout)}
        rollout = Rollout(**{k: v.to(device) if isinstance(v, Tensor) else v for k, v in moved.items()})
    else:
        rollout = sample_groups(policy, tokenizer, prompts, G, generator=generator, speedups=speedups, **lengths)
    generated = time.perf_counter()
    group_rows = [row for row in rows for _ in range(G)]  # (B,), aligned with the rollout
    totals, per_rule = score(rewards_cfg, rollout.texts, group_rows, rollout.lengths.tolist())
    rewards = torch.tensor(totals, dtype=torch.float32)
    if grpo.truncated == "penalize":
        rewards = rewards - TRUNCATION_PENALTY * rollout.truncated.float().cpu()
    seconds = {"time_generation_s": generated - start, "time_rewards_s": time.perf_counter() - generated}
    return Scored(rollout, G, rewards, per_rule, seconds)


def micro_batches(n: int, size: int, num_generations_per_prompt: int) -> tuple[list[slice], int]:
    """Slices of at most `size` rows, and the rows that share each prompt in a slice (`rows_per_prompt`).

    When a micro-batch holds whole groups (size >= G), its slices are cut at group boundaries so that each
    prompt's forward pass is shared by its G completions; otherwise every row runs its own prompt.
    """
    G = num_generations_per_prompt
    rows_per_prompt = G if size >= G else 1
    size = size // rows_per_prompt * rows_per_prompt
    return [slice(i, min(i + size, n)) for i in range(0, n, size)], rows_per_prompt


@torch.no_grad()
def batched_logprobs(model, r: Rollout, temperature: float, size: int, num_generations_per_prompt: int) -> Tensor:
    """Log-probs of the rollout's completions under `model`, micro-batch by micro-batch: (B, T)."""
    batches, rows_per_prompt = micro_batches(len(r.texts), size, num_generations_per_prompt)
    parts = [token_logprobs(model, r.prompt_ids[s], r.prompt_mask[s], r.completion_ids[s], r.completion_mask[s],
                            temperature, rows_per_prompt=rows_per_prompt, vocab_size=r.vocab_size)[0] for s in batches]
    return torch.cat(parts)


def mini_batches(n: int, count: int) -> list[slice]:
    """The rollout's `n` rows (this rank's) cut into `count` contiguous mini-batches of whole groups (the checker
    makes n / count a whole number of groups)."""
    size = n // count
    return [slice(i, i + size) for i in range(0, n, size)]


def update(fabric, policy, reference, optimizer, scored: Scored, grpo, max_grad_norm: float,
           speedups: Speedups = Speedups(), on_optimizer_step=None) -> dict[str, float]:
    """The GRPO update on one scored rollout: for each of inner_epochs passes, one optimizer step per mini-batch
    (train_global_batch_size outputs, micro-batched), so grpo.updates_per_rollout steps in all; `on_optimizer_step`
    (the lr scheduler's step) runs after each. Old and reference log-probs are taken once, before any update, so
    from the second optimizer step on the ratio leaves 1 and the clip acts. Returns local stats, averaged over the
    optimizer steps."""
    r = scored.rollout
    G, B = grpo.num_generations_per_prompt, len(r.texts)
    beta, temperature, mb = grpo.kl_penalty, grpo.temperature, grpo.micro_batch_size
    updates = grpo.updates_per_rollout
    plain_policy = unwrap(policy)  # no-grad passes skip DDP (FSDP2 shards the module itself: it still gathers)
    # a group's completions share one prompt pass, unless the policy recomputes activations (keeps no KV cache);
    # (or an ablation turns prefix sharing off); every pass below scores the same way, so the reference and the
    # policy agree exactly before the update
    group = G if speedups.share_prompt_prefix and not recomputes_activations(policy) else 1
    advantages = group_advantages(scored.rewards, G, grpo.advantage_scaling).to(r.completion_ids.device)  # (B,)
    loss_mask = r.completion_mask.clone()  # (B, T)
    if grpo.truncated == "mask":
        loss_mask[r.truncated] = 0

    # each mini-batch's global counts (divided by the world size: DDP averages the ranks' gradients)
    minis = mini_batches(B, grpo.mini_batches)
    counts = torch.tensor([[float(s.stop - s.start), float(loss_mask[s].sum())] for s in minis])  # (M, 2)
    counts = fabric.all_reduce(counts, reduce_op="sum") / fabric.world_size

    start = time.perf_counter()
    with fabric.autocast():
        # the rollout policy's log-probs, once, before any update (on-policy with one update: the ratio is 1)
        old_logp = batched_logprobs(plain_policy, r, temperature, mb, group) if updates > 1 else None  # (B, T)
        ref_logp = batched_logprobs(reference, r, temperature, mb, group) if beta > 0 else None  # (B, T)
    seconds = {"time_reference_s": time.perf_counter() - start, "time_backward_s": 0.0, "time_optimizer_s": 0.0}

    sums = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "entropy": 0.0, "grad_norm": 0.0}
    if r.sample_logprobs is not None:  # NeMo-RL's check of the sampler against the trainer: 1.0 when they agree
        sums["token_mult_prob_error"] = 0.0
    total_tokens = max(float(r.completion_mask.sum()), 1.0)
    for epoch in range(grpo.inner_epochs):
        for j, mini in enumerate(minis):
            num_sequences, num_tokens = float(counts[j, 0]), float(counts[j, 1])
            batches, rows_per_prompt = micro_batches(mini.stop - mini.start, mb, group)
            batches = [slice(mini.start + s.start, mini.start + s.stop) for s in batches]
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            for k, s in enumerate(batches):
                with fabric.no_backward_sync(policy, enabled=k < len(batches) - 1):
                    with fabric.autocast():
                        logp, entropy = token_logprobs(policy, r.prompt_ids[s], r.prompt_mask[s], r.completion_ids[s],
                                                       r.completion_mask[s], temperature, with_entropy=True,
                                                       rows_per_prompt=rows_per_prompt, vocab_size=r.vocab_size)  # (b, T)
                    old = logp.detach() if old_logp is None else old_logp[s]  # one update per rollout: ratio 1
                    ref = None if ref_logp is None else ref_logp[s]
                    loss, stats = grpo_loss(
                        logp, old, ref, advantages[s], loss_mask[s],
                        eps_low=grpo.ratio_clip_min, eps_high=grpo.ratio_clip_max, beta=beta, kl_type=grpo.kl_type,
                        aggregation=grpo.loss_aggregation, max_completion_tokens=grpo.max_completion_tokens,
                        num_sequences=num_sequences, num_tokens=num_tokens,
                    )
                    fabric.backward(loss)
                m = r.completion_mask[s].float()
                # each pass over the rollout weighs its tokens once; the passes are averaged
                weight = float(m.sum()) / total_tokens / grpo.inner_epochs
                sums["loss"] += float(loss.detach()) / updates
                sums["kl"] += float(stats["kl"]) * weight
                sums["clip_fraction"] += float(stats["clip_fraction"]) * weight
                sums["entropy"] += float((entropy * m).sum() / m.sum().clamp(min=1.0)) * weight
                if r.sample_logprobs is not None and epoch == 0 and j == 0:  # before any update: the sampling policy
                    gap = (logp.detach() - r.sample_logprobs[s]).abs().exp()  # (b, T) exp|log pi_train - log pi_sampler|
                    sums["token_mult_prob_error"] += float((gap * m).sum() / m.sum().clamp(min=1.0)) * (float(m.sum()) / max(float(r.completion_mask[mini].sum()), 1.0))
            stepping = time.perf_counter()
            grad_norm = fabric.clip_gradients(policy, optimizer, max_norm=max_grad_norm)
            sums["grad_norm"] += float(grad_norm) / updates
            optimizer.step()
            if on_optimizer_step is not None:
                on_optimizer_step()
            seconds["time_backward_s"] += stepping - start  # the policy's forward and backward passes
            seconds["time_optimizer_s"] += time.perf_counter() - stepping  # clipping and the AdamW step
    return {**sums, **seconds}


def step_metrics(scored: Scored, rewards_cfg, update_stats: Mapping[str, float], seconds: float) -> dict[str, float]:
    """Per-step metrics of this rank: reward per rule, accuracy, format rate, lengths, and the update's stats."""
    r = scored.rollout
    out = {"reward": float(scored.rewards.mean())}
    for reward in rewards_cfg:
        values = [v for v in scored.per_rule[reward.name] if not math.isnan(v)]
        value = sum(values) / len(values) if values else float("nan")
        out[f"reward/{reward.name}"] = value
        if any(f in REWARDS[reward.rule].needs for f in GROUND_TRUTH_FIELDS):  # as eval counts accuracy
            out["accuracy"] = value
        if reward.rule == "format":
            out["format"] = value
    generated = float(r.completion_mask.sum())
    out.update(
        completion_length=float(r.lengths.float().mean()),
        truncated=float(r.truncated.float().mean()),
        zero_std_groups=float((scored.rewards.view(-1, scored.num_generations_per_prompt).std(-1) == 0).float().mean()),
        **scored.seconds,
        **update_stats,
        step_time_s=seconds,
        tokens_per_s=generated / max(seconds, 1e-9),
    )
    return out


def grpo_step(fabric, policy, reference, optimizer, tokenizer, rows, grpo, rewards_cfg, template,
              max_grad_norm: float, generator: torch.Generator | None = None, engine=None, seed: int = 0,
              stop: tuple[str, ...] = DEFAULT_STOP, speedups: Speedups = Speedups(),
              on_optimizer_step=None) -> dict[str, float]:
    """One rollout, scored, then its grpo.updates_per_rollout optimizer steps (then the engine, if any, gets the
    new weights, once per rollout); returns this rank's metrics.
    `speedups`: switch off one of the rollout's speed-ups (ablations); the result is the same, only slower."""
    start = time.perf_counter()
    plain_policy = unwrap(policy)
    with eval_mode(plain_policy), fabric.autocast():
        scored = rollout_and_score(plain_policy, tokenizer, rows, grpo, rewards_cfg, template, generator, engine, seed, stop,
                                   speedups)
    stats = update(fabric, policy, reference, optimizer, scored, grpo, max_grad_norm, speedups, on_optimizer_step)
    if engine is not None:
        stats["weight_sync_s"] = engine.load_weights(policy)  # the next rollout samples from this step's policy
    return step_metrics(scored, rewards_cfg, stats, time.perf_counter() - start)
