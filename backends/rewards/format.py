"""`format`: does the completion follow the <think>...</think> <answer>...</answer> layout."""

from __future__ import annotations

import re

from backends.rewards.registry import Param, register


def _tags(think_tag: str, answer_tag: str) -> list[str]:
    return [f"<{think_tag}>", f"</{think_tag}>", f"<{answer_tag}>", f"</{answer_tag}>"]


def format_score(
    completion: str, think_tag: str = "think", answer_tag: str = "answer", mode: str = "strict", prompt_opens_think: bool = False
) -> float:
    """One completion's format reward in [0, 1]."""
    text = (f"<{think_tag}>" + completion) if prompt_opens_think else completion
    tags = _tags(think_tag, answer_tag)
    counts = [text.count(t) for t in tags]
    if mode == "count":  # TRL-style: a quarter per tag present exactly once
        return sum(0.25 for c in counts if c == 1)
    t_open, t_close, a_open, a_close = (re.escape(t) for t in tags)
    body = f"{t_open}(.*?){t_close}\\s*{a_open}(.*?){a_close}"
    if mode == "strict":
        if counts != [1, 1, 1, 1]:
            return 0.0
        return 1.0 if re.fullmatch(f"\\s*{body}\\s*", text, flags=re.DOTALL) else 0.0
    return 1.0 if re.search(body, text, flags=re.DOTALL) else 0.0  # lenient


@register(
    "format",
    params={
        "think_tag": Param("think", str, "name of the reasoning tag: <think>...</think>"),
        "answer_tag": Param("answer", str, "name of the answer tag: <answer>...</answer>"),
        "mode": Param(
            "strict",
            str,
            "strict: the whole completion is one think block then one answer block (each tag exactly once); "
            "lenient: a think block followed by an answer block appears somewhere; "
            "count: 0.25 per tag that appears exactly once",
            choices=("strict", "lenient", "count"),
        ),
        "prompt_opens_think": Param(
            False, bool, "the prompt template already ends with the opening think tag, so the completion starts inside it"
        ),
    },
    doc="1.0 when the completion follows the think/answer layout (see `mode`), else 0.0 (or partial credit in count mode).",
)
def format_reward(completions, rows, *, think_tag, answer_tag, mode, prompt_opens_think):
    return [format_score(c, think_tag, answer_tag, mode, prompt_opens_think) for c in completions]
