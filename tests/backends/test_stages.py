"""Stages end to end on a micro model: pretrain, sft, eval, DONE skip, kill-and-resume, DDP under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import EVAL_SAMPLING, MICRO_INIT, generated, load, stage_config, write_config

from backends.run_stage import main as run_stage
from backends.stages import STAGES
from r1dsl.config import InitConfig
from r1dsl.ir import Sampling

REPO = Path(__file__).resolve().parents[2]


def test_registry_has_every_runnable_stage_kind():
    from r1dsl.kinds import KINDS

    assert set(STAGES) == {name for name, k in KINDS.items() if k.runner}


def test_pretrain_writes_model_metrics_eval_results_and_done(run_dir, capsys):
    cfg = stage_config(
        run_dir, "base", "pretrain",
        train=[generated("corpus", "corpus", 200)],
        eval=[generated("arith_test", "arithmetic", 6, seed=99)],
        steps=4, sampling=EVAL_SAMPLING,
    )
    assert run_stage([str(write_config(cfg))]) == 0
    stage = run_dir / "base"
    for name in ("model/config.json", "model/tokenizer.json", "metrics.csv", "eval.json", "eval_examples.jsonl", "DONE"):
        assert (stage / name).exists(), name
    assert [p.name for p in (stage / "checkpoints").iterdir()] == ["step_000002"]  # none at the last step
    assert list((stage / "tb").iterdir())
    results = json.loads((run_dir / "results.json").read_text())["base"]
    assert {"pass@1", "pass@1_se", "pass@2", "cons@2", "cons@2_se", "greedy_accuracy", "format_rate", "mean_completion_tokens",
            "train_loss"} <= set(results)
    assert len((stage / "metrics.csv").read_text().splitlines()) == 1 + 4

    capsys.readouterr()
    assert run_stage([str(stage / "config.yaml")]) == 0  # DONE: skipped
    assert "skipping" in capsys.readouterr().out


def test_sft_masks_the_prompt_and_trains_on_the_response(run_dir):
    from backends.models import load_policy
    from backends.stages.sft import build_examples

    _, tok = load_policy(MICRO_INIT)
    rows = [{"prompt": "Say hi.", "response": "<think> easy </think> <answer> hi </answer>"}]
    (ids, labels), = build_examples(rows, tok, "User: {prompt} Assistant:", max_seq_len=64)
    n_prompt = len(tok("User: Say hi. Assistant:").input_ids)
    assert labels[:n_prompt] == [-100] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:] and ids[-1] == tok.eos_token_id
    assert tok.decode(ids[n_prompt:], skip_special_tokens=True) == " <think> easy </think> <answer> hi </answer>"

    cfg = stage_config(run_dir, "sft", "sft", train=[generated("chat", "chat", 40)], steps=3, template="User: {prompt} Assistant:")
    metrics = STAGES["sft"](load(cfg))
    assert metrics["train_loss"] > 0 and (run_dir / "sft" / "DONE").exists()


def test_eval_stage_scores_a_saved_model(run_dir):
    from backends.models import load_policy, save_policy

    model, tok = load_policy(MICRO_INIT)
    save_policy(model, tok, run_dir / "base" / "model")
    cfg = stage_config(
        run_dir, "final_eval", "eval",
        init=InitConfig(source="stage", path=str(run_dir / "base" / "model")),
        train=[generated("arith_test", "arithmetic", 5, seed=1)],
        sampling=replace(EVAL_SAMPLING, samples_per_prompt=3),
    )
    metrics = STAGES["eval"](load(cfg))
    assert metrics["num_prompts"] == 5 and 0 <= metrics["pass@1"] <= 1 and "cons@3" in metrics
    assert json.loads((run_dir / "results.json").read_text())["final_eval"]["num_prompts"] == 5
    assert set(json.loads((run_dir / "final_eval" / "eval.json").read_text())) == {"arith_test"}


def test_evaluate_counts_correct_tagged_answers():
    """With a model forced to answer "<answer>" and a hand-made row, the metrics are exact."""
    from backends.models import load_policy
    from backends.stages.eval import evaluate

    model, tok = load_policy(MICRO_INIT)
    rows = [{"prompt": "What is 1 + 1?", "answer": "2"}]
    metrics = evaluate(model.eval(), tok, rows, None, [], Sampling(samples_per_prompt=1, max_completion_tokens=4))
    assert metrics["greedy_accuracy"] == 0.0 and metrics["greedy_format_rate"] == 0.0 and metrics["num_prompts"] == 1
    assert metrics["pass@1"] == 0.0 and metrics["format_rate"] == 0.0  # one sample at the default temperature
    assert "pass@2" not in metrics and "cons@1" not in metrics  # one sample: no pass@k or vote


def _pretrain_config(run_dir: Path, steps: int, devices: int = 1, checkpoint_every: int = 5):
    return stage_config(run_dir, "base", "pretrain", train=[generated("corpus", "corpus", 300)], steps=steps,
                        batch_size=4, micro_batch_size=2, max_seq_len=64, checkpoint_every=checkpoint_every, devices=devices)


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run_dir / "base" / "model" / "model.safetensors")


def test_a_killed_stage_resumes_from_its_last_checkpoint_and_matches_an_uninterrupted_run(tmp_path):
    steps = 60  # the kill lands after the first checkpoint (step 10), with 50 steps to go
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run_stage([str(write_config(_pretrain_config(straight, steps, checkpoint_every=10)))]) == 0

    config = write_config(_pretrain_config(killed, steps, checkpoint_every=10))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "backends.run_stage", str(config)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    checkpoints = killed / "base" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not (checkpoints.exists() and any(p.name.startswith("step_") for p in checkpoints.iterdir())):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "base" / "DONE").exists(), "the run finished before it could be killed"

    out = subprocess.run([sys.executable, "-m", "backends.run_stage", str(config)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "resumed from" in out.stdout + out.stderr
    logged = [int(line.split(",")[0]) for line in (killed / "base" / "metrics.csv").read_text().splitlines()[1:]]
    assert logged == list(range(1, steps + 1))
    a, b = _final_weights(straight), _final_weights(killed)
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)


@pytest.mark.slow
def test_pretrain_under_torchrun_two_cpu_processes(tmp_path):
    config = write_config(_pretrain_config(tmp_path, steps=6, devices=2))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "backends.run_stage", str(config)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "base" / "DONE").exists() and (tmp_path / "base" / "model" / "model.safetensors").exists()
    assert len((tmp_path / "base" / "metrics.csv").read_text().splitlines()) == 1 + 6  # rank 0 logs once per step
