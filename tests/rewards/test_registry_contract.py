"""The registry contract the checker and the trainers rely on."""

import math
import subprocess
import sys

import pytest

from backends.rewards import REWARDS, Param, score
from r1dsl.config import RewardConfig

EXPECTED = {"math_accuracy", "code_accuracy", "format", "language_consistency", "length", "overlong", "repetition"}


def test_every_builtin_rule_is_registered_by_importing_the_package():
    assert EXPECTED <= set(REWARDS)
    assert {"judge", "preference_model"} <= set(REWARDS)  # model-based rules: tests/backends/test_model_rewards.py


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_param_is_declared_with_a_typed_default_and_valid_choices(name):
    rule = REWARDS[name]
    assert rule.doc
    for pname, p in rule.params.items():
        assert isinstance(p, Param), pname
        assert isinstance(p.default, p.type), (name, pname)
        assert p.doc
        if p.choices is not None:
            assert p.default in p.choices


def test_needs_declare_the_dataset_fields():
    assert REWARDS["math_accuracy"].needs == ("answer",)
    assert REWARDS["code_accuracy"].needs == ("tests",)
    assert REWARDS["format"].needs == ()


def test_import_is_fast_and_torch_free():
    code = (
        "import time, sys; t = time.perf_counter(); import backends.rewards; dt = time.perf_counter() - t; "
        "assert 'torch' not in sys.modules and 'sympy' not in sys.modules, 'heavy import'; print(dt)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 0.3


def test_score_applies_weights_routing_and_logs_each_rule():
    completions = [" <think> 6*7 </think> <answer> 42 </answer>", " <think> x </think> <answer> 41 </answer>", "42"]
    rows = [{"answer": "42"}, {"answer": "42"}, {"answer": "42", "_rewards": ["fmt"]}]
    rewards = [
        RewardConfig(name="acc", rule="math_accuracy"),
        RewardConfig(name="fmt", rule="format", weight=0.5, params={"mode": "strict"}),
    ]
    total, per = score(rewards, completions, rows, [12, 12, 1])
    assert per["acc"][:2] == [1.0, 0.0] and math.isnan(per["acc"][2])  # not routed to row 2
    assert per["fmt"] == [1.0, 1.0, 0.0]
    assert total == [1.5, 0.5, 0.0]


def test_length_rules_count_the_tokens_score_is_given_not_words():
    """`length` and `overlong` see each completion's token count (from the trainer), not its word count."""
    rewards = [RewardConfig(name="long", rule="overlong", params={"max_tokens": 10, "buffer": 5}),
               RewardConfig(name="len", rule="length", weight=0.0, params={"mode": "linear", "max_tokens": 10})]
    one_word = ["abracadabra"]  # one word, but ten tokens by the tokenizer's count
    _, per = score(rewards, one_word, [{}], [10])
    assert per["long"] == [-1.0] and per["len"] == [0.0]
    _, per = score(rewards, one_word, [{}], [5])
    assert per["long"] == [0.0] and per["len"] == [0.5]
