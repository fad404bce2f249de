"""The embedded default really learns: `r1dsl compile recipes/tiny_r1_zero.r1 --run` on a CPU.

The pretrained base is partly right on held-out arithmetic (10% to 60%); GRPO with rule rewards only
lifts held-out accuracy by at least 20 points and format compliance above 90%, on each of seeds 7, 11, 13.
Three seeds: about 10 min on a quiet 2-core machine (3 min 17 s a run, README), 25 min under load (509 s a
run, issue 21); CI's slow pass (90 min, about 45 used) has the room, and fewer seeds would not test the claim.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


SEEDS = (7, 11, 13)  # issue 21: the learning holds on 3 of 3 seeds, not on one lucky draw


def run_tiny(out: Path, seed: int) -> dict:
    """`r1dsl compile recipes/tiny_r1_zero.r1 --set seed=N --run` into `out`; its results plus wall and CPU time."""
    start, cpu_start = time.time(), _children_cpu()
    proc = subprocess.run(
        [sys.executable, "-m", "r1dsl", "compile", str(ROOT / "recipes" / "tiny_r1_zero.r1"), "-o", str(out),
         "--set", f"seed={seed}", "--run", "--progress", "plain"],
        capture_output=True, text=True, timeout=1800, cwd=ROOT,
    )
    assert proc.returncode == 0, f"seed {seed}: " + proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    return {**results, "wall_s": time.time() - start, "cpu_s": _children_cpu() - cpu_start}


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.slow
@pytest.mark.timeout(5400)  # three whole runs: pyproject's 600 s per-test default is for unit tests
def test_grpo_lifts_accuracy_and_format_of_the_tiny_base_on_every_seed(tmp_path):
    """Seeds 7, 11 and 13 (`--set seed=N` reaches the corpus, the pretraining order and GRPO's sampling).

    A different machine (thread count, SIMD kernels) changes the float rounding from the first steps on, and
    the pretraining amplifies it into a different base model: a machine is one more draw, like a seed, so the
    thresholds must hold on every seed, not on one. The per-seed numbers, median and range are printed (-s).
    """
    runs = {seed: run_tiny(tmp_path / f"seed{seed}", seed) for seed in SEEDS}
    lines = []
    for seed, r in runs.items():
        base, zero = r["base"], r["zero"]
        lines.append(f"seed {seed}: base accuracy {base['accuracy']:.3f} format {base['format_rate']:.3f}; "
                     f"zero accuracy {zero['accuracy']:.3f} format {zero['format_rate']:.3f}; "
                     f"wall {r['wall_s']:.0f} s, CPU {r['cpu_s']:.0f} s")
    for key in ("base", "zero"):
        values = sorted(r[key]["accuracy"] for r in runs.values())
        lines.append(f"{key} accuracy median {values[len(values) // 2]:.3f} range {values[0]:.3f}-{values[-1]:.3f}")
    gains = sorted(r["zero"]["accuracy"] - r["base"]["accuracy"] for r in runs.values())
    lines.append(f"gain median {gains[len(gains) // 2]:+.3f} range {gains[0]:+.3f}..{gains[-1]:+.3f}")
    print("\n" + "\n".join(lines))
    failures = [
        f"seed {seed}: base {r['base']['accuracy']:.3f} zero {r['zero']['accuracy']:.3f} format {r['zero']['format_rate']:.3f}"
        for seed, r in runs.items()
        if not (0.10 <= r["base"]["accuracy"] <= 0.60
                and r["zero"]["accuracy"] >= r["base"]["accuracy"] + 0.20
                and r["zero"]["format_rate"] > 0.90)
    ]
    assert not failures, "\n".join(failures + lines)
    for seed in SEEDS:
        curve = (tmp_path / f"seed{seed}" / "zero" / "metrics.csv").read_text().splitlines()
        assert len(curve) == 1 + 80  # a header and one row per GRPO step


@pytest.mark.slow
@pytest.mark.timeout(2400)  # a whole run: pyproject's 600 s per-test default is for unit tests
def test_grpo_on_the_vllm_engine_learns_like_the_default_and_records_the_engine(tmp_path):
    """The same run with `--set zero.rollout.engine=vllm`: the same thresholds, and the run folder says vLLM ran."""
    from backends.vllm_engine import vllm_missing

    if vllm_missing():
        pytest.skip(f"optional dependency vllm missing: {vllm_missing()}")
    proc = subprocess.run(
        [sys.executable, "-m", "r1dsl", "compile", str(ROOT / "recipes" / "tiny_r1_zero.r1"), "-o", str(tmp_path),
         "--set", "zero.rollout.engine=vllm", "--run", "--progress", "plain"],
        capture_output=True, text=True, timeout=2400, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    base, zero = results["base"], results["zero"]
    assert zero["accuracy"] >= base["accuracy"] + 0.20 and zero["format_rate"] > 0.90
    record = json.loads((tmp_path / "zero" / "rollout.json").read_text())
    assert record["engine"] == "vllm" and record["weight_syncs"] == 1 + 80
    header, *rows = [line.split(",") for line in (tmp_path / "zero" / "metrics.csv").read_text().splitlines()]
    errors = [float(dict(zip(header, row))["token_mult_prob_error"]) for row in rows]
    assert len(errors) == 80 and max(errors) < 1.001  # vLLM sampled from the trainer's weights at every step
