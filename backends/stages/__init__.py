"""The stage registry: `STAGES[kind](cfg) -> dict[str, float]` runs one compiled stage config.

Runners import torch and transformers, so each entry imports its module on first call.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

StageFn = Callable[[Any], dict[str, float]]


def _lazy(module: str, function: str = "run") -> StageFn:
    def run(cfg) -> dict[str, float]:
        return getattr(importlib.import_module(module), function)(cfg)

    run.__qualname__ = f"{module}.{function}"
    return run


STAGES: dict[str, StageFn] = {
    "pretrain": _lazy("backends.stages.pretrain"),
    "sft": _lazy("backends.stages.sft"),
    "grpo": _lazy("backends.stages.grpo"),
    "eval": _lazy("backends.stages.eval"),
    "rejection_sample": _lazy("backends.stages.rejection_sample"),
    "reward_model": _lazy("backends.stages.reward_model"),
}
