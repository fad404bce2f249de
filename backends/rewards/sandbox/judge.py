"""Judge a solution against a row's tests, with the judging outside the solution's sandbox.

- stdin/stdout tests ({"input", "output"}): one sandbox per row, in which the worker runs the program once per
  input in a fresh forked child; the parent gets each run's exit status and at most `max_output_kb` of
  stdout and compares whitespace-separated tokens itself. The exit status must be 0. Expected outputs never
  leave the parent.
- Python test snippets (asserts, `def check(candidate)`): two sandboxes per row. The solution sandbox loads
  the code and answers calls with its return values as plain data (tagged JSON); the judge sandbox runs
  the trusted test code, where each of the solution's names is a proxy that asks the parent, which relays
  one bounded line to the solution and its one bounded reply back. Only the judge's verdicts count, and the
  judge holds no solution code: an `__eq__` that is always true, a patched `builtins`, a fake `math`, frame
  inspection or a forged result line can at most change the solution's own answers.
A call or run over `per_test_s`, a row over `timeout_s`, too much output, a crash: that test fails (the
solution sandbox is started afresh for the next call).
"""

from __future__ import annotations

import json
import time
import warnings

from backends.rewards.sandbox.isolation import Limits, Sandbox

_GONE = b'{"err":"gone"}'
_JUDGE_LINE = 64 << 20  # bytes of one call request from the judge (the solution's replies: max_output_kb)


def run_tests(code: str, tests: list, limits: Limits = Limits(), entry_point: str | None = None) -> list[bool]:
    """Which tests pass: each is a {"input", "output"} dict or a Python snippet run after the solution."""
    if not tests:
        return []
    deadline = time.monotonic() + limits.timeout_s
    passed = [False] * len(tests)
    io_idx = [i for i, t in enumerate(tests) if isinstance(t, dict)]
    snippet_idx = [i for i, t in enumerate(tests) if not isinstance(t, dict)]
    try:
        if io_idx:
            got = _programs_pass(code, [tests[i] for i in io_idx], limits, deadline)
            for i, ok in zip(io_idx, got):
                passed[i] = ok
        if snippet_idx:
            got = _snippets_pass(code, [str(tests[i]) for i in snippet_idx], limits, deadline, entry_point)
            for i, ok in zip(snippet_idx, got):
                passed[i] = ok
    except OSError as e:  # the host could not start a sandbox now (no pids, no memory): this row fails, loudly
        warnings.warn(f"code sandbox could not start, the row's tests count as failed: {e}", RuntimeWarning,
                      stacklevel=2)
    return passed


def _programs_pass(code: str, tests: list[dict], limits: Limits, deadline: float) -> list[bool]:
    """One sandbox for the row; the worker runs the program once per input in a fresh child and sends back each
    run's exit status and (at most `max_output_kb` of) stdout, which are compared here."""
    passed = [False] * len(tests)
    limit = limits.max_output_kb << 10
    inputs = [_text(t.get("input", "")) for t in tests]
    with Sandbox("programs", limits, code=code) as box:
        request = {"inputs": inputs, "per_test_s": limits.per_test_s, "max_output": limit}
        if not box.send(json.dumps(request).encode() + b"\n", deadline):
            return passed
        for _ in tests:
            header = box.readline(deadline, 4096)
            try:
                h = json.loads(header) if header is not None else None
                i, status, n = h["i"], h["exit"], h["n"]
            except (ValueError, TypeError, KeyError, RecursionError):
                break
            if not (type(i) is int and 0 <= i < len(tests) and type(n) is int and 0 <= n <= limit):
                break
            out = box.read_exact(n, deadline)
            if out is None:
                break
            passed[i] = status == 0 and out.decode(errors="replace").split() == _text(tests[i].get("output", "")).split()
    return passed


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _snippets_pass(code: str, tests: list[str], limits: Limits, deadline: float,
                   entry_point: str | None) -> list[bool]:
    verdicts = [False] * len(tests)
    solution = _Solution(code, limits, deadline)
    judge = Sandbox("judge", limits)  # starts while the solution loads
    try:
        loaded = solution.start()
        if loaded is None:  # did not load (error, exit, timeout): every test fails
            return verdicts
        with judge:
            request = {"tests": tests, "names": loaded.get("names", []), "modules": loaded.get("modules", {}),
                       "imports": loaded.get("imports", {})}
            if entry_point:
                request["entry_point"] = entry_point
            if not judge.send(json.dumps(request).encode() + b"\n", deadline):
                return verdicts
            while True:
                line = judge.readline(deadline, _JUDGE_LINE)  # trusted, but a test may pass big arguments
                if line is None:
                    break
                try:
                    msg = json.loads(line)
                except (ValueError, RecursionError):
                    break
                if not isinstance(msg, dict) or msg.get("done"):
                    break
                if "verdict" in msg:
                    i = msg["verdict"]
                    if type(i) is int and 0 <= i < len(tests):
                        verdicts[i] = msg.get("ok") is True
                elif "call" in msg:
                    reply = solution.call(json.dumps(msg["call"]).encode())
                    if not judge.send(reply + b"\n", deadline):
                        break
        return verdicts
    finally:
        judge.close()
        solution.close()


class _Solution:
    """The solution's sandbox, restarted after a timeout or crash (its state then starts afresh)."""

    def __init__(self, code: str, limits: Limits, deadline: float):
        self.code, self.limits, self.deadline = code, limits, deadline
        self.box: Sandbox | None = None

    def start(self) -> dict | None:
        self.close()
        self.box = Sandbox("solution", self.limits, code=self.code)
        line = self.box.readline(self._call_deadline())
        try:
            hello = json.loads(line) if line is not None else None
        except (ValueError, RecursionError):
            hello = None
        if not isinstance(hello, dict) or "names" not in hello:
            self.close()
            return None
        return hello

    def call(self, request: bytes) -> bytes:
        if self.box is None and (time.monotonic() >= self.deadline or self.start() is None):
            return _GONE
        end = self._call_deadline()
        line = self.box.readline(end) if self.box.send(request + b"\n", end) else None
        if line is None or b"\n" in line:
            self.close()  # timed out, died or flooded: this call fails, the next one gets a fresh sandbox
            return _GONE
        return line

    def _call_deadline(self) -> float:
        return min(self.deadline, time.monotonic() + self.limits.per_test_s)

    def close(self) -> None:
        if self.box is not None:
            self.box.close()
            self.box = None
