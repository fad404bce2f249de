"""The one settings vocabulary: a setting has a default, a one-line doc and limits (min, max, min_exclusive, choices).

Stage settings are IR dataclass fields made with `knob()` (r1dsl/ir.py); reward-rule parameters are
`Param`s (backends/rewards registrations). The checker types and range-checks both with the same code.
Tiny and dependency-free: the torch-free reward registry imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LIMITS = ("min", "max", "min_exclusive", "choices")  # what a setting may declare besides its default and doc
SEED_MAX = (1 << 32) - 1  # seeds are 0 .. 2^32 - 1, what NumPy and every RNG we seed accept


def knob(default: Any, doc: str, **limits: Any) -> Any:
    """A recipe setting with its default, one-line doc and limits (min, max, min_exclusive, choices)."""
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise TypeError(f"knob(): unknown limit(s) {sorted(unknown)}; known: {', '.join(LIMITS)}")
    return field(default=default, metadata={"doc": doc, **limits})


@dataclass(frozen=True)
class Param:
    """A reward rule's parameter, in the vocabulary of `knob`: default, type, one-line doc and limits.

    The checker types and range-checks it with the same code as a section setting; the rule's function
    receives every parameter (defaults filled in from here), so a default is written once.
    """

    default: Any
    type: type | tuple[type, ...]
    doc: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: float | None = None
    required: bool = False  # no default makes sense (a judge's model): the recipe must set it

    @property
    def metadata(self) -> dict[str, Any]:
        """The same keys as a knob's field metadata (what the checker's one range check reads)."""
        return {"doc": self.doc, **{k: getattr(self, k) for k in LIMITS if getattr(self, k) is not None}}

