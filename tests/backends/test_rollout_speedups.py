"""The rollout's two speed-ups (prompt-prefix sharing, the preallocated KV cache) are exact: switching either off
(`Speedups`, what benchmarks/grpo_vs_trl.py --ablate times) gives the same tokens, log-probs and update."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import MICRO_TINY
from lightning.fabric import Fabric

from backends.data.synthetic import R1_ZERO_TEMPLATE, arithmetic
from backends.grpo.rollout import DynamicCache, PreallocatedLayer, Speedups, sample_groups
from backends.grpo import step as step_module
from backends.grpo.step import eval_mode, rollout_and_score, update
from backends.models import build_tiny_model, build_tiny_tokenizer, disable_dropout
from r1dsl.config import RewardConfig
from r1dsl.ir import GRPO

PROMPTS = ["What is 3 + 4? Answer:", "Hi.", "Compute 12 * 7 - 5, think first."]  # ragged: left padding
ABLATIONS = [Speedups(share_prompt_prefix=False), Speedups(preallocate_cache=False),
             Speedups(share_prompt_prefix=False, preallocate_cache=False)]
REWARDS = [RewardConfig(name="accuracy", rule="math_accuracy"), RewardConfig(name="format", rule="format")]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(MICRO_TINY.vocab_size)
    return build_tiny_model(MICRO_TINY, tokenizer).eval(), tokenizer


def sample(model, tokenizer, speedups: Speedups, stop=("</answer>",)):
    return sample_groups(model, tokenizer, PROMPTS, 4, max_prompt_tokens=64, max_completion_tokens=12, temperature=0.7,
                         stop=stop, generator=torch.Generator().manual_seed(5), speedups=speedups)


@pytest.mark.parametrize("speedups", ABLATIONS, ids=repr)
def test_each_speedup_off_samples_the_same_tokens_and_log_probs(tiny, speedups):
    model, tokenizer = tiny
    fast, slow = sample(model, tokenizer, Speedups()), sample(model, tokenizer, speedups)
    assert torch.equal(slow.completion_ids, fast.completion_ids)
    assert torch.equal(slow.completion_mask, fast.completion_mask)
    assert torch.equal(slow.truncated, fast.truncated) and slow.texts == fast.texts
    assert torch.equal(slow.prompt_ids, fast.prompt_ids) and torch.equal(slow.prompt_mask, fast.prompt_mask)
    torch.testing.assert_close(slow.sample_logprobs, fast.sample_logprobs, atol=1e-5, rtol=0)
    assert fast.lengths.float().mean() > 2  # the rows really decode past the prefill


def test_the_switches_change_what_runs(tiny, monkeypatch):
    """Off means off: without sharing the prefill runs every row; without preallocation the decode loop runs on
    DynamicCache's own layers."""
    model, tokenizer = tiny
    prefill_rows: list[int] = []
    layers: list[type] = []
    original = model.forward

    def spy(*args, **kwargs):
        cache = kwargs.get("past_key_values", kwargs.get("cache"))
        if isinstance(cache, DynamicCache):
            layers.append(type(cache.layers[0]))
        else:
            prefill_rows.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", spy)
    for speedups, rows, layer in [(Speedups(), 3, PreallocatedLayer), (Speedups(share_prompt_prefix=False), 12, PreallocatedLayer)]:
        prefill_rows.clear(), layers.clear()
        sample(model, tokenizer, speedups)
        assert prefill_rows == [rows] and layers and set(layers) == {layer}
    layers.clear()
    sample(model, tokenizer, Speedups(preallocate_cache=False))
    assert layers and PreallocatedLayer not in set(layers)


@pytest.mark.parametrize("speedups", ABLATIONS, ids=repr)
def test_each_speedup_off_gives_the_same_grpo_update(tiny, speedups, monkeypatch):
    """Sampling, the reference pass and the policy's pass (rows_per_prompt 1 instead of G) agree: same update."""
    model, tokenizer = tiny
    rows_per_prompt: list[int] = []
    scoring = step_module.token_logprobs
    monkeypatch.setattr(step_module, "token_logprobs",
                        lambda *a, **k: rows_per_prompt.append(k["rows_per_prompt"]) or scoring(*a, **k))
    rows = arithmetic(3, seed=1)
    settings = GRPO(num_generations_per_prompt=4, num_prompts_per_step=3, micro_batch_size=12, steps=1, kl_penalty=0.01,
                    temperature=1.0, max_completion_tokens=10, max_prompt_tokens=256, seed=3)
    rewards = torch.rand(12, generator=torch.Generator().manual_seed(2))  # a random model earns none: make some
    results = []
    for s in (Speedups(), speedups):
        rows_per_prompt.clear()
        fabric = Fabric(accelerator="cpu", devices=1)
        policy = copy.deepcopy(model).train()
        disable_dropout(policy)
        reference = copy.deepcopy(model).eval().requires_grad_(False)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-2, weight_decay=0.0)
        policy, optimizer = fabric.setup(policy, optimizer)
        with eval_mode(model):
            scored = rollout_and_score(model, tokenizer, rows, settings, REWARDS, R1_ZERO_TEMPLATE,
                                       torch.Generator().manual_seed(9), stop=(), speedups=s)
        scored.rewards = rewards
        stats = update(fabric, policy, reference, optimizer, scored, settings, 1.0, speedups=s)
        assert set(rows_per_prompt) == {4 if s.share_prompt_prefix else 1}  # the reference's and the policy's passes
        results.append((scored.rollout, stats, [p.grad.clone() for p in policy.parameters()]))  # the step's gradient
    (fast_rollout, fast, fast_grads), (slow_rollout, slow, slow_grads) = results
    assert torch.equal(slow_rollout.completion_ids, fast_rollout.completion_ids)
    assert fast["grad_norm"] > 0.01
    for key in ("loss", "kl", "entropy", "grad_norm", "token_mult_prob_error"):
        assert slow[key] == pytest.approx(fast[key], abs=1e-5), key
    for a, b in zip(fast_grads, slow_grads):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-4)
