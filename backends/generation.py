"""Batched sampling: left-padded prompts through Hugging Face `generate` with a static KV cache.

Shared by eval and GRPO rollouts. `sample(...)` returns the completion token ids (cut after the first
stop token), their texts, and whether each completion ran into the length limit without stopping.
A stop string that is one token of the vocabulary (`</answer>` in the tiny tokenizer) is passed to
`generate` as an extra EOS id, which costs nothing per step; longer stop strings use `stop_strings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

DEFAULT_STOP = ("</answer>",)


def render_prompt(template: str | None, prompt: str, tokenizer=None) -> str:
    """The text the model sees: the template with {prompt} filled, else the chat template, else the prompt."""
    if template:
        return template.replace("{prompt}", prompt)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    return prompt


@dataclass
class Samples:
    prompt_ids: torch.Tensor  # (B, P) left-padded prompt tokens, B = len(prompts) * num_samples
    prompt_mask: torch.Tensor  # (B, P) 1 on real prompt tokens
    completion_ids: torch.Tensor  # (B, C) right-padded with pad_token_id, stop token included
    completion_mask: torch.Tensor  # (B, C) 1 on completion tokens (up to and including the stop token)
    texts: list[str]  # decoded completions (special tokens skipped, tags kept)
    truncated: list[bool]  # hit max_new_tokens without a stop token or EOS

    @property
    def completion_lengths(self) -> list[int]:
        return self.completion_mask.sum(dim=1).tolist()


def stop_token_ids(tokenizer, stop: Sequence[str]) -> tuple[list[int], list[str]]:
    """Split stop strings into single-token ids (cheap) and multi-token strings (need `stop_strings`)."""
    ids, strings = [], []
    for s in stop:
        tok = tokenizer.convert_tokens_to_ids(s) if s in tokenizer.get_vocab() else None
        if tok is not None and tok != tokenizer.unk_token_id:
            ids.append(tok)
        else:
            strings.append(s)
    return ids, strings


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends a completion: the tokenizer's EOS and each of the generation config's (an int or a
    list: Qwen2.5's `<|im_end|>` and `<|endoftext|>`, Llama 3's `<|eot_id|>` and `<|end_of_text|>`)."""
    found = [tokenizer.eos_token_id]
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    found += list(config_eos) if isinstance(config_eos, (list, tuple)) else [config_eos]
    return sorted({int(i) for i in found if i is not None})


def padded_vocab_ids(model, tokenizer) -> list[int]:
    """Ids of the model's output head past the tokenizer's vocabulary (padding to a multiple of 64/128): never sampled."""
    head = model.get_output_embeddings()
    size = int(head.weight.shape[0]) if head is not None else len(tokenizer)
    return list(range(len(tokenizer), size))


@torch.no_grad()
def sample(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    num_samples: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop: Sequence[str] = DEFAULT_STOP,
    max_prompt_tokens: int | None = None,
    generator_seed: int | None = None,
) -> Samples:
    """`num_samples` completions of every prompt (row i*num_samples + j is sample j of prompt i).

    temperature 0 means greedy. Prompts longer than `max_prompt_tokens` keep their last tokens.
    """
    device = next(model.parameters()).device
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False, padding_side="left")
    prompt_ids, prompt_mask = enc["input_ids"], enc["attention_mask"]
    if max_prompt_tokens is not None and prompt_ids.shape[1] > max_prompt_tokens:
        prompt_ids, prompt_mask = prompt_ids[:, -max_prompt_tokens:], prompt_mask[:, -max_prompt_tokens:]
    if num_samples > 1:
        prompt_ids = prompt_ids.repeat_interleave(num_samples, dim=0)
        prompt_mask = prompt_mask.repeat_interleave(num_samples, dim=0)
    prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)

    stop_ids, stop_strings = stop_token_ids(tokenizer, stop)
    eos_ids = [*eos_token_ids(model, tokenizer), *stop_ids]
    greedy = temperature <= 0
    kwargs = dict(
        max_new_tokens=max_new_tokens,
        do_sample=not greedy,
        eos_token_id=eos_ids,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )
    if padded := padded_vocab_ids(model, tokenizer):
        kwargs["suppress_tokens"] = padded
    if not greedy:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if stop_strings:
        kwargs.update(stop_strings=stop_strings, tokenizer=tokenizer)
    if generator_seed is not None:
        torch.manual_seed(generator_seed)

    was_training = model.training
    model.eval()
    try:
        # a preallocated cache: the default one concatenates every layer's keys and values at each step
        out = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, cache_implementation="static", **kwargs)
    except (ValueError, NotImplementedError, TypeError):  # architectures without a static cache
        out = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, **kwargs)
    model.train(was_training)

    completion_ids, completion_mask, truncated = _cut_at_stop(out[:, prompt_ids.shape[1] :], set(eos_ids), tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(completion_ids * completion_mask + tokenizer.pad_token_id * (1 - completion_mask), skip_special_tokens=True)
    if stop_strings:  # generate stops the batch row after the string's last token; cut the text there too
        texts = [_cut_text(t, stop_strings) for t in texts]
    truncated = [t and not any(s in text for s in stop_strings) for t, text in zip(truncated, texts)]
    return Samples(prompt_ids, prompt_mask, completion_ids, completion_mask, texts, truncated)


def _cut_at_stop(ids: torch.Tensor, stop_ids: set[int], pad_id: int):
    """Keep each row up to and including its first stop id. A row without one ends at its first pad
    (`generate` pads rows that a stop string finished) or runs to the limit: only those are truncated."""
    is_stop = torch.zeros_like(ids, dtype=torch.bool)
    for s in stop_ids:
        is_stop |= ids == s
    is_pad = ids == pad_id
    has_stop, has_pad = is_stop.any(dim=1), is_pad.any(dim=1)
    full = torch.full_like(has_stop, ids.shape[1], dtype=torch.long)
    keep = torch.where(has_stop, is_stop.long().argmax(dim=1) + 1, torch.where(has_pad, is_pad.long().argmax(dim=1), full))
    mask = (torch.arange(ids.shape[1], device=ids.device).unsqueeze(0) < keep.unsqueeze(1)).long()
    ids = torch.where(mask.bool(), ids, torch.full_like(ids, pad_id))
    return ids, mask, (~has_stop & ~has_pad).tolist()


def _cut_text(text: str, stop_strings: Sequence[str]) -> str:
    ends = [text.find(s) + len(s) for s in stop_strings if s in text]
    return text[: min(ends)] if ends else text
