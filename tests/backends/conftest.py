"""Stage configs for backend tests that need no recipe: built from the compiler's typed `StageConfig` classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pytest
import yaml

from backends.data.synthetic import R1_ZERO_TEMPLATE
from r1dsl.config import (
    CheckpointConfig,
    DataConfig,
    DatasetConfig,
    ExpManagerConfig,
    InitConfig,
    ModelConfig,
    RewardConfig,
    StageConfig,
    TrainerConfig,
)
from r1dsl.ir import GRPO, Optim, RejectionFilters, Resources, Rollout, Sampling, TinyModelConfig, Train

# A model small enough that a test stage trains in seconds on one CPU core.
MICRO_TINY = TinyModelConfig(arch="qwen2", hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=320,
                             max_position_embeddings=256)
MICRO_INIT = InitConfig(source="tiny", tiny=MICRO_TINY)  # a compiled `model.init` that builds MICRO_TINY
# Evaluation of a test stage: greedy, plus 2 samples at temperature 1 for pass@1 and cons@2.
EVAL_SAMPLING = Sampling(samples_per_prompt=2, temperature=1.0, top_p=1.0, max_completion_tokens=8)


def generated(name: str, generator: str, size: int, seed: int = 0, **params: Any) -> DatasetConfig:
    """A compiled `model.data.*` entry of a generator dataset."""
    from backends.data.generators import GENERATORS

    return DatasetConfig(name=name, source="generator", generator=generator, size=size, seed=seed, params=params,
                         provides=GENERATORS[generator].provides)


DEFAULT_REWARDS = (RewardConfig(name="accuracy", rule="math_accuracy"), RewardConfig(name="format", rule="format"))


def stage_config(
    run_dir: Path,
    name: str,
    kind: str,
    *,
    init: InitConfig = MICRO_INIT,
    train: Sequence[DatasetConfig] = (),
    eval: Sequence[DatasetConfig] = (),
    template: str | None = R1_ZERO_TEMPLATE,
    rewards: Sequence[RewardConfig] = DEFAULT_REWARDS,
    steps: int = 4,
    batch_size: int = 8,
    micro_batch_size: int = 8,
    max_seq_len: int = 160,
    lr: float = 3e-3,
    checkpoint_every: int = 2,
    devices: int = 1,
    grpo: GRPO | None = None,
    sampling: Sampling | None = None,
    filters: RejectionFilters | None = None,
    rollout: Rollout = Rollout(),
    seed: int = 7,
) -> dict[str, Any]:
    """A stage config as `r1dsl compile` writes `<run_dir>/<name>/config.yaml`: built from the typed `StageConfig`
    (the compiler's own classes, so the layout and every default are written once, in r1dsl/config.py and
    r1dsl/ir.py), returned as plain data for a test to adjust and `write_config`."""
    exp_dir = Path(run_dir) / name
    return StageConfig(
        name=name,
        kind=kind,
        recipe="test",
        student_of=None,
        trainer=TrainerConfig(devices=devices, strategy="ddp" if devices > 1 else "auto", max_steps=steps, seed=seed),
        model=ModelConfig(
            init=init,
            template=template,
            data=DataConfig(train=tuple(train), eval=tuple(eval)),
            rewards=tuple(rewards),
            optim=Optim(lr=lr, warmup_steps=1),
            train=Train(steps=steps, batch_size=batch_size, micro_batch_size=micro_batch_size, max_seq_len=max_seq_len,
                        checkpoint_every=checkpoint_every, seed=seed),
            grpo=grpo,
            sampling=sampling,
            filters=filters,
            rollout=rollout,
        ),
        resources=Resources(cpu_processes=devices, time_limit_min=10),
        exp_manager=ExpManagerConfig(
            run_dir=str(run_dir),
            exp_dir=str(exp_dir),
            name=name,
            resume_if_exists=True,
            create_tensorboard_logger=True,
            create_csv_logger=True,
            checkpoint_callback_params=CheckpointConfig(dirpath=str(exp_dir / "checkpoints"), every_n_train_steps=checkpoint_every),
        ),
    ).to_dict()


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
