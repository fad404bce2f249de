"""A progress bar with ETA for every long loop.

The display follows `R1DSL_PROGRESS` (set by `r1dsl compile --progress`): `auto` (rich on a terminal,
a plain line every ~5% in a log file), `rich`, `plain`, `jsonl` (one JSON object per update on stdout,
for scripts and CI) or `quiet` (nothing).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Mapping

MODES = ("auto", "rich", "plain", "jsonl", "quiet")


def progress_mode() -> str:
    mode = os.environ.get("R1DSL_PROGRESS", "auto")
    if mode not in MODES:
        mode = "auto"
    if mode == "auto":
        return "rich" if sys.stderr.isatty() else "plain"
    return mode


class ProgressBar:
    """`with ProgressBar(total, "pretrain") as bar: bar.update(step, loss=...)`; silent when disabled."""

    def __init__(self, total: int, description: str, enabled: bool = True, start: int = 0):
        self.total, self.description, self.enabled = total, description, enabled
        self.start_step, self.t0 = start, time.time()
        self._rich = None
        self._last_print = -1
        self.mode = progress_mode()
        if self.mode == "quiet":
            self.enabled = False

    def __enter__(self) -> "ProgressBar":
        if self.enabled and self.mode == "rich":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._rich = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total, completed=self.start_step, info="")
        return self

    def update(self, done: int, **info: Any) -> None:
        """`done` items finished so far (not an increment); `info` is shown next to the bar."""
        if not self.enabled:
            return
        if self.mode == "jsonl":
            elapsed = time.time() - self.t0
            rate = (done - self.start_step) / elapsed if elapsed > 0 else 0.0
            eta = (self.total - done) / rate if rate > 0 else None
            record = {"loop": self.description, "done": done, "total": self.total, "elapsed_s": round(elapsed, 3),
                      "eta_s": None if eta is None else round(eta, 3), **{k: _json_number(v) for k, v in info.items()}}
            print(json.dumps(record), flush=True)
            return
        text = _format(info)
        if self._rich is not None:
            self._rich.update(self._task, completed=done, info=text)
            return
        # plain log lines: at most ~20 per loop, plus the last one
        bucket = (done * 20) // max(1, self.total)
        if bucket != self._last_print or done >= self.total:
            self._last_print = bucket
            elapsed = time.time() - self.t0
            rate = (done - self.start_step) / elapsed if elapsed > 0 else 0.0
            eta = (self.total - done) / rate if rate > 0 else float("nan")
            print(f"{self.description} {done}/{self.total} elapsed {elapsed:.0f}s eta {eta:.0f}s {text}", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.stop()


def _json_number(v: Any) -> Any:
    v = v.item() if hasattr(v, "item") else v
    return None if isinstance(v, float) and v != v else v  # NaN is not JSON


def _format(info: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
