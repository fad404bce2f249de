"""Smoke mode keeps a recipe's stage graph and swaps in tiny models and synthetic data with the same fields."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import backends.data  # noqa: F401  (registers the generators)
from backends.data.generators import GENERATORS
from r1dsl.compiler import compile_recipe
from r1dsl.frontend import load_recipe
from r1dsl.smoke import smoke

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_keeps_the_graph_and_the_fields_every_stage_reads():
    full = load_recipe(str(ROOT / "recipes" / "deepseek_r1.r1"))
    small = smoke(full)
    assert [(s.name, s.kind, s.after) for s in small.stages] == [(s.name, s.kind, s.after) for s in full.stages]
    assert [s.rewards for s in small.stages] == [s.rewards for s in full.stages]
    for name, ds in small.datasets.items():
        original = full.datasets[name]
        if original.source == "stage":
            assert ds == original
            continue
        assert ds.source == "generator" and ds.size <= 16
        assert set(original.provides) <= set(GENERATORS[ds.generator].provides), name
    assert all(m.source == "tiny" and m.tiny.hidden_size <= 64 for m in small.models.values())
    assert small.models["llama_70b"].tiny.arch == "llama" and small.models["qwen_32b"].tiny.arch == "qwen2"
    assert all(s.resources.gpus_per_node == 0 and s.resources.nodes == 1 for s in small.stages)
    grpo = small.stage("reasoning_rl").grpo
    assert (grpo.steps, grpo.num_generations_per_prompt, grpo.ratio_clip_min) == (4, 2, 10.0)  # algorithm knobs stay
    # the paper's split stays: two rollouts of one group per optimizer step, 2 optimizer steps each
    assert (grpo.train_global_batch_size, grpo.updates_per_rollout) == (2, 2)


def test_smoke_compiles_to_cpu_jobs(tmp_path):
    pipeline = compile_recipe(smoke(load_recipe(str(ROOT / "recipes" / "deepseek_r1.r1"))), tmp_path)
    for job in pipeline.jobs:
        assert job.config["trainer"]["accelerator"] == "cpu" and job.config["trainer"]["devices"] == 1
    sampling = next(job for job in pipeline.jobs if job.stage.name == "reasoning_samples")
    judge = next(r for r in sampling.config["model"]["rewards"] if r["rule"] == "judge")
    assert judge["params"]["model"]["source"] == "tiny"  # the judge's stand-in is built where it is used


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["deepseek_r1.r1", "deepseek_r1_zero.r1"])
def test_a_paper_recipe_runs_end_to_end_in_smoke_mode(recipe, tmp_path):
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "r1dsl", "compile", str(ROOT / "recipes" / recipe), "--smoke", "--run", "-o", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=900, cwd=ROOT, env={**os.environ, "R1DSL_PROGRESS": "quiet"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest_stages = [p.name for p in (tmp_path / "run").iterdir() if (p / "DONE").exists()]
    expected = [s.name for s in load_recipe(str(ROOT / "recipes" / recipe)).stages]
    assert sorted(manifest_stages) == sorted(expected)
    print(f"{recipe} smoke: {time.time() - start:.0f} s")


def test_smoke_without_an_output_folder_writes_runs_name_smoke(tmp_path, monkeypatch, capsys):
    from r1dsl.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["compile", str(ROOT / "recipes" / "tiny_r1_zero.r1"), "--smoke", "--dry-run"]) == 0
    assert (tmp_path / "runs" / "tiny_r1_zero-smoke" / "manifest.json").exists()
