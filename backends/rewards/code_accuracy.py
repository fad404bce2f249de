"""`code_accuracy`: run the completion's Python code block against the row's tests in the code sandbox.

The solution runs under bubblewrap (`backends/rewards/sandbox/`), the judging happens outside it. Without
bubblewrap the rule refuses to run (SandboxUnavailable, naming the package to install).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from backends.rewards.code_tests import row_tests
from backends.rewards.extract import answer_tag_content
from backends.rewards.registry import Check, Param, register

FENCE = "```"
LANGUAGES = ("python3", "python", "py")  # the info strings a Python block may carry (any case), or none
MAX_CODE_TEXT_CHARS = 1_000_000  # a completion longer than this has no code (nothing is scanned)
_TICKS = re.compile("`+")  # one character class, matched once per run of backticks: no backtracking


def fenced_blocks(text: str) -> list[str]:
    """The contents of the fenced Python blocks of `text`, in order: "```", an optional language word between
    spaces or tabs, a newline, then everything up to the next "```". One left-to-right pass (str.find; each
    character looked at a bounded number of times), so no input makes it slow."""
    blocks, i = [], 0
    while True:
        start = text.find(FENCE, i)
        if start < 0:
            return blocks
        j = _skip_blanks(text, start + len(FENCE))
        for word in LANGUAGES:
            if text[j:j + len(word)].lower() == word:
                j = _skip_blanks(text, j + len(word))
                break
        if j >= len(text) or text[j] != "\n":
            # not an opening fence here. In a run of backticks only the last three can open one ("````\n")
            i = max(start + 1, _TICKS.match(text, start).end() - len(FENCE))
            continue
        end = text.find(FENCE, j + 1)
        if end < 0:
            return blocks  # no closing fence after this one, so none after any later opening either
        blocks.append(text[j + 1:end])
        i = end + len(FENCE)


def _skip_blanks(text: str, j: int) -> int:
    while j < len(text) and text[j] in " \t":
        j += 1
    return j


def extract_code(completion: str, answer_tag: str = "answer") -> str | None:
    """The last fenced code block (preferring one inside the answer tag), else the answer tag's content."""
    if len(completion) > MAX_CODE_TEXT_CHARS:
        return None
    inside = answer_tag_content(completion, answer_tag)
    for text in (inside, completion):
        if text:
            blocks = fenced_blocks(text)
            if blocks:
                return blocks[-1]
    return inside.strip() if inside and inside.strip() else None


@register(
    "code_accuracy",
    needs=("tests",),
    params={
        "mode": Param("pass_rate", str, "pass_rate: fraction of tests passed; all_pass: 1.0 only if every test passes",
                      choices=("pass_rate", "all_pass")),
        "language": Param("python", str, "language of the code block", choices=("python",)),
        "answer_tag": Param("answer", str, "a code block inside this tag is preferred over earlier ones"),
        "timeout_s": Param(10.0, (int, float), "wall-clock limit of all of a row's tests (at most an hour)",
                           min_exclusive=0, max=3600),
        "per_test_s": Param(2.0, (int, float), "time limit of one program run, one call, loading the solution",
                            min_exclusive=0, max=3600),
        "memory_mb": Param(512, int, "memory of the whole sandbox (each process where cgroups are unavailable); "
                           "at most 1 TiB", min=64, max=1 << 20),
        "file_size_mb": Param(16, int, "what the sandbox may write in all (its /tmp) and in any one file (at most "
                              "1 TiB)", min=1, max=1 << 20),
        "max_processes": Param(16, int, "processes the solution may have at once, itself included",
                               min=1, max=4096),
        "max_output_kb": Param(1024, int, "stdout (or one return value) read from the sandbox; more fails the test "
                               "(at most 1 GiB)", min=1, max=1 << 20),
        "max_workers": Param(4, int, "rows judged at the same time", min=1, max=256),
    },
    checks=[Check(("per_test_s", "timeout_s"), lambda per_test_s, timeout_s: per_test_s <= timeout_s,
                  "per_test_s must be at most timeout_s")],
    doc="Runs the completion's last Python code block against the row's `tests` in a bubblewrap sandbox (own "
    "uid, read-only root with only the interpreter and its standard library, no network, no devices, "
    "whole-tree process/memory/time/output limits); the tests are judged outside it. Pass rate or all-pass. "
    "Needs bubblewrap (`apt-get install -y bubblewrap`).",
)
def code_accuracy(completions, rows, *, mode, language, answer_tag, timeout_s, per_test_s, memory_mb, file_size_mb,
                  max_processes, max_output_kb, max_workers):
    from backends.rewards.sandbox import Limits, require_sandbox, run_tests

    require_sandbox()  # refuse before any code runs: no sandbox, no code reward
    limits = Limits(float(timeout_s), float(per_test_s), int(memory_mb), int(file_size_mb), int(max_processes),
                    int(max_output_kb))

    def one(pair):
        completion, row = pair
        code = extract_code(completion, answer_tag)
        tests = row_tests(row["tests"], row)
        if code is None or not tests:
            return 0.0
        entry_point = row.get("entry_point")
        passed = run_tests(code, tests, limits, entry_point if isinstance(entry_point, str) else None)
        if mode == "all_pass":
            return 1.0 if all(passed) else 0.0
        return sum(passed) / len(passed)

    pairs = list(zip(completions, rows))
    if len(pairs) <= 1 or max_workers <= 1:
        return [one(p) for p in pairs]
    with ThreadPoolExecutor(max_workers=min(int(max_workers), len(pairs))) as pool:
        return list(pool.map(one, pairs))
