"""The local target: one launch.sh per stage plus run_pipeline.sh, and `--run` on this machine.

Same interface as the targets in backends/launchers: `emit(pipeline) -> list[Path]`,
`run(pipeline, dry_run) -> int`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from r1dsl import ir
from r1dsl.compiler import ROOT, _write
from r1dsl.render import render


def command(job: ir.StageJob) -> list[str]:
    """The command that runs one stage: python -m backends.run_stage, under torchrun when it has several processes."""
    config = str(Path(job.dir) / "config.yaml")
    res = job.stage.resources
    procs = res.processes_per_node
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


KEY_FILE = "STAGE_KEY"  # the config hash a stage folder's outputs belong to


@dataclass(frozen=True)
class Decision:
    job: ir.StageJob
    run: bool
    reason: str


def decide(pipeline: ir.Pipeline, from_stage: str | None = None, only: str | None = None) -> list[Decision]:
    """Which stages run and why. A stage's key (its config hash) covers its resolved config, its inputs' keys
    and the code version, so a change anywhere upstream changes the key of everything downstream."""
    names = [job.stage.name for job in pipeline.jobs]
    for wanted, flag in ((from_stage, "--from"), (only, "--only")):
        if wanted is not None and wanted not in names:
            raise ValueError(f"{flag} {wanted}: no such stage (stages: {', '.join(names)})")
    forced: set[str] = set()
    if from_stage is not None:  # the stage and everything that reads from it, directly or not
        forced.add(from_stage)
        for job in pipeline.jobs:
            if forced & set(job.stage.after):
                forced.add(job.stage.name)
    decisions = []
    for job in pipeline.jobs:
        folder = Path(job.dir)
        old_key = _read(folder / KEY_FILE)
        done = (folder / "DONE").exists()
        name = job.stage.name
        if only is not None and name != only:
            decisions.append(Decision(job, False, f"not selected (--only {only})"))
        elif only is not None:
            decisions.append(Decision(job, True, "selected (--only)"))
        elif name in forced:
            decisions.append(Decision(job, True, f"selected (--from {from_stage})"))
        elif not done and old_key in (None, job.config_hash):
            decisions.append(Decision(job, True, "resumed from its last checkpoint" if old_key else "new"))
        elif old_key != job.config_hash:
            decisions.append(Decision(job, True, f"changed: key {(old_key or 'none')[:12]} -> {job.config_hash[:12]}"))
        else:
            decisions.append(Decision(job, False, f"unchanged (key {job.config_hash[:12]}), done"))
    return decisions


def run(pipeline: ir.Pipeline, dry_run: bool = False, from_stage: str | None = None, only: str | None = None) -> int:
    """Run the stages that need it, in order, in subprocesses (their output streams through).

    A stage whose outputs belong to another key is archived first (never deleted): its folder's
    previous contents move to <run_dir>/.previous/<stage>-<old key>/. Stops at the first failure.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        decisions = decide(pipeline, from_stage, only)
    except ValueError as e:
        print(f"r1dsl: {e}", file=sys.stderr)
        return 2
    for d in decisions:
        cmd = command(d.job)
        name = d.job.stage.name
        if dry_run:
            verb = "run " if d.run else "skip"
            print(f"{verb} {name:<28} {d.reason}")
            if d.run:
                print("     " + " ".join(_shell(w) for w in cmd))
            continue
        _record(pipeline, name, "ran" if d.run else "skipped", d.reason)
        if not d.run:
            print(f"== stage {name}: skipped: {d.reason}", flush=True)
            continue
        folder = Path(d.job.dir)
        old_key = _read(folder / KEY_FILE)
        if old_key != d.job.config_hash or (folder / "DONE").exists():
            if (folder / "DONE").exists() or old_key is not None or (folder / "checkpoints").exists():
                _archive(folder, Path(pipeline.run_dir), old_key or "unkeyed")
        _write(folder / KEY_FILE, d.job.config_hash + "\n")
        print(f"== stage {name} ({d.job.stage.kind}): {d.reason}", flush=True)
        code, stopped = _run_stage(cmd, env)
        if stopped is not None:
            _record(pipeline, name, "failed", f"stopped by signal {stopped}")
            print(f"r1dsl: stopped by signal {stopped} while stage {name} ran; it was asked to stop too (it saves a "
                  "checkpoint where it can); run again to resume", file=sys.stderr)
            return 128 + stopped
        if code != 0:
            _record(pipeline, name, "failed", f"exit status {code}")
            print(f"r1dsl: stage {name} failed (exit status {code}); fix it and run again: finished stages are skipped, "
                  "this one resumes from its last checkpoint", file=sys.stderr)
            return 1
    if not dry_run:
        results = Path(pipeline.run_dir) / "results.json"
        print(results_table(results))
        if results.exists():
            _write(Path(pipeline.run_dir) / "results.md", results_table(results, markdown=True))
    return 0


def _run_stage(cmd: list[str], env: dict) -> tuple[int, int | None]:
    """Run one stage to its end: (exit status, the signal that stopped this process or None). SIGTERM and SIGHUP
    sent to `r1dsl` (a scheduler, a closed terminal, `kill`) are passed on to the stage, which saves a
    checkpoint and exits; without that the stage would go on running, orphaned, after `r1dsl` is gone."""
    import signal

    got: list[int] = []
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env)

    def forward(signum, frame):
        got.append(signum)
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code, (got[0] if got else None)


KEEP = ("config.yaml", "launch.sh", KEY_FILE)


def _archive(folder: Path, run_dir: Path, old_key: str) -> None:
    """Move a stage's old outputs aside (one previous generation is kept per stage)."""
    import shutil

    dest = run_dir / ".previous" / f"{folder.name}-{old_key[:12]}"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for item in folder.iterdir():
        if item.name not in KEEP:
            os.replace(item, dest / item.name)
    # the stage's entry in results.json belongs to the old outputs too
    results = run_dir / "results.json"
    if results.exists():
        data = json.loads(results.read_text() or "{}")
        if folder.name in data:
            data.pop(folder.name)
            _write(results, json.dumps(data, indent=2) + "\n")


def _record(pipeline: ir.Pipeline, stage: str, action: str, reason: str) -> None:
    """manifest.json says, per stage, what the last `--run` did with it and why."""
    import time

    path = Path(pipeline.run_dir) / "manifest.json"
    data = json.loads(path.read_text())
    for entry in data["stages"]:
        if entry["name"] == stage:
            entry["last_run"] = {"action": action, "reason": reason, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    _write(path, json.dumps(data, indent=2) + "\n")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


# (key or key prefix, title): the headline is pass@1 over k samples [V2 D.1]; greedy beside it
COLUMNS = (("pass@1", "pass@1"), ("cons@", "cons@k"), ("greedy_accuracy", "greedy"), ("format_rate", "format"),
           ("mean_completion_tokens", "tokens"))
OTHER = ("train_loss", "train_reward", "samples_kept", "samples_seen", "pair_accuracy")


def results_table(path: Path, markdown: bool = False) -> str:
    """results.json ({stage: {metric: value}}) as one row per evaluated (stage, dataset), key metrics only.

    Every metric stays in results.json and the stage's eval.json; `r1dsl report` charts them."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        return f"(no results: {path} is missing or unreadable)"
    if not isinstance(results, dict) or not results:
        return "(no results)"
    try:  # run order, as the manifest beside it lists it
        order = json.loads((path.parent / "manifest.json").read_text())["order"]
    except (OSError, ValueError, KeyError):
        order = []
    stages = [s for s in order if s in results] + [s for s in results if s not in order]
    rows = [["stage", "eval set", *(title for _, title in COLUMNS), "other"]]
    for stage in stages:
        metrics = results[stage]
        metrics = metrics if isinstance(metrics, dict) else {}
        by_set: dict[str, dict] = {}
        for key, value in metrics.items():
            head, _, rest = key.partition("/")
            if rest and head != "reward":
                by_set.setdefault(head, {})[rest] = value
            else:
                by_set.setdefault("", {})[key] = value
        other = ", ".join(f"{k}={_fmt(by_set.get('', {}).get(k))}" for k in OTHER if k in by_set.get("", {}))
        sets = [name for name in by_set if name] or [""]
        for name in sets:
            m = by_set.get(name, {}) if name else by_set.get("", {})
            cells = [_cell(m, prefix) for prefix, _ in COLUMNS]
            if name or any(c != "-" for c in cells) or other:
                rows.append([stage, name or "-", *cells, other])
                other = ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if markdown:
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
        lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
        return "\n".join(lines) + "\n"
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(metrics: dict, prefix: str) -> str:
    """The first metric named `prefix...` (its standard error `..._se` beside it), or "-"."""
    key = next((k for k in metrics if k.startswith(prefix) and "/" not in k and not k.endswith("_se")), None)
    if key is None:
        return "-"
    se = metrics.get(key + "_se")
    return _fmt(metrics[key]) + (f" ±{se:.2g}" if isinstance(se, float) and se == se else "")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _shell(word: str) -> str:
    import shlex

    return shlex.quote(word)
