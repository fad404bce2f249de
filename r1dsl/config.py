"""The compiled stage config (`<stage>/config.yaml`), typed: what the compiler writes and a runner loads.

    cfg = StageConfig.load(path)          # frozen dataclasses; a key that is not here is an error
    cfg.model.grpo.kl_penalty             # the IR section classes themselves (r1dsl/ir.py)
    cfg.trainer.precision, cfg.resources.processes_per_node, cfg.exp_manager.exp_dir

The sections `optim`, `train`, `grpo`, `sampling`, `filters` and `resources` are the IR dataclasses, so a
setting added to an IR section reaches the runner with no other change, and every default lives once
(in its `knob()`). The layout follows NeMo's (docs/design.md, "The compiled stage config").
Torch-free: the compiler (front end) and the runners (backends) both import it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from r1dsl import ir


class ConfigError(ValueError):
    """A stage config that does not match this layout (hand-edited, or from another version of r1dsl)."""


@dataclass(frozen=True)
class TrainerConfig:
    """What Lightning Fabric gets."""

    accelerator: str = "cpu"  # cpu when resources.gpus_per_node == 0, else gpu
    devices: int = 1  # processes per node (resources.processes_per_node)
    num_nodes: int = 1
    strategy: str = "auto"  # ddp when devices * num_nodes > 1
    precision: str = "32-true"  # bf16-mixed on GPU
    max_steps: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class InitConfig:
    """Where the stage's model starts: a tiny config, a hub id, a local directory or an earlier stage's model."""

    source: str  # tiny | hf | local | stage
    path: str | None = None  # hf id, local dir, or <run_dir>/<stage>/model
    tiny: ir.TinyModelConfig | None = None
    name: str | None = None


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    source: str  # generator | jsonl | parquet | hf | stage
    generator: str | None = None
    path: str | None = None  # absolute; for source stage <run_dir>/<stage>/data.jsonl
    split: str = "train"
    size: int | None = None
    seed: int = 0
    fields: Mapping[str, str] = field(default_factory=dict)  # canonical field -> column
    params: Mapping[str, Any] = field(default_factory=dict)  # generator parameters
    provides: tuple[str, ...] = ()
    rewards: tuple[str, ...] = ()  # the reward names routed to this dataset
    eval_samples_per_prompt: int | None = None  # k when this set is evaluated (None: the stage's sampling)
    from_step: int = 0  # grpo: the first step (0-based) whose prompts may come from this dataset


@dataclass(frozen=True)
class RewardConfig:
    name: str
    rule: str
    weight: float = 1.0
    params: Mapping[str, Any] = field(default_factory=dict)  # model references resolved to where they load from


@dataclass(frozen=True)
class DataConfig:
    train: tuple[DatasetConfig, ...] = ()
    eval: tuple[DatasetConfig, ...] = ()


@dataclass(frozen=True)
class ModelConfig:
    init: InitConfig
    template: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    rewards: tuple[RewardConfig, ...] = ()
    optim: ir.Optim = field(default_factory=ir.Optim)
    train: ir.Train = field(default_factory=ir.Train)
    grpo: ir.GRPO | None = None  # null unless the kind reads a grpo section
    sampling: ir.Sampling | None = None  # null unless the kind samples, or the recipe set it (eval sets)
    filters: ir.RejectionFilters | None = None  # null unless rejection_sample
    rollout: ir.Rollout = field(default_factory=ir.Rollout)


@dataclass(frozen=True)
class CheckpointConfig:
    dirpath: str
    every_n_train_steps: int = 50
    save_last: bool = True


@dataclass(frozen=True)
class ExpManagerConfig:
    run_dir: str
    exp_dir: str
    name: str
    resume_if_exists: bool
    create_tensorboard_logger: bool
    create_csv_logger: bool
    checkpoint_callback_params: CheckpointConfig


@dataclass(frozen=True)
class StageConfig:
    name: str
    kind: str
    recipe: str
    student_of: str | None  # the distill stage this sft job was lowered from
    trainer: TrainerConfig
    model: ModelConfig
    resources: ir.Resources
    exp_manager: ExpManagerConfig

    @classmethod
    def load(cls, path: str | Path) -> "StageConfig":
        """Read a compiled `config.yaml`; ConfigError (naming the key) when it does not fit."""
        import yaml

        with open(path) as f:
            data = yaml.safe_load(f)
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> "StageConfig":
        return from_plain(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the YAML layout (what `config.yaml` holds and W&B records)."""
        return plain(self)


# ---------------------------------------------------------------- plain data <-> dataclasses


def plain(value: Any) -> Any:
    """Dataclasses, mappings and tuples as plain dicts and lists (what YAML and JSON take); IR spans dropped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "span"}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def from_plain(typ: Any, data: Any, where: str = "config") -> Any:
    """`data` (plain YAML values) as an instance of the annotation `typ`, recursively."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if data is None:
            if len(args) < len(typing.get_args(typ)):
                return None
            raise ConfigError(f"{where}: must not be null")
        return from_plain(args[0], data, where) if len(args) == 1 else data
    if dataclasses.is_dataclass(typ):
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(typ)
        names = {f.name for f in dataclasses.fields(typ) if f.init}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        return typ(**{k: from_plain(hints[k], v, f"{where}.{k}") for k, v in data.items()})
    if origin is tuple:
        item = typing.get_args(typ)[0]
        return tuple(from_plain(item, v, f"{where}[{i}]") for i, v in enumerate(data or ()))
    if origin in (Mapping, dict) or typ in (Mapping, dict):
        return dict(data or {})
    if typ is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    return data
