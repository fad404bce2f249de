"""The synthetic generators: deterministic, correct answers, the fields they register."""

from __future__ import annotations

import re

import pytest

from backends.data.generators import GENERATORS
from backends.data.synthetic import R1_ZERO_TEMPLATE, solve_steps


@pytest.mark.parametrize("name", ["arithmetic", "countdown", "code", "chat", "corpus"])
def test_generator_is_registered_deterministic_and_provides_its_fields(name):
    gen = GENERATORS[name]
    rows = gen(20, seed=3)
    assert rows == gen(20, seed=3)
    assert rows != gen(20, seed=4)
    assert len(rows) == 20
    for row in rows:
        assert set(gen.provides) <= set(row)


def test_arithmetic_answers_are_the_python_value():
    for row in GENERATORS["arithmetic"](300, seed=0, max_operand=30, num_ops=(1, 3)):
        expr = re.sub(r"^(What is|Compute|Calculate|Find the value of) |\?$", "", row["prompt"])
        assert eval(expr) == int(row["answer"]), row


def test_arithmetic_terse_style_and_params():
    rows = GENERATORS["arithmetic"](50, seed=0, max_operand=9, num_ops=1, ops="+", style="terse")
    for row in rows:
        a, b = map(int, row["prompt"].split("+"))
        assert 0 <= a <= 9 and 0 <= b <= 9 and int(row["answer"]) == a + b


def test_worked_steps_follow_precedence():
    steps, value = solve_steps([17, "+", 25, "*", 3])
    assert steps == ["25 * 3 = 75", "17 + 75 = 92"] and value == 92


def test_countdown_solution_reaches_the_target_with_each_number_once():
    for row in GENERATORS["countdown"](100, seed=1):
        assert eval(row["solution"]) == int(row["answer"])
        assert sorted(map(int, re.findall(r"\d+", row["solution"]))) == sorted(row["numbers"])


def test_code_reference_solutions_pass_their_tests():
    for row in GENERATORS["code"](40, seed=2):
        namespace: dict = {}
        exec(row["response"], namespace)
        for test in row["tests"]:
            exec(test, namespace)


def test_corpus_makes_the_format_the_majority_style_of_one_source_only():
    texts = [r["text"] for r in GENERATORS["corpus"](3000, seed=0)]
    preamble = R1_ZERO_TEMPLATE.split("{prompt}")[0]
    turns = [t for t in texts if re.match(r"(.*)User: .*\. Assistant: ", t) and "French" not in t]
    tagged = [t for t in turns if re.search(r"Assistant: <think> .* </think> <answer> -?\d+ </answer>$", t)]
    assert 0.04 < sum(t.startswith(preamble) for t in texts) / len(texts) < 0.15
    assert 0.5 < len(turns) / len(texts) < 0.8
    assert 0.3 < len(tagged) / len(turns) < 0.6
    # the tags follow the question's phrasing ("source"): the majority style for "Calculate" only
    calculate = [t for t in turns if "User: Calculate" in t]
    assert sum(t in tagged for t in calculate) / len(calculate) > 0.6
    assert sum(t in tagged for t in turns if t not in calculate) / (len(turns) - len(calculate)) < 0.45
