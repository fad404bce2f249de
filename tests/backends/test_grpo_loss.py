"""The GRPO loss against the paper's formula written out with plain Python loops."""

from __future__ import annotations

import math

import pytest
import torch

from backends.grpo.loss import aggregate, group_advantages, grpo_loss, kl_estimate

G = 4  # group size
MODES = ("sequence", "token", "constant")


def fixed_batch(seed: int = 0, prompts: int = 3, T: int = 6):
    """A small batch with ragged masks, ratios on both sides of the clip range and a non-trivial reference."""
    g = torch.Generator().manual_seed(seed)
    B = prompts * G
    logp = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    old_logp = logp + (torch.rand(B, T, generator=g, dtype=torch.float64) - 0.5) * 0.8  # ratios ~ e^±0.4
    ref_logp = logp + (torch.rand(B, T, generator=g, dtype=torch.float64) - 0.5)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(torch.float64)
    rewards = torch.randint(0, 3, (B,), generator=g).to(torch.float64)
    return logp, old_logp, ref_logp, mask, rewards


def paper_advantages(rewards: list[float], scaling: str) -> list[float]:
    out = []
    for start in range(0, len(rewards), G):
        group = rewards[start : start + G]
        mean = sum(group) / G
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (G - 1))  # unbiased, as torch.std
        out += [(r - mean) / (std + 1e-4) if scaling == "std" else r - mean for r in group]
    return out


def paper_loss(logp, old_logp, ref_logp, mask, adv, eps_low, eps_high, beta, kl_type, mode, max_tokens):
    """-J of DSM eq. 3 (and the DAPO / Dr. GRPO normalisers), one token at a time."""
    B, T = len(logp), len(logp[0])
    per_token = [[0.0] * T for _ in range(B)]
    for i in range(B):
        for t in range(T):
            rho = math.exp(logp[i][t] - old_logp[i][t])
            clipped = min(max(rho, 1 - eps_low), 1 + eps_high)
            x = ref_logp[i][t] - logp[i][t]  # log(pi_ref / pi_theta)
            kl = {"k1": -x, "k2": 0.5 * x * x, "k3": math.exp(x) - x - 1}[kl_type]
            per_token[i][t] = -min(rho * adv[i], clipped * adv[i]) + beta * kl
    if mode == "sequence":
        total = 0.0
        for i in range(B):
            n = sum(mask[i])
            total += sum(per_token[i][t] * mask[i][t] for t in range(T)) / n
        return total / B
    s = sum(per_token[i][t] * mask[i][t] for i in range(B) for t in range(T))
    if mode == "token":
        return s / sum(sum(row) for row in mask)
    return s / (B * max_tokens)


@pytest.mark.parametrize("scaling", ["std", "none"])
def test_group_advantages_match_the_paper(scaling):
    *_, rewards = fixed_batch()
    ours = group_advantages(rewards, G, scaling)
    assert ours.tolist() == pytest.approx(paper_advantages(rewards.tolist(), scaling), abs=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kl_type", ["k1", "k2", "k3"])
@pytest.mark.parametrize("eps_high", [0.2, 0.28])
def test_loss_matches_the_paper_formula(mode, kl_type, eps_high):
    logp, old_logp, ref_logp, mask, rewards = fixed_batch()
    adv = group_advantages(rewards, G)
    beta, max_tokens = 0.04, 8
    ours, _ = grpo_loss(logp, old_logp, ref_logp, adv, mask, eps_low=0.2, eps_high=eps_high, beta=beta,
                        kl_type=kl_type, aggregation=mode, max_completion_tokens=max_tokens)
    expected = paper_loss(logp.tolist(), old_logp.tolist(), ref_logp.tolist(), mask.tolist(), adv.tolist(),
                          0.2, eps_high, beta, kl_type, mode, max_tokens)
    assert ours.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_is_zero_when_every_group_has_equal_rewards(mode):
    logp, old_logp, ref_logp, mask, _ = fixed_batch()
    rewards = torch.tensor([1.0] * G + [0.0] * G + [2.0] * G, dtype=torch.float64)
    logp = logp.clone().requires_grad_(True)
    loss, _ = grpo_loss(logp, old_logp, ref_logp, group_advantages(rewards, G), mask, beta=0.0, aggregation=mode)
    loss.backward()
    assert torch.count_nonzero(logp.grad) == 0


@pytest.mark.parametrize("mode", MODES)
def test_micro_batches_sum_to_the_full_batch_loss(mode):
    """Gradient accumulation is exact: step-wide counts make micro-batch losses add up to the full one."""
    logp, old_logp, ref_logp, mask, rewards = fixed_batch(prompts=4)
    adv = group_advantages(rewards, G)
    kw = dict(beta=0.01, aggregation=mode, max_completion_tokens=6)
    full, _ = grpo_loss(logp, old_logp, ref_logp, adv, mask, **kw)
    parts = 0.0
    for s in (slice(0, 5), slice(5, 11), slice(11, 16)):
        part, _ = grpo_loss(logp[s], old_logp[s], ref_logp[s], adv[s], mask[s], num_sequences=16,
                            num_tokens=mask.sum().item(), **kw)
        parts += part.item()
    assert parts == pytest.approx(full.item(), abs=1e-12)


def test_on_policy_loss_is_minus_the_mean_advantage_and_kl_vanishes_at_the_reference():
    logp, _, _, mask, rewards = fixed_batch()
    adv = group_advantages(rewards, G)
    loss, stats = grpo_loss(logp, logp, logp, adv, mask, beta=0.1, aggregation="sequence")
    assert loss.item() == pytest.approx(-adv.mean().item(), abs=1e-12)
    assert stats["kl"].item() == 0.0 and stats["clip_fraction"].item() == 0.0


def test_k3_is_never_negative():
    a, b = torch.randn(1000, dtype=torch.float64), torch.randn(1000, dtype=torch.float64)
    assert (kl_estimate(a, b, "k3") >= 0).all()


def test_unknown_aggregation_is_an_error():
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(torch.zeros(1, 1), torch.ones(1, 1), "bogus", 1)
