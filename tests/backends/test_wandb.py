"""Weights & Biases logging (optional dependency `wandb`), offline: the stage's metrics reach the run."""

from __future__ import annotations

import pytest

from backends.trainer.metrics import MetricsLogger

wandb = pytest.importorskip("wandb", reason="optional dependency wandb (pip install 'r1dsl[wandb]') is not installed")


def test_metrics_reach_an_offline_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("R1DSL_WANDB_PROJECT", "r1dsl-test")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    exp = tmp_path / "run" / "zero"
    logger = MetricsLogger(exp, tensorboard=False, wandb_config={"kind": "grpo"})
    sent = []
    real_log = logger._wandb.log
    logger._wandb.log = lambda data, step: (sent.append((step, data)), real_log(data, step=step))  # record, then log for real
    for step in range(1, 4):
        logger.log(step, {"reward": 0.1 * step, "kl": 0.01, "note": "text is not a metric"})
    assert logger._wandb.config["kind"] == "grpo"
    logger.close()
    assert sent == [(s, {"reward": pytest.approx(0.1 * s), "kl": 0.01}) for s in (1, 2, 3)]
    assert list((exp / "wandb").glob("offline-run-*")), "the offline run folder is written in the stage folder"
    assert (exp / "metrics.csv").read_text().count("\n") == 4  # the CSV is still written


def test_no_project_means_no_wandb(tmp_path, monkeypatch):
    monkeypatch.delenv("R1DSL_WANDB_PROJECT", raising=False)
    logger = MetricsLogger(tmp_path, tensorboard=False)
    assert logger._wandb is None
    logger.close()
