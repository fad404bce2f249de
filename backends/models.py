"""Load the policy a stage starts from: the tiny model built from a config, or a Hugging Face checkpoint.

`load_policy(init, device) -> (model, tokenizer)` where `init` is a compiled `model.init` (`r1dsl.config.InitConfig`):
  InitConfig("tiny", tiny=TinyModelConfig(...))   a fresh transformers model + a locally trained BPE tokenizer
  InitConfig("local" | "stage", path=DIR)         AutoModelForCausalLM / AutoTokenizer from a directory
  InitConfig("hf", path="org/name")               the same, from the local Hugging Face cache only
Every tokenizer comes back with a pad token and left padding (generation pads prompts on the left).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch

from r1dsl.config import InitConfig
from r1dsl.ir import Resources, TinyModelConfig

EOS = "<|endoftext|>"
PAD = "<|pad|>"
# Single tokens in the tiny vocabulary, but not "special": decoding keeps them, the rewards read them.
TAGS = ("<think>", "</think>", "<answer>", "</answer>")


class ModelError(Exception):
    """A model that cannot be loaded; the message says what to do."""


def weights_dtype(precision: str) -> torch.dtype:
    """The dtype weights are loaded in for a Fabric precision: bf16 for bf16-true, else fp32 (the master copy
    that bf16-mixed autocasts from and 32-true trains)."""
    return torch.bfloat16 if precision in ("bf16-true", "bf16") else torch.float32


def load_policy(init: InitConfig, device: str | torch.device = "cpu", precision: str = "32-true"):
    """(model, tokenizer) for a compiled `model.init` entry, the model on `device` in train mode, its weights
    in the dtype the precision trains them in (never an fp32 copy of a model that trains in bf16)."""
    source = init.source
    dtype = weights_dtype(precision)
    if source == "tiny":
        if init.tiny is None:
            raise ModelError("model.init: source tiny needs its `tiny` block (the architecture to build)")
        tokenizer = build_tiny_tokenizer(init.tiny.vocab_size)
        model = build_tiny_model(init.tiny, tokenizer).to(dtype)
    elif source in ("local", "stage"):
        model, tokenizer = _load_pretrained(str(init.path), local_only=True, dtype=dtype)
    elif source == "hf":
        model, tokenizer = _load_pretrained(str(init.path), local_only=False, dtype=dtype)
    else:
        raise ModelError(f"unknown model source {source!r} (tiny, local, stage or hf)")
    return model.to(device).train(), tokenizer


def prepare_for_training(model, resources: Resources) -> None:
    """What `resources` asks of a model about to train: gradient checkpointing (non-reentrant, so it composes
    with FSDP2 and with the frozen embeddings of a partly frozen model)."""
    if resources.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False


def disable_dropout(model) -> None:
    """Dropout off for good, so the model can stay in train mode (gradient checkpointing needs it) while
    sampling and training see the same function; attention dropout too (HF reads `attention_dropout`)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0


# ---------------------------------------------------------------- the tiny model


def tokenizer_training_text(num_docs: int = 4000) -> list[str]:
    """What the tiny tokenizer learns its merges from: the synthetic corpus plus the other generators."""
    from backends.data import synthetic

    texts = [r["text"] for r in synthetic.corpus(num_docs, seed=0)]
    texts += [r["prompt"] + " " + r["answer"] for r in synthetic.countdown(200, seed=0)]
    texts += [r["prompt"] + "\n" + r["response"] for r in synthetic.code(200, seed=0)]
    texts += [r["prompt"] + " " + r["response"] for r in synthetic.chat(200, seed=0)]
    return texts


def build_tiny_tokenizer(vocab_size: int):
    """A byte-level BPE trained here on synthetic text (digits split one per token), as a PreTrainedTokenizerFast."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # One token per digit: arithmetic generalises across numbers instead of memorising each one.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(TAGS),
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tokenizer_training_text(), trainer=trainer)
    tok.add_tokens([AddedToken(t, single_word=False, normalized=False) for t in TAGS])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, padding_side="left")
    fast.model_max_length = 1 << 30
    return fast


def build_tiny_model(tiny: TinyModelConfig, tokenizer):
    """A freshly initialised transformers causal LM (Qwen2 or Llama) sized by the recipe's `tiny` block."""
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    config_class = {"qwen2": Qwen2Config, "llama": LlamaConfig}[tiny.arch]
    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=tiny.hidden_size,
        num_hidden_layers=tiny.num_layers,
        num_attention_heads=tiny.num_heads,
        num_key_value_heads=tiny.num_heads,
        intermediate_size=tiny.intermediate_size,
        max_position_embeddings=tiny.max_position_embeddings,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


# ---------------------------------------------------------------- checkpoints


def _load_pretrained(name_or_dir: str, local_only: bool, dtype: torch.dtype = torch.float32):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if local_only and not (Path(name_or_dir) / "config.json").exists():
        raise ModelError(f"{name_or_dir}: not a Hugging Face model directory (no config.json)")
    if not local_only:
        # Stages never download: a hub id must already be in the local cache.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_dir, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(name_or_dir, local_files_only=True, dtype=dtype)
    except OSError as e:
        if local_only:
            raise ModelError(f"{name_or_dir}: cannot load the model ({e})") from None
        raise ModelError(
            f"{name_or_dir}: not in the local Hugging Face cache; stages run offline. Download it once with "
            f"`huggingface-cli download {name_or_dir}` or point the model at a directory with `path = \"...\"`."
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save_policy(model, tokenizer, directory: str | os.PathLike, state_dict: Mapping[str, torch.Tensor] | None = None) -> None:
    """save_pretrained of model and tokenizer into `directory` (written to a temp folder, then renamed).

    `state_dict`: the weights to write instead of the module's own (the gathered full state of a sharded model).
    """
    import shutil

    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, state_dict=dict(state_dict) if state_dict is not None else None)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
