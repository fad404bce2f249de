"""Rollouts for GRPO: G completions per prompt in one batch, and the per-token log-probs of a policy.

Sampling is a plain decode loop over a Hugging Face causal LM with its KV cache (what `generate` does
underneath, without its per-step machinery): each distinct prompt is prefilled once and its cache is
repeated G times, so a group costs one prefill; the cache is preallocated for the whole completion, so a
step writes one position instead of copying the cache (`DynamicCache` concatenates, O(L) per token).
A row stops at any EOS id (the tokenizer's and every id of the generation config's `eos_token_id`, e.g.
Qwen2.5's `<|im_end|>`) or once its text contains a stop string (`</answer>`); the loop ends when every row
has stopped or at max_completion_tokens. Ids past the tokenizer (a model vocabulary padded to a multiple of
64 or 128) are never sampled and never scored: their logits are cut off in both passes.

Scoring (`token_logprobs`) returns the log-prob of each sampled token only: the decoder's last hidden states
go through the LM head chunk by chunk (logsumexp, gather), each chunk recomputed in backward, so neither the
fp32 [B, T, V] log-softmax nor the [B, T, V] logits are ever held for backward.

Both speed-ups are exact (the same tokens and log-probs as without them) and can be switched off, for
ablations, with `Speedups` (benchmarks/grpo_vs_trl.py --ablate).

Shapes: P prompts, G completions each, B = P * G rows (a group's rows are contiguous), Lp prompt
tokens (left-padded), T completion tokens (right-padded).
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint
from transformers.cache_utils import DynamicCache, DynamicLayer

from backends.generation import eos_token_ids

SCORING_CHUNK_BYTES = 64 << 20  # fp32 logits of one scoring chunk: tokens per chunk = this / (4 * vocabulary)


@dataclass(frozen=True)
class Speedups:
    """The rollout's two speed-ups, on by default; switching one off gives the same tokens and log-probs, slower."""

    share_prompt_prefix: bool = True  # prefill each distinct prompt once and repeat its KV cache G times (sampling
    #                                   and the log-prob passes); off: every row prefills its own copy of the prompt
    preallocate_cache: bool = True  # decode into a KV buffer sized for the whole sequence; off: transformers'
    #                                 DynamicCache, which concatenates (copies) the cache at every token


@dataclass
class Rollout:
    prompt_ids: Tensor  # (B, Lp) left-padded
    prompt_mask: Tensor  # (B, Lp) 1 on real tokens
    completion_ids: Tensor  # (B, T) right-padded
    completion_mask: Tensor  # (B, T) 1 up to and including the stop token
    truncated: Tensor  # (B,) bool: hit max_completion_tokens without stopping
    texts: list[str]  # (B,) completion text, cut after the stop string
    sample_logprobs: Tensor | None = None  # (B, T) fp32 log-probs the sampler drew each token with (at the temperature, before
    #                                        top_p; vLLM reports its own), 0 on padding
    vocab_size: int | None = None  # ids the sampler could emit (the tokenizer's, not the padded head's); scoring cuts there too

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


def real_vocab_size(model, tokenizer) -> int:
    """Ids a completion may hold: the tokenizer's, or fewer when the model's embedding table is smaller."""
    return min(len(tokenizer), int(model.get_output_embeddings().weight.shape[0]))


def sample_next(logits: Tensor, temperature: float, top_p: float, generator: torch.Generator | None,
                vocab_size: int | None = None) -> Tensor:
    """One token per row from logits (B, V) at this temperature and nucleus. Returns (B,)."""
    return sample_with_logprobs(logits, temperature, top_p, generator, vocab_size)[0]


def sample_with_logprobs(logits: Tensor, temperature: float, top_p: float, generator: torch.Generator | None,
                         vocab_size: int | None = None) -> tuple[Tensor, Tensor]:
    """(token, its log-prob): one token per row from logits (B, V) at this temperature and nucleus, ids at or
    past `vocab_size` excluded. The log-prob is under the tempered distribution before the nucleus cut, the
    one the training pass computes. Returns (B,) ids and (B,) fp32 log-probs."""
    logp_all = torch.log_softmax(logits[:, :vocab_size].float() / temperature, dim=-1)  # (B, V')
    probs = logp_all.exp()
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > top_p  # keep the smallest prefix reaching top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return token, logp_all.gather(-1, token[:, None]).squeeze(-1)


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


def expand_cache(cache: DynamicCache, repeats: int, capacity: int, preallocate: bool = True) -> DynamicCache:
    """The prefill cache of P prompts as a preallocated cache of P * repeats rows (each prompt's rows adjacent);
    with preallocate=False, the same rows in the prefill's own DynamicCache."""
    if not preallocate:
        if repeats > 1:
            cache.batch_repeat_interleave(repeats)
        return cache
    expanded = DynamicCache()
    expanded.layers = [
        PreallocatedLayer(layer.keys.repeat_interleave(repeats, 0), layer.values.repeat_interleave(repeats, 0), capacity)
        for layer in cache.layers
    ]
    return expanded


_CAN_END: dict[tuple[int, tuple[str, ...]], Tensor] = {}  # (id(tokenizer), stops) -> (V,) bool, built once


class StopStrings:
    """Finds rows whose text now contains a stop string, decoding only rows whose last token could end one."""

    def __init__(self, tokenizer, stops: tuple[str, ...], vocab_size: int | None = None):
        """`vocab_size`: the model's (maybe padded) vocabulary; ids past the tokenizer's can end nothing."""
        self.tokenizer, self.stops = tokenizer, tuple(stops)
        key = (id(tokenizer), self.stops)
        if key not in _CAN_END:
            last_chars = {s[-1] for s in self.stops}
            vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
            texts = [tokenizer.convert_tokens_to_string([t]) if t is not None else "" for t in vocab]
            _CAN_END[key] = torch.tensor([any(c in t for c in last_chars) for t in texts], dtype=torch.bool)
        can_end = _CAN_END[key]
        if vocab_size is not None and vocab_size > len(can_end):
            can_end = torch.cat([can_end, can_end.new_zeros(vocab_size - len(can_end))])
        self.can_end = can_end
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
    speedups: Speedups = Speedups(),
) -> Rollout:
    """G completions for each prompt, all prompts in one batch with a KV cache."""
    device = next(model.parameters()).device
    eos, pad = torch.tensor(eos_token_ids(model, tokenizer), device=device), pad_id(tokenizer)
    vocab = real_vocab_size(model, tokenizer)
    ids, mask = encode_prompts(tokenizer, prompts, max_prompt_tokens)  # (P, Lp)
    ids, mask = ids.to(device), mask.to(device)
    stops = StopStrings(tokenizer, stop, vocab_size=int(model.get_output_embeddings().weight.shape[0]))
    stops.can_end = stops.can_end.to(device)

    G = num_generations_per_prompt
    # prefill each distinct prompt once, then give every completion of the group its own copy of the cache
    # (without prefix sharing: prefill all B rows, G copies of each prompt)
    if speedups.share_prompt_prefix:
        repeats, prefill_ids, prefill_mask = G, ids, mask  # (P, Lp)
    else:
        repeats, prefill_ids, prefill_mask = 1, ids.repeat_interleave(G, 0), mask.repeat_interleave(G, 0)  # (B, Lp)
    out = model(input_ids=prefill_ids, attention_mask=prefill_mask, position_ids=positions(prefill_mask), use_cache=True,
                logits_to_keep=1)
    cache = expand_cache(cache_of(out), repeats, capacity=ids.shape[1] + max_completion_tokens,
                         preallocate=speedups.preallocate_cache)
    logits = out.logits[:, -1].repeat_interleave(repeats, dim=0)  # (B, V)
    attention = mask.repeat_interleave(G, dim=0)  # (B, Lp + t)
    next_position = positions(mask)[:, -1:].repeat_interleave(G, dim=0) + 1  # (B, 1)

    B = logits.shape[0]
    done = torch.zeros(B, dtype=torch.bool, device=device)
    ended_at = torch.full((B,), max_completion_tokens, dtype=torch.long, device=device)  # tokens kept per row
    tokens: list[Tensor] = []
    logprobs: list[Tensor] = []
    for t in range(max_completion_tokens):
        token, logprob = sample_with_logprobs(logits, temperature, top_p, generator, vocab)  # (B,), (B,)
        token = torch.where(done, torch.full_like(token, pad), token)
        tokens.append(token)
        logprobs.append(logprob)
        stopped = ~done & (torch.isin(token, eos) | stops.hits(tokens, ~done))
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
    sampled_logprobs = torch.stack(logprobs, dim=1).masked_fill(completion_mask == 0, 0.0)  # (B, T)
    texts = [cut_after(s, stop) for s in tokenizer.batch_decode(completion_ids, skip_special_tokens=True)]
    return Rollout(
        prompt_ids=ids.repeat_interleave(G, dim=0),
        prompt_mask=mask.repeat_interleave(G, dim=0),
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        truncated=~done,
        texts=texts,
        sample_logprobs=sampled_logprobs,
        vocab_size=vocab,
    )


def cut_after(text: str, stops: tuple[str, ...]) -> str:
    """The text up to and including the first stop string (a stop token may carry a few characters more)."""
    ends = [text.index(s) + len(s) for s in stops if s in text]
    return text[: min(ends)] if ends else text


def token_logprobs(
    model, prompt_ids: Tensor, prompt_mask: Tensor, completion_ids: Tensor, completion_mask: Tensor,
    temperature: float = 1.0, with_entropy: bool = False, rows_per_prompt: int = 1, vocab_size: int | None = None,
) -> tuple[Tensor, Tensor | None]:
    """log pi(o_t | q, o_<t) of each completion token at the rollout temperature: (B, T), and its entropy (B, T)
    without grad (None unless asked). 0 where completion_mask is 0.

    `model` is the Hugging Face causal LM or Fabric's wrapper of it (the forward then goes through DDP or
    FSDP, so gradients synchronise). With rows_per_prompt S > 1 (rows i*S .. i*S+S-1 share a prompt: S is 1 or
    num_generations_per_prompt), each prompt runs through the model once and its KV cache is repeated for its S completions: the same values and
    gradients as one pass per row. A model that recomputes activations (gradient checkpointing, train mode)
    keeps no cache, so it scores prompt and completion in one pass per row whatever S is.
    `vocab_size`: ids at or past it are excluded from the softmax, as in sampling (None: the whole head).
    """
    hidden = completion_hidden_states(model, prompt_ids, prompt_mask, completion_ids, completion_mask, rows_per_prompt)
    head = _plain(model).get_output_embeddings()
    return selective_logprobs(hidden, head, completion_ids, completion_mask, temperature, vocab_size, with_entropy)


def completion_hidden_states(model, prompt_ids: Tensor, prompt_mask: Tensor, completion_ids: Tensor,
                             completion_mask: Tensor, rows_per_prompt: int = 1) -> Tensor:
    """The decoder's last hidden state at the position that predicts each completion token: (B, T, H)."""
    B, T = completion_ids.shape
    no_logits = torch.empty(0, dtype=torch.long, device=completion_ids.device)  # the LM head runs on no position
    with _last_hidden_state(model) as captured:
        if rows_per_prompt > 1 and not recomputes_activations(model):
            prompt_ids, prompt_mask = prompt_ids[::rows_per_prompt], prompt_mask[::rows_per_prompt]  # (B/G, Lp)
            prompt = model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions(prompt_mask),
                           use_cache=True, logits_to_keep=no_logits)
            hidden = captured.pop()[:, -1:].repeat_interleave(rows_per_prompt, dim=0)  # (B, 1, H): predicts token 0
            if T > 1:
                cache = cache_of(prompt)
                cache.batch_repeat_interleave(rows_per_prompt)  # differentiable: gradients reach the prompt pass
                mask = torch.cat([prompt_mask.repeat_interleave(rows_per_prompt, dim=0), completion_mask[:, :-1]], dim=1)
                start = prompt_mask.sum(-1, keepdim=True).repeat_interleave(rows_per_prompt, dim=0)  # (B, 1)
                model(input_ids=completion_ids[:, :-1], attention_mask=mask, use_cache=True, **{cache_argument(_plain(model)): cache},
                      position_ids=start + torch.arange(T - 1, device=start.device), logits_to_keep=no_logits)
                hidden = torch.cat([hidden, captured.pop()], dim=1)  # (B, T, H)
            return hidden
        Lp = prompt_ids.shape[1]
        ids = torch.cat([prompt_ids, completion_ids[:, :-1]], dim=1)  # (B, Lp + T - 1)
        mask = torch.cat([prompt_mask, completion_mask[:, :-1]], dim=1)
        model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), use_cache=False, logits_to_keep=no_logits)
        return captured.pop()[:, Lp - 1 :]  # (B, T, H)


def selective_logprobs(hidden: Tensor, head: torch.nn.Module, targets: Tensor, mask: Tensor, temperature: float = 1.0,
                       vocab_size: int | None = None, with_entropy: bool = False) -> tuple[Tensor, Tensor | None]:
    """log softmax(head(h) / temperature)[target] for each masked position, chunk by chunk: (B, T), entropy (B, T).

    Only positions with mask 1 are scored. A chunk's fp32 logits live only inside it: its log-prob is
    logit[target] - logsumexp(logits), and under grad the chunk is recomputed in backward (activation
    checkpointing), so what backward keeps is the hidden states and one number per token.
    """
    B, T = targets.shape
    keep = mask.bool()
    h, t = hidden[keep], targets[keep]  # (N, H), (N,)
    vocab = vocab_size or head.weight.shape[0]
    chunk = max(1, SCORING_CHUNK_BYTES // (4 * vocab))
    track = torch.is_grad_enabled() and (h.requires_grad or any(p.requires_grad for p in head.parameters()))
    logps, entropies = [], []
    for i in range(0, h.shape[0], chunk):
        args = (h[i : i + chunk], t[i : i + chunk], head, temperature, vocab, with_entropy)
        logp, entropy = checkpoint(_chunk_logprobs, *args, use_reentrant=False) if track else _chunk_logprobs(*args)
        logps.append(logp)
        entropies.append(entropy)
    logp = hidden.new_zeros((B, T), dtype=torch.float32)
    logp = logp.masked_scatter(keep, torch.cat(logps)) if logps else logp
    if not with_entropy:
        return logp, None
    entropy = torch.zeros((B, T), dtype=torch.float32, device=hidden.device)
    if entropies:
        entropy[keep] = torch.cat(entropies)
    return logp, entropy


def _chunk_logprobs(h: Tensor, t: Tensor, head, temperature: float, vocab: int, with_entropy: bool):
    z = head(h)[:, :vocab].float() / temperature  # (n, V) fp32, freed when the chunk ends
    lse = torch.logsumexp(z, dim=-1)  # (n,)
    logp = z.gather(-1, t[:, None]).squeeze(-1) - lse
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = lse - (torch.softmax(z, dim=-1) * z).sum(-1)
    return logp, entropy


def recomputes_activations(model) -> bool:
    """Gradient checkpointing is on and active (train mode): such a model keeps no KV cache."""
    plain = _plain(model)
    return bool(getattr(plain, "is_gradient_checkpointing", False)) and plain.training


def _plain(model):
    from backends.trainer.fabric import unwrap

    return unwrap(model)


@contextmanager
def _last_hidden_state(model):
    """Collects the decoder's last hidden state (after the final norm) of each forward inside the block."""
    captured: list[Tensor] = []
    decoder = _plain(model).get_decoder()
    handle = decoder.register_forward_hook(lambda module, args, output: captured.append(output.last_hidden_state))
    try:
        yield captured
    finally:
        handle.remove()
