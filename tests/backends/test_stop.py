"""SIGUSR1 (SLURM's time-limit warning, forwarded by job.sbatch) checkpoints a stage at the end of its step and
exits 75; running it again resumes there and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import write_config
from test_grpo_stage import REPO, grpo_config, weights

from backends.run_stage import main as run_stage
from backends.trainer.stop import EXIT_CHECKPOINTED

STEPS = 12


def logged_steps(stage: Path) -> list[int]:
    path = stage / "metrics.csv"
    lines = path.read_text().splitlines()[1:] if path.exists() else []
    return [int(line.split(",")[0]) for line in lines]


def test_sigusr1_checkpoints_exits_75_and_the_rerun_ends_where_a_straight_run_does(tmp_path):
    straight_dir, stopped_dir = tmp_path / "straight", tmp_path / "stopped"
    # no periodic checkpoint: the only one the stopped run can resume from is the one SIGUSR1 asked for
    assert run_stage([str(write_config(grpo_config(straight_dir, eval_rows=0, steps=STEPS, checkpoint_every=1000)))]) == 0
    config = write_config(grpo_config(stopped_dir, eval_rows=0, steps=STEPS, checkpoint_every=1000))
    stage = stopped_dir / "zero"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "backends.run_stage", str(config)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not logged_steps(stage):
            assert proc.poll() is None and time.monotonic() < deadline, "the stage ended before its first step was logged"
            time.sleep(0.02)
        proc.send_signal(signal.SIGUSR1)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_CHECKPOINTED, out
    stopped_at = logged_steps(stage)[-1]
    assert 1 <= stopped_at < STEPS, out
    assert [p.name for p in (stage / "checkpoints").iterdir()] == [f"step_{stopped_at:06d}"]
    assert f"checkpointed at step {stopped_at}" in out
    assert not (stage / "DONE").exists() and not (stage / "model").exists()

    assert run_stage([str(config)]) == 0
    assert logged_steps(stage) == list(range(1, STEPS + 1))
    resumed, straight = weights(stopped_dir), weights(straight_dir)
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], msg=name)
