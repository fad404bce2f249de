"""The local target: one launch.sh per stage plus run_pipeline.sh, and `--run` on this machine.

Same interface as the targets in backends/launchers: `emit(pipeline) -> list[Path]`,
`run(pipeline, dry_run) -> int`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from r1dsl import ir
from r1dsl.compiler import ROOT, _write
from r1dsl.render import render


def command(job: ir.StageJob) -> list[str]:
    """The command that runs one stage: python -m backends.run_stage, under torchrun when it has several processes."""
    config = str(Path(job.dir) / "config.yaml")
    res = job.stage.resources
    procs = res.gpus_per_node if res.gpus_per_node > 0 else res.cpu_processes
    if procs > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
                "-m", "backends.run_stage", config]
    return [sys.executable, "-m", "backends.run_stage", config]


def emit(pipeline: ir.Pipeline) -> list[Path]:
    written = []
    stages = []
    for job in pipeline.jobs:
        launch = Path(job.dir) / "launch.sh"
        done = Path(job.dir) / "DONE"
        text = render(
            "local/stage.sh.j2",
            name=job.stage.name,
            kind=job.stage.kind,
            recipe=pipeline.recipe.name,
            root=str(ROOT),
            done=str(done),
            command=command(job),
        )
        _write(launch, text, mode=0o755)
        written.append(launch)
        stages.append({"name": job.stage.name, "kind": job.stage.kind, "launch": str(launch), "done": str(done)})
    script = Path(pipeline.run_dir) / "run_pipeline.sh"
    _write(script, render("local/pipeline.sh.j2", recipe=pipeline.recipe.name, stages=stages), mode=0o755)
    written.append(script)
    return written


def run(pipeline: ir.Pipeline, dry_run: bool = False) -> int:
    """Run each stage in order in a subprocess (its output streams through); stop at the first failure."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for job in pipeline.jobs:
        cmd = command(job)
        done = Path(job.dir) / "DONE"
        if dry_run:
            state = "  # done, would be skipped" if done.exists() else ""
            print(" ".join(_shell(w) for w in cmd) + state)
            continue
        if done.exists():
            print(f"== stage {job.stage.name}: done, skipped", flush=True)
            continue
        print(f"== stage {job.stage.name} ({job.stage.kind})", flush=True)
        code = subprocess.call(cmd, cwd=str(ROOT), env=env)
        if code != 0:
            print(f"r1dsl: stage {job.stage.name} failed (exit status {code}); fix it and run again: finished stages are skipped",
                  file=sys.stderr)
            return 1
    if not dry_run:
        print(results_table(Path(pipeline.run_dir) / "results.json"))
    return 0


def results_table(path: Path) -> str:
    """results.json ({stage: {metric: value}}) as an aligned text table."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        return f"(no results: {path} is missing or unreadable)"
    if not isinstance(results, dict) or not results:
        return "(no results)"
    metrics = sorted({m for row in results.values() if isinstance(row, dict) for m in row})
    rows = [["stage", *metrics]]
    for stage, row in results.items():
        row = row if isinstance(row, dict) else {}
        rows.append([stage, *(_fmt(row.get(m)) for m in metrics)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _shell(word: str) -> str:
    import shlex

    return shlex.quote(word)
