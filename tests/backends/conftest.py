"""Stage configs written by hand in the layout of docs/design.md, for backend tests that need no compiler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from backends.data.synthetic import R1_ZERO_TEMPLATE
from r1dsl.config import InitConfig, plain
from r1dsl.ir import TinyModelConfig

# A model small enough that a test stage trains in seconds on one CPU core.
MICRO_TINY = TinyModelConfig(arch="qwen2", hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=320,
                             max_position_embeddings=256)
MICRO_INIT = InitConfig(source="tiny", tiny=MICRO_TINY)  # a compiled `model.init` that builds MICRO_TINY


def generated(name: str, generator: str, size: int, seed: int = 0, **params: Any) -> dict[str, Any]:
    """A compiled `model.data.*` entry of a generator dataset."""
    from backends.data.generators import GENERATORS

    return {
        "name": name,
        "source": "generator",
        "generator": generator,
        "path": None,
        "split": "train",
        "size": size,
        "seed": seed,
        "fields": {},
        "params": params,
        "provides": list(GENERATORS[generator].provides),
        "rewards": [],
    }


def stage_config(
    run_dir: Path,
    name: str,
    kind: str,
    *,
    init: dict[str, Any] | None = None,
    train: list[dict[str, Any]] | None = None,
    eval: list[dict[str, Any]] | None = None,
    template: str | None = R1_ZERO_TEMPLATE,
    rewards: list[dict[str, Any]] | None = None,
    steps: int = 4,
    batch_size: int = 8,
    micro_batch_size: int = 8,
    max_seq_len: int = 160,
    lr: float = 3e-3,
    checkpoint_every: int = 2,
    devices: int = 1,
    sampling: dict[str, Any] | None = None,
    seed: int = 7,
) -> dict[str, Any]:
    """A stage config dict exactly as `r1dsl compile` writes `<run_dir>/<name>/config.yaml`."""
    exp_dir = Path(run_dir) / name
    return {
        "name": name,
        "kind": kind,
        "recipe": "test",
        "student_of": None,
        "trainer": {
            "accelerator": "cpu",
            "devices": devices,
            "num_nodes": 1,
            "strategy": "ddp" if devices > 1 else "auto",
            "precision": "32-true",
            "max_steps": steps,
            "seed": seed,
        },
        "model": {
            "init": init or {"source": "tiny", "path": None, "tiny": plain(MICRO_TINY)},
            "template": template,
            "data": {"train": train or [], "eval": eval or []},
            "rewards": rewards
            if rewards is not None
            else [
                {"name": "accuracy", "rule": "math_accuracy", "weight": 1.0, "params": {}},
                {"name": "format", "rule": "format", "weight": 1.0, "params": {}},
            ],
            "optim": {"lr": lr, "min_lr_ratio": 0.1, "lr_schedule": "cosine", "warmup_steps": 1, "weight_decay": 0.0, "max_grad_norm": 1.0},
            "train": {
                "steps": steps,
                "epochs": None,
                "batch_size": batch_size,
                "micro_batch_size": micro_batch_size,
                "max_seq_len": max_seq_len,
                "checkpoint_every": checkpoint_every,
                "seed": seed,
            },
            "grpo": None,
            "sampling": sampling,
            "filters": None,
        },
        "resources": {"nodes": 1, "gpus_per_node": 0, "cpu_processes": devices, "time_limit_min": 10},
        "exp_manager": {
            "run_dir": str(run_dir),
            "exp_dir": str(exp_dir),
            "name": name,
            "resume_if_exists": True,
            "create_tensorboard_logger": True,
            "create_csv_logger": True,
            "checkpoint_callback_params": {"dirpath": str(exp_dir / "checkpoints"), "every_n_train_steps": checkpoint_every, "save_last": True},
        },
    }


def write_config(config: dict[str, Any]) -> Path:
    """Write `<exp_dir>/config.yaml` and return its path."""
    path = Path(config["exp_manager"]["exp_dir"]) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def load(config: dict[str, Any]):
    """The config as the stage runner sees it: the typed StageConfig (a key out of layout is an error here)."""
    from r1dsl.config import StageConfig

    return StageConfig.from_dict(config)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"
