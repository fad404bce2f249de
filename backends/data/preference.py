"""`preference_pairs`: synthetic (prompt, chosen, rejected) rows for training a tiny preference model.

The chosen response is the chat generator's reference; the rejected one is a worse answer of a kind a
policy really produces: a loop of repeated words, an answer to another question, a cut-off answer, or
an empty reply. A reward model trained on these prefers on-topic, complete, non-repetitive answers.
"""

from __future__ import annotations

import random
from typing import Any

from backends.data.generators import register
from backends.data.synthetic import chat


def _worse(rng: random.Random, response: str, other: str) -> str:
    words = response.split() or ["ok"]
    kind = rng.choice(("repeat", "off_topic", "cut", "empty"))
    if kind == "repeat":
        return " ".join([rng.choice(words)] * rng.randint(6, 14))
    if kind == "off_topic":
        return other
    if kind == "cut" and len(words) > 2:
        return " ".join(words[: rng.randint(1, max(1, len(words) // 3))])
    return rng.choice(("", "I don't know.", "..."))


@register("preference_pairs", provides=("prompt", "chosen", "rejected"))
def preference_pairs(size: int, seed: int) -> list[dict[str, Any]]:
    """Chat prompts with a preferred (reference) and a dispreferred response."""
    rng = random.Random(f"preference:{seed}")
    rows = chat(size, seed=seed)
    others = chat(size, seed=seed + 1_000_003)
    out = []
    for row, other in zip(rows, others):
        rejected = _worse(rng, row["response"], other["response"])
        if rejected.strip() == row["response"].strip():
            rejected = ""
        out.append({"prompt": row["prompt"], "chosen": row["response"], "rejected": rejected})
    return out
