"""`StageRun`: what every stage runner needs from its compiled config, in one object.

    run = StageRun(cfg)                       # Fabric, seeding, folders, metrics logger, checkpointer
    state = {"model": model, "optimizer": opt, "scheduler": sched}
    start = run.resume(state)                 # 0, or the step of the latest checkpoint (restored in place)
    with run.progress(total, start) as bar:
        for step in range(start, total):
            ...
            run.log(step + 1, {"loss": loss})
            run.maybe_checkpoint(step + 1, total, state)   # also where SIGUSR1 stops it (raises Preempted)
            bar.update(step + 1, loss=loss)
    run.save_model(model, tokenizer)          # <stage>/model (save_pretrained, rank 0)
    run.finish(metrics)                       # results.json[stage] += metrics, then DONE
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from backends.trainer.checkpoint import Checkpointer
from backends.trainer.fabric import full_state_dict, is_sharded, seed_everything, setup_fabric, unwrap
from backends.trainer.metrics import MetricsLogger
from backends.trainer.progress import ProgressBar
from backends.trainer.results import update_results, write_done
from backends.trainer import stop
from backends.trainer.stop import Preempted


class StageRun:
    def __init__(self, cfg, fabric=None):
        self.cfg = cfg
        self.name = str(cfg.name)
        self.fabric = fabric if fabric is not None else setup_fabric(cfg.trainer)
        self.rank, self.world_size = self.fabric.global_rank, self.fabric.world_size
        self.is_main = self.rank == 0
        self.seed = cfg.trainer.seed
        seed_everything(self.seed)
        exp = cfg.exp_manager
        self.run_dir = Path(exp.run_dir)
        self.exp_dir = Path(exp.exp_dir)
        if self.is_main:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
        ckpt = exp.checkpoint_callback_params
        self.checkpoints = Checkpointer(self.fabric, ckpt.dirpath, ckpt.every_n_train_steps)
        self.logger = MetricsLogger(
            self.exp_dir,
            csv_enabled=exp.create_csv_logger,
            tensorboard=exp.create_tensorboard_logger,
            enabled=self.is_main,
            wandb_config=_config_dict(cfg),
        )
        stop.install()

    @property
    def device(self):
        return self.fabric.device

    @property
    def precision(self) -> str:
        """The Fabric precision of the stage (`trainer.precision`): what weights load in and compute in."""
        return self.cfg.trainer.precision

    def print(self, *args: Any) -> None:
        self.fabric.print(*args)

    def resume(self, state: dict[str, Any]) -> int:
        """Restore `state` from the latest checkpoint when `resume_if_exists`; the step to continue from."""
        latest = self.checkpoints.latest() if self.cfg.exp_manager.resume_if_exists else None
        if latest is None:
            return 0
        step = self.checkpoints.load(latest, state)
        self.logger.truncate_after(step)
        self.print(f"[{self.name}] resumed from {latest} (step {step})")
        return step

    def maybe_checkpoint(self, step: int, total: int, state: dict[str, Any]) -> None:
        """Checkpoint when due; after a stop request (SIGUSR1), checkpoint now and raise Preempted."""
        if step < total and stop.agreed(self.fabric):
            path = self.checkpoints.save(step, state)
            if self.is_main:
                self.logger.close()
            raise Preempted(step, path)
        if self.checkpoints.due(step, total):
            self.checkpoints.save(step, state)

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.logger.log(step, metrics)

    def progress(self, total: int, start: int = 0, description: str | None = None) -> ProgressBar:
        return ProgressBar(total, description or self.name, enabled=self.is_main, start=start)

    def save_model(self, model, tokenizer) -> Path:
        """save_pretrained of the (unwrapped) model and tokenizer to <stage>/model, on rank 0."""
        from backends.models import save_policy

        path = self.exp_dir / "model"
        plain = unwrap(model)
        state_dict = full_state_dict(plain) if is_sharded(self.fabric) else None  # a collective: every rank
        if self.is_main:
            save_policy(plain, tokenizer, path, state_dict=state_dict)
        self.fabric.barrier()
        return path

    def finish(self, metrics: Mapping[str, Any] | None = None) -> None:
        """Record metrics in results.json, close the logger, write DONE last."""
        if self.is_main:
            if metrics:
                update_results(self.run_dir, self.name, metrics)
            self.logger.close()
            write_done(self.exp_dir, metrics)
        self.fabric.barrier()


def _config_dict(cfg) -> dict[str, Any]:
    """The stage config as plain data (what W&B records as the run's config)."""
    return cfg.to_dict()
