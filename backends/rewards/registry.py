"""The reward registry: one registration per rule, read by the checker and called by the trainers.

Torch-free on purpose: `r1dsl check` imports this to learn each rule's parameters and the dataset
fields it needs. Heavy dependencies (sympy, subprocess sandboxes) are imported inside the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

RuleFn = Callable[..., list[float]]  # fn(completions: list[str], rows: list[dict], **params) -> list[float]


@dataclass(frozen=True)
class Param:
    default: Any
    type: type | tuple[type, ...]
    doc: str
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class RewardRule:
    name: str
    fn: RuleFn
    needs: tuple[str, ...]  # canonical dataset fields a row must carry (answer, tests, ...)
    params: Mapping[str, Param] = field(default_factory=dict)
    doc: str = ""


REWARDS: dict[str, RewardRule] = {}


def register(name: str, *, needs: Sequence[str] = (), params: Mapping[str, Param] | None = None, doc: str = ""):
    """Decorator: `@register("format", params={...})` on `fn(completions, rows, **params) -> list[float]`."""

    def wrap(fn: RuleFn) -> RuleFn:
        if name in REWARDS:
            raise ValueError(f"reward rule {name!r} registered twice")
        REWARDS[name] = RewardRule(name, fn, tuple(needs), dict(params or {}), doc or (fn.__doc__ or "").strip())
        return fn

    return wrap


def score(
    rewards: Sequence[Mapping[str, Any]], completions: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> tuple[list[float], dict[str, list[float]]]:
    """Weighted sum of the rules routed to each row.

    `rewards` are compiled reward entries ({name, rule, weight, params}); a row's `_rewards` key, when
    present, lists the reward names routed to its dataset. Returns the totals and each reward's raw values
    (NaN where a reward was not routed to a row).
    """
    _load_builtin_rules()
    n = len(completions)
    totals = [0.0] * n
    per_rule: dict[str, list[float]] = {}
    for reward in rewards:
        routed = [i for i in range(n) if reward["name"] in rows[i].get("_rewards", (reward["name"],))]
        values = [math.nan] * n
        if routed:
            rule = REWARDS[reward["rule"]]
            params = {k: v for k, v in dict(reward.get("params") or {}).items()}
            got = rule.fn([completions[i] for i in routed], [rows[i] for i in routed], **params)
            for i, v in zip(routed, got):
                v = float(v)
                values[i] = v if math.isfinite(v) else 0.0
                totals[i] += float(reward.get("weight", 1.0)) * values[i]
        per_rule[reward["name"]] = values
    return totals, per_rule


def _load_builtin_rules() -> None:
    """Import the modules that register the built-in rules (idempotent)."""
    from backends import rewards as _pkg  # noqa: F401  (its __init__ imports every rule module)
