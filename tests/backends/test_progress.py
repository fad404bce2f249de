"""Progress display modes: JSON lines for scripts, nothing in quiet mode, plain lines with ETA in logs."""

from __future__ import annotations

import json

from backends.trainer.progress import ProgressBar


def run_bar(monkeypatch, mode, capsys):
    monkeypatch.setenv("R1DSL_PROGRESS", mode)
    with ProgressBar(4, "grpo") as bar:
        for step in range(1, 5):
            bar.update(step, reward=0.5 * step, acc=float("nan"))
    return capsys.readouterr()


def test_jsonl_mode_prints_one_parsable_record_per_update(monkeypatch, capsys):
    out = run_bar(monkeypatch, "jsonl", capsys).out
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["done"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["total"] == 4 and records[-1]["reward"] == 2.0 and records[-1]["acc"] is None
    assert records[-1]["eta_s"] is not None and records[-1]["eta_s"] >= 0


def test_quiet_mode_prints_nothing(monkeypatch, capsys):
    captured = run_bar(monkeypatch, "quiet", capsys)
    assert captured.out == "" and captured.err == ""


def test_plain_mode_shows_progress_and_eta(monkeypatch, capsys):
    err = run_bar(monkeypatch, "plain", capsys).err
    assert "grpo 4/4" in err and "eta" in err and "reward=2" in err
