"""`arithmetic_cot`: arithmetic questions with a worked, tagged solution (prompt, answer, response).

The shape of long-CoT cold-start data (a question, its reasoning and answer in the R1 layout, the
reference answer), for SFT stages and for smoke runs of recipes whose cold-start file is not at hand.
"""

from __future__ import annotations

import random
from typing import Any

from backends.data.generators import register
from backends.data.synthetic import ARITHMETIC_CHECKS, PHRASINGS, arithmetic_params, random_expression, render_expression, solve_steps, tagged_answer


@register("arithmetic_cot", provides=("prompt", "answer", "response"), params=arithmetic_params(20, 2, "+-*"),
          checks=ARITHMETIC_CHECKS)
def arithmetic_cot(size: int, seed: int, *, max_operand: int, num_ops: int, ops: str) -> list[dict[str, Any]]:
    """Arithmetic rows whose response is `<think> steps </think> <answer> value </answer>`."""
    rng = random.Random(f"arithmetic_cot:{seed}")
    rows = []
    for _ in range(size):
        expr = random_expression(rng, max_operand, num_ops, ops)
        steps, value = solve_steps(expr)
        prompt = rng.choice(PHRASINGS).format(e=render_expression(expr))
        rows.append({"prompt": prompt, "answer": str(value), "response": tagged_answer(steps, value)})
    return rows
