"""Every number a recipe can set has a declared range that keeps the run from crashing, and the checker
enforces it: stage settings (knobs), reward-rule parameters, reward weights and dataset-generator parameters
(one settings vocabulary, r1dsl/settings.py). Generator datasets are capped in size, since compiling for
NeMo-RL builds their rows."""

from __future__ import annotations

import dataclasses

import pytest

import backends.data  # noqa: F401  (registers the generators)
from backends.data.generators import GENERATORS, register
from backends.rewards import REWARDS
from r1dsl import ir
from r1dsl.frontend import check_file
from r1dsl.schema import SECTIONS, knobs
from r1dsl.settings import GENERATED_ROWS_MAX, REWARD_WEIGHT, Param

RECIPE = '''recipe r
model tiny {{ tiny {{ hidden_size = 64 }} }}
dataset arith {{ {dataset} }}
reward accuracy {{ rule = "math_accuracy" }}
{extra}
stage zero: grpo {{ from = tiny  data = arith  rewards = [accuracy] }}
'''


def diagnose(write, dataset: str = 'generator = "arithmetic"  size = 20', extra: str = "") -> list[tuple[str, str, str | None]]:
    result = check_file(str(write("r.r1", RECIPE.format(dataset=dataset, extra=extra))))
    return [(d.code, d.message, d.help) for d in result.diagnostics if d.is_error]


def _numeric(typ) -> bool:
    text = str(typ)
    return ("int" in text or "float" in text) and "bool" not in text


def test_every_numeric_stage_setting_declares_a_range():
    for cls in [*SECTIONS.values(), ir.TinyModelConfig]:
        for name, (fld, typ) in knobs(cls).items():
            meta = fld.metadata
            if _numeric(typ) and "choices" not in meta:
                assert "max" in meta and ("min" in meta or "min_exclusive" in meta), f"{cls.__name__}.{name}"


def test_every_numeric_parameter_declares_a_range():
    params = [REWARD_WEIGHT, *(p for r in REWARDS.values() for p in r.params.values()),
              *(p for g in GENERATORS.values() for p in g.params.values())]
    for p in params:
        kinds = p.type if isinstance(p.type, tuple) else (p.type,)
        if int in kinds or float in kinds:
            assert p.choices or (p.max is not None and (p.min is not None or p.min_exclusive is not None)), p
    with pytest.raises(TypeError, match="declares its range"):
        Param(1.0, float, "a number with no bound")


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_a_generator_runs_at_the_edges_of_its_declared_ranges(name):
    """What the checker accepts, the generator makes: every parameter at its min and at its max."""
    gen = GENERATORS[name]
    for key, p in gen.params.items():
        for edge in (p.min, p.max):
            if edge is not None:
                rows = gen(3, 0, **{key: type(p.default)(edge) if isinstance(p.default, (int, float)) else int(edge)})
                assert len(rows) == 3, (key, edge)


def test_generator_parameters_are_typed_and_limited(write):
    errors = diagnose(write, 'generator = "countdown"  size = 10  params { num_numbers = "x"  max_number = 1e18 }')
    assert [(c, m) for c, m, _ in errors] == [
        ("E004", '`dataset arith.params.num_numbers` expects an integer, got the string "x"'),
        ("E005", "`dataset arith.params.max_number` must be at most 1000000 (got 1000000000000000000)"),
    ]
    errors = diagnose(write, 'generator = "code"  size = 10  params { num_tests = 1e6 }')
    assert [c for c, m, _ in errors if "num_tests" in m] == ["E005"]
    errors = diagnose(write, 'generator = "arithmetic"  size = 10  params { num_ops = [3, 1]  ops = "/" }')
    assert [m for _, m, _ in errors] == [
        "dataset arith (generator arithmetic): num_ops is a count or a range [low, high] with low <= high (got num_ops = [3, 1])",
        'dataset arith (generator arithmetic): ops is some of "+-*" (got ops = "/")',
    ]
    [(code, message, help)] = diagnose(write, 'generator = "arithmetic"  size = 10  params { max_opernd = 3 }')
    assert code == "E002" and "max_operand" in help


def test_the_documented_generator_parameters_check_and_reach_the_rows(write):
    text = RECIPE.format(dataset='generator = "arithmetic"  size = 50  params { max_operand = 20  num_ops = [1, 3] }',
                         extra="")
    result = check_file(str(write("r.r1", text)))
    assert not [d for d in result.diagnostics if d.is_error], result.diagnostics
    ds = result.recipe.datasets["arith"]
    assert ds.params == {"max_operand": 20, "num_ops": [1, 3]}
    rows = GENERATORS["arithmetic"](ds.size, ds.seed, **ds.params)
    assert max(int(t) for r in rows for t in r["prompt"].rstrip("?").split() if t.isdigit()) > 9


@pytest.mark.parametrize("size", ["9223372036854775807", str(GENERATED_ROWS_MAX + 1)])
def test_a_generated_dataset_is_capped_and_told_to_use_a_file(write, size):
    [(code, message, help)] = diagnose(write, f'generator = "arithmetic"  size = {size}')
    assert code == "E005" and f"at most {GENERATED_ROWS_MAX}" in message and "jsonl" in help
    assert not diagnose(write, f'generator = "arithmetic"  size = {GENERATED_ROWS_MAX}')
    assert not diagnose(write, f'jsonl = "rows.jsonl"  size = {size}  fields {{ prompt = "q"  answer = "a" }}')  # a file's rows are read lazily
    with pytest.raises(ValueError, match="jsonl"):
        GENERATORS["arithmetic"](GENERATED_ROWS_MAX + 1)


@pytest.mark.parametrize("reward, key", [
    ('rule = "format"  weight = 1e30', "weight"),
    ('rule = "format"  weight = -1e30', "weight"),
    ('rule = "math_accuracy"  timeout_s = 1e30', "timeout_s"),
    ('rule = "math_accuracy"  timeout_s = 0', "timeout_s"),
    ('rule = "code_accuracy"  timeout_s = 1e30', "timeout_s"),
    ('rule = "length"  start_value = 1e30', "start_value"),
    ('rule = "length"  end_value = -1e30', "end_value"),
    ('rule = "repetition"  max_penalty = 1e300', "max_penalty"),
])
def test_reward_numbers_are_bounded(write, reward, key):
    errors = diagnose(write, extra=f"reward hostile {{ {reward} }}")
    assert [(c, m.split(" must ")[0]) for c, m, _ in errors] == [("E005", f"`reward hostile.{key}`")], errors


def test_stage_numbers_are_bounded(write):
    text = RECIPE.format(dataset='generator = "arithmetic"  size = 20', extra="").replace(
        "rewards = [accuracy] }", "rewards = [accuracy]  grpo { steps = 1e15  temperature = 1e30 }  optim { lr = 1e30 } }")
    errors = [d for d in check_file(str(write("r.r1", text))).diagnostics if d.is_error]
    assert sorted(d.message.split(" must ")[0] for d in errors) == ["`grpo.steps`", "`grpo.temperature`", "`optim.lr`"]
    assert all(d.code == "E005" for d in errors)


def test_generator_defaults_live_in_the_declaration():
    assert GENERATORS["countdown"].defaults() == {"num_numbers": 3, "max_number": 20}
    with pytest.raises(ValueError, match="disagrees with the declared"):
        @register("bad_default", provides=("prompt",), params={"n": Param(3, int, "n", min=0, max=9)})
        def bad_default(size, seed, n=4):
            return []
    with pytest.raises(ValueError, match="undeclared"):
        @register("undeclared", provides=("prompt",))
        def undeclared(size, seed, n=4):
            return []
    assert "bad_default" not in GENERATORS and "undeclared" not in GENERATORS
    assert dataclasses.is_dataclass(GENERATORS["code"])
