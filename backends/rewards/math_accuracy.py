"""`math_accuracy`: 1.0 when the extracted answer is mathematically equivalent to the row's gold answer."""

from __future__ import annotations

from backends.rewards.equivalence import equivalent
from backends.rewards.extract import extract_answer, gold_answer
from backends.rewards.registry import Param, register


@register(
    "math_accuracy",
    needs=("answer",),
    params={
        "extract": Param(
            "answer_tag",
            str,
            "where the final answer is: inside the answer tag, the last \\boxed{}, or the last number",
            choices=("answer_tag", "boxed", "last_number"),
        ),
        "answer_tag": Param("answer", str, "name of the answer tag when extract = answer_tag"),
    },
    doc="1.0 when the completion's final answer equals the row's `answer` (up to notation), else 0.0.",
)
def math_accuracy(completions, rows, extract="answer_tag", answer_tag="answer"):
    out = []
    for completion, row in zip(completions, rows):
        pred = extract_answer(completion, extract, answer_tag)
        out.append(1.0 if pred is not None and equivalent(gold_answer(row["answer"]), pred) else 0.0)
    return out
