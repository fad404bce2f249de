"""The stage registry: `STAGES[kind](cfg) -> dict[str, float]` runs one compiled stage config.

Runners import torch and transformers, so each entry imports its module on first call.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from r1dsl.kinds import KINDS

StageFn = Callable[[Any], dict[str, float]]


def _lazy(module: str, function: str = "run") -> StageFn:
    def run(cfg) -> dict[str, float]:
        return getattr(importlib.import_module(module), function)(cfg)

    run.__qualname__ = f"{module}.{function}"
    return run


# one entry per runnable kind of the kinds table (r1dsl/kinds.py: the `runner` column)
STAGES: dict[str, StageFn] = {name: _lazy(k.runner) for name, k in KINDS.items() if k.runner}
