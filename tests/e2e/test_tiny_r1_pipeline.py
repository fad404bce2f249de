"""The whole R1 pipeline on the embedded default: `r1dsl compile recipes/tiny_r1.r1 --run`.

Every phase runs and hands its output to the next; the R1 policy scores as well as the R1-Zero policy
on the held-out set (within 0.02, run-to-run noise on 200 prompts), and each distilled student beats
the same architecture trained without the teacher's data (its pretrained base).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(2400)  # a whole run: pyproject's 600 s per-test default is for unit tests
def test_every_phase_runs_and_r1_and_the_students_score_as_the_paper_orders_them(tmp_path):
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "r1dsl", "compile", str(ROOT / "recipes" / "tiny_r1.r1"), "-o", str(tmp_path), "--run",
         "--progress", "quiet"],
        capture_output=True, text=True, timeout=2400, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads((tmp_path / "results.json").read_text())
    print(f"\nwall {time.time() - start:.0f} s\n" + (tmp_path / "results.md").read_text())
    assert r["final_eval"]["greedy_accuracy"] >= r["zero"]["greedy_accuracy"] - 0.02
    for student in ("qwen", "llama"):
        assert r[f"distill_student_{student}_base"]["greedy_accuracy"] >= r[f"student_{student}_base"]["greedy_accuracy"] + 0.05
    assert r["reasoning_samples"]["samples_kept"] > 0 and r["helpful_rm"]["pair_accuracy"] > 0.8
    summary = json.loads((tmp_path / "reasoning_samples" / "data_summary.json").read_text())
    assert summary["per_filter"]["correct"]["kept"] < summary["per_filter"]["correct"]["seen"]  # the filters did filter
    for name in ("code_blocks", "paragraphs"):  # R1's readability filters ran and say what they dropped
        assert summary["per_filter"][name]["dropped"] == summary["per_filter"][name]["seen"] - summary["per_filter"][name]["kept"]
    cold = json.loads((tmp_path / "cold_samples" / "data_summary.json").read_text())
    assert cold["per_filter"]["repetition"]["seen"] > 0
    assert r["harmless_rm"]["pair_accuracy"] > 0.5  # the second preference model trained (chance is 0.5)
