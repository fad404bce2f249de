"""FSDP2 (`resources { sharding = "fsdp" }`) on CPU with gloo: a sharded step equals the single-process step,
each rank holds half the parameters, and a sharded GRPO stage checkpoints, resumes exactly and exports a model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_config
from test_grpo_stage import grpo_config, weights

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("fsdp_worker.py")
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def torchrun(*args: str, timeout: int = 600) -> None:
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args],
                         cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.mark.parametrize("split", [[], ["8"]], ids=["one-step-per-rollout", "two-mini-batches"])
def test_a_sharded_grpo_update_equals_the_single_process_update_with_half_the_parameters_per_rank(tmp_path, split):
    single, sharded = tmp_path / "single.pt", tmp_path / "fsdp.pt"
    out = subprocess.run([sys.executable, str(WORKER), str(single), "auto", "1", *split], cwd=REPO, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    torchrun(str(WORKER), str(sharded), "fsdp", "2", *split)
    a, b = torch.load(single), torch.load(sharded)

    assert b["total"] == a["total"] and sum(b["held"]) == a["total"]
    assert all(abs(held - a["total"] / 2) <= 0.01 * a["total"] for held in b["held"]), b["held"]
    if not split:  # the reference is the starting policy, in the same numerics (later mini-batches: the policy moved)
        assert a["kl"] == 0.0 and b["kl"] == 0.0
    else:
        assert a["kl"] > 0 and b["kl"] > 0  # logged as each rank's token-weighted mean: equal only in the loss
    assert abs(a["loss"] - b["loss"]) <= 1e-5
    assert sorted(a["state"]) == sorted(b["state"])
    moved = max(float((a["state"][k] - a["initial"][k]).abs().max()) for k in a["state"])
    assert moved > 1e-3  # the step trained
    for name in a["state"]:
        torch.testing.assert_close(b["state"][name], a["state"][name], atol=1e-5, rtol=0, msg=name)


@pytest.mark.slow
def test_a_sharded_grpo_stage_resumes_exactly_and_exports_a_hugging_face_model(tmp_path):
    cfg = grpo_config(tmp_path, devices=2, eval_rows=2, steps=4, reference_refresh_steps=3)
    cfg["trainer"]["strategy"] = "fsdp"
    cfg["resources"]["sharding"] = "fsdp"
    config = write_config(cfg)
    torchrun("-m", "backends.run_stage", str(config))
    stage = tmp_path / "zero"
    assert (stage / "DONE").exists() and (stage / "eval.json").exists()
    assert (stage / "checkpoints" / "step_000002" / "state.pt").is_dir()  # one shard file per rank
    assert (stage / "checkpoints" / "step_000002" / "reference.pt").is_dir()
    straight = weights(tmp_path)
    from transformers import AutoModelForCausalLM

    exported = AutoModelForCausalLM.from_pretrained(stage / "model")
    assert sum(p.numel() for p in exported.parameters()) > 0

    # as if killed after the step-2 checkpoint: no DONE, no final model; the rerun resumes at step 2
    (stage / "DONE").unlink()
    shutil.rmtree(stage / "model")
    torchrun("-m", "backends.run_stage", str(config))
    resumed = weights(tmp_path)
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], atol=0, rtol=0, msg=name)
    logged = [int(line.split(",")[0]) for line in (stage / "metrics.csv").read_text().splitlines()[1:]]
    assert logged == [1, 2, 3, 4]
