"""`math_accuracy`: 1.0 when the extracted answer is mathematically equivalent to the row's gold answer.

Model text is never evaluated: `extract` scans it in linear time, `mathparse` tokenizes and parses it into
bounded trees, `equivalence` compares them (sympy, when needed, gets trees in a worker process). Each
completion's verification ends within `timeout_s`; what is equivalent is documented in docs/rewards.md.
"""

from __future__ import annotations

from backends.rewards.extract import MAX_ANSWER_CHARS, extract_answer, gold_answer
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
        "timeout_s": Param(1.0, (int, float), "wall-clock bound of one answer's verification, sympy included (at most an "
                           "hour)", min_exclusive=0, max=3600),
        "max_answer_chars": Param(MAX_ANSWER_CHARS, int, "longer extracted answers score 0 without being parsed",
                                  min=1, max=100_000),
        "use_sympy": Param(True, bool, "ask sympy (trees, in a worker process) when the fast path is not exact"),
    },
    doc="1.0 when the completion's final answer equals the row's `answer` (up to notation), else 0.0.",
)
def math_accuracy(
    completions, rows, extract="answer_tag", answer_tag="answer", timeout_s=1.0, max_answer_chars=MAX_ANSWER_CHARS,
    use_sympy=True,
):
    from backends.rewards.equivalence import equivalent  # mpmath: imported when the rule first runs

    if use_sympy:
        from backends.rewards.sympy_pool import pool

        pool().warm()  # starts importing sympy in the background; the fast path does not wait for it
    out = []
    for completion, row in zip(completions, rows):
        pred = extract_answer(completion, extract, answer_tag)
        ok = pred is not None and equivalent(gold_answer(row["answer"]), pred.strip(), timeout_s, max_answer_chars, use_sympy)
        out.append(1.0 if ok else 0.0)
    return out
