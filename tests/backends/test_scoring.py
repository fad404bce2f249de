"""Scoring and sampling at scale: the sampler's log-probs equal the training pass's, the chunked selective
log-softmax equals the full one (values and gradients), gradient checkpointing works in train mode, every EOS
id stops a completion, padded vocabulary ids are never sampled or scored, and the reference agrees with the
policy at step 0 under each precision."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import MICRO_INIT, MICRO_TINY
from fsdp_worker import GRPO, OPTIM, fixed_rollout

from backends.grpo import rollout as rollout_module
from backends.grpo.rollout import sample_groups, token_logprobs
from backends.grpo.step import update
from backends.models import build_tiny_model, build_tiny_tokenizer, disable_dropout, load_policy
from backends.trainer import build_optimizer
from backends.trainer.fabric import setup_fabric, setup_frozen, setup_trainable, unwrap
from r1dsl.config import TrainerConfig

PROMPTS = ["What is 3 + 4? Answer:", "Hi.", "Compute 12 * 7 - 5, think first."]  # ragged: left padding


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(MICRO_TINY.vocab_size)
    return build_tiny_model(MICRO_TINY, tokenizer).eval(), tokenizer


def naive_logprobs(model, r, temperature: float):
    """The full [B, T, V] log-softmax of one forward pass per row, the formula the chunked pass must equal."""
    out = torch.zeros(r.completion_ids.shape)
    for i in range(len(r.texts)):
        p = r.prompt_ids[i][r.prompt_mask[i].bool()]
        c = r.completion_ids[i][r.completion_mask[i].bool()]
        logits = model(input_ids=torch.cat([p, c])[None]).logits[0, len(p) - 1 : -1]
        out[i, : len(c)] = torch.log_softmax(logits.float() / temperature, -1).gather(-1, c[:, None]).squeeze(-1)
    return out


def test_the_samplers_log_probs_equal_the_training_pass_at_temperature_with_ragged_left_padding(tiny):
    model, tokenizer = tiny
    r = sample_groups(model, tokenizer, PROMPTS, 3, max_prompt_tokens=64, max_completion_tokens=12, temperature=0.7,
                      generator=torch.Generator().manual_seed(0))
    assert r.prompt_mask.min() == 0 and r.lengths.max() > 1  # left padding and multi-token completions happened
    m = r.completion_mask.bool()
    for rows_per_prompt in (1, 3):
        with torch.no_grad():
            logp, _ = token_logprobs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, 0.7,
                                     rows_per_prompt=rows_per_prompt, vocab_size=r.vocab_size)
        torch.testing.assert_close(logp[m], r.sample_logprobs[m], atol=1e-5, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(naive_logprobs(model, r, 0.7)[m], r.sample_logprobs[m], atol=1e-5, rtol=0)


def test_chunked_selective_log_probs_equal_the_full_log_softmax_in_values_gradients_and_entropy(tiny, monkeypatch):
    model, tokenizer = tiny
    model = copy.deepcopy(model)
    r = sample_groups(model, tokenizer, PROMPTS, 2, max_prompt_tokens=64, max_completion_tokens=10, temperature=1.3,
                      generator=torch.Generator().manual_seed(1))
    m = r.completion_mask.float()

    full = naive_logprobs(model, r, 1.3)
    (full * m).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    monkeypatch.setattr(rollout_module, "SCORING_CHUNK_BYTES", 4 * MICRO_TINY.vocab_size * 3)  # 3 tokens a chunk
    logp, entropy = token_logprobs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, 1.3,
                                   with_entropy=True, rows_per_prompt=2)
    (logp * m).sum().backward()
    torch.testing.assert_close(logp.detach() * m, full.detach() * m, atol=1e-5, rtol=0)
    for got, want in zip((p.grad for p in model.parameters()), expected):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    assert not entropy.requires_grad and (entropy[m.bool()] > 0).all() and (entropy[~m.bool()] == 0).all()


def test_scoring_works_with_gradient_checkpointing_in_train_mode_and_gives_the_same_gradients(tiny):
    model, tokenizer = tiny
    r = sample_groups(model, tokenizer, PROMPTS, 2, max_prompt_tokens=64, max_completion_tokens=8,
                      generator=torch.Generator().manual_seed(2))
    batch = (r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask)
    grads, values = [], []
    for checkpointing in (False, True):
        policy = copy.deepcopy(model).train()
        disable_dropout(policy)
        if checkpointing:
            policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            assert policy.is_gradient_checkpointing and policy.training
        logp, _ = token_logprobs(policy, *batch, rows_per_prompt=2)  # the shared-prompt pass needs a cache: falls back
        (logp * r.completion_mask).sum().backward()
        values.append(logp.detach() * r.completion_mask)
        grads.append([p.grad for p in policy.parameters()])
    torch.testing.assert_close(values[1], values[0], atol=1e-5, rtol=0)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_every_eos_id_of_the_generation_config_stops_a_completion(tiny):
    model, tokenizer = tiny
    model = copy.deepcopy(model)
    # a list, as Qwen2.5 and Llama 3 ship it: here every id ends a turn, so each completion is one token long
    model.generation_config.eos_token_id = list(range(len(tokenizer)))
    r = sample_groups(model, tokenizer, PROMPTS, 2, max_prompt_tokens=64, max_completion_tokens=8,
                      generator=torch.Generator().manual_seed(3))
    assert r.lengths.tolist() == [1] * 6 and not r.truncated.any()


def test_padded_vocabulary_ids_are_never_sampled_nor_scored():
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(MICRO_TINY.vocab_size)
    model = build_tiny_model(MICRO_TINY, tokenizer)
    model.resize_token_embeddings(len(tokenizer) + 64)  # as Qwen2.5 pads 151,665 ids to 151,936
    with torch.no_grad():
        model.get_output_embeddings().weight[len(tokenizer):] = 50.0  # padded ids would win every draw
    model.eval()
    r = sample_groups(model, tokenizer, PROMPTS, 2, max_prompt_tokens=64, max_completion_tokens=6,
                      generator=torch.Generator().manual_seed(4))
    assert r.vocab_size == len(tokenizer) and int(r.completion_ids.max()) < len(tokenizer)
    with torch.no_grad():
        logp, _ = token_logprobs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask,
                                 vocab_size=r.vocab_size)
    m = r.completion_mask.bool()
    torch.testing.assert_close(logp[m], r.sample_logprobs[m], atol=1e-5, rtol=0)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "bf16-true"])
def test_the_reference_scores_like_the_policy_so_kl_is_zero_at_step_zero(precision):
    fabric = setup_fabric(TrainerConfig(accelerator="cpu", devices=1, strategy="auto", precision=precision))
    model, tokenizer = load_policy(MICRO_INIT, "cpu", precision)
    assert next(model.parameters()).dtype == (torch.bfloat16 if precision == "bf16-true" else torch.float32)
    disable_dropout(model)
    reference = setup_frozen(fabric, copy.deepcopy(model))
    policy, optimizer, _ = setup_trainable(fabric, model, lambda params: build_optimizer(params, OPTIM))
    assert next(reference.parameters()).dtype == next(unwrap(policy).parameters()).dtype
    stats = update(fabric, policy, reference, optimizer, fixed_rollout(len(tokenizer)), GRPO, max_grad_norm=1.0)
    assert stats["kl"] == 0.0 and stats["grad_norm"] > 0


def test_unwrap_returns_the_hugging_face_module_not_fabrics_wrapper(tiny):
    from lightning.fabric.wrappers import _FabricModule

    model, _ = tiny
    fabric = setup_fabric(TrainerConfig(accelerator="cpu", devices=1, strategy="auto", precision="32-true"))
    wrapped = fabric.setup_module(copy.deepcopy(model))
    assert isinstance(wrapped, _FabricModule) and hasattr(wrapped, "generate")  # the wrapper forwards `generate`
    plain = unwrap(wrapped)
    assert not isinstance(plain, _FabricModule) and type(plain) is type(model)


def test_eval_and_rejection_sampling_stop_at_every_eos_id_and_never_emit_padded_ids():
    from backends.generation import sample

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(MICRO_TINY.vocab_size)
    model = build_tiny_model(MICRO_TINY, tokenizer).eval()
    model.generation_config.eos_token_id = list(range(len(tokenizer)))  # every id ends a turn
    out = sample(model, tokenizer, PROMPTS, num_samples=2, max_new_tokens=6, generator_seed=0)
    assert out.completion_lengths == [1] * 6 and not any(out.truncated)

    model = build_tiny_model(MICRO_TINY, tokenizer)
    model.resize_token_embeddings(len(tokenizer) + 64)
    with torch.no_grad():
        model.get_output_embeddings().weight[len(tokenizer):] = 50.0
    out = sample(model.eval(), tokenizer, PROMPTS, num_samples=2, max_new_tokens=6, generator_seed=0)
    assert int(out.completion_ids.max()) < len(tokenizer)
