"""code_accuracy reads the code datasets people train on (issue 19), on rows shaped exactly like theirs: the
`tests` field is the column a recipe maps to it (`fields { tests = "input_output" }`), the row keeps its other
columns (entry_point, test_setup_code, metadata)."""

import base64
import json
import os
import pickle
import zlib

import pytest

from backends.rewards import REWARDS
from backends.rewards import code_tests
from backends.rewards.code_tests import CodeTestsError, row_tests
from backends.rewards.sandbox import sandbox_available

needs_bwrap = pytest.mark.skipif(not sandbox_available(), reason="bubblewrap (bwrap) is not installed")
PARAMS = dict(timeout_s=30.0, per_test_s=5.0, memory_mb=256, file_size_mb=4, max_processes=16, max_output_kb=256)


def score(code: str, row: dict, tests_column: str) -> float:
    mapped = {**row, "tests": row[tests_column]}  # what `fields { tests = COLUMN }` makes of the row
    answer = f"<think>ok</think><answer>\n```python\n{code}\n```\n</answer>"
    return REWARDS["code_accuracy"]([answer], [mapped], **PARAMS)[0]


SUM_STDIN = "n = int(input())\nprint(sum(map(int, input().split())))\n"
SUM_WRONG = "n = int(input())\nprint(n)\n"

# open-r1/verifiable-coding-problems-python (verification_info as a dict column; some exports keep it a JSON string)
OPEN_R1 = {
    "source": "codeforces", "task_type": "verifiable_code", "in_source_id": "1_A",
    "problem_statement": "Given n and n integers, print their sum.",
    "gold_standard_solution": "```python\n" + SUM_STDIN + "```",
    "problem_id": "vfc_1", "metadata": {"difficulty": "A", "time_limit": "1 second"},
    "verification_info": {"language": "python", "test_cases": [
        {"fn_name": None, "input": "3\n1 2 3\n", "output": "6\n", "type": "stdin_stdout"},
        {"fn_name": None, "input": "1\n-5\n", "output": "-5\n", "type": "stdin_stdout"}]},
}

# APPS (codeparrot/apps) and TACO (BAAI/TACO): input_output is a JSON string; call-based rows have fn_name and
# outputs wrapped in a list
APPS_STDIN = {"problem_id": 4001, "question": "...", "solutions": json.dumps([SUM_STDIN]), "difficulty": "introductory",
              "url": "https://codeforces.com/problemset/problem/1/A", "starter_code": "",
              "input_output": json.dumps({"inputs": ["3\n1 2 3\n", "2\n10 20\n"], "outputs": ["6\n", "30\n"]})}
APPS_CALL = {"problem_id": 2400, "question": "...", "difficulty": "interview", "url": "", "solutions": "[]",
             "starter_code": "def add(a, b):\n    ",
             "input_output": json.dumps({"fn_name": "add", "inputs": [[1, 2], [3, 4], [[1], [2]]],
                                         "outputs": [[3], [7], [[1, 2]]]})}
TACO_LEETCODE = {"question": "...", "solutions": "[]", "starter_code": "class Solution:\n    def twoSum(self, nums, target):\n",
                 "input_output": json.dumps({"fn_name": "twoSum", "inputs": [[[2, 7, 11, 15], 9], [[3, 2, 4], 6]],
                                             "outputs": [[0, 1], [1, 2]]}),
                 "difficulty": "EASY", "raw_tags": "[]", "name": None, "source": "leetcode", "tags": "[]",
                 "skill_types": "[]", "url": None, "Expected Auxiliary Space": None, "time_limit": None,
                 "date": None, "picture_num": None, "memory_limit": None, "Expected Time Complexity": None}

# MBPP (google-research-datasets/mbpp, "full")
MBPP = {"task_id": 2, "text": "Write a function to find the similar elements from the given two tuple lists.",
        "code": "def similar_elements(a, b):\n  return tuple(set(a) & set(b))",
        "test_list": ["assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))",
                      "assert set(similar_elements((1, 2, 3, 4),(5, 4, 3, 7))) == set((3, 4))",
                      "assert set(similar_elements((11, 12, 14, 13),(17, 15, 14, 13))) == set((13, 14))"],
        "test_setup_code": "import math", "challenge_test_list": []}

# HumanEval (openai/openai_humaneval)
HUMANEVAL = {"task_id": "HumanEval/0", "prompt": "from typing import List\n\n\ndef has_close_elements(numbers: "
             "List[float], threshold: float) -> bool:\n    \"\"\" Check if any two numbers are closer than threshold.\"\"\"\n",
             "canonical_solution": "...", "entry_point": "has_close_elements",
             "test": "\n\nMETADATA = {\n    'author': 'jt',\n    'dataset': 'test'\n}\n\n\ndef check(candidate):\n"
                     "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n"
                     "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False\n"
                     "    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True\n"
                     "    assert candidate([1.1, 2.2, 3.1, 4.1, 5.1], 0.5) == False\n\n"}
HUMANEVAL_OK = ("from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
                "    s = sorted(numbers)\n    return any(b - a < threshold for a, b in zip(s, s[1:]))\n")


def lcb_private(cases: list) -> str:
    """LiveCodeBench's compressed private tests: base64(zlib(pickle(json string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


# LiveCodeBench (livecodebench/code_generation_lite): functional (LeetCode) and stdin (AtCoder) rows
LCB_FUNCTIONAL = {
    "question_title": "maximum-sum", "question_content": "...", "platform": "leetcode", "question_id": "3000",
    "contest_id": "weekly-contest-1", "contest_date": "2023-08-01T00:00:00",
    "starter_code": "class Solution:\n    def maxSum(self, nums: List[int], k: int) -> int:\n        ",
    "difficulty": "easy",
    "public_test_cases": json.dumps([{"input": "[1, 2, 3]\n2", "output": "5", "testtype": "functional"}]),
    "private_test_cases": lcb_private([{"input": "[5, 1]\n1", "output": "5", "testtype": "functional"},
                                       {"input": "[]\n0", "output": "0", "testtype": "functional"}]),
    "metadata": json.dumps({"func_name": "maxSum"}),
}
LCB_OK = ("from typing import List\n\nclass Solution:\n    def maxSum(self, nums: List[int], k: int) -> int:\n"
          "        return sum(sorted(nums, reverse=True)[:k])\n")
LCB_STDIN = {"question_title": "A - sum", "platform": "atcoder", "question_id": "abc300_a", "starter_code": "",
             "public_test_cases": json.dumps([{"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"}]),
             "private_test_cases": lcb_private([{"input": "2\n4 4\n", "output": "8\n", "testtype": "stdin"}]),
             "metadata": "{}"}


@needs_bwrap
@pytest.mark.parametrize("row, column, honest, wrong", [
    (OPEN_R1, "verification_info", SUM_STDIN, SUM_WRONG),
    ({**OPEN_R1, "verification_info": json.dumps(OPEN_R1["verification_info"])}, "verification_info", SUM_STDIN, SUM_WRONG),
    (APPS_STDIN, "input_output", SUM_STDIN, SUM_WRONG),
    (APPS_CALL, "input_output", "def add(a, b):\n    return a + b", "def add(a, b):\n    return a - b"),
    (TACO_LEETCODE, "input_output",
     "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, x in enumerate(nums):\n"
     "            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i\n",
     "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 0]\n"),
    (MBPP, "test_list", MBPP["code"], "def similar_elements(a, b):\n  return ()"),
    (HUMANEVAL, "test", HUMANEVAL_OK, "def has_close_elements(numbers, threshold):\n    return True"),
    (LCB_FUNCTIONAL, "public_test_cases", LCB_OK, "class Solution:\n    def maxSum(self, nums, k):\n        return 0"),
    (LCB_FUNCTIONAL, "private_test_cases", LCB_OK, "class Solution:\n    def maxSum(self, nums, k):\n        return -1"),
    (LCB_STDIN, "public_test_cases", SUM_STDIN, SUM_WRONG),
    (LCB_STDIN, "private_test_cases", SUM_STDIN, SUM_WRONG),
], ids=["open-r1", "open-r1-json-string", "apps-stdin", "apps-call", "taco-leetcode", "mbpp", "humaneval",
        "lcb-functional-public", "lcb-functional-private", "lcb-stdin-public", "lcb-stdin-private"])
def test_real_rows_score_honest_solutions_1_and_wrong_ones_0(row, column, honest, wrong):
    assert score(honest, row, column) == 1.0
    assert score(wrong, row, column) == 0.0


def test_what_each_shape_becomes():
    assert row_tests(OPEN_R1["verification_info"]) == [{"input": "3\n1 2 3\n", "output": "6\n"},
                                                       {"input": "1\n-5\n", "output": "-5\n"}]
    assert len(row_tests(APPS_CALL["input_output"])) == 3
    assert all("import math\n" in t for t in row_tests(MBPP["test_list"], MBPP))  # test_setup_code runs first
    assert len(row_tests(LCB_FUNCTIONAL["private_test_cases"], LCB_FUNCTIONAL)) == 2


@pytest.mark.parametrize("tests", [
    {"foo": [1, 2]},
    [{"stdin": "1", "stdout": "2"}],
    {"inputs": ["1"], "outputs": ["1", "2"]},
    {"language": "cpp", "test_cases": [{"input": "1", "output": "1", "type": "stdin_stdout"}]},
    [{"input": "1", "output": "1", "testtype": "interactive"}],
    [{"input": "[1]", "output": "1", "testtype": "functional"}],  # no function name anywhere
    5,
    {"inputs": ["1"], "outputs": ["1"], "fn_name": "os.system"},
])
def test_unknown_shapes_are_a_clear_error_not_a_score(tests):
    with pytest.raises(CodeTestsError) as e:
        row_tests(tests, {"metadata": "{}"})
    assert str(e.value)


def test_unknown_shapes_stop_the_reward_with_the_accepted_list():
    answer = "<think>ok</think><answer>\n```python\nprint(1)\n```\n</answer>"
    with pytest.raises(CodeTestsError, match="APPS/TACO"):
        REWARDS["code_accuracy"]([answer], [{"tests": {"foo": 1}}], **PARAMS)


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/r1dsl-pickle-ran",))


def test_a_pickle_that_builds_objects_is_refused_not_run(tmp_path):
    hostile = base64.b64encode(zlib.compress(pickle.dumps(_Boom()))).decode()
    with pytest.raises(CodeTestsError, match="refused"):
        row_tests(hostile)
    assert not os.path.exists("/tmp/r1dsl-pickle-ran")


def test_a_compressed_field_is_bounded(monkeypatch):
    monkeypatch.setattr(code_tests, "MAX_DECOMPRESSED", 1 << 20)
    bomb = base64.b64encode(zlib.compress(b"\0" * (8 << 20))).decode()
    with pytest.raises(CodeTestsError, match="expand beyond"):
        row_tests(bomb)
