"""Per-step metrics to `<stage>/metrics.csv` and TensorBoard events in `<stage>/tb/` (rank 0 only), and to
Weights & Biases when `R1DSL_WANDB_PROJECT` names a project (optional dependency `wandb`; the run is named
after the stage, and WANDB_MODE=offline works as usual)."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Mapping


class MetricsLogger:
    """`log(step, {name: value})` appends a CSV row and TensorBoard scalars.

    New metric names extend the CSV header (the file is rewritten once). On resume, `truncate_after(step)`
    drops the rows a killed run logged after its last checkpoint, so the CSV has each step once.
    """

    def __init__(self, exp_dir: str | os.PathLike, csv_enabled: bool = True, tensorboard: bool = True, enabled: bool = True,
                 wandb_config: Mapping[str, Any] | None = None):
        self.enabled = enabled
        self._wandb = None
        self.csv_path = Path(exp_dir) / "metrics.csv" if csv_enabled else None
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self._tb = None
        if not enabled:
            return
        Path(exp_dir).mkdir(parents=True, exist_ok=True)
        if self.csv_path is not None and self.csv_path.exists():
            with open(self.csv_path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                self.rows = list(reader)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(exp_dir) / "tb"))
        self._wandb = _wandb_run(Path(exp_dir), wandb_config)

    def truncate_after(self, step: int) -> None:
        if not self.enabled or self.csv_path is None:
            return
        self.rows = [r for r in self.rows if int(float(r["step"])) <= step]
        self._rewrite()

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"step": step, **{k: _number(v) for k, v in metrics.items()}}
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float))}, step=step)
        if self.csv_path is None:
            return
        self.rows.append(row)
        if any(k not in self.columns for k in row):
            self.columns += [k for k in row if k not in self.columns]
            self._rewrite()
        else:
            with open(self.csv_path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns).writerow(row)

    def _rewrite(self) -> None:
        tmp = self.csv_path.with_name(".metrics.csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns or ["step"])
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.csv_path)

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None


def _wandb_run(exp_dir: Path, config: Mapping[str, Any] | None):
    """A W&B run when R1DSL_WANDB_PROJECT is set; a clear error if wandb is not installed."""
    project = os.environ.get("R1DSL_WANDB_PROJECT")
    if not project:
        return None
    try:
        import wandb
    except ImportError as e:
        raise RuntimeError("R1DSL_WANDB_PROJECT is set but wandb is not installed: pip install 'r1dsl[wandb]'") from e
    return wandb.init(project=project, name=exp_dir.name, group=exp_dir.parent.name, dir=str(exp_dir),
                      config=dict(config or {}), resume="allow", id=f"{exp_dir.parent.name}-{exp_dir.name}"[:64])


def _number(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
