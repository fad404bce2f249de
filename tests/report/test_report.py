"""`r1dsl report`: plots and reports from a hand-written run folder laid out as docs/design.md says."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from r1dsl.report import build_report, mermaid_graph, read_metrics_csv, read_run

# stage -> (kind, after)
STAGES = {
    "base": ("pretrain", []),
    "zero": ("grpo", ["base"]),
    "cold_samples": ("rejection_sample", ["zero"]),
    "cold_sft": ("sft", ["cold_samples"]),
    "final_eval": ("eval", ["cold_sft"]),
}
RESULTS = {
    "base": {"accuracy": 0.035, "format_rate": 0.0},
    "zero": {"accuracy": 0.4375, "format_rate": 0.9125, "reward/accuracy": 0.4375, "reward/format": 0.9125},
    "cold_sft": {"accuracy": 0.52, "format_rate": 0.985},
    "final_eval": {"num_prompts": 200, "accuracy": 0.6125, "format_rate": 0.99, "mean_completion_tokens": 31.5, "pass@1": 0.571, "cons@4": 0.64},
}
SUMMARY = {
    "seen": 1200,
    "kept": 287,
    "per_filter": {
        "correct": {"seen": 1200, "kept": 402},
        "format": {"seen": 402, "kept": 371},
        "language": {"seen": 371, "kept": 366},
        "dedup": {"seen": 366, "kept": 287},
    },
}


def _config_yaml(run_dir: Path, name: str, kind: str) -> str:
    return f"""name: {name}
kind: {kind}
recipe: tiny_r1
trainer:
  accelerator: cpu
  devices: 1
  num_nodes: 1
  strategy: auto
  precision: 32-true
  max_steps: 60
  seed: 7
model:
  init: {{source: tiny, path: null}}
  template: "A conversation between User and Assistant. User: {{prompt}}. Assistant:"
  rewards: [{{name: accuracy, rule: math_accuracy, weight: 1.0, params: {{}}}}]
  optim: {{lr: 0.001, min_lr_ratio: 0.1, lr_schedule: constant, warmup_steps: 0, weight_decay: 0.0, max_grad_norm: 1.0}}
exp_manager:
  run_dir: {run_dir}
  exp_dir: {run_dir / name}
  name: {name}
"""


def _write_metrics(path: Path, columns: list[str], steps: int, seed: int) -> None:
    """Curves shaped like the paper's: rewards and accuracy rise, length grows, KL drifts up; one sparse row."""
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "epoch", *columns])
        for step in range(1, steps + 1):
            t = step / steps
            values = {
                "reward": 2 * (1 - math.exp(-3 * t)) + rng.gauss(0, 0.1),
                "reward/accuracy": 1 - math.exp(-3 * t) + rng.gauss(0, 0.05),
                "reward/format": min(1.0, 1.5 * t) + rng.gauss(0, 0.03),
                "accuracy": 0.05 + 0.5 * t + rng.gauss(0, 0.03),
                "format": min(1.0, 1.5 * t),
                "completion_length": 12 + 30 * t + rng.gauss(0, 2),
                "kl": 0.002 * step + abs(rng.gauss(0, 0.001)),
                "loss": 4 * math.exp(-2 * t) + rng.gauss(0, 0.05),
                "lr": 1e-3,
                "tokens_per_s": 900 + rng.gauss(0, 30),
            }
            writer.writerow([step, 0, *(f"{values[c]:.6g}" for c in columns)])
        # Sparse loggers (Lightning's CSVLogger) leave cells empty on rows that log other keys.
        writer.writerow([steps + 1, 0, *(["" for _ in columns[:-1]] + ["950"])])


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "tiny_r1"
    manifest = {"recipe": "tiny_r1", "target": "local", "stages": []}
    for name, (kind, after) in STAGES.items():
        folder = run / name
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(_config_yaml(run, name, kind))
        (folder / "tb").mkdir()
        manifest["stages"].append(
            {"name": name, "kind": kind, "after": after, "inputs": after, "outputs": [f"{name}/model"], "config_hash": f"{len(name):064x}"}
        )
    _write_metrics(run / "base" / "metrics.csv", ["loss", "lr", "tokens_per_s"], 60, seed=1)
    # The columns backends/grpo/step.py logs (a subset: the report ignores the others).
    grpo_columns = ["reward", "reward/accuracy", "reward/format", "accuracy", "format", "completion_length", "kl", "loss", "lr", "tokens_per_s"]
    _write_metrics(run / "zero" / "metrics.csv", grpo_columns, 60, seed=2)
    _write_metrics(run / "cold_sft" / "metrics.csv", ["loss", "lr"], 20, seed=3)
    (run / "cold_samples" / "data_summary.json").write_text(json.dumps(SUMMARY))
    (run / "cold_samples" / "data.jsonl").write_text('{"prompt": "1+1", "response": "<think>1+1=2</think> <answer>2</answer>", "answer": "2"}\n')
    (run / "final_eval" / "eval.json").write_text(json.dumps(RESULTS["final_eval"]))
    (run / "results.json").write_text(json.dumps(RESULTS))
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return run


def _assert_not_blank(png: Path) -> None:
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100, png
    assert pixels.var() > 0, f"{png} is one flat colour"
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 10, f"{png} has only {len(colours)} colours"
    # Something other than white, grey and black: the curves or bars themselves are drawn.
    chroma = pixels.max(axis=2).astype(int) - pixels.min(axis=2).astype(int)
    assert (chroma > 60).sum() > 200, f"{png} has no coloured data"


def test_report_writes_non_blank_plots_for_training_stages_and_eval(run_dir: Path) -> None:
    html_path = build_report(run_dir)
    out = run_dir / "report"
    assert html_path == out / "report.html"
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["curves_base.png", "curves_cold_sft.png", "curves_zero.png", "eval.png"]
    for png in out.glob("*.png"):
        _assert_not_blank(png)


def test_grpo_curves_have_a_panel_per_metric_group(run_dir: Path) -> None:
    build_report(run_dir)
    # GRPO logs seven panels' worth (reward, accuracy, length, KL, loss, lr, tokens/s): three rows;
    # pretraining logs three (loss, lr, tokens/s): one row.
    grpo = Image.open(run_dir / "report" / "curves_zero.png")
    base = Image.open(run_dir / "report" / "curves_base.png")
    assert grpo.height > base.height


def test_html_holds_eval_numbers_graph_configs_and_inlined_images(run_dir: Path) -> None:
    text = build_report(run_dir).read_text()
    for values in RESULTS.values():
        for value in values.values():
            assert f">{value:g}<" in text, value
    assert '<pre class="mermaid">flowchart LR' in text
    for name, (kind, after) in STAGES.items():
        assert f"s_{name}[&quot;{name}&lt;br/&gt;{kind}&quot;]" in text
        for before in after:
            assert f"s_{before} --&gt; s_{name}" in text
    assert "cold_samples/config.yaml</summary>" in text and "max_steps: 60" in text
    assert text.count("data:image/png;base64,") == 4
    assert "<td>287</td><td>1200</td><td>23.9%</td>" in text


def test_markdown_has_the_kept_seen_table_graph_and_image_links(run_dir: Path) -> None:
    build_report(run_dir)
    md = (run_dir / "report" / "report.md").read_text()
    assert "| stage | filter | kept | seen | kept/seen |" in md
    assert "| cold_samples | all filters | 287 | 1200 | 23.9% |" in md
    for name, counts in SUMMARY["per_filter"].items():
        assert f"| cold_samples | {name} | {counts['kept']} | {counts['seen']} |" in md
    assert "```mermaid\nflowchart LR\n" in md
    assert "  s_zero --> s_cold_samples" in md
    assert "![evaluation](eval.png)" in md and "![zero](curves_zero.png)" in md
    # Columns are the sorted union of metrics; a stage without a metric gets an empty cell.
    assert "| stage | accuracy | cons@4 | format_rate | mean_completion_tokens | num_prompts | pass@1 | reward/accuracy | reward/format |" in md
    assert "| final_eval | 0.6125 | 0.64 | 0.99 | 31.5 | 200 | 0.571 |  |  |" in md


def test_sparse_metrics_csv_reads_each_column_at_its_own_steps(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("step,epoch,loss,reward/format,note\n1,0,2.5,,x\n2,0,,0.5,y\n3,0,2.0,0.75,\n")
    series = read_metrics_csv(path)
    assert series == {"loss": [(1.0, 2.5), (3.0, 2.0)], "reward/format": [(2.0, 0.5), (3.0, 0.75)]}


def test_manifest_as_a_name_keyed_dict_and_eval_json_only(tmp_path: Path) -> None:
    """Tolerance: manifest `stages` keyed by name, no results.json, a nested eval.json, a stage folder the manifest lacks."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "config.yaml").write_text("name: extra\nkind: sft\n")
    (tmp_path / "b" / "eval.json").write_text(json.dumps({"arith_test": {"accuracy": 0.25}}))
    manifest = {"recipe": "r", "stages": {"b": {"kind": "eval", "after": ["a"]}, "a": {"kind": "pretrain", "after": []}}, "order": ["a", "b"]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    run = read_run(tmp_path)
    assert [(s.name, s.kind) for s in run.stages] == [("a", "pretrain"), ("b", "eval"), ("extra", "sft")]
    assert run.results == {"b": {"arith_test/accuracy": 0.25}}
    assert "s_a --> s_b" in mermaid_graph(run.stages)
    html_text = build_report(tmp_path).read_text()
    assert ">0.25<" in html_text
    _assert_not_blank(tmp_path / "report" / "eval.png")


def test_empty_run_folder_still_gives_a_report(tmp_path: Path) -> None:
    html_text = build_report(tmp_path).read_text()
    assert "No stage has been evaluated yet." in html_text
    assert not list((tmp_path / "report").glob("*.png"))


def test_report_does_not_import_matplotlib_at_module_import() -> None:
    import subprocess
    import sys

    code = "import sys, r1dsl.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "False"


def test_the_eval_table_shows_each_metric_with_its_standard_error_and_hides_the_se_columns():
    from r1dsl.report import eval_table

    header, rows = eval_table({"final": {"pass@1": 0.5, "pass@1_se": 0.125, "num_prompts": 8.0}})
    assert header == ["stage", "num_prompts", "pass@1"]
    assert rows == [["final", "8", "0.5 ± 0.12"]]
