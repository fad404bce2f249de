"""Evaluation as the paper reports it [V2 D.1]: pass@1 over k samples is the headline, greedy is named greedy,
cons@k votes by mathematical equivalence with the reward's own extractor, k is set per eval set, and every
metric carries its standard error over prompts."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from conftest import EVAL_SAMPLING, MICRO_INIT, generated, load, stage_config

from backends.rewards.registry import score
from backends.stages import STAGES
from backends.stages.eval import consensus, majority, pass_at_k, run_eval, standard_error
from r1dsl.compiler import compile_recipe
from r1dsl.config import RewardConfig
from r1dsl.frontend import check_file
from r1dsl.ir import Sampling

BOXED = RewardConfig(name="accuracy", rule="math_accuracy", params={"extract": "boxed"})
TAGGED = RewardConfig(name="accuracy", rule="math_accuracy", params={"extract": "answer_tag"})


def vote(texts: list[str], gold: str, reward: RewardConfig = BOXED) -> float:
    """cons@k of one prompt whose k completions are `texts`, scored by the real math_accuracy rule."""
    _, per_rule = score([reward], texts, [{"answer": gold}] * len(texts), [1] * len(texts))
    (value,) = consensus(texts, per_rule[reward.name], reward, len(texts))
    return value


# ---------------------------------------------------------------- the vote


def test_one_half_written_three_ways_is_one_vote_and_outvotes_a_repeated_wrong_answer():
    texts = [r"so \boxed{1/2}", r"\boxed{0.5}", r"\boxed{\frac12}", r"\boxed{7}", r"\boxed{7}"]
    assert vote(texts, "1/2") == 1.0  # by exact string, `7` (2 votes) would win over three singletons


def test_boxed_answers_vote():
    assert vote([r"\boxed{42}", r"\boxed{42}", r"\boxed{41}"], "42") == 1.0


def test_a_majority_of_wrong_but_equivalent_answers_beats_a_correct_minority():
    texts = [r"\boxed{1/2}", r"\boxed{0.5}", r"\boxed{\frac{1}{2}}", r"\boxed{3}", r"\boxed{3}"]
    assert vote(texts, "3") == 0.0
    assert vote(texts, "0.5") == 1.0  # the voted answer is scored against the gold by the reward's verifier


def test_the_vote_uses_the_extractor_the_reward_names():
    texts = [r"<answer>5</answer> \boxed{4}", r"<answer>5</answer> \boxed{4}", "<answer>4</answer>"]
    assert vote(texts, "4", BOXED) == 1.0  # boxed: 4, 4, (none)
    assert vote(texts, "4", TAGGED) == 0.0  # answer tag: 5, 5, 4


def test_no_answer_is_no_vote_and_a_prompt_without_answers_scores_zero():
    assert vote([r"\boxed{2}", "no idea", "no idea"], "2") == 1.0
    assert vote(["no idea", "still none"], "2") == 0.0


def test_ties_go_to_the_answer_seen_first():
    assert vote([r"\boxed{2}", r"\boxed{3}"], "3") == 0.0
    assert vote([r"\boxed{3}", r"\boxed{2}"], "3") == 1.0
    assert majority(["a", None, "b", "b", "a"], str.__eq__) == 0  # 2 against 2: `a` came first


def test_grouping_is_bounded_by_the_distinct_answers():
    calls = []

    def same(a: str, b: str) -> bool:
        calls.append((a, b))
        return a == b

    assert majority([str(i) for i in range(64)], same) == 0
    assert len(calls) <= 64 * 63 // 2
    calls.clear()
    assert majority(["x"] * 64, same) == 0 and calls == []  # identical strings are grouped without asking


# ---------------------------------------------------------------- estimators


def test_pass_at_k_is_chen_et_al_unbiased_estimator():
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(4, 0, 4) == 0.0 and pass_at_k(4, 1, 4) == 1.0 and pass_at_k(4, 1, 1) == 0.25
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_standard_error_over_prompts_by_hand():
    # per-prompt pass@1 of 3 prompts with k = 4: 1.0, 0.0, 0.5; mean 0.5, sample variance 0.25, SE = 0.5 / sqrt(3)
    per_prompt = [sum(s) / 4 for s in ([1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0])]
    assert standard_error(per_prompt) == pytest.approx(0.5 / math.sqrt(3))
    assert math.isnan(standard_error([1.0]))


# ---------------------------------------------------------------- the metrics of a real (micro) model


def test_the_headline_is_pass_at_1_over_k_samples_and_greedy_is_named_greedy():
    from backends.models import load_policy

    model, tok = load_policy(MICRO_INIT)
    rows = [{"prompt": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(3)]
    rewards = [BOXED, RewardConfig(name="format", rule="format")]
    metrics, _ = run_eval(model.eval(), tok, rows, None, rewards, replace(EVAL_SAMPLING, samples_per_prompt=3))
    assert "accuracy" not in metrics
    assert metrics["samples_per_prompt"] == 3
    for name in ("pass@1", "pass@3", "cons@3", "greedy_accuracy", "format_rate", "greedy_format_rate", "reward",
                 "mean_completion_tokens"):
        assert 0 <= metrics[name] and f"{name}_se" in metrics, name
    greedy, _ = run_eval(model.eval(), tok, rows, None, rewards, replace(EVAL_SAMPLING, temperature=0.0))
    assert greedy["samples_per_prompt"] == 1 and greedy["pass@1"] == greedy["greedy_accuracy"]


def test_k_is_set_per_eval_set(run_dir):
    sets = [replace(generated("a", "arithmetic", 3, seed=1), eval_samples_per_prompt=2),
            replace(generated("b", "arithmetic", 3, seed=2), eval_samples_per_prompt=3),
            generated("c", "arithmetic", 3, seed=3)]
    cfg = stage_config(run_dir, "final_eval", "eval", train=sets, sampling=replace(EVAL_SAMPLING, samples_per_prompt=4))
    metrics = STAGES["eval"](load(cfg))
    assert (metrics["a/samples_per_prompt"], metrics["b/samples_per_prompt"], metrics["c/samples_per_prompt"]) == (2, 3, 4)
    assert {"a/cons@2", "a/pass@2", "b/cons@3", "c/cons@4", "c/cons@4_se"} <= set(metrics)
    by_set = json.loads((run_dir / "final_eval" / "eval.json").read_text())
    assert by_set["b"]["samples_per_prompt"] == 3


RECIPE = """
model tiny { tiny { hidden_size = 32  num_layers = 2  num_heads = 2 } }
dataset math500 { generator = "arithmetic"  size = 8  eval_samples_per_prompt = K }
dataset aime { generator = "arithmetic"  size = 8  seed = 1 }
reward accuracy { rule = "math_accuracy" }
stage e: eval { from = tiny  data = [math500, aime]  rewards = [accuracy]  sampling { samples_per_prompt = 64 } }
"""


def test_eval_samples_per_prompt_is_checked_and_compiled(tmp_path):
    path = tmp_path / "r.r1"
    path.write_text(RECIPE.replace("K", "16"))
    result = check_file(str(path))
    assert result.ok, [d.message for d in result.diagnostics]
    data = compile_recipe(result.recipe, tmp_path / "run").jobs[0].config["model"]["data"]
    data = [*data["train"], *data["eval"]]
    assert [(d["name"], d["eval_samples_per_prompt"]) for d in data] == [("math500", 16), ("aime", None)]
    for bad in ("0", "2000", '"16"'):
        path.write_text(RECIPE.replace("K", bad))
        result = check_file(str(path))
        assert not result.ok and {d.code for d in result.diagnostics} <= {"E004", "E005"}, bad
