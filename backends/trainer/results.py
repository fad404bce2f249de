"""The files a stage leaves in the run folder: results.json (merged per stage) and the DONE marker.

Both are written atomically (a temp file in the same folder, then os.replace), so a killed stage never
leaves half a file and a concurrent reader sees the old or the new content.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any, Mapping


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def update_results(run_dir: str | os.PathLike, stage: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `metrics` into results.json under the `stage` key (other stages' entries are kept)."""
    path = Path(run_dir) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(".results.lock"), "w") as lock:  # stages of one run may finish at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(path.read_text()) if path.exists() else {}
        results.setdefault(stage, {}).update({k: _plain(v) for k, v in metrics.items()})
        atomic_write_json(path, results)
    return results


def _plain(v: Any) -> Any:
    """A JSON value: tensors and numpy scalars become Python numbers."""
    if hasattr(v, "item"):
        return v.item()
    return v


def done_path(exp_dir: str | os.PathLike) -> Path:
    return Path(exp_dir) / "DONE"


def is_done(exp_dir: str | os.PathLike) -> bool:
    return done_path(exp_dir).exists()


def write_done(exp_dir: str | os.PathLike, metrics: Mapping[str, Any] | None = None) -> None:
    """The last file a stage writes: its presence means the stage finished."""
    atomic_write_json(done_path(exp_dir), {k: _plain(v) for k, v in (metrics or {}).items()})
