"""The one settings vocabulary: a setting has a default, a one-line doc and limits (min, max, min_exclusive, choices).

Stage settings are IR dataclass fields made with `knob()` (r1dsl/ir.py); reward-rule and dataset-generator
parameters are `Param`s (backends/rewards and backends/data registrations). The checker types and
range-checks all of them with the same code. Every number has a range: a setting with no natural
bound gets a large finite one (stated in its doc), so nothing a recipe may write overflows later.
Tiny and dependency-free: the torch-free registries import it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

LIMITS = ("min", "max", "min_exclusive", "choices")  # what a setting may declare besides its default and doc
SEED_MAX = (1 << 32) - 1  # seeds are 0 .. 2^32 - 1, what NumPy and every RNG we seed accept
GENERATED_ROWS_MAX = 1_000_000  # rows a generator dataset may make (they are built in memory, some at compile time)


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

    def __post_init__(self) -> None:
        kinds = self.type if isinstance(self.type, tuple) else (self.type,)
        numeric = (int in kinds or float in kinds) and bool not in kinds
        if numeric and self.choices is None and (self.max is None or (self.min is None and self.min_exclusive is None)):
            raise TypeError(f"Param({self.default!r}, {self.doc!r}): a number declares its range (min or "
                            "min_exclusive, and max): a large finite one where nothing natural bounds it")

    @property
    def metadata(self) -> dict[str, Any]:
        """The same keys as a knob's field metadata (what the checker's one range check reads)."""
        return {"doc": self.doc, **{k: getattr(self, k) for k in LIMITS if getattr(self, k) is not None}}


@dataclass(frozen=True)
class Check:
    """A condition between parameters of one registration, checked by `r1dsl check` with the defaults filled in."""

    params: tuple[str, ...]  # the parameters it reads, in the order `ok` takes them
    ok: Callable[..., bool]
    message: str  # what must hold, e.g. "buffer must be at most max_tokens"


def agree(owner: str, fn: Callable, params: Mapping[str, Param], checks: tuple[Check, ...] = (),
          positional: tuple[str, ...] = ()) -> None:
    """`fn` takes every declared parameter, any default it writes is the declared one, and checks read declared ones.

    Raises at registration (import) time, so a function and its declaration cannot drift apart.
    `positional`: names the function takes besides the declared ones (a generator's size and seed).
    """
    for check in checks:
        missing = set(check.params) - set(params)
        if missing:
            raise ValueError(f"{owner}: check {check.message!r} reads undeclared {sorted(missing)}")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    for key, param in params.items():
        p = sig.parameters.get(key)
        if p is None:
            if not takes_any:
                raise ValueError(f"{owner}: parameter {key!r} is declared but the function does not take it")
            continue
        if p.default is not inspect.Parameter.empty and p.default != param.default:
            raise ValueError(f"{owner}: the function's default {key}={p.default!r} disagrees with the "
                             f"declared {param.default!r}; drop the function's default (the declaration is the one place)")
    if positional:
        extra = [n for n, p in sig.parameters.items() if n not in params and n not in positional
                 and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
        if extra:
            raise ValueError(f"{owner}: the function takes undeclared parameter(s) {extra}; declare them with Param")


REWARD_WEIGHT = Param(1.0, (int, float), "factor of the reward in the sum (-1000 to 1000: the group's advantage "
                      "statistics stay finite)", min=-1000, max=1000)
