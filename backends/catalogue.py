"""The backends' side of the front end's catalogue (r1dsl/catalogue.py): rules, generators, targets, runner.

Built at the edge (the `r1dsl` CLI, the tests' conftest) and handed to the front end, so that r1dsl
never imports backends. Torch-free: reward rules and generators register without torch; targets load
when used.
"""

from __future__ import annotations

import importlib

from r1dsl.catalogue import Catalogue


def build() -> Catalogue:
    """The catalogue of these backends (a rule or generator module that fails to import is left out)."""
    rules: dict = {}
    gens: dict = {}
    try:
        import backends.rewards  # noqa: F401  (registers the built-in rules)
    except Exception:  # a broken rule module must not break `r1dsl check`: its rules become unknown
        pass
    from backends.rewards.registry import REWARDS

    rules = dict(REWARDS)
    try:
        import backends.data.synthetic  # noqa: F401  (registers the generators)
    except Exception:
        pass
    from backends.data.generators import GENERATORS

    gens = dict(GENERATORS)
    return Catalogue(rules, gens, {name: _target(name) for name in ("slurm", "nemo-rl")}, _run_stage)


def _target(name: str):
    def load():
        from backends.launchers import TARGETS

        return TARGETS[name]

    load.__qualname__ = f"target:{name}"
    return load


def _run_stage(argv: list[str]) -> int:
    return importlib.import_module("backends.run_stage").main(argv)
