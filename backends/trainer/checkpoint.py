"""Resumable checkpoints: `checkpoints/step_000050/state.pt`, written to a temp folder then renamed.

A killed run leaves either a complete checkpoint folder or a `.tmp` folder that the next run deletes;
`latest()` only ever sees complete ones. The last `keep_last` checkpoints are kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

STEP_DIR = re.compile(r"^step_(\d+)$")


class Checkpointer:
    def __init__(self, fabric, dirpath: str | os.PathLike, every_n_steps: int, keep_last: int = 2):
        self.fabric = fabric
        self.dir = Path(dirpath)
        self.every = max(1, int(every_n_steps))
        self.keep_last = max(1, int(keep_last))
        if fabric.global_rank == 0 and self.dir.exists():
            for stale in self.dir.glob(".tmp_*"):  # left by a run killed while saving
                shutil.rmtree(stale, ignore_errors=True)

    def all(self) -> list[Path]:
        if not self.dir.exists():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := STEP_DIR.match(p.name)) and (p / "state.pt").exists()]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        found = self.all()
        return found[-1] if found else None

    def due(self, step: int, total: int) -> bool:
        """Checkpoint after optimizer step `step` (1-based count of finished steps)?"""
        return step % self.every == 0 and step < total

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Save `state` (modules, optimizers, schedulers, plain values) as of `step` finished steps."""
        final = self.dir / f"step_{step:06d}"
        tmp = self.dir / f".tmp_step_{step:06d}"
        if self.fabric.global_rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.fabric.barrier()
        self.fabric.save(tmp / "state.pt", {**state, "step": step})
        self.fabric.barrier()
        if self.fabric.global_rank == 0:
            (tmp / "meta.json").write_text(json.dumps({"step": step}) + "\n")
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            for old in self.all()[: -self.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
        self.fabric.barrier()
        return final

    def load(self, path: Path, state: dict[str, Any]) -> int:
        """Restore `state` in place from `path`; returns the step it was saved at."""
        remainder = self.fabric.load(path / "state.pt", state)
        state.update(remainder)  # values `state` did not name come back in the remainder
        return int(state.get("step", 0))
