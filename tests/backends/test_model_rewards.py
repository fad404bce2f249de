"""Model-based rewards: a preference model trained in a reward_model stage, and the generative judge."""

from __future__ import annotations

import json
import subprocess
import sys

from backends.data.preference import preference_pairs
from backends.rewards.model_based import fill_rubric, parse_verdict
from backends.rewards.registry import score
from r1dsl.config import RewardConfig
from tests.backends.conftest import MICRO_INIT, generated, stage_config, write_config


def test_verdicts_parse_from_the_first_verdict_word():
    assert parse_verdict(" Yes, it matches.") == 1.0
    assert parse_verdict("correct") == 1.0
    assert parse_verdict(" no; yes would be wrong") == 0.0
    assert parse_verdict("incorrect") == 0.0
    assert parse_verdict("the weather is nice") == 0.0  # no verdict is no pass


def test_rubric_filling_cannot_be_steered_by_braces_in_the_response():
    filled = fill_rubric("Q: {prompt} A: {answer} R: {response}", {"prompt": "1+1", "answer": "2"}, "{answer} {prompt} " + "x" * 200)
    assert filled.startswith("Q: 1+1 A: 2 R: {answer} {prompt} ")  # placeholders in untrusted text stay text


def test_preference_pairs_differ_and_are_deterministic():
    rows = preference_pairs(50, seed=3)
    assert rows == preference_pairs(50, seed=3)
    assert all(r["chosen"].strip() != r["rejected"].strip() for r in rows)


def test_a_reward_model_stage_learns_to_prefer_the_chosen_response(tmp_path):
    cfg = stage_config(
        tmp_path, "rm", "reward_model",
        train=[generated("pairs", "preference_pairs", size=256, seed=1)],
        eval=[generated("pairs_test", "preference_pairs", size=64, seed=2)],
        steps=40, batch_size=16, micro_batch_size=16, lr=3e-3, checkpoint_every=20, max_seq_len=96, rewards=[],
    )
    proc = subprocess.run([sys.executable, "-m", "backends.run_stage", str(write_config(cfg))], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["rm"]["pair_accuracy"] >= 0.75  # chance is 0.5

    # The trained head, used as a GRPO reward: chosen responses score higher than rejected ones on average.
    held_out = preference_pairs(40, seed=9)
    reward = [RewardConfig(name="helpful", rule="preference_model", params={"model": str(tmp_path / "rm" / "model")})]
    tokens = [0] * len(held_out)  # no length rule here: the counts are not read
    good, _ = score(reward, [r["chosen"] for r in held_out], held_out, tokens)
    bad, _ = score(reward, [r["rejected"] for r in held_out], held_out, tokens)
    assert all(0.0 < v < 1.0 for v in good + bad)
    assert sum(good) / len(good) > sum(bad) / len(bad)


def test_the_judge_runs_a_local_model_in_batches_and_returns_verdicts(tmp_path):
    from backends.models import load_policy, save_policy

    model, tokenizer = load_policy(MICRO_INIT)
    save_policy(model, tokenizer, tmp_path / "judge")
    rows = [{"prompt": f"{i}+1", "answer": str(i + 1)} for i in range(5)]
    reward = [RewardConfig(name="judge", rule="judge", params={"model": str(tmp_path / "judge"), "batch_size": 2})]
    totals, per_rule = score(reward, ["<answer> 3 </answer>"] * 5, rows, [4] * 5)
    assert len(totals) == 5 and set(per_rule["judge"]) <= {0.0, 1.0}
