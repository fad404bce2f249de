"""Reward-rule parameters use the settings vocabulary of stage settings: typed, limited, documented, checked."""

from __future__ import annotations

import inspect

import pytest

from backends.rewards import REWARDS
from r1dsl.frontend import check_file

RECIPE = '''recipe r
model tiny {{ tiny {{ hidden_size = 64 }} }}
dataset arith {{ generator = "arithmetic"  size = 20 }}
reward accuracy {{ rule = "math_accuracy" }}
reward shaped {{ {reward} }}
stage zero: grpo {{ from = tiny  data = arith  rewards = [accuracy, shaped] }}
'''


def diagnose(write, reward: str) -> list[tuple[str, str, str | None]]:
    result = check_file(str(write("r.r1", RECIPE.format(reward=reward))))
    return [(d.code, d.message, d.help) for d in result.diagnostics]


def test_overlong_buffer_zero_is_a_range_error_with_the_parameter_doc(write):
    [(code, message, help)] = diagnose(write, 'rule = "overlong"  buffer = 0')
    assert code == "E005" and message == "`reward shaped.buffer` must be at least 1 (got 0)"
    assert help.startswith("reward shaped.buffer: L_cache")


def test_a_condition_between_parameters_is_checked_with_defaults_filled_in(write):
    [(code, message, _)] = diagnose(write, 'rule = "overlong"  buffer = 5000')  # max_tokens defaults to 4096
    assert code == "E005" and "buffer must be at most max_tokens (got buffer = 5000, max_tokens = 4096)" in message
    assert diagnose(write, 'rule = "overlong"  buffer = 5000  max_tokens = 8192') == []


def test_choices_and_types_of_parameters(write):
    [(code, message, _)] = diagnose(write, 'rule = "length"  mode = "cosin"')
    assert code == "E005" and '"cosine", "linear"' in message
    [(code, _, _)] = diagnose(write, 'rule = "length"  max_tokens = "long"')
    assert code == "E004"


@pytest.mark.parametrize("rule", ["judge", "preference_model"])
def test_a_model_based_reward_without_its_model_is_a_check_error(write, rule):
    [(code, message, help)] = diagnose(write, f'rule = "{rule}"')
    assert code == "E011" and message == f"reward `shaped` (rule {rule}) needs `model`"
    assert help.startswith("add model = ...")


def test_function_defaults_come_from_the_declaration_only():
    """A rule function writes no default that its registration also writes (else the two drift apart)."""
    for name, rule in REWARDS.items():
        params = inspect.signature(rule.fn).parameters
        for key, spec in rule.params.items():
            if key in params and params[key].default is not inspect.Parameter.empty:
                assert params[key].default == spec.default, (name, key)


def test_rules_are_called_with_declared_defaults():
    assert REWARDS["overlong"](["a b c"], [{"_completion_tokens": 4000}]) == [pytest.approx((3584 - 4000) / 512)]
    assert REWARDS["length"]([""], [{}], mode="linear", max_tokens=10) == [1.0]
