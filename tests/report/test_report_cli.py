"""`r1dsl report` on a folder the real compiler wrote: the graph and configs come from its manifest.json."""

from __future__ import annotations

import json
from pathlib import Path

from r1dsl.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_report_of_a_compiled_run_shows_its_stage_graph_configs_and_curves(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["compile", str(ROOT / "recipes" / "tiny_r1_zero.r1"), "-o", str(run)]) == 0
    # What the backend would add after the GRPO stage ran.
    rows = ["step,reward,reward/accuracy,reward/format,accuracy,format,completion_length,kl,loss"]
    rows += [f"{s},{s / 30:.3f},{s / 60:.3f},{s / 60:.3f},{s / 60:.3f},{s / 60:.3f},{20 + s},{0.001 * s:.4f},{1 - s / 60:.3f}" for s in range(1, 61)]
    (run / "zero" / "metrics.csv").write_text("\n".join(rows) + "\n")
    (run / "results.json").write_text(json.dumps({"zero": {"accuracy": 0.4375, "num_prompts": 200.0}}))
    capsys.readouterr()

    assert main(["report", str(run)]) == 0
    html_path = Path(capsys.readouterr().out.strip())
    assert html_path == run / "report" / "report.html"
    text = html_path.read_text()
    assert "s_base --&gt; s_zero" in text
    assert "zero/config.yaml</summary>" in text and "num_generations_per_prompt: 8" in text
    assert "<td>0.4375</td>" in text
    assert (run / "report" / "curves_zero.png").is_file() and (run / "report" / "eval.png").is_file()


def test_report_of_a_missing_folder_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no run folder" in capsys.readouterr().err
