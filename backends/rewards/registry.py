"""The reward registry: one registration per rule, read by the checker and called by the trainers.

Torch-free on purpose: `r1dsl check` imports this to learn each rule's parameters and the dataset
fields it needs. Heavy dependencies (sympy, subprocess sandboxes) are imported inside the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from r1dsl.config import RewardConfig  # a compiled reward entry: name, rule, weight, params
from r1dsl.settings import Check, Param, agree  # the settings vocabulary of the whole project: default, type, doc, limits

RuleFn = Callable[..., list[float]]  # fn(completions: list[str], rows: list[dict], **params) -> list[float]


@dataclass(frozen=True)
class RewardRule:
    name: str
    fn: RuleFn
    needs: tuple[str, ...]  # canonical dataset fields a row must carry (answer, tests, ...)
    params: Mapping[str, Param] = field(default_factory=dict)
    doc: str = ""
    checks: tuple[Check, ...] = ()

    def defaults(self) -> dict[str, Any]:
        """Every parameter's declared default (what the function gets for a parameter the recipe leaves out)."""
        return {k: p.default for k, p in self.params.items()}

    def __call__(self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]], **params: Any) -> list[float]:
        """The rule's scores, with the declared defaults for the parameters not given."""
        return self.fn(completions, rows, **{**self.defaults(), **params})


REWARDS: dict[str, RewardRule] = {}


def register(name: str, *, needs: Sequence[str] = (), params: Mapping[str, Param] | None = None, doc: str = "",
             checks: Sequence[Check] = ()):
    """Decorator: `@register("format", params={...})` on `fn(completions, rows, *, PARAM, ...) -> list[float]`.

    Defaults live in the `Param`s only: the function is called with every parameter. A default the function
    also writes must agree with its `Param` (else this raises), so the two cannot drift apart.
    """

    def wrap(fn: RuleFn) -> RuleFn:
        if name in REWARDS:
            raise ValueError(f"reward rule {name!r} registered twice")
        declared = dict(params or {})
        agree(f"reward rule {name!r}", fn, declared, tuple(checks))
        REWARDS[name] = RewardRule(name, fn, tuple(needs), declared, doc or (fn.__doc__ or "").strip(), tuple(checks))
        return fn

    return wrap


GROUND_TRUTH_FIELDS = ("answer", "tests")  # a rule that needs one of these fields judges correctness
COMPLETION_TOKENS = "_completion_tokens"  # the row key through which a rule sees its completion's token count


def score(
    rewards: Sequence[RewardConfig], completions: Sequence[str], rows: Sequence[Mapping[str, Any]],
    completion_tokens: Sequence[int],
) -> tuple[list[float], dict[str, list[float]]]:
    """Weighted sum of the rules routed to each row.

    `rewards` are compiled reward entries (`model.rewards` of a stage config); a row's `_rewards` key, when
    present, lists the reward names routed to its dataset. `completion_tokens[i]` is the number of tokens
    of `completions[i]` (what length rules count); each rule sees it as `row["_completion_tokens"]`.
    Returns the totals and each reward's raw values (NaN where a reward was not routed to a row).
    """
    _load_builtin_rules()
    n = len(completions)
    if len(rows) != n or len(completion_tokens) != n:
        raise ValueError(f"score: {n} completions, {len(rows)} rows, {len(completion_tokens)} token counts")
    rows = [{**row, COMPLETION_TOKENS: int(t)} for row, t in zip(rows, completion_tokens)]
    totals = [0.0] * n
    per_rule: dict[str, list[float]] = {}
    for reward in rewards:
        routed = [i for i in range(n) if reward.name in rows[i].get("_rewards", (reward.name,))]
        values = [math.nan] * n
        if routed:
            rule = REWARDS[reward.rule]
            params = {**rule.defaults(), **reward.params}
            got = rule.fn([completions[i] for i in routed], [rows[i] for i in routed], **params)
            for i, v in zip(routed, got):
                v = float(v)
                values[i] = v if math.isfinite(v) else 0.0
                totals[i] += reward.weight * values[i]
        per_rule[reward.name] = values
    return totals, per_rule


def _load_builtin_rules() -> None:
    """Import the modules that register the built-in rules (idempotent)."""
    from backends import rewards as _pkg  # noqa: F401  (its __init__ imports every rule module)
