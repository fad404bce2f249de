"""Shared training infrastructure of every stage: Fabric, checkpoints, metrics, progress, results, schedules."""

from backends.trainer.checkpoint import Checkpointer  # noqa: F401
from backends.trainer.fabric import seed_everything, setup_fabric  # noqa: F401
from backends.trainer.metrics import MetricsLogger  # noqa: F401
from backends.trainer.progress import ProgressBar  # noqa: F401
from backends.trainer.results import atomic_write_json, is_done, update_results, write_done  # noqa: F401
from backends.trainer.run import StageRun  # noqa: F401
from backends.trainer.schedule import build_optimizer, build_scheduler, lr_factor  # noqa: F401
