"""code_accuracy with honest solutions: extraction, test formats, scoring modes, and the refusal without bubblewrap.
The hostile side is tests/rewards/test_sandbox_attacks.py."""

import os
import shutil
import subprocess
import sys

import pytest

from backends.rewards import REWARDS
from backends.rewards.code_accuracy import extract_code
from backends.rewards.code_tests import row_tests as split_tests
from backends.rewards.sandbox import Limits, run_tests, sandbox_available

needs_bwrap = pytest.mark.skipif(not sandbox_available(), reason="bubblewrap (bwrap) is not installed")
FAST = dict(timeout_s=8.0, per_test_s=4.0, memory_mb=256, file_size_mb=4, max_processes=8)


def completion(code):
    return f" <think> easy </think> <answer>\n```python\n{code}\n```\n</answer>"


def test_extract_code_and_split_tests():
    assert extract_code("```python\nx=1\n``` then ```py\nx=2\n```") == "x=2\n"
    assert extract_code("<answer>```\ny=3\n```</answer>") == "y=3\n"
    assert split_tests("import math\nassert f(1)==1\nassert f(2)==2") == ["import math\nassert f(1)==1",
                                                                          "import math\nassert f(2)==2"]
    assert split_tests('[{"input": "1", "output": "2"}]') == [{"input": "1", "output": "2"}]
    assert split_tests({"inputs": ["1"], "outputs": ["2"]}) == [{"input": "1", "output": "2"}]
    for nothing_to_fail in (None, "", "   ", "import math\nx = 1", ["", "y = 2"]):  # would pass any code
        assert split_tests(nothing_to_fail) == []
    assert split_tests(["assert f(1) == 1", "check(f)"]) == ["assert f(1) == 1", "check(f)"]


@needs_bwrap
def test_pass_rate_and_all_pass():
    fn = REWARDS["code_accuracy"]
    rows = [{"tests": "assert add(1, 2) == 3\nassert add(2, 2) == 4\nassert add(0, 0) == 1"}] * 2
    comps = [completion("def add(a, b):\n    return a + b"), "no code here"]
    assert fn(comps, rows, mode="pass_rate", **FAST) == [pytest.approx(2 / 3), 0.0]
    assert fn(comps, rows, mode="all_pass", **FAST) == [0.0, 0.0]
    assert fn([completion("print(int(input()) * 2)")], [{"tests": [{"input": "21", "output": "42"}]}], **FAST) == [1.0]


@needs_bwrap
def test_honest_solutions_use_the_standard_library_and_stdin():
    code = ("import math, itertools, collections, json, re, functools, heapq, sys\n"
            "data = sys.stdin.read().split()\n"
            "n = int(data[0])\n"
            "xs = list(map(int, data[1:1 + n]))\n"
            "c = collections.Counter(xs)\n"
            "print(max(c.values()), math.gcd(*xs), json.dumps(sorted(set(xs))), "
            "len(list(itertools.permutations(xs[:3]))), heapq.nsmallest(1, xs)[0], "
            "functools.reduce(lambda a, b: a + b, xs), re.sub('[0-9]', 'd', '12'))\n")
    tests = [{"input": "4\n6 6 12 18\n", "output": "2 6 [6, 12, 18] 6 6 42 dd"},
             {"input": "2\n3 5", "output": "1 1 [3, 5] 2 3 8 dd"}]
    assert run_tests(code, tests, Limits(**FAST)) == [True, True]


@needs_bwrap
def test_many_stdin_stdout_tests_share_one_sandbox_each_run_fresh():
    code = "import sys\nseen = globals().setdefault('seen', [])\nseen.append(1)\nprint(len(seen) * int(input()))\n"
    tests = [{"input": str(k), "output": str(k)} for k in range(40)]  # a fresh interpreter state per run
    assert run_tests(code, tests, Limits(timeout_s=20.0, per_test_s=2.0)) == [True] * 40
    mixed = [{"input": "1", "output": "1"}, {"input": "x", "output": ""}, {"input": "3", "output": "4"}]
    assert run_tests("print(int(input()))", mixed, Limits(**FAST)) == [True, False, False]  # error exit, wrong


@needs_bwrap
def test_return_values_keep_their_python_types():
    code = ("def f():\n    return (1, 2)\n"
            "def g():\n    return {1: 'a', (2, 3): {4.5, None}}\n"
            "def h(x):\n    return [x, b'hi', 2 ** 100, float('inf'), 3 + 4j]\n"
            "def gen(n):\n    yield from range(n)\n"
            "def boom():\n    raise ValueError('no')\n"
            "class Solution:\n    def twoSum(self, nums, target):\n"
            "        seen = {}\n        for i, x in enumerate(nums):\n"
            "            if target - x in seen:\n                return [seen[target - x], i]\n"
            "            seen[x] = i\n")
    tests = ["assert f() == (1, 2)",
             "assert f() != [1, 2]",
             "assert g() == {1: 'a', (2, 3): {4.5, None}}",
             "assert h({'k': [1]}) == [{'k': [1]}, b'hi', 2 ** 100, float('inf'), 3 + 4j]",
             "assert list(gen(3)) == [0, 1, 2]",
             "try:\n    boom()\nexcept ValueError:\n    pass\nelse:\n    assert False",
             "assert Solution().twoSum([2, 7, 11, 15], 9) == [0, 1]",
             "import math\nassert math.isclose(f()[0] / 3, 0.3333333333, rel_tol=1e-6)"]
    assert run_tests(code, tests, Limits(**FAST)) == [True] * len(tests)


@needs_bwrap
def test_tests_may_use_what_the_solution_imported_and_humaneval_check():
    code = "import math\nfrom collections import Counter\ndef hyp(a, b):\n    return math.sqrt(a * a + b * b)\n"
    assert run_tests(code + "my_gcd = math.gcd\n", ["assert math.isclose(hyp(3, 4), 5.0)",
                                                     "assert Counter('aab')['a'] == 2", "assert my_gcd(4, 6) == 2"],
                     Limits(**FAST)) == [True, True, True]
    check = "def check(candidate):\n    assert candidate(3, 4) == 5.0\n    assert candidate(0, 0) == 0.0\n"
    assert run_tests(code, [check], Limits(**FAST), entry_point="hyp") == [True]
    assert run_tests(code.replace("a * a", "a"), [check], Limits(**FAST), entry_point="hyp") == [False]


@needs_bwrap
def test_big_arguments_reach_the_solution_and_big_answers_are_bounded():
    code = "def total(xs):\n    return sum(xs)\ndef echo(xs):\n    return xs\n"
    tests = ["xs = list(range(300000))\nassert total(xs) == sum(range(300000))",  # a ~2 MB call line
             "assert len(echo(list(range(300000)))) == 300000"]  # a ~2 MB answer: over max_output_kb=1024
    assert run_tests(code, tests, Limits(timeout_s=20.0, per_test_s=10.0)) == [True, False]


@needs_bwrap
def test_solution_state_persists_across_calls_and_a_timeout_fails_only_its_test():
    code = ("import time\nN = [0]\ndef inc():\n    N[0] += 1\n    return N[0]\n"
            "def slow():\n    time.sleep(30)\n")
    tests = ["assert inc() == 1", "assert inc() == 2", "slow()", "assert inc() == 1"]  # restarted after the timeout
    assert run_tests(code, tests, Limits(timeout_s=10.0, per_test_s=1.5)) == [True, True, False, True]


@needs_bwrap
def test_solution_that_does_not_load_fails_every_test():
    assert run_tests("def f(:\n", ["assert True", "assert 1 == 1"], Limits(**FAST)) == [False, False]
    assert run_tests("raise SystemExit(0)\ndef f():\n    return 1", ["assert f() == 1"], Limits(**FAST)) == [False]


def test_without_bubblewrap_code_rewards_refuse_to_run(tmp_path):
    """A fresh interpreter whose PATH has no bwrap: the rule raises before running anything, naming the package."""
    script = ("from backends.rewards import REWARDS\n"
              "from backends.rewards.sandbox import SandboxUnavailable\n"
              "try:\n"
              "    REWARDS['code_accuracy'](['```python\\nprint(1)\\n```'], [{'tests': 'assert True'}])\n"
              "except SandboxUnavailable as e:\n"
              "    print('REFUSED', e)\n")
    env = dict(os.environ, PATH=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert "REFUSED" in r.stdout, r.stderr[-2000:]
    assert "apt-get install -y bubblewrap" in r.stdout


CODE_RECIPE = """
model tiny { tiny { hidden_size = 32  num_layers = 1  num_heads = 2  intermediate_size = 64 } }
dataset rows { jsonl = "rows.jsonl"  fields { prompt = "prompt"  tests = "tests" } }
reward code { rule = "code_accuracy" }
stage rl: grpo {
  from = tiny  data = rows  rewards = [code]  template = "Q: {prompt} A:"
  grpo { steps = 1  num_prompts_per_step = 2  num_generations_per_prompt = 2  micro_batch_size = 2 }
}
"""


def test_the_run_preflight_names_bubblewrap_before_anything_starts(tmp_path, monkeypatch):
    from r1dsl import preflight
    from r1dsl.compiler import compile_recipe
    from r1dsl.frontend import load_recipe

    (tmp_path / "rows.jsonl").write_text('{"prompt": "add", "tests": "assert add(1, 2) == 3"}\n')
    (tmp_path / "c.r1").write_text(CODE_RECIPE)
    pipeline = compile_recipe(load_recipe(str(tmp_path / "c.r1")), tmp_path / "run")
    machine = preflight.Machine(gpus=0, gpu_memory_gb=None, cpus=2, how="test", hub_cache=tmp_path / "hub",
                                datasets_cache=tmp_path / "datasets")
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    problems = preflight.check(pipeline, ["rl"], machine)
    assert len(problems) == 1 and "bubblewrap" in problems[0].need
    assert any("apt-get install -y bubblewrap" in w for w in problems[0].ways)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    if shutil.which("bwrap"):
        assert preflight.check(pipeline, ["rl"], machine) == []


@needs_bwrap
def test_bubblewrap_gone_mid_run_stops_code_rewards(tmp_path, monkeypatch):
    from backends.rewards.sandbox import SandboxUnavailable

    fn = REWARDS["code_accuracy"]
    assert fn([completion("def f():\n    return 1")], [{"tests": "assert f() == 1"}], **FAST) == [1.0]
    monkeypatch.setenv("PATH", str(tmp_path))  # the same process, bwrap no longer found
    with pytest.raises(SandboxUnavailable, match="apt-get install -y bubblewrap"):
        fn([completion("def f():\n    return 1")], [{"tests": "assert f() == 1"}], **FAST)
