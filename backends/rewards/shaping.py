"""Shaping rewards: length (cosine or linear), DAPO's soft overlong punishment, n-gram repetition penalty.

Lengths are tokens: `registry.score` puts each completion's token count in `row["_completion_tokens"]`
(a direct call without it falls back to whitespace-separated words).
"""

from __future__ import annotations

import math

from backends.rewards.registry import COMPLETION_TOKENS, Check, Param, register


def completion_length(completion: str, row) -> int:
    n = row.get(COMPLETION_TOKENS) if hasattr(row, "get") else None
    return int(n) if n is not None else len(completion.split())


def length_value(n: int, max_tokens: int, mode: str, start_value: float, end_value: float) -> float:
    """start_value at length 0, falling to end_value at max_tokens (and beyond)."""
    t = min(max(n, 0), max_tokens) / max_tokens
    if mode == "cosine":  # Yeo et al. 2025, cosine length scaling
        return end_value + 0.5 * (start_value - end_value) * (1 + math.cos(math.pi * t))
    return start_value + (end_value - start_value) * t


@register(
    "length",
    params={
        "mode": Param("cosine", str, "shape of the schedule from length 0 to max_tokens", choices=("cosine", "linear")),
        "max_tokens": Param(1024, int, "length at which the reward reaches end_value", min=1,
                            max=1 << 24),
        "start_value": Param(1.0, (int, float), "reward of an empty completion (-1000 to 1000)", min=-1000, max=1000),
        "end_value": Param(0.0, (int, float), "reward at max_tokens and beyond (-1000 to 1000)", min=-1000, max=1000),
    },
    doc="Length shaping: start_value at length 0 falling to end_value at max_tokens, cosine or linear.",
)
def length(completions, rows, *, mode, max_tokens, start_value, end_value):
    return [length_value(completion_length(c, r), int(max_tokens), mode, float(start_value), float(end_value))
            for c, r in zip(completions, rows)]


def overlong_value(n: int, max_tokens: int, buffer: int) -> float:
    """DAPO (Yu et al. 2025), eq. 13: 0 up to max_tokens - buffer, then linearly down to -1 at max_tokens, -1 beyond."""
    safe = max_tokens - buffer
    if n <= safe:
        return 0.0
    if n <= max_tokens:
        return (safe - n) / buffer
    return -1.0


@register(
    "overlong",
    params={
        "max_tokens": Param(4096, int, "L_max: the generation limit", min=1, max=1 << 24),
        "buffer": Param(512, int, "L_cache: the punishment ramps from 0 to -1 over the last `buffer` tokens", min=1,
                        max=1 << 24),
    },
    checks=[Check(("buffer", "max_tokens"), lambda buffer, max_tokens: buffer <= max_tokens, "buffer must be at most max_tokens")],
    doc="DAPO's soft overlong punishment: 0, then a linear ramp to -1 in the last `buffer` tokens, -1 beyond max_tokens.",
)
def overlong(completions, rows, *, max_tokens, buffer):
    if not 0 < int(buffer) <= int(max_tokens):  # `r1dsl check` refuses these; a direct caller gets told too
        raise ValueError("overlong: need 0 < buffer <= max_tokens")
    return [overlong_value(completion_length(c, r), int(max_tokens), int(buffer)) for c, r in zip(completions, rows)]


def repetition_value(text: str, ngram_size: int, max_penalty: float) -> float:
    words = text.lower().split()
    if len(words) < ngram_size:
        return 0.0
    grams = [tuple(words[i : i + ngram_size]) for i in range(len(words) - ngram_size + 1)]
    return -max_penalty * (1 - len(set(grams)) / len(grams))


@register(
    "repetition",
    params={
        "ngram_size": Param(3, int, "n of the word n-grams compared", min=1, max=1024),
        "max_penalty": Param(1.0, (int, float), "penalty of a completion that is one n-gram repeated (at most 1000)",
                             min=0, max=1000),
    },
    doc="N-gram repetition penalty: -max_penalty * (1 - distinct n-grams / n-grams), 0 for no repetition.",
)
def repetition(completions, rows, *, ngram_size, max_penalty):
    return [repetition_value(c, int(ngram_size), float(max_penalty)) for c in completions]
