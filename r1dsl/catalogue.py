"""What the front end needs to know from the backends, handed to it in one object.

The checker reads reward rules (their parameters and the fields they need) and dataset generators
(the fields their rows provide) from a `Catalogue`; it never imports backends itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping


@dataclass(frozen=True)
class Catalogue:
    rules: Mapping[str, Any] = field(default_factory=dict)  # reward rule name -> registration (params, needs)
    generators: Mapping[str, Any] = field(default_factory=dict)  # generator name -> registration (provides, fn)


@lru_cache(maxsize=1)
def installed() -> Catalogue:
    """The catalogue of the installed backends (empty parts where a backend is absent or broken)."""
    rules: dict = {}
    gens: dict = {}
    try:
        import backends.rewards  # noqa: F401  (registers the built-in rules)
        from backends.rewards.registry import REWARDS

        rules = dict(REWARDS)
    except Exception:  # a broken or absent backend must not break `r1dsl check`: rules become unknown
        try:
            from backends.rewards.registry import REWARDS

            rules = dict(REWARDS)
        except Exception:
            pass
    try:
        import backends.data.synthetic  # noqa: F401
    except Exception:
        pass
    try:
        from backends.data.generators import GENERATORS

        gens = dict(GENERATORS)
    except Exception:
        pass
    return Catalogue(rules, gens)
