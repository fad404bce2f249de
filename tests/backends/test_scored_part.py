"""Model rewards score the part of the response their rule names, and long text keeps its END [NAT; V2 3.2.2]."""

from __future__ import annotations

import pytest

from backends.rewards.model_based import keep_end, preference_ids, response_part
from backends.rewards.registry import REWARDS, score
from r1dsl.config import RewardConfig
from tests.backends.conftest import MICRO_INIT

LONG_COT = "<think>" + " ".join(f"step{i} adds one." for i in range(400)) + "</think> The answer is 42."


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from backends.models import load_policy, save_policy

    model, tokenizer = load_policy(MICRO_INIT)
    folder = tmp_path_factory.mktemp("rm")
    save_policy(model, tokenizer, folder)
    return str(folder), tokenizer


def test_each_part_of_a_response_is_what_its_name_says():
    text = "<think> try 6*7 </think> The answer is 42."
    assert response_part(text, "summary") == "The answer is 42."
    assert response_part(text, "reasoning") == "try 6*7"
    assert response_part(text, "whole") == text
    assert response_part("<reason>a</reason> b", "summary", think_tag="reason") == "b"  # the format's own delimiter
    assert response_part("no tags at all", "summary") == "no tags at all"  # no reasoning block: it is all summary
    assert response_part("<think> cut off mid-thought", "reasoning") == "<think> cut off mid-thought"


def test_the_part_is_a_declared_parameter_of_every_model_rule():
    assert REWARDS["preference_model"].params["part"].default == "whole"  # harmlessness: the whole response
    assert REWARDS["judge"].params["part"].default == "summary"  # the prediction is the final answer
    assert REWARDS["judge"].params["part"].choices == ("summary", "whole", "reasoning")


def test_the_preference_layout_keeps_the_prompt_start_and_the_response_end(tiny):
    _, tok = tiny
    ids = preference_ids(tok, "What is 6*7?", LONG_COT, max_tokens=64)
    assert len(ids) <= 64
    text = tok.decode(ids, skip_special_tokens=True)
    assert "answer is 42" in text  # the end of a long chain of thought survives
    assert "6*7" in text  # so does the question
    assert "step0 " not in text  # the start of the reasoning went
    short = preference_ids(tok, "hi", "hello there", max_tokens=64)
    assert tok.decode(short, skip_special_tokens=True).endswith("hello there")


def test_the_judge_sees_the_end_of_a_long_response_within_its_token_budget(tiny):
    _, tok = tiny
    kept = keep_end(tok, LONG_COT, 20)
    assert kept.startswith("[...] ") and "answer is 42" in kept
    assert len(tok(kept, add_special_tokens=False)["input_ids"]) <= 20 + len(tok("[...] ", add_special_tokens=False)["input_ids"]) + 1
    assert keep_end(tok, "short", 20) == "short"


def _pm(name, folder, **params):
    return RewardConfig(name=name, rule="preference_model", params={"model": folder, "scale": "raw", **params})


def test_a_summary_rule_ignores_the_reasoning_and_a_whole_rule_does_not(tiny):
    folder, _ = tiny
    a = "<think> first idea </think> Paris."
    b = "<think> a very different line of thought entirely </think> Paris."
    rows = [{"prompt": "Capital of France?"}] * 2
    _, per = score([_pm("helpful", folder, part="summary"), _pm("harmless", folder, part="whole")], [a, b], rows, [0, 0])
    assert per["helpful"][0] == pytest.approx(per["helpful"][1], abs=1e-5)
    assert per["harmless"][0] != pytest.approx(per["harmless"][1], abs=1e-5)


def test_a_long_response_is_scored_on_its_end_not_its_start(tiny):
    folder, _ = tiny
    start_differs = ["Alpha " + LONG_COT, "Omega zeta " + LONG_COT]
    end_differs = [LONG_COT + " Yes.", LONG_COT + " No, never."]
    rows = [{"prompt": "q"}] * 2
    _, per = score([_pm("pm", folder, max_tokens=48)], start_differs, rows, [0, 0])
    assert per["pm"][0] == pytest.approx(per["pm"][1], abs=1e-5)  # the cut-off start does not count
    _, per = score([_pm("pm", folder, max_tokens=48)], end_differs, rows, [0, 0])
    assert per["pm"][0] != pytest.approx(per["pm"][1], abs=1e-5)
