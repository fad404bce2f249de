"""The paper's rollout/update split [NAT Methods]: old log-probs taken once per rollout, one optimizer step per
mini-batch of train_global_batch_size outputs, so from the second step on the ratio leaves 1 and the clip acts;
one update per rollout is bit-identical to the update before the split existed (a copy of it lives here)."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from conftest import MICRO_TINY
from fsdp_worker import GRPO, OPTIM, fixed_rollout

from backends.grpo import step as step_module
from backends.grpo.loss import group_advantages, grpo_loss
from backends.grpo.rollout import Speedups, recomputes_activations, token_logprobs
from backends.grpo.step import batched_logprobs, micro_batches, update
from backends.models import build_tiny_model, build_tiny_tokenizer, disable_dropout
from backends.trainer import build_optimizer
from backends.trainer.fabric import setup_fabric, setup_frozen, setup_trainable, unwrap
from r1dsl.config import TrainerConfig


def update_before_the_split(fabric, policy, reference, optimizer, scored, grpo, max_grad_norm, speedups=Speedups()):
    """backends.grpo.step.update as it was before the rollout/update split (commit 3293f66), verbatim but for names:
    inner_epochs optimizer steps over the whole rollout."""
    r = scored.rollout
    G, B = grpo.num_generations_per_prompt, len(r.texts)
    beta, temperature, mb = grpo.kl_penalty, grpo.temperature, grpo.micro_batch_size
    plain_policy = unwrap(policy)
    group = G if speedups.share_prompt_prefix and not recomputes_activations(policy) else 1
    advantages = group_advantages(scored.rewards, G, grpo.advantage_scaling).to(r.completion_ids.device)
    loss_mask = r.completion_mask.clone()
    if grpo.truncated == "mask":
        loss_mask[r.truncated] = 0
    counts = torch.tensor([float(B), float(loss_mask.sum())])
    counts = fabric.all_reduce(counts, reduce_op="sum") / fabric.world_size
    num_sequences, num_tokens = float(counts[0]), float(counts[1])
    with fabric.autocast():
        old_logp = batched_logprobs(plain_policy, r, temperature, mb, group) if grpo.inner_epochs > 1 else None
        ref_logp = batched_logprobs(reference, r, temperature, mb, group) if beta > 0 else None
    sums = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "entropy": 0.0, "grad_norm": 0.0}
    batches, rows_per_prompt = micro_batches(B, mb, group)
    for _ in range(grpo.inner_epochs):
        optimizer.zero_grad(set_to_none=True)
        for k, s in enumerate(batches):
            with fabric.no_backward_sync(policy, enabled=k < len(batches) - 1):
                with fabric.autocast():
                    logp, entropy = token_logprobs(policy, r.prompt_ids[s], r.prompt_mask[s], r.completion_ids[s],
                                                   r.completion_mask[s], temperature, with_entropy=True,
                                                   rows_per_prompt=rows_per_prompt, vocab_size=r.vocab_size)
                old = logp.detach() if old_logp is None else old_logp[s]
                ref = None if ref_logp is None else ref_logp[s]
                loss, stats = grpo_loss(
                    logp, old, ref, advantages[s], loss_mask[s],
                    eps_low=grpo.ratio_clip_min, eps_high=grpo.ratio_clip_max, beta=beta, kl_type=grpo.kl_type,
                    aggregation=grpo.loss_aggregation, max_completion_tokens=grpo.max_completion_tokens,
                    num_sequences=num_sequences, num_tokens=num_tokens,
                )
                fabric.backward(loss)
            m = r.completion_mask[s].float()
            weight = float(m.sum()) / max(float(r.completion_mask.sum()), 1.0) / grpo.inner_epochs
            sums["loss"] += float(loss.detach()) / grpo.inner_epochs
            sums["kl"] += float(stats["kl"]) * weight
            sums["clip_fraction"] += float(stats["clip_fraction"]) * weight
            sums["entropy"] += float((entropy * m).sum() / m.sum().clamp(min=1.0)) * weight
        grad_norm = fabric.clip_gradients(policy, optimizer, max_norm=max_grad_norm)
        sums["grad_norm"] += float(grad_norm) / grpo.inner_epochs
        optimizer.step()
    return sums


def setup(seed: int = 0):
    fabric = setup_fabric(TrainerConfig(accelerator="cpu", devices=1, strategy="auto", precision="32-true"))
    torch.manual_seed(seed)
    tokenizer = build_tiny_tokenizer(MICRO_TINY.vocab_size)
    model = build_tiny_model(MICRO_TINY, tokenizer)
    disable_dropout(model)
    reference = setup_frozen(fabric, copy.deepcopy(model))
    policy, optimizer, _ = setup_trainable(fabric, model, lambda params: build_optimizer(params, OPTIM))
    return fabric, policy, reference, optimizer, len(tokenizer)


@pytest.mark.parametrize("knobs", [{}, {"inner_epochs": 2, "loss_aggregation": "token", "truncated": "mask"},
                                   {"kl_penalty": 0.0, "micro_batch_size": 3, "loss_aggregation": "constant"}],
                         ids=["defaults", "two-epochs-token-mask", "no-kl-ragged-micro"])
def test_one_mini_batch_per_rollout_is_bit_identical_to_the_update_before_the_split(knobs):
    grpo = replace(GRPO, **knobs)
    assert grpo.train_global_batch_size is None and grpo.mini_batches == 1
    runs = []
    for impl in (update, update_before_the_split):
        fabric, policy, reference, optimizer, vocab = setup()
        history = []
        for step in range(3):
            scored = fixed_rollout(vocab)
            scored.rewards = torch.rand(len(scored.rewards), generator=torch.Generator().manual_seed(step))
            stats = impl(fabric, policy, reference, optimizer, scored, grpo, 1.0)
            history.append({k: stats[k] for k in ("loss", "kl", "clip_fraction", "entropy", "grad_norm")})
        runs.append((history, {k: v.detach().clone() for k, v in unwrap(policy).state_dict().items()}))
    (new_history, new_state), (old_history, old_state) = runs
    assert new_history == old_history  # exact floats
    assert sorted(new_state) == sorted(old_state)
    for name in new_state:
        assert torch.equal(new_state[name], old_state[name]), name


def recording(monkeypatch):
    """Record every grpo_loss call's ratio and the gradient of its loss with respect to the log-probs."""
    calls = []

    def spy(logp, old_logp, *args, **kwargs):
        loss, stats = grpo_loss(logp, old_logp, *args, **kwargs)
        probe = logp.detach().clone().requires_grad_(True)
        probe_loss, _ = grpo_loss(probe, old_logp, *args, **kwargs)
        (grad,) = torch.autograd.grad(probe_loss, probe)
        calls.append({"ratio": torch.exp(logp.detach() - old_logp), "grad": grad, "mask": args[2].bool(),
                      "adv": args[1], "clip_fraction": float(stats["clip_fraction"])})
        return loss, stats

    monkeypatch.setattr(step_module, "grpo_loss", spy)
    return calls


def test_later_mini_batches_are_off_policy_so_the_ratio_leaves_one_and_the_clip_bounds_the_update(monkeypatch):
    calls = recording(monkeypatch)
    fabric, policy, reference, optimizer, vocab = setup()
    # 16 outputs (4 prompts x G = 4) in 4 mini-batches of 4 (one group each): 4 optimizer steps per rollout
    grpo = replace(GRPO, train_global_batch_size=4, kl_penalty=0.0, ratio_clip_min=0.01, ratio_clip_max=0.01)
    assert grpo.mini_batches == 4 and grpo.updates_per_rollout == 4
    steps = []
    monkeypatch.setattr(optimizer, "step", lambda wrapped=optimizer.step: (steps.append(1), wrapped())[1])
    before = {k: v.detach().clone() for k, v in unwrap(policy).state_dict().items()}
    stats = update(fabric, policy, reference, optimizer, fixed_rollout(vocab), grpo, 1.0)
    assert len(steps) == 4 and len(calls) == 4  # one optimizer step per mini-batch (micro_batch_size 4 = one group)
    first, later = calls[0], calls[1:]
    assert torch.equal(first["ratio"][first["mask"]], torch.ones(int(first["mask"].sum())))  # on-policy: exactly 1
    for call in later:  # the policy moved since the rollout: the ratio leaves 1
        assert float((call["ratio"][call["mask"]] - 1).abs().max()) > 1e-3
    assert stats["clip_fraction"] > 0
    # the clip bounds the update: a token whose ratio left [1 - eps, 1 + eps] on the side its advantage pushes
    # gets no gradient; a token inside the range gets exactly -A * ratio / (its sequence's length x sequences)
    clipped_tokens = 0
    for call in later:
        adv = call["adv"][:, None].expand_as(call["ratio"])
        out = ((call["ratio"] > 1.01) & (adv > 0)) | ((call["ratio"] < 0.99) & (adv < 0))
        out &= call["mask"]
        clipped_tokens += int(out.sum())
        assert torch.equal(call["grad"][out], torch.zeros(int(out.sum())))
        inside = call["mask"] & (call["ratio"] > 0.99) & (call["ratio"] < 1.01)
        lengths = call["mask"].sum(-1, keepdim=True).expand_as(call["ratio"]).float()
        expected = -adv * call["ratio"] / lengths / len(call["adv"])  # sequence aggregation over the mini-batch
        torch.testing.assert_close(call["grad"][inside], expected[inside], atol=1e-7, rtol=1e-5)
    assert clipped_tokens > 0
    after = unwrap(policy).state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in before)


def test_a_hand_computed_clip_on_the_second_mini_batch():
    """Two one-token sequences: the rollout policy gave each token probability 0.5; after the first optimizer
    step the policy gives 0.75 (ratio 1.5) to the positive-advantage token and 0.25 (ratio 0.5) to the negative
    one. With eps = 0.2 both ratios are clipped on the side their advantage pushes: loss -(1.2 x 1 + 0.8 x -1) / 2
    = -0.2 and no gradient; with eps = 0.6 neither is: loss -(1.5 - 0.5) / 2 = -0.5, gradient -A ratio / 2."""
    old = torch.log(torch.tensor([[0.5], [0.5]], dtype=torch.float64))
    adv = torch.tensor([1.0, -1.0], dtype=torch.float64)
    mask = torch.ones(2, 1)
    for eps, loss_value, grad in ((0.2, -0.2, [0.0, 0.0]), (0.6, -0.5, [-0.75, 0.25])):
        logp = torch.log(torch.tensor([[0.75], [0.25]], dtype=torch.float64)).requires_grad_(True)
        loss, stats = grpo_loss(logp, old, None, adv, mask, eps_low=eps, eps_high=eps)
        loss.backward()
        assert loss.item() == pytest.approx(loss_value, abs=1e-12)
        assert logp.grad.flatten().tolist() == pytest.approx(grad, abs=1e-12)
        assert stats["clip_fraction"].item() == (1.0 if eps == 0.2 else 0.0)


def test_the_scheduler_steps_once_per_optimizer_step_and_the_old_log_probs_are_taken_once(monkeypatch):
    fabric, policy, reference, optimizer, vocab = setup()
    passes = []
    real = step_module.batched_logprobs
    monkeypatch.setattr(step_module, "batched_logprobs", lambda model, *a: (passes.append(model), real(model, *a))[1])
    ticks = []
    grpo = replace(GRPO, train_global_batch_size=8, inner_epochs=2)
    assert grpo.updates_per_rollout == 4
    update(fabric, policy, reference, optimizer, fixed_rollout(vocab), grpo, 1.0, on_optimizer_step=lambda: ticks.append(1))
    assert len(ticks) == 4
    assert len(passes) == 2 and passes[1] is reference  # old (the policy) and reference log-probs, once per rollout
