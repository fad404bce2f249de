"""What a recipe may say: the sections, the stage-level keys and shorthands (stage kinds: r1dsl/kinds.py).

The settings inside each section come from the IR dataclasses themselves (`r1dsl.ir`: field
metadata is the schema); which kind reads which section is a column of the kinds table (r1dsl/kinds.py).
"""

from __future__ import annotations

import dataclasses
import typing
from functools import lru_cache

from r1dsl import ir
from r1dsl.kinds import KINDS

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

# stage-level settings that are not sections; `students` only for distill
STAGE_KEYS = ("from", "data", "template", "rewards", "route", "from_step", "eval", "students")
# stage-level sections keyed by dataset: route { DATASET = [rewards] }, from_step { DATASET = STEP }
NAMED_SECTIONS = ("route", "from_step")

# what a rejection_sample stage's data.jsonl rows carry
STAGE_DATA_PROVIDES = ("prompt", "response", "answer")

DATASET_SOURCES = ("generator", "jsonl", "parquet", "hf")
MODEL_SOURCES = ("hf", "path", "tiny")


def shorthand(kind: str, key: str) -> tuple[str, str] | None:
    """Stage-level shorthands: group_size, lr, steps -> (section, key)."""
    row = KINDS.get(kind)
    sections = row.sections if row else ()
    if key == "lr" and "optim" in sections:
        return ("optim", "lr")
    if key == "group_size" and "grpo" in sections:
        return ("grpo", "num_generations_per_prompt")
    if key == "steps":
        if "grpo" in sections:
            return ("grpo", "steps")
        if "train" in sections:
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
