"""format, language_consistency and the shaping rules."""

import pytest

from backends.rewards import REWARDS


def run(rule, completions, rows=None, **params):
    return REWARDS[rule](completions, rows or [{}] * len(completions), **params)


GOOD = " <think> 6 times 7 </think> <answer> 42 </answer>"


def test_format_strict_lenient_and_count():
    comps = [GOOD, "hi " + GOOD, GOOD + GOOD, "<think> a </think>", " <answer> 42 </answer> <think> a </think>"]
    assert run("format", comps, mode="strict") == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert run("format", comps, mode="lenient") == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert run("format", comps, mode="count") == [1.0, 1.0, 0.0, 0.5, 1.0]


def test_format_configurable_tags_and_prompt_opened_think():
    assert run("format", ["<reason>r</reason><final>1</final>"], think_tag="reason", answer_tag="final") == [1.0]
    assert run("format", [" 6*7 </think> <answer> 42 </answer>"], prompt_opens_think=True) == [1.0]


def test_language_consistency_en_and_zh():
    en = " <think> First add the two numbers, then 3 + 4 = 7 </think> <answer> 7 </answer>"
    mixed = " <think> 先把 two numbers 相加 </think> <answer> 7 </answer>"
    zh = " <think> 先把两个数相加 </think> <answer> 7 </answer>"
    assert run("language_consistency", [en, zh], language="en") == [1.0, 0.0]
    assert run("language_consistency", [zh], language="zh") == [1.0]
    # 先 把 相 加 = 4 Han characters, "two" "numbers" = 2 English words
    assert run("language_consistency", [mixed], language="zh") == [pytest.approx(4 / 6)]
    assert run("language_consistency", [" <think> </think>"]) == [0.0]


def test_length_cosine_and_linear():
    comps = ["", "w " * 50, "w " * 100, "w " * 300]
    assert run("length", comps, max_tokens=100, mode="linear") == [1.0, 0.5, 0.0, 0.0]
    cos = run("length", comps, max_tokens=100, mode="cosine")
    assert cos[0] == 1.0 and cos[1] == pytest.approx(0.5) and cos[2] == pytest.approx(0.0) and cos[3] == pytest.approx(0.0)


def test_overlong_is_dapo_soft_punishment_and_prefers_token_counts():
    rows = [{"_completion_tokens": n} for n in (10, 80, 90, 100, 150)]
    assert run("overlong", ["x"] * 5, rows, max_tokens=100, buffer=20) == [0.0, 0.0, -0.5, -1.0, -1.0]
    assert run("overlong", ["w " * 90], max_tokens=100, buffer=20) == [-0.5]  # whitespace words
    with pytest.raises(ValueError):
        run("overlong", ["x"], max_tokens=10, buffer=20)


def test_repetition_penalty():
    assert run("repetition", ["the cat sat on the mat today"]) == [0.0]
    looped = run("repetition", ["a b c " * 50], ngram_size=3, max_penalty=1.0)[0]
    assert -1.0 <= looped < -0.9
    assert run("repetition", ["too short"], ngram_size=3) == [0.0]
