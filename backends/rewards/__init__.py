"""Reward rules. Importing this package registers every built-in rule in `registry.REWARDS`."""

from backends.rewards.registry import REWARDS, Param, RewardRule, register, score  # noqa: F401

from backends.rewards import format, math_accuracy  # noqa: E402,F401  (each module registers its rules)
