"""`format`: does the completion follow the <think>...</think> <answer>...</answer> layout."""

from __future__ import annotations

from backends.rewards.registry import Param, register


def _tags(think_tag: str, answer_tag: str) -> list[str]:
    return [f"<{think_tag}>", f"</{think_tag}>", f"<{answer_tag}>", f"</{answer_tag}>"]


def format_score(
    completion: str, think_tag: str = "think", answer_tag: str = "answer", mode: str = "strict", prompt_opens_think: bool = False
) -> float:
    """One completion's format reward in [0, 1]. Linear in the completion: str.find/count scans, no regex."""
    text = (f"<{think_tag}>" + completion) if prompt_opens_think else completion
    tags = _tags(think_tag, answer_tag)
    counts = [text.count(t) for t in tags]
    if mode == "count":  # TRL-style: a quarter per tag present exactly once
        return sum(0.25 for c in counts if c == 1)
    if mode == "strict":  # only whitespace around and between one think block and one answer block
        if counts != [1, 1, 1, 1]:
            return 0.0
        t_open, t_close, a_open, a_close = (text.find(t) for t in tags)
        ordered = t_open < t_close and t_close < a_open < a_close and t_open + len(tags[0]) <= t_close \
            and a_open + len(tags[2]) <= a_close
        blank = (text[:t_open], text[t_close + len(tags[1]):a_open], text[a_close + len(tags[3]):])
        return 1.0 if ordered and all(not part.strip() for part in blank) else 0.0
    return 1.0 if _think_then_answer(text, *tags) else 0.0  # lenient


def _think_then_answer(text: str, t_open: str, t_close: str, a_open: str, a_close: str) -> bool:
    """Somewhere: <think>...</think>, only whitespace, <answer>...</answer>. Each character is looked at a bounded
    number of times: after the first opening tag, every closing think tag is tried once, and the whitespace after
    it runs only to the next non-space character."""
    first = text.find(t_open)
    last_a_close = text.rfind(a_close)
    if first < 0 or last_a_close < 0:
        return False
    c = text.find(t_close, first + len(t_open))
    while 0 <= c < last_a_close:
        k = c + len(t_close)
        while k < len(text) and text[k].isspace():
            k += 1
        if text.startswith(a_open, k) and k + len(a_open) <= last_a_close:
            return True
        c = text.find(t_close, max(k, c + 1))
    return False


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
