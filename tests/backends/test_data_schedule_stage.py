"""A grpo stage draws a dataset's prompts only from its `from_step` on (R1's last 400 of 1,700 steps [NAT])."""

from __future__ import annotations

import csv
import math
from dataclasses import replace

from conftest import generated, stage_config, write_config

from backends.run_stage import main as run_stage
from r1dsl.config import RewardConfig
from r1dsl.ir import GRPO


def test_a_late_dataset_and_its_reward_appear_only_from_its_step(run_dir):
    early = replace(generated("early", "arithmetic", 32, seed=1), rewards=("accuracy",))
    late = replace(generated("late", "arithmetic", 32, seed=2), rewards=("late_format",), from_step=3)
    rewards = [RewardConfig(name="accuracy", rule="math_accuracy"), RewardConfig(name="late_format", rule="format")]
    cfg = stage_config(run_dir, "zero", "grpo", train=[early, late], rewards=rewards, lr=1e-3,
                       grpo=GRPO(num_generations_per_prompt=2, num_prompts_per_step=4, micro_batch_size=8, steps=5,
                                 max_completion_tokens=6, checkpoint_every=5, seed=3))
    assert run_stage([str(write_config(cfg))]) == 0
    with open(run_dir / "zero" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5

    def logged(row):
        value = row.get("reward/late_format", "")
        return value not in ("", None) and not math.isnan(float(value))

    assert [logged(r) for r in rows[:3]] == [False, False, False]  # steps 1-3 (0-based 0-2): no late prompt drawn
    assert any(logged(r) for r in rows[3:])  # from step index 3 on the pool holds both datasets
