"""Reward rules. Importing this package registers every built-in rule in `registry.REWARDS`.

Each rule module is light to import (sympy and the sandbox are imported when a rule first runs), so
`r1dsl check` can read the registry fast.
"""

from backends.rewards.registry import REWARDS, Param, RewardRule, register, score  # noqa: F401

from backends.rewards import code_accuracy, format, language, math_accuracy, model_based, shaping  # noqa: E402,F401
