"""The GRPO objective as pure functions of tensors: no model, no I/O.

Shapes: B sequences (prompts x G completions, grouped contiguously; G = num_generations_per_prompt), T completion tokens.

    A_i      = (r_i - mean(r_group)) / (std(r_group) + 1e-4)            [DSM 4.1.2]
    rho_it   = exp(logp_it - old_logp_it)
    L_it     = -min(rho_it A_i, clip(rho_it, 1 - eps_low, 1 + eps_high) A_i) + beta * KL_it
    J        = aggregate(L, mask)                                       [DSM eq. 3, DAPO, Dr. GRPO]

`grpo_loss` returns the loss to *minimise* (the negative of the paper's objective J).
"""

from __future__ import annotations

import torch
from torch import Tensor

STD_EPS = 1e-4  # added to the group std (as TRL does); the papers do not publish one


def group_advantages(rewards: Tensor, num_generations_per_prompt: int, scaling: str = "std") -> Tensor:
    """Outcome advantages: each reward minus its group mean, divided by the group std unless scaling == "none".

    rewards: (B,) with B = prompts * num_generations_per_prompt, each group contiguous. Returns (B,).
    std is the unbiased sample std (torch.std), matching TRL.
    """
    grouped = rewards.view(-1, num_generations_per_prompt)  # (P, G)
    advantages = grouped - grouped.mean(dim=1, keepdim=True)  # (P, G)
    if scaling == "std":
        advantages = advantages / (grouped.std(dim=1, keepdim=True) + STD_EPS)
    elif scaling != "none":
        raise ValueError(f"unknown advantage scaling {scaling!r}")
    return advantages.reshape(-1)  # (B,)


def kl_estimate(logp: Tensor, ref_logp: Tensor, kind: str = "k3") -> Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) from samples of pi_theta (Schulman's k1, k2, k3).

    k3 is DSM eq. 4: pi_ref/pi_theta - log(pi_ref/pi_theta) - 1, unbiased and never negative.
    """
    log_r = ref_logp - logp  # log(pi_ref / pi_theta), (B, T)
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return 0.5 * log_r**2
    if kind == "k3":
        return torch.exp(log_r) - log_r - 1
    raise ValueError(f"unknown KL estimator {kind!r}")


def aggregate(
    per_token: Tensor,
    mask: Tensor,
    mode: str,
    max_completion_tokens: int,
    num_sequences: float | None = None,
    num_tokens: float | None = None,
) -> Tensor:
    """Reduce a (B, T) per-token loss to a scalar.

    sequence: mean over each sequence's tokens, then mean over sequences      [DSM eq. 3]
    token:    sum over all tokens / number of tokens                          [DAPO]
    constant: sum over all tokens / (number of sequences * max_completion_tokens)  [Dr. GRPO]

    num_sequences / num_tokens are the counts of the whole optimizer step (all micro-batches, and all
    ranks divided by the world size); default: this batch's. With them, the sum of the micro-batch
    losses equals the loss of the full batch, so gradient accumulation is exact.
    """
    mask = mask.to(per_token.dtype)
    num_sequences = per_token.shape[0] if num_sequences is None else num_sequences
    if mode == "sequence":
        per_sequence = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)  # (B,)
        return per_sequence.sum() / num_sequences
    if mode == "token":
        num_tokens = mask.sum().clamp(min=1.0) if num_tokens is None else max(num_tokens, 1.0)
        return (per_token * mask).sum() / num_tokens
    if mode == "constant":
        return (per_token * mask).sum() / (num_sequences * max_completion_tokens)
    raise ValueError(f"unknown loss aggregation {mode!r}")


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    beta: float = 0.0,
    kl_type: str = "k3",
    aggregation: str = "sequence",
    max_completion_tokens: int | None = None,
    num_sequences: float | None = None,
    num_tokens: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The clipped GRPO surrogate with a KL penalty, to minimise. Returns (loss, detached stats).

    logp, old_logp, ref_logp, mask: (B, T); advantages: (B,). ref_logp may be None when beta == 0.
    """
    adv = advantages.unsqueeze(1)  # (B, 1): the same advantage for every token of o_i
    ratio = torch.exp(logp - old_logp)  # rho_it, (B, T)
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)  # (B, T)
    surrogate = torch.min(ratio * adv, clipped * adv)  # (B, T)
    kl = kl_estimate(logp, ref_logp, kl_type) if beta != 0.0 else torch.zeros_like(logp)  # (B, T)
    per_token = -surrogate + beta * kl  # (B, T)
    T = max_completion_tokens if max_completion_tokens is not None else logp.shape[1]
    loss = aggregate(per_token, mask, aggregation, T, num_sequences, num_tokens)  # ()

    with torch.no_grad():
        m = mask.to(logp.dtype)
        n = m.sum().clamp(min=1.0)
        was_clipped = ((ratio < 1 - eps_low) & (adv < 0)) | ((ratio > 1 + eps_high) & (adv > 0))
        if ref_logp is not None and beta == 0.0:
            kl = kl_estimate(logp, ref_logp, kl_type)  # logged even when it is not in the loss
        stats = {
            "kl": (kl * m).sum() / n,
            "clip_fraction": (was_clipped.to(m.dtype) * m).sum() / n,
            "ratio": (ratio * m).sum() / n,
        }
    return loss, stats
