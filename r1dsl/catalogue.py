"""What the front end needs from the backends, handed to it in one object assembled at the edge.

The checker reads reward rules (their parameters and the fields they need) and dataset generators (the
fields their rows provide); the CLI reads launch targets and the stage runner. r1dsl never imports
backends itself: the CLI (the edge) installs `backends.catalogue.build()`, tests install it in their
conftest, and a front end without backends gets the empty catalogue (every rule and generator unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Catalogue:
    rules: Mapping[str, Any] = field(default_factory=dict)  # reward rule name -> registration (params, needs, checks)
    generators: Mapping[str, Any] = field(default_factory=dict)  # generator name -> registration (provides, fn)
    targets: Mapping[str, Callable[[], Any]] = field(default_factory=dict)  # target -> loader of its emit/run module
    run_stage: Callable[[list[str]], int] | None = None  # `python -m backends.run_stage ARGS`, as a function


_installed: Catalogue | None = None


def install(catalogue: Catalogue) -> None:
    """Make `catalogue` what the front end checks and launches against (called once, at the edge)."""
    global _installed
    _installed = catalogue


def current() -> Catalogue:
    """The installed catalogue, or the empty one."""
    return _installed if _installed is not None else Catalogue()
