"""The tiny model and its locally trained tokenizer; loading saved and hub checkpoints."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import MICRO_INIT, MICRO_TINY

from backends.models import TAGS, ModelError, build_tiny_tokenizer, count_parameters, load_policy, save_policy
from r1dsl.config import InitConfig


@pytest.fixture(scope="module")
def tiny():
    return load_policy(MICRO_INIT)


def test_tags_are_single_tokens_that_decoding_keeps(tiny):
    _, tok = tiny
    text = " <think> 7 * 3 = 21. </think> <answer> 21 </answer>"
    ids = tok(text, add_special_tokens=False).input_ids
    for tag in TAGS:
        assert tok.convert_tokens_to_ids(tag) in ids
    assert tok.decode(ids + [tok.eos_token_id], skip_special_tokens=True) == text


def test_digits_are_one_token_each(tiny):
    _, tok = tiny
    assert [t for t in tok.tokenize("1234") if t.strip("Ġ")] == ["1", "2", "3", "4"]


def test_tokenizer_has_eos_pad_and_left_padding(tiny):
    _, tok = tiny
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>" and tok.pad_token_id != tok.eos_token_id
    assert tok.padding_side == "left"


def test_tiny_model_is_sized_by_its_config(tiny):
    model, tok = tiny
    assert model.config.hidden_size == MICRO_TINY.hidden_size
    assert model.config.num_hidden_layers == MICRO_TINY.num_layers
    assert model.config.vocab_size == len(tok) <= MICRO_TINY.vocab_size
    assert count_parameters(model) < 100_000


def test_llama_arch():
    model, _ = load_policy(replace(MICRO_INIT, tiny=replace(MICRO_TINY, arch="llama")))
    assert model.config.model_type == "llama"


def test_tokenizer_training_is_deterministic():
    assert build_tiny_tokenizer(300).get_vocab() == build_tiny_tokenizer(300).get_vocab()


def test_saved_policy_loads_back_through_the_local_path(tiny, tmp_path):
    model, tok = tiny
    save_policy(model, tok, tmp_path / "model")
    loaded, loaded_tok = load_policy(InitConfig(source="stage", path=str(tmp_path / "model")))
    ids = torch.tensor([tok("User: 1 + 2. Assistant: <think>").input_ids])
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    assert loaded_tok.get_vocab() == tok.get_vocab() and loaded_tok.padding_side == "left"


def test_missing_local_directory_and_uncached_hub_id_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="no config.json"):
        load_policy(InitConfig(source="local", path=str(tmp_path)))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        load_policy(InitConfig(source="hf", path="nobody/no-such-model-r1dsl"))
