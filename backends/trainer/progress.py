"""A progress bar with ETA for every long loop: rich on a terminal, a plain line every ~5% in a log file."""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping


class ProgressBar:
    """`with ProgressBar(total, "pretrain") as bar: bar.update(step, loss=...)`; silent when disabled."""

    def __init__(self, total: int, description: str, enabled: bool = True, start: int = 0):
        self.total, self.description, self.enabled = total, description, enabled
        self.start_step, self.t0 = start, time.time()
        self._rich = None
        self._last_print = -1

    def __enter__(self) -> "ProgressBar":
        if self.enabled and sys.stderr.isatty():
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


def _format(info: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
