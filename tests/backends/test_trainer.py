"""Shared trainer infrastructure: schedules, results.json, DONE, metrics CSV, atomic checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from backends.trainer import Checkpointer, MetricsLogger, build_scheduler, is_done, lr_factor, update_results, write_done
from r1dsl.ir import Optim


def test_warmup_then_cosine_to_the_floor():
    assert lr_factor(0, 100, warmup_steps=10) == pytest.approx(0.1)
    assert lr_factor(9, 100, warmup_steps=10) == pytest.approx(1.0)
    assert lr_factor(10, 100, warmup_steps=10) == pytest.approx(1.0)
    assert lr_factor(100, 100, warmup_steps=10, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(55, 100, warmup_steps=10, min_lr_ratio=0.0) == pytest.approx(0.5)


def test_linear_and_constant_schedules():
    assert lr_factor(50, 100, schedule="linear", min_lr_ratio=0.0) == pytest.approx(0.5)
    assert lr_factor(99, 100, schedule="constant") == 1.0
    with pytest.raises(ValueError):
        lr_factor(1, 10, schedule="step")


def test_scheduler_follows_lr_factor():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    sched = build_scheduler(opt, Optim(lr=1.0, warmup_steps=2, lr_schedule="cosine", min_lr_ratio=0.0), 10)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([lr_factor(i, 10, 2, "cosine", 0.0) for i in range(10)])


def test_results_merge_per_stage_and_done_marker(tmp_path):
    update_results(tmp_path, "base", {"accuracy": 0.25, "format_rate": torch.tensor(0.5)})
    update_results(tmp_path, "zero", {"accuracy": 0.75})
    update_results(tmp_path, "base", {"pass@1": 0.3})
    assert json.loads((tmp_path / "results.json").read_text()) == {
        "base": {"accuracy": 0.25, "format_rate": 0.5, "pass@1": 0.3},
        "zero": {"accuracy": 0.75},
    }
    assert not list(tmp_path.glob(".*.tmp"))
    assert not is_done(tmp_path / "base")
    write_done(tmp_path / "base", {"accuracy": 0.25})
    assert is_done(tmp_path / "base")


def test_metrics_csv_grows_columns_and_drops_rows_after_a_resume_point(tmp_path):
    log = MetricsLogger(tmp_path, tensorboard=True)
    log.log(1, {"loss": 2.0})
    log.log(2, {"loss": 1.5, "kl": 0.1})
    log.log(3, {"loss": 1.0, "kl": 0.2})
    log.close()
    assert (tmp_path / "tb").is_dir()
    resumed = MetricsLogger(tmp_path, tensorboard=False)
    resumed.truncate_after(2)
    resumed.log(3, {"loss": 0.9, "kl": 0.3})
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines == ["step,loss,kl", "1,2.0,", "2,1.5,0.1", "3,0.9,0.3"]


@pytest.fixture
def fabric():
    from lightning.fabric import Fabric

    f = Fabric(accelerator="cpu", devices=1)
    f.launch()
    return f


def test_checkpoints_are_complete_pruned_and_restore_state(fabric, tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    ckpt = Checkpointer(fabric, tmp_path / "checkpoints", every_n_steps=2, keep_last=2)
    assert ckpt.latest() is None
    for step in (2, 4, 6):
        model.weight.data.fill_(step)
        ckpt.save(step, {"model": model, "optimizer": opt, "tokens_seen": step * 10})
    assert [p.name for p in ckpt.all()] == ["step_000004", "step_000006"]
    assert not list((tmp_path / "checkpoints").glob(".tmp*"))

    fresh = torch.nn.Linear(3, 2)
    state = {"model": fresh, "optimizer": torch.optim.AdamW(fresh.parameters(), lr=0.1), "tokens_seen": 0}
    assert ckpt.load(ckpt.latest(), state) == 6
    assert torch.all(fresh.weight == 6) and state["tokens_seen"] == 60


def test_a_half_written_checkpoint_is_ignored_and_cleaned(fabric, tmp_path):
    (tmp_path / "checkpoints" / ".tmp_step_000008").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step_000004").mkdir()  # no state.pt: never completed
    ckpt = Checkpointer(fabric, tmp_path / "checkpoints", every_n_steps=4)
    assert ckpt.latest() is None
    assert not (tmp_path / "checkpoints" / ".tmp_step_000008").exists()
    assert ckpt.due(4, total=10) and not ckpt.due(10, total=10) and not ckpt.due(5, total=10)
