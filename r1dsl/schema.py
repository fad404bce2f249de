"""What a recipe may say, in one place: stage kinds, their sections and shorthands, and field needs.

The settings inside each section come from the IR dataclasses themselves (`r1dsl.ir`: field
metadata is the schema); this module only says which section belongs to which stage kind.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import lru_cache

from r1dsl import ir

STAGE_KINDS = ("pretrain", "sft", "grpo", "rejection_sample", "distill", "eval", "reward_model")

# section name -> IR dataclass
SECTIONS: dict[str, type] = {
    "optim": ir.Optim,
    "train": ir.Train,
    "grpo": ir.GRPO,
    "sampling": ir.Sampling,
    "filters": ir.RejectionFilters,
    "rollout": ir.Rollout,
    "resources": ir.Resources,
}

# sections each kind reads (sampling: how a training stage generates for its `eval` sets)
KIND_SECTIONS: dict[str, tuple[str, ...]] = {
    "pretrain": ("optim", "train", "sampling", "resources"),
    "sft": ("optim", "train", "sampling", "resources"),
    "distill": ("optim", "train", "sampling", "resources"),
    "grpo": ("optim", "grpo", "sampling", "rollout", "resources"),
    "rejection_sample": ("sampling", "filters", "rollout", "resources"),
    "eval": ("sampling", "rollout", "resources"),
    "reward_model": ("optim", "train", "resources"),  # a Bradley-Terry preference model (backends/stages/reward_model.py)
}

# stage-level settings that are not sections; `students` only for distill
STAGE_KEYS = ("from", "data", "template", "rewards", "route", "eval", "students")

# canonical fields each kind needs in its training data
KIND_NEEDS: dict[str, tuple[str, ...]] = {
    "pretrain": ("text",),
    "sft": ("prompt", "response"),
    "distill": ("prompt", "response"),
    "grpo": ("prompt",),
    "rejection_sample": ("prompt",),
    "eval": ("prompt",),
    "reward_model": ("prompt", "chosen", "rejected"),
}

# what a rejection_sample stage's data.jsonl rows carry
STAGE_DATA_PROVIDES = ("prompt", "response", "answer")

# the stage kinds whose output is a model (`from` may name them)
MODEL_PRODUCERS = ("pretrain", "sft", "grpo")

DATASET_SOURCES = ("generator", "jsonl", "parquet", "hf")
MODEL_SOURCES = ("hf", "path", "tiny")


def shorthand(kind: str, key: str) -> tuple[str, str] | None:
    """Stage-level shorthands: group_size, lr, steps -> (section, key)."""
    if key == "lr" and "optim" in KIND_SECTIONS.get(kind, ()):
        return ("optim", "lr")
    if key == "group_size" and kind == "grpo":
        return ("grpo", "num_generations_per_prompt")
    if key == "steps":
        if kind == "grpo":
            return ("grpo", "steps")
        if "train" in KIND_SECTIONS.get(kind, ()):
            return ("train", "steps")
    return None


SHORTHAND_NAMES = ("group_size", "lr", "steps")


@lru_cache(maxsize=None)
def knobs(cls: type) -> dict[str, tuple[dataclasses.Field, object]]:
    """name -> (field, resolved type) for each setting of an IR section dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls) if f.name != "span"}


def section_of(key: str) -> list[str]:
    """The sections that have a setting named `key` (to teach where a misplaced key belongs)."""
    return [name for name, cls in SECTIONS.items() if key in knobs(cls)]
