"""Batched sampling: stop tokens, truncation flags, left padding, greedy determinism."""

from __future__ import annotations

import pytest
import torch
from conftest import MICRO_INIT

from backends.generation import sample
from backends.models import load_policy


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    model, tok = load_policy(MICRO_INIT)
    return model.eval(), tok


def force_token(model, token_id: int):
    """Make the model emit `token_id` at every position (a hook on the real model's output layer)."""

    def hook(_module, _inputs, logits):
        logits = logits.clone()
        logits[..., token_id] += 1e4
        return logits

    return model.lm_head.register_forward_hook(hook)


def test_a_stop_token_ends_the_completion_and_is_kept(policy):
    model, tok = policy
    handle = force_token(model, tok.convert_tokens_to_ids("</answer>"))
    try:
        s = sample(model, tok, ["What is 1 + 1?", "Hi"], num_samples=3, max_new_tokens=8, temperature=1.0)
    finally:
        handle.remove()
    assert s.completion_ids.shape[0] == 6
    assert s.texts == ["</answer>"] * 6
    assert s.completion_lengths == [1] * 6 and s.truncated == [False] * 6


def test_running_out_of_tokens_is_truncated(policy):
    model, tok = policy
    handle = force_token(model, tok.convert_tokens_to_ids("a"))
    try:
        s = sample(model, tok, ["x", "a longer prompt"], max_new_tokens=5, temperature=0)
    finally:
        handle.remove()
    assert s.texts == ["aaaaa", "aaaaa"] and s.truncated == [True, True]
    assert s.completion_mask.tolist() == [[1] * 5] * 2


def test_left_padding_does_not_change_greedy_completions(policy):
    model, tok = policy
    alone = sample(model, tok, ["What is 2 + 3?"], max_new_tokens=12, temperature=0)
    padded = sample(model, tok, ["What is 2 + 3?", "A much longer prompt that forces left padding of the first one."], max_new_tokens=12, temperature=0)
    assert padded.texts[0] == alone.texts[0]
    assert padded.prompt_mask[0, 0] == 0  # the short prompt really was padded


def test_sampling_is_reproducible_with_a_seed(policy):
    model, tok = policy
    a = sample(model, tok, ["Compute 4 * 5"], num_samples=4, max_new_tokens=10, temperature=1.0, generator_seed=3)
    b = sample(model, tok, ["Compute 4 * 5"], num_samples=4, max_new_tokens=10, temperature=1.0, generator_seed=3)
    assert a.texts == b.texts
    assert torch.equal(a.prompt_ids[0], a.prompt_ids[3])  # samples of one prompt are contiguous rows


def test_multi_token_stop_string_cuts_the_text(policy):
    model, tok = policy
    handle = force_token(model, tok.convert_tokens_to_ids("a"))
    try:
        s = sample(model, tok, ["x"], max_new_tokens=6, temperature=0, stop=("aaa",))
    finally:
        handle.remove()
    assert s.texts == ["aaa"] and s.truncated == [False] and s.completion_lengths == [3]
