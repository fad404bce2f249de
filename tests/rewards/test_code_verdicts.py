"""Code verdicts fail closed (issue 19): a test that did not run, or whose verdict would depend on how the judge
relays the solution's objects and exceptions, is a failure; honest solutions still pass."""

import pytest

from backends.rewards import REWARDS
from backends.rewards.sandbox import sandbox_available

pytestmark = pytest.mark.skipif(not sandbox_available(), reason="bubblewrap (bwrap) is not installed")

PARAMS = dict(timeout_s=20.0, per_test_s=5.0, memory_mb=256, file_size_mb=4, max_processes=16, max_output_kb=256)


def completion(code):
    return f"<think>sure</think><answer>\n```python\n{code}\n```\n</answer>"


def reward(code, tests, mode="pass_rate", **row):
    return REWARDS["code_accuracy"]([completion(code)], [{"tests": tests, **row}], **{**PARAMS, "mode": mode})[0]


# -- HumanEval: `def check(candidate)` must be called with the entry point --------------------------------------

HUMANEVAL_TEST = '''

METADATA = {"author": "jt", "dataset": "test"}


def check(candidate):
    assert candidate(2) == 4
    assert candidate(3) == 9
    assert candidate(-1) == 1
'''


@pytest.mark.parametrize("solution", [
    "pass",
    "square = 5",
    "square = None",
    "def other(x):\n    return x * x",
    "import math\nsquare = math",
    "class square:\n    pass\ndel square",
], ids=["nothing", "not-callable-int", "not-callable-none", "other-name", "a-module", "deleted"])
@pytest.mark.parametrize("mode", ["pass_rate", "all_pass"])
def test_a_missing_entry_point_scores_zero(solution, mode):
    assert reward(solution, HUMANEVAL_TEST, mode, entry_point="square") == 0.0


def test_check_that_is_never_called_is_no_test():
    # no entry point in the row, and the test never calls check(): nothing was tested, whatever the solution
    assert reward("def square(x):\n    return x * x", HUMANEVAL_TEST) == 0.0
    assert reward("pass", HUMANEVAL_TEST) == 0.0


def test_honest_humaneval_solutions_pass():
    honest = "def square(x):\n    return x * x"
    assert reward(honest, HUMANEVAL_TEST, "all_pass", entry_point="square") == 1.0
    assert reward(honest, HUMANEVAL_TEST + "\ncheck(square)\n") == 1.0  # a test that calls check itself
    assert reward("import math\ndef square(x):\n    return int(math.pow(x, 2))", HUMANEVAL_TEST,
                  entry_point="square") == 1.0


@pytest.mark.parametrize("tests", [
    "def test_square():\n    assert square(3) == 9\n",
    "import pytest\n\ndef test_a():\n    assert square(2) == 4\n\ndef test_b():\n    assert square(3) == 9\n",
    "for x in square_all([]):\n    assert x > 0\n",
    "if False:\n    assert square(2) == 4\n",
    "while False:\n    assert square(2) == 4\n",
])
def test_asserts_that_never_run_are_no_test(tests):
    wrong = "def square(x):\n    return 0\ndef square_all(xs):\n    return []"
    assert reward(wrong, tests) == 0.0


def test_pytest_style_functions_are_run_for_honest_solutions():
    honest = "def square(x):\n    return x * x"
    assert reward(honest, "def test_square():\n    assert square(3) == 9\n") == 1.0
    assert reward("def square_all(xs):\n    return [x * x for x in xs]",
                  "for x in square_all([1, 2]):\n    assert x > 0\n") == 1.0


# -- exceptions the solution raises cannot steer the judge's control flow ---------------------------------------

PRIME_TESTS = "assert all(map(is_prime, [2, 3, 5, 7]))\nassert not any(map(is_prime, [4, 6, 8, 9]))"


@pytest.mark.parametrize("raised", ["StopIteration", "StopAsyncIteration", "GeneratorExit", "KeyboardInterrupt",
                                    "SystemExit", "type('E', (BaseException,), {})", "type('S', (StopIteration,), {})",
                                    "StopIteration(True)"])
@pytest.mark.parametrize("tests", [
    PRIME_TESTS,
    "assert list(map(is_prime, [2, 3])) == []",
    "assert [x for x in iter(lambda: is_prime(2), True)] == []",
    "assert sum(map(is_prime, [1, 2])) == 0",
    "assert next(map(is_prime, [2]), 'none') == 'none'",
], ids=["all-any", "list-map", "iter-sentinel", "sum-map", "next-default"])
def test_control_flow_exceptions_fail_the_test(raised, tests):
    assert reward(f"def is_prime(n):\n    raise {raised}", tests) == 0.0


def test_ordinary_exceptions_still_reach_tests_that_expect_them():
    tests = "try:\n    root(-1)\nexcept ValueError:\n    pass\nelse:\n    assert False\nassert root(4) == 2"
    assert reward("def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return int(x ** 0.5)", tests) == 1.0
    assert reward("def root(x):\n    return 2", tests) == 0.0


# -- an object kept in the solution answers no protocol by default ----------------------------------------------

OPAQUE = "class Thing:\n    pass\n\ndef make():\n    return Thing()\n"


@pytest.mark.parametrize("test", [
    "assert make()",
    "assert not make()",
    "assert make().is_empty",
    "assert make().is_empty()",
    "assert hasattr(make(), 'x')",
    "assert len(make()) == 0",
    "assert list(make()) == []",
    "assert make() != 5",
    "assert not (make() == 5)",
    "assert make() == make()",
    "assert 1 not in make()",
    "assert hash(make()) == hash(make()) or True",
    "assert {make(): 1}",
    "assert str(make()) == str(make())",
    "assert repr(make()) != ''",
    "assert f'{make()}' != ''",
    "assert sorted([make(), make()]) or True",
    "assert (make() + 1) or True",
    "assert (1 + make()) or True",
    "assert -make() or True",
    "assert make()[0] or True",
    "assert abs(make()) or True",
    "assert int(make()) == 0 or True",
    "assert round(make()) or True",
    "with make():\n    pass",
    "assert max([make()]) or True",
    "assert bool(make()) in (True, False)",
    "assert isinstance(make(), object) and make() != None",
    "assert make() not in [1, 2]",
], ids=lambda t: t.split("\n")[0][:40])
def test_protocols_of_a_kept_object_fail_the_test(test):
    assert reward(OPAQUE, test) == 0.0


@pytest.mark.parametrize("hack", [
    "class Thing:\n    def __getattr__(self, name):\n        return True\n",
    "class Thing:\n    def __bool__(self):\n        return True\n    def __len__(self):\n        return 0\n",
    "class Thing:\n    def __eq__(self, other):\n        return True\n    def __hash__(self):\n        return 0\n",
    "class Thing(list):\n    def __eq__(self, other):\n        return True\n",
    "class Thing(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n",
], ids=["getattr-everything", "truthy-len0", "eq-always", "list-subclass-eq", "str-subclass-eq"])
def test_rigged_objects_do_not_pass(hack):
    code = hack + "\ndef make():\n    return Thing()\n"
    for test in ("assert make() == [1, 2]", "assert make()", "assert len(make()) == 0", "assert make() == 'abc'",
                 "assert make().is_empty() is True"):
        assert reward(code, test) == 0.0, test


def test_honest_objects_work_through_their_attributes_and_methods():
    stack = ("class Stack:\n    def __init__(self):\n        self.items = []\n        self.size = 0\n"
             "    def push(self, x):\n        self.items.append(x)\n        self.size += 1\n"
             "    def pop(self):\n        self.size -= 1\n        return self.items.pop()\n"
             "    def is_empty(self):\n        return not self.items\n")
    tests = ["s = Stack()\ns.push(1)\ns.push(2)\ntop = s.pop()\nassert top == 2 and s.size == 1 and not s.is_empty()",
             "assert Stack().is_empty() is True",
             "assert Stack().size == 0",
             "assert hasattr(Stack(), 'push') and not hasattr(Stack(), 'peek')",
             "s = Stack()\ns.push([1, 2])\nassert s.items == [[1, 2]]"]
    assert reward(stack, tests, "all_pass") == 1.0
