"""Rollouts for GRPO: G completions per prompt in one batch, and the per-token log-probs of a policy.

Sampling is a plain decode loop over a Hugging Face causal LM with its KV cache (what `generate` does
underneath, without its per-step machinery): each distinct prompt is prefilled once and its cache is
repeated G times, so a group costs one prefill; the cache is preallocated for the whole completion, so a
step writes one position instead of copying the cache (`DynamicCache` concatenates, O(L) per token).
A row stops at EOS or once its text contains a stop string (`</answer>`); the loop ends when every row
has stopped or at max_completion_tokens.

Shapes: P prompts, G completions each, B = P * G rows (a group's rows are contiguous), Lp prompt
tokens (left-padded), T completion tokens (right-padded).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers.cache_utils import DynamicCache, DynamicLayer


@dataclass
class Rollout:
    prompt_ids: Tensor  # (B, Lp) left-padded
    prompt_mask: Tensor  # (B, Lp) 1 on real tokens
    completion_ids: Tensor  # (B, T) right-padded
    completion_mask: Tensor  # (B, T) 1 up to and including the stop token
    truncated: Tensor  # (B,) bool: hit max_completion_tokens without stopping
    texts: list[str]  # (B,) completion text, cut after the stop string
    sample_logprobs: Tensor | None = None  # (B, T) log-probs the rollout engine sampled with (vLLM reports them)

    @property
    def lengths(self) -> Tensor:
        return self.completion_mask.sum(-1)  # (B,)


def encode_prompts(tokenizer, prompts: list[str], max_prompt_tokens: int) -> tuple[Tensor, Tensor]:
    """Token ids of each prompt (keeping the last max_prompt_tokens), left-padded: (P, Lp) ids and mask."""
    encoded = [ids[-max_prompt_tokens:] for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    width = max(len(ids) for ids in encoded)
    pad = pad_id(tokenizer)
    ids = torch.tensor([[pad] * (width - len(x)) + x for x in encoded], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in encoded], dtype=torch.long)
    return ids, mask


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def positions(mask: Tensor) -> Tensor:
    """Position ids that skip left padding: 0 at each row's first real token."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def cache_argument(model) -> str:
    """The forward argument that takes a KV cache: `past_key_values` up to transformers 5.19, `cache` after."""
    forward = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in forward else "past_key_values"


def cache_of(output) -> DynamicCache:
    """The KV cache a forward pass returned, under either transformers name."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def sample_next(logits: Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> Tensor:
    """One token per row from logits (B, V) at this temperature and nucleus. Returns (B,)."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > top_p  # keep the smallest prefix reaching top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class PreallocatedLayer(DynamicLayer):
    """A cache layer that writes new keys/values into a buffer sized for the whole sequence."""

    def __init__(self, keys: Tensor, values: Tensor, capacity: int):
        super().__init__()
        B, H, L, _ = keys.shape
        self._keys = keys.new_empty(B, H, capacity, keys.shape[-1])  # (B, heads, capacity, head_dim)
        self._values = values.new_empty(B, H, capacity, values.shape[-1])
        self._keys[:, :, :L], self._values[:, :, :L] = keys, values
        self.length, self.device, self.is_initialized = L, keys.device, True
        self.keys, self.values = self._keys[:, :, :L], self._values[:, :, :L]

    def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        end = self.length + key_states.shape[-2]
        self._keys[:, :, self.length : end] = key_states
        self._values[:, :, self.length : end] = value_states
        self.length = end
        self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
        return self.keys, self.values


def expand_cache(cache: DynamicCache, repeats: int, capacity: int) -> DynamicCache:
    """The prefill cache of P prompts as a preallocated cache of P * repeats rows (each prompt's rows adjacent)."""
    expanded = DynamicCache()
    expanded.layers = [
        PreallocatedLayer(layer.keys.repeat_interleave(repeats, 0), layer.values.repeat_interleave(repeats, 0), capacity)
        for layer in cache.layers
    ]
    return expanded


_CAN_END: dict[tuple[int, tuple[str, ...]], Tensor] = {}  # (id(tokenizer), stops) -> (V,) bool, built once


class StopStrings:
    """Finds rows whose text now contains a stop string, decoding only rows whose last token could end one."""

    def __init__(self, tokenizer, stops: tuple[str, ...]):
        self.tokenizer, self.stops = tokenizer, tuple(stops)
        key = (id(tokenizer), self.stops)
        if key not in _CAN_END:
            last_chars = {s[-1] for s in self.stops}
            vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
            texts = [tokenizer.convert_tokens_to_string([t]) if t is not None else "" for t in vocab]
            _CAN_END[key] = torch.tensor([any(c in t for c in last_chars) for t in texts], dtype=torch.bool)
        self.can_end = _CAN_END[key]
        self.window = max((len(s) for s in self.stops), default=0) + 2  # tokens: each is at least one character

    def hits(self, tokens: list[Tensor], live: Tensor) -> Tensor:
        """tokens: the (B,) tokens sampled so far; live: (B,) rows not yet stopped. Returns (B,) bool."""
        hit = torch.zeros_like(live)
        if not self.stops:
            return hit
        rows = (live & self.can_end[tokens[-1]]).nonzero().flatten().tolist()
        if rows:
            tail = torch.stack(tokens[-self.window :], dim=1)[rows]  # (R, window)
            for r, text in zip(rows, self.tokenizer.batch_decode(tail)):
                hit[r] = any(s in text for s in self.stops)
        return hit


@torch.no_grad()
def sample_groups(
    model,
    tokenizer,
    prompts: list[str],
    num_generations_per_prompt: int,
    *,
    max_prompt_tokens: int,
    max_completion_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop: tuple[str, ...] = ("</answer>",),
    generator: torch.Generator | None = None,
) -> Rollout:
    """G completions for each prompt, all prompts in one batch with a KV cache."""
    device = next(model.parameters()).device
    eos, pad = tokenizer.eos_token_id, pad_id(tokenizer)
    ids, mask = encode_prompts(tokenizer, prompts, max_prompt_tokens)  # (P, Lp)
    ids, mask = ids.to(device), mask.to(device)
    stops = StopStrings(tokenizer, stop)
    stops.can_end = stops.can_end.to(device)

    # prefill each distinct prompt once, then give every completion of the group its own copy of the cache
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), use_cache=True, logits_to_keep=1)
    G = num_generations_per_prompt
    cache = expand_cache(cache_of(out), G, capacity=ids.shape[1] + max_completion_tokens)
    logits = out.logits[:, -1].repeat_interleave(G, dim=0)  # (B, V)
    attention = mask.repeat_interleave(G, dim=0)  # (B, Lp + t)
    next_position = positions(mask)[:, -1:].repeat_interleave(G, dim=0) + 1  # (B, 1)

    B = logits.shape[0]
    done = torch.zeros(B, dtype=torch.bool, device=device)
    ended_at = torch.full((B,), max_completion_tokens, dtype=torch.long, device=device)  # tokens kept per row
    tokens: list[Tensor] = []
    for t in range(max_completion_tokens):
        token = sample_next(logits, temperature, top_p, generator)  # (B,)
        token = torch.where(done, torch.full_like(token, pad), token)
        tokens.append(token)
        stopped = ~done & ((token == eos) | stops.hits(tokens, ~done))
        ended_at = torch.where(stopped, torch.full_like(ended_at, t + 1), ended_at)
        done |= stopped
        if bool(done.all()) or t == max_completion_tokens - 1:
            break
        attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
        out = model(input_ids=token[:, None], attention_mask=attention, position_ids=next_position, use_cache=True,
                    **{cache_argument(model): cache})
        cache, logits, next_position = cache_of(out), out.logits[:, -1], next_position + 1

    completion_ids = torch.stack(tokens, dim=1)  # (B, T)
    T = completion_ids.shape[1]
    completion_mask = (torch.arange(T, device=device)[None, :] < ended_at[:, None]).long()  # (B, T)
    completion_ids = completion_ids.masked_fill(completion_mask == 0, pad)
    texts = [cut_after(s, stop) for s in tokenizer.batch_decode(completion_ids, skip_special_tokens=True)]
    return Rollout(
        prompt_ids=ids.repeat_interleave(G, dim=0),
        prompt_mask=mask.repeat_interleave(G, dim=0),
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        truncated=~done,
        texts=texts,
    )


def cut_after(text: str, stops: tuple[str, ...]) -> str:
    """The text up to and including the first stop string (a stop token may carry a few characters more)."""
    ends = [text.index(s) + len(s) for s in stops if s in text]
    return text[: min(ends)] if ends else text


def token_logprobs(
    model, prompt_ids: Tensor, prompt_mask: Tensor, completion_ids: Tensor, completion_mask: Tensor,
    temperature: float = 1.0, with_entropy: bool = False, rows_per_prompt: int = 1,
) -> tuple[Tensor, Tensor | None]:
    """log pi(o_t | q, o_<t) of each completion token at the rollout temperature: (B, T), and its entropy (B, T).

    With rows_per_prompt S > 1 (rows i*S .. i*S+S-1 share a prompt: S is 1 or num_generations_per_prompt),
    each prompt runs through the model once and its KV cache is repeated for its S completions: the same values (and gradients) as one pass per row,
    for a fraction of the work when prompts are longer than completions.
    """
    B, T = completion_ids.shape
    S = rows_per_prompt
    prompt_ids, prompt_mask = prompt_ids[::S], prompt_mask[::S]  # (B/S, Lp)
    prompt = model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions(prompt_mask),
                   use_cache=True, logits_to_keep=1)
    first = prompt.logits[:, -1:].repeat_interleave(S, dim=0)  # (B, 1, V): predicts completion token 0
    logits = first
    if T > 1:
        cache = cache_of(prompt)
        cache.batch_repeat_interleave(S)  # differentiable: gradients reach the prompt pass
        mask = torch.cat([prompt_mask.repeat_interleave(S, dim=0), completion_mask[:, :-1]], dim=1)
        start = prompt_mask.sum(-1, keepdim=True).repeat_interleave(S, dim=0)  # (B, 1) first completion position
        rest = model(input_ids=completion_ids[:, :-1], attention_mask=mask,
                     position_ids=start + torch.arange(T - 1, device=start.device), use_cache=True,
                     **{cache_argument(model): cache}).logits
        logits = torch.cat([first, rest], dim=1)  # (B, T, V): the logits that predicted each completion token
    logp_all = torch.log_softmax(logits.float() / temperature, dim=-1)  # (B, T, V)
    logp = logp_all.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)  # (B, T)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = -(logp_all.exp() * logp_all).sum(-1)  # (B, T)
    return logp, entropy
