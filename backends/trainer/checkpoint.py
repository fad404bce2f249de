"""Resumable checkpoints: `checkpoints/step_000050/state.pt`, written to a temp folder then renamed.

A killed run leaves either a complete checkpoint folder or a `.tmp` folder that the next run deletes;
`latest()` only ever sees complete ones. The last `keep_last` checkpoints are kept.

Under FSDP (sharded strategy) `state.pt` is a folder of per-rank shards (torch.distributed.checkpoint) and
a second sharded module of the state (the GRPO reference) gets its own `<key>.pt` next to it: Fabric
saves one sharded model per checkpoint.
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
        main, extra = self._split(state)
        self.fabric.save(tmp / "state.pt", {**main, "step": step})
        for key, module in extra.items():
            self.fabric.save(tmp / f"{key}.pt", {key: module})
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
        main, extra = self._split(state)
        stateful = {k: v for k, v in main.items() if _is_plain_stateful(v)}
        remainder = self.fabric.load(path / "state.pt", main)
        for key, module in extra.items():
            self.fabric.load(path / f"{key}.pt", {key: module})
        for key, obj in stateful.items():  # a sharded load hands back a scheduler's state dict, not the scheduler
            if main.get(key) is not obj:
                obj.load_state_dict(main[key])
                main[key] = obj
        state.update({k: v for k, v in main.items() if k not in extra})
        state.update(remainder)  # values `state` did not name come back in the remainder
        return int(state.get("step", 0))

    def _split(self, state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the state with its first module, the other modules) when sharded; (state, {}) otherwise."""
        from torch.nn import Module

        from backends.trainer.fabric import is_sharded

        if not is_sharded(self.fabric):
            return dict(state), {}
        modules = [k for k, v in state.items() if isinstance(v, Module)]
        extra = {k: state[k] for k in modules[1:]}
        return {k: v for k, v in state.items() if k not in extra}, extra


def _is_plain_stateful(obj: Any) -> bool:
    """An object with state_dict/load_state_dict that Fabric does not restore itself under a sharded load."""
    from torch.nn import Module
    from torch.optim import Optimizer

    if isinstance(obj, (Module, Optimizer)) or hasattr(obj, "optimizer") and hasattr(obj, "_strategy"):
        return False
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))
