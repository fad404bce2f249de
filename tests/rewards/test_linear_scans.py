"""Every scan of model text in the trainer is linear or bounded (issue 19): hostile completions of a few hundred
KB are handled in well under a second, and the linear scanners agree with the regular expressions they replace."""

import random
import re
import time

import pytest

from backends.rewards import REWARDS
from backends.rewards.code_accuracy import extract_code, fenced_blocks
from backends.rewards.extract import extract_answer, gold_answer, last_boxed, last_number
from backends.rewards.format import format_score
from backends.rewards.language import language_consistency

N = 200_000
HOSTILE = {
    "fence-spaces": "```" + " " * N,
    "fence-tabs-spaces": "```" + " \t" * (N // 2) + "x",
    "fence-python-spaces": "```python" + " " * N,
    "many-fences": "```\n" * (N // 4),
    "many-backticks": "`" * N,
    "fence-no-close": "```python\n" + "x = 1\n" * (N // 6),
    "unclosed-think": "<think>" * (N // 7),
    "think-close-no-answer": "<think></think>" * (N // 15),
    "close-then-spaces": ("</think>" + " " * 50) * (N // 58),
    "open-close-answer-no-close": "<think>a</think> <answer>" * (N // 25),
    "answer-tags": "<answer>" * (N // 8),
    "boxes": "\\boxed{" * (N // 7),
    "box-deep": "\\boxed{" + "{" * N,
    "digits": "1," * (N // 2),
    "exponents": "1e" * (N // 2),
    "mixed-scripts": "a中" * (N // 2),
}


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_is_scanned_fast(name):
    text = HOSTILE[name]
    scans = [
        (extract_code, text), (fenced_blocks, text),
        (format_score, text, "think", "answer", "lenient"), (format_score, text, "think", "answer", "strict"),
        (format_score, text, "think", "answer", "count"), (format_score, text, "think", "answer", "lenient", True),
        (last_boxed, text), (last_number, text), (gold_answer, text),
        (extract_answer, text, "answer_tag"), (extract_answer, text, "boxed"), (extract_answer, text, "last_number"),
    ]
    for fn, *args in scans:
        took = _timed(fn, *args)
        assert took < 0.5, f"{fn.__name__} took {took:.2f} s on {name}"
    took = _timed(language_consistency, [text], [{}], language="en", think_tag="think", prompt_opens_think=False)
    assert took < 1.0, f"language_consistency took {took:.2f} s on {name}"


def test_the_issue_examples_are_fast():
    assert _timed(extract_code, "```" + " " * 80_000) < 0.2  # was 6.7 s
    assert _timed(format_score, "<think>" * 20_000, mode="lenient") < 0.2  # was 18.7 s
    assert _timed(REWARDS["format"], ["<think>" * 20_000], [{}], think_tag="think", answer_tag="answer",
                  mode="lenient", prompt_opens_think=False) < 0.2


# -- the scanners mean what the regular expressions meant (an independent transcription of each) -----------------

FENCE_RE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def _format_re(text, mode):
    tags = ["<think>", "</think>", "<answer>", "</answer>"]
    t_open, t_close, a_open, a_close = (re.escape(t) for t in tags)
    body = f"{t_open}(.*?){t_close}\\s*{a_open}(.*?){a_close}"
    if mode == "strict":
        if [text.count(t) for t in tags] != [1, 1, 1, 1]:
            return 0.0
        return 1.0 if re.fullmatch(f"\\s*{body}\\s*", text, flags=re.DOTALL) else 0.0
    return 1.0 if re.search(body, text, flags=re.DOTALL) else 0.0


def test_fenced_blocks_agree_with_the_pattern():
    pieces = ["```", "`", " ", "\t", "\n", "python", "PY", "py", "Python3", "x", "pyth", "\n```", "print(1)"]
    rng = random.Random(0)
    for _ in range(30_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        assert fenced_blocks(text) == FENCE_RE.findall(text), repr(text)


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_format_agrees_with_the_pattern(mode):
    pieces = ["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "x", "<think", "</", "\u00a0", "answer>"]
    rng = random.Random(1)
    for _ in range(30_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        assert format_score(text, mode=mode) == _format_re(text, mode), repr(text)
