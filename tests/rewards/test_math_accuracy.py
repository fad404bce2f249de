"""math_accuracy: extraction, the labelled answer pairs, and hostile answers."""

import json
import multiprocessing
import os
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.rewards import REWARDS
from backends.rewards.equivalence import clear_cache, equivalent
from backends.rewards.extract import extract_answer, gold_answer, last_boxed
from backends.rewards.sympy_pool import sympy_equivalent

PAIRS = os.path.join(os.path.dirname(__file__), "..", "data", "answer_pairs.jsonl")
acc = REWARDS["math_accuracy"].fn


def test_extraction_modes():
    c = " <think> 2+2 is \\boxed{5}? no. 3 </think> <answer> \\boxed{4} </answer>"
    assert extract_answer(c, "answer_tag") == "4"
    assert extract_answer(c, "boxed") == "4"
    assert extract_answer("so the total is 1,250 dollars", "last_number") == "1,250"
    assert extract_answer(" <think> no answer tag", "answer_tag") is None
    assert last_boxed("\\boxed{\\frac{1}{2}} and \\boxed{3}") == "3"
    assert gold_answer("Natalia sold 48 clips... #### 72") == "72"
    assert gold_answer("so $\\boxed{\\frac{\\pi}{2}}$.") == "\\frac{\\pi}{2}"


def test_rule_scores_r1_zero_completions():
    rows = [{"answer": "\\frac{1}{2}"}] * 3 + [{"answer": "#### 1,000"}]
    comps = [" <think> half </think> <answer> 0.5 </answer>", " <think> </think> <answer> 1/3 </answer>",
             "0.5 without tags", "<think>.</think><answer>1000</answer>"]
    assert acc(comps, rows) == [1.0, 0.0, 0.0, 1.0]
    assert acc(["the answer is 0.5"], rows[:1], extract="last_number") == [1.0]
    assert acc(["so \\boxed{\\tfrac12}"], rows[:1], extract="boxed") == [1.0]


def test_labelled_pairs_agree_with_the_labels():
    rows = [json.loads(line) for line in open(PAIRS)]
    assert len(rows) >= 300 and len({r["form"] for r in rows}) >= 15
    clear_cache()
    wrong = [r for r in rows if equivalent(r["gold"], r["predicted"]) != r["equivalent"]]
    assert [(r["gold"], r["predicted"]) for r in wrong if not r.get("holdout")] == []  # the tuning pairs: all
    held_out = sum(1 for r in rows if r.get("holdout"))
    assert sum(1 for r in wrong if r.get("holdout")) <= 0.1 * held_out  # never tuned on: 44/46 when written


@given(st.fractions(max_denominator=10**6))
@settings(max_examples=100, deadline=None)
def test_a_fraction_equals_its_own_spellings(q):
    assert equivalent(str(q), f"\\frac{{{q.numerator}}}{{{q.denominator}}}", use_sympy=False)
    assert not equivalent(str(q), str(q + 1), use_sympy=False)


@given(st.text(max_size=60))
@settings(max_examples=150, deadline=None)
def test_arbitrary_text_never_raises(s):
    assert equivalent("1", s, timeout_s=0.5) in (True, False)


def test_hostile_answers_return_within_the_bound():
    """More in test_math_attacks.py; here one of each shape through both extraction modes."""
    for answer in ("10^{10^{10}}", "(" * 5000 + "1" + ")" * 5000, "1" * 1_000_000, "\\boxed{" + "{" * 1000 + "42"):
        t = time.perf_counter()
        got = acc([f" <think> x </think> <answer> {answer} </answer>", f"\\boxed{{{answer}"], [{"answer": "42"}] * 2,
                  timeout_s=1.0)
        assert got == [0.0, 0.0]
        assert time.perf_counter() - t < 3.0


def test_unicode_digits_fold_to_ascii():
    assert equivalent("42", "\uff14\uff12") and equivalent("-3", "\u22123")


def _tree(text):
    from backends.rewards.equivalence import tree_to_json
    from backends.rewards.mathparse import normalize, parse_scalar

    return tree_to_json(parse_scalar(normalize(text)))


def test_sympy_timeout_kills_the_worker_and_the_next_call_works():
    assert sympy_equivalent(_tree("1"), _tree("1"), 60.0) is True  # warm
    heavy = (_tree("(x+y+z+w)^{40}"), _tree("\\sin(x)^{2}+\\cos(x)^{2}+(w+x+y+z)^{40}"))
    t = time.perf_counter()
    # the pair differs (by sin^2 + cos^2 = 1): within 0.02 s the worker either refutes it numerically or is killed
    assert sympy_equivalent(*heavy, timeout_s=0.02) in (None, False)
    assert time.perf_counter() - t < 0.5
    assert sympy_equivalent(_tree("\\sin(x)^2+\\cos(x)^2"), _tree("1"), timeout_s=60.0) is True


def test_the_worker_gets_trees_and_refuses_anything_else():
    assert sympy_equivalent("__import__('os')", "0", 60.0) is None  # text is not a tree: undecided, not parsed
    assert sympy_equivalent(["var", "__import__('os')"], ["num", 0, 1], 60.0) is None  # names are checked
    assert sympy_equivalent(["pow", ["num", 10, 1], ["num", 10**9, 1]], ["num", 1, 1], 60.0) is None  # sizes too
    assert sympy_equivalent(_tree("\\frac{1}{2}"), _tree("\\sin\\frac{\\pi}{6}"), 60.0) is True


def test_bounded_from_a_non_main_thread():
    got = []
    heavy = (_tree("(x+y+z+w)^{40}"), _tree("\\sin(x)^{2}+\\cos(x)^{2}+(w+x+y+z)^{40}"))
    t = time.perf_counter()
    th = threading.Thread(target=lambda: got.append(sympy_equivalent(*heavy, 0.02)))
    th.start()
    th.join(10)
    assert got in ([None], [False])  # undecided in time, or refuted numerically; never a wrong True
    assert time.perf_counter() - t < 2.0  # the deadline holds outside the main thread (no signal-based timeout)


def _in_daemon(q):
    from backends.rewards.equivalence import equivalent as eq

    q.put((eq("\\mathbb{R}", "(-\\infty, \\infty)", timeout_s=30.0), eq("1/2", "0.5")))


def test_works_inside_a_daemonic_worker_process():
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_in_daemon, args=(q,), daemon=True)
    p.start()
    assert q.get(timeout=60) == (True, True)
    p.join(10)
