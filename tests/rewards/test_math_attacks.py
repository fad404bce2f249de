"""Hostile answers against `math_accuracy` (issue 11): one attack per finding, each asserting the reward, that
the host is untouched and a generous wall-time bound (a safety bound, not a speed claim: speed is measured
in benchmarks/).

The rule is called in-process, as the trainer calls it. A worker that sympy needs may be starting while an
attack runs; the bound holds either way because the whole verification, waiting included, has one budget.
"""

import os
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.rewards import REWARDS
from backends.rewards.equivalence import STATS, clear_cache, equivalent
from backends.rewards.extract import extract_answer, last_boxed, last_number

acc = REWARDS["math_accuracy"].fn
BOUND_S = 2.0


@pytest.fixture
def marker(tmp_path):
    """A path that an executed payload would create."""
    path = tmp_path / f"pwned-{uuid.uuid4().hex}"
    yield str(path)
    assert not path.exists(), "model text was executed"


def _score(answer: str, gold: str, how: str = "answer_tag") -> tuple[float, float]:
    clear_cache()
    completion = {"answer_tag": f"<think> x </think> <answer> {answer} </answer>", "boxed": f"so \\boxed{{{answer}}}",
                  "last_number": answer}[how]
    t = time.perf_counter()
    got = acc([completion], [{"answer": gold}], extract=how, timeout_s=1.0)
    return got[0], time.perf_counter() - t


CODE = [
    "__import__('os').system('touch {m}')",
    "\\text{__import__('os').system('touch {m}')}",
    "\\boxed{__import__('os').system('touch {m}')}",
    "exec(\"open('{m}','w')\")",
    "eval('__import__(\"os\").system(\"touch {m}\")')",
    "(lambda: __import__('os').system('touch {m}'))()",
    "\\mathrm{__import__('os').system('touch {m}')}",
    "x = __import__('subprocess').call(['touch', '{m}'])",
    "Symbol('x').__class__.__init__.__globals__['os'].system('touch {m}')",
    "\\operatorname{__import__('os').system('touch {m}')}",
]


@pytest.mark.parametrize("payload", CODE)
@pytest.mark.parametrize("how", ["answer_tag", "boxed"])
def test_code_in_an_answer_is_never_run(payload, how, marker):
    answer = payload.replace("{m}", marker)
    for gold in ("0", "1", answer):  # the payload scores 1 only against a gold that is the same text
        got, took = _score(answer, gold, how)
        assert got == (1.0 if gold == answer else 0.0)
        assert took < BOUND_S
    assert not os.path.exists(marker)


BACKTRACKING = {  # inputs that made the old trailing-units regex backtrack for 30 s and more
    "m x 60 then ?": "5" + "m" * 60 + "?",
    "spaced m x 60 then ?": "5" + " m" * 60 + " ?",
    "mm x 24": "12" + " mm" * 24 + " ?",
    "seconds x 30": "5" + " seconds" * 30 + " x",
    "units x 300": "5" + " cm" * 300 + "!",
    "text units x 100": "5" + " \\text{cm}" * 100 + " ?",
    "degrees x 200": "5" + "^\\circ" * 200 + "?",
    "percent x 300": "5" + "\\%" * 300 + "x",
}


@pytest.mark.parametrize("name", sorted(BACKTRACKING))
def test_unit_strings_are_scanned_in_linear_time(name):
    got, took = _score(BACKTRACKING[name], "5")
    assert got == 0.0 and took < BOUND_S


HUGE = {
    "1e9999999": "1e9999999",
    "1e99999999": "1e99999999",
    "1e-9999999": "1e-9999999",
    "power 10^99999999": "10^{99999999}",
    "tower": "9^{9^{9^{9}}}",
    "tower of 2s": "2^{2^{2^{2^{2^{2}}}}}",
    "huge factorial": "100000000!",
    "factorial of a power": "(10^{10})!",
    "huge binomial": "\\binom{10^{9}}{5000}",
    "a thousand digits": "9" * 1000,
    "repeating decimal of 900 digits": "0.\\overline{" + "3" * 900 + "}",
    "sin of a huge number": "\\sin(10^{300})",
    "exp tower": "e^{e^{e^{e^{10}}}}",
    "variable to a huge power": "x^{10^{10}}",
    "root of a huge number": "\\sqrt[1000]{10^{99999}}",
    "huge power in a sympy-only comparison": "(\\sqrt{2}+1)^{9000}(\\sqrt{2}-1)^{9000}",
    "huge log": "\\log_{2}(10^{99999999})",
}


@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_numbers_are_refused_not_computed(name):
    got, took = _score(HUGE[name], "42")
    assert got == 0.0 and took < BOUND_S


NESTED = {
    "brackets x 5000": "(" * 5000 + "1" + ")" * 5000,
    "braces x 5000": "{" * 5000 + "1" + "}" * 5000,
    "fracs x 300": "\\frac{" * 300 + "1" + "}{2}" * 300,
    "sqrts x 400": "\\sqrt{" * 400 + "4" + "}" * 400,
    "unary minus x 900": "-" * 900 + "1",
    "powers x 400": "2^" * 400 + "1",
    "sets x 300": "\\{" * 300 + "1" + "\\}" * 300,
    "text x 300": "\\text{" * 300 + "a" + "}" * 300,
    "boxed x 300": "\\boxed{" * 300 + "1" + "}" * 300,
    "long sum": "+".join(["1"] * 499),
    "long set": "\\{" + ",".join(str(i) for i in range(300)) + "\\}",
    "long list": ", ".join(str(i) for i in range(300)),
    "matrix of 400 cells": "\\begin{pmatrix}" + "\\\\".join("&".join("1" for _ in range(20)) for _ in range(20)) + "\\end{pmatrix}",
    "unbalanced": "\\frac{" * 500,
}


@pytest.mark.parametrize("name", sorted(NESTED))
@pytest.mark.parametrize("how", ["answer_tag", "boxed"])
def test_deep_or_wide_answers_are_bounded(name, how):
    got, took = _score(NESTED[name], "42", how)
    assert got == 0.0 and took < BOUND_S


def test_a_long_answer_is_not_parsed():
    got, took = _score("1+" * 100_000 + "1", "100001")
    assert got == 0.0 and took < BOUND_S


COMPLETIONS = {  # extraction over whole completions (the old one was quadratic: 25 s for 1 MB of \boxedx)
    "1 MB of \\boxedx": "\\boxedx" * 150_000,
    "1 MB of \\boxed{": "\\boxed{" * 150_000,
    "1 MB of \\boxed{} then unclosed": "\\boxed{1}" * 100_000 + "\\boxed{",
    "1 MB of open braces after boxed": "\\boxed" + "{" * 1_000_000,
    "1 MB of <answer>": "<answer>" * 120_000 + "</answer>",
    "1 MB of digits and commas": "1," * 500_000,
    "1 MB of \\fbox": "\\fbox " * 170_000,
    "5 MB of text": "a" * 5_000_000 + "\\boxed{42}",
}


@pytest.mark.parametrize("name", sorted(COMPLETIONS))
@pytest.mark.parametrize("how", ["answer_tag", "boxed", "last_number"])
def test_extraction_is_linear_on_megabyte_completions(name, how):
    t = time.perf_counter()
    got = acc([COMPLETIONS[name]], [{"answer": "42"}], extract=how, timeout_s=1.0)
    assert got == [0.0]
    assert time.perf_counter() - t < BOUND_S


def test_extraction_keeps_the_matching_conventions():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{2}{3}}") == "\\frac{2}{3}"
    assert last_boxed("\\boxed{1} then \\boxed{2") is None  # only the last \boxed counts (MATH's grader)
    assert last_boxed("\\boxed 5$ done") == "5"
    assert last_number("it costs $1,250.50.") == "1,250.50"
    assert last_number("x = -3") == "-3"
    assert extract_answer("<answer>\\boxed{7}</answer>") == "7"


WRONG_VERDICTS = [  # (gold, answer, right verdict): the issue's exploitable or signal-losing verdicts
    ("2\\pi r", "2\\pi rh", False), ("lw", "lwh", False), ("\\frac{b}{2}", "\\frac{1}{2}bh", False), ("4", "4m", False),
    ("1100", "1, 100", False), ("-1125", "-1, 125", False), ("\\text{listen}", "\\text{silent}", False), ("no", "on", False),
    ("\\pi", "3.14159265359", False), ("\\sqrt{2}", "\\sqrt{2}+10^{-12}", False), ("-\\frac{3}{2}", "-1\\frac{1}{2}", True),
    ("-0.5", "-2\\frac{1}{4}", False), ("500", "500 \\text{ mL}", True), ("7", "7 \\text{ miles per hour}", True),
    ("(-1,1)", "x \\in (-1, 1)", True), ("(4,3)", "x=4, y=3", True), ("\\frac{1}{3}", "0.\\overline{3}", True),
    ("\\text{Yes}", "yes", True), ("\\text{YES}", "\\text{yes}", True),
    # hedging is not a unit: the text after a number is stripped only when it is unit-like
    ("5", "5 \\text{ or } 6", False), ("5", "5 \\text{ (or 6)}", False), ("5", "5 or 6", False), ("5", "5\\text{ not 6}", False),
]


@pytest.mark.parametrize("gold,answer,right", WRONG_VERDICTS)
def test_the_issue_verdicts(gold, answer, right):
    got, took = _score(answer, gold)
    assert got == (1.0 if right else 0.0) and took < BOUND_S


def test_decimals_never_pay_for_an_irrational_gold():
    """A policy cannot learn to write decimals: no finite decimal equals an irrational gold."""
    for gold, digits in (("\\pi", "3.14159265358979323846264338327950288419716939937510582097494459230781640628"),
                         ("\\sqrt{2}", "1.41421356237309504880168872420969807856967187537694807317667973799"),
                         ("e", "2.71828182845904523536028747135266249775724709369995957496696762772")):
        for k in (4, 8, 12, 16, 30, 60):
            assert not equivalent(gold, digits[: k + 2], timeout_s=1.0), (gold, k)


def test_worst_case_in_the_trainer_process_is_bounded():
    """A batch of the hostile answers above, scored like a trainer scores a batch: each under the bound."""
    answers = list(BACKTRACKING.values()) + list(HUGE.values()) + list(NESTED.values())
    clear_cache()
    t = time.perf_counter()
    got = acc([f"<answer>{a}</answer>" for a in answers], [{"answer": "42"}] * len(answers), timeout_s=1.0)
    assert got == [0.0] * len(answers)
    assert time.perf_counter() - t < BOUND_S * len(answers)


PIECES = [  # LaTeX-ish fragments: random answers built from them reach every branch of the scanner and parser
    "\\frac", "{", "}", "^", "_", "1", "2", "0", "9", ".", "\\sqrt", "[", "]", "(", ")", "\\text{", "x", "y", "e", "i",
    "\\pi", ",", "=", "<", "\\le", "\\in", "\\{", "\\}", "\\pm", "-", "+", "*", "/", "!", "|", "\\cup", "\\infty",
    "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "\\overline", "\\boxed", "\\log", "\\sin", "^{-1}", "cm", " ",
    "\\%", "\\$", "\\left", "\\right", "\\circ", "e5", "1e", "\\mathbb{R}", "\\emptyset", "\\text{ or }", "\\lfloor",
    "\\rfloor", "\\binom", "'", "\\mathrm{m}", "\\,", "{,}", ",000", ":", "\\approx", "no", "abc", "9^{9^{9}}", "1e999",
]


@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=30), st.sampled_from(["1", "x", "(1,2)", "\\{1,2\\}", "\\pi", "[0,1)", "\\text{yes}", "x=1", "1, 100"]))
@settings(max_examples=300, deadline=None)
def test_random_latex_never_raises_and_is_bounded(pieces, gold):
    answer = "".join(pieces)
    errors = STATS["error"]
    t = time.perf_counter()
    assert equivalent(gold, answer, timeout_s=1.0) in (True, False)
    assert equivalent(answer, gold, timeout_s=1.0) in (True, False)
    assert STATS["error"] == errors  # no exception was swallowed: the parser handled every input
    assert time.perf_counter() - t < 2 * BOUND_S
