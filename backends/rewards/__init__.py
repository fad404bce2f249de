"""Reward rules. Importing this package registers every built-in rule in `registry.REWARDS`."""

from backends.rewards.registry import REWARDS, Param, RewardRule, register, score  # noqa: F401
