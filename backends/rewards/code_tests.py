"""A code row's tests, from the formats people train on, as what the sandbox judge runs: {"input", "output"}
dicts (a program fed stdin, its stdout compared) or Python snippets (asserts, `def check(candidate)`).

Accepted shapes of the row's `tests` field (a JSON string of any of them too), with the row's other columns:
- Python source (MBPP `test_list` items, HumanEval `test` with the row's `entry_point`): one test per top-level
  assert, each preceded by the source's other statements; MBPP's `test_setup_code` column runs first.
- a list of assert strings (MBPP `test_list`) or of test-case dicts;
- APPS / TACO `input_output`: {"inputs": [...], "outputs": [...]}, call-based when it has "fn_name";
- open-r1 verifiable-coding `verification_info`: {"language": "python", "test_cases": [{"input", "output",
  "type": "stdin_stdout" | "function_call", "fn_name"?}]};
- LiveCodeBench `public_test_cases` / `private_test_cases`: [{"input", "output", "testtype": "stdin" |
  "functional"}] (functional: the function named by `metadata`'s "func_name"); the private cases' compressed
  form (base64 of zlib of a pickled JSON string) is decoded with an unpickler that builds strings only, never
  objects, and a bound on the decompressed size.
Anything else raises CodeTestsError naming these shapes: a row is never scored 0 (or 1) for a format we do not
read. A call-based test calls the named function, or `Solution().name` (LeetCode style), and compares the
return value (a tuple as a list; APPS also accepts the expected value wrapped in a one-item list).
"""

from __future__ import annotations

import ast
import base64
import binascii
import io
import json
import pickle
import re
import zlib
from typing import Any

MAX_DECOMPRESSED = 256 << 20  # bytes a compressed test field may expand to
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")  # no backtracking: one character class, then at most two '='
ACCEPTED = ("Python asserts (MBPP test_list, HumanEval test + entry_point), {inputs, outputs[, fn_name]} (APPS/TACO "
            "input_output), {language, test_cases} (open-r1 verification_info), [{input, output, testtype}] "
            "(LiveCodeBench), or a list of {input, output} dicts")


class CodeTestsError(ValueError):
    """A row's tests in a shape this reward does not read."""


def row_tests(tests: Any, row: dict | None = None) -> list:
    """The row's tests as {"input", "output"} dicts and Python snippets (see the module docstring)."""
    row = row or {}
    setup = row.get("test_setup_code")
    found = _tests(tests, _func_name(row))
    if isinstance(setup, str) and setup.strip():
        found = [f"{setup}\n{t}" if isinstance(t, str) else t for t in found]
    return found


def _func_name(row: dict) -> str | None:
    meta = row.get("metadata")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except (ValueError, RecursionError):
            meta = None
    name = meta.get("func_name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name.isidentifier() else None


def _tests(tests: Any, func_name: str | None) -> list:
    if tests is None:  # a row without tests: nothing can pass (the row scores 0)
        return []
    if isinstance(tests, (bytes, bytearray)):
        tests = bytes(tests).decode("utf-8", errors="replace")
    if isinstance(tests, str):
        return _text(tests, func_name)
    if isinstance(tests, (list, tuple)):
        return [t for item in tests for t in (_case(item, func_name) if isinstance(item, dict) else _tests(item, func_name))]
    if isinstance(tests, dict):
        if "test_cases" in tests:  # open-r1 verification_info
            language = str(tests.get("language") or "python").lower()
            if language not in ("python", "python3", "py"):
                raise CodeTestsError(f"tests in {language!r}: code_accuracy runs Python only")
            cases = tests["test_cases"]
            if isinstance(cases, str):
                cases = _json(cases)
            return _tests(cases, func_name)
        if "inputs" in tests and "outputs" in tests:  # APPS / TACO input_output
            inputs, outputs = tests["inputs"], tests["outputs"]
            if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
                raise CodeTestsError("input_output: `inputs` and `outputs` must be lists of the same length")
            fn = tests.get("fn_name")
            if fn:
                return [_call(_name(fn), i, o, apps=True) for i, o in zip(inputs, outputs)]
            return [{"input": _io(i), "output": _io(o)} for i, o in zip(inputs, outputs)]
        if "input" in tests and "output" in tests:
            return _case(tests, func_name)
    raise CodeTestsError(f"tests of type {type(tests).__name__} in an unknown shape; accepted: {ACCEPTED}")


def _text(text: str, func_name: str | None) -> list:
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            return _tests(json.loads(stripped), func_name)
        except (ValueError, RecursionError):
            pass  # Python source that starts with a bracket
    if _BASE64.fullmatch(stripped):  # one long base64 word (a valid Python name too): LiveCodeBench's compressed form
        decoded = _compressed(stripped)
        if decoded is not None:
            return _tests(decoded, func_name)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [text]  # fails in the judge, as it should
    body = tree.body
    setup = [ast.get_source_segment(text, n) for n in body if not isinstance(n, ast.Assert)]
    asserts = [ast.get_source_segment(text, n) for n in body if isinstance(n, ast.Assert)]
    if not asserts:
        checkable = any(isinstance(n, (ast.Assert, ast.Call, ast.Raise)) for n in ast.walk(tree))
        return [text] if checkable else []  # a snippet that could not fail is no test
    return ["\n".join(setup + [a]) for a in asserts]


def _case(case: dict, func_name: str | None) -> list:
    if "input" not in case or "output" not in case:
        raise CodeTestsError(f"a test case without `input` and `output` (keys: {sorted(map(str, case))[:8]}); "
                              f"accepted: {ACCEPTED}")
    kind = str(case.get("testtype") or case.get("type") or "stdin").lower()
    if kind in ("stdin", "stdin_stdout", "stdio"):
        return [{"input": _io(case["input"]), "output": _io(case["output"])}]
    if kind in ("functional", "function_call", "call"):
        name = case.get("fn_name") or func_name
        if not name:
            raise CodeTestsError("a functional test case needs the function's name (`fn_name`, or `metadata` "
                                  "with `func_name`)")
        if isinstance(case["input"], str):  # LiveCodeBench: one JSON value per line, the arguments
            args = [_json(line) for line in case["input"].split("\n") if line.strip()]
        else:
            args = case["input"] if isinstance(case["input"], list) else [case["input"]]
        output = _json(case["output"]) if isinstance(case["output"], str) else case["output"]
        return [_call(_name(name), args, output, apps=False)]
    raise CodeTestsError(f"test type {kind!r}: accepted are stdin/stdin_stdout and functional/function_call")


def _call(name: str, args: Any, expected: Any, apps: bool) -> str:
    """A snippet calling `name(*args)` (or `Solution().name`) and asserting its value. Values travel as JSON text
    inside the snippet, so no data is ever evaluated as code."""
    if not isinstance(args, list):
        args = [args]
    other = " or (isinstance(_want, list) and len(_want) == 1 and _got == _want[0])" if apps else ""
    return (f"import json as _json\n"
            f"_f = {name} if {name!r} in globals() else Solution().{name}\n"
            f"_args = _json.loads({json.dumps(args)!r})\n"
            f"_want = _json.loads({json.dumps(expected)!r})\n"
            f"_got = _f(*_args)\n"
            f"_got = list(_got) if type(_got) is tuple else _got\n"
            f"assert _got == _want{other}")


def _name(fn: Any) -> str:
    if not isinstance(fn, str) or not fn.isidentifier():
        raise CodeTestsError(f"function name {fn!r} is not a Python identifier")
    return fn


def _io(value: Any) -> str:
    if isinstance(value, list):  # APPS sometimes gives a program's input or output as a list of lines
        return "\n".join(map(str, value))
    return value if isinstance(value, str) else str(value)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise CodeTestsError(f"not JSON: {text[:60]!r}") from None


class _StringsOnly(pickle.Unpickler):
    """Unpickles plain values only: any class or function reference is refused, so no code runs."""

    def find_class(self, module, name):
        raise CodeTestsError(f"a pickled test field refers to {module}.{name}: refused (only plain data is read)")


def _compressed(text: str) -> Any | None:
    """LiveCodeBench's private tests: base64 of zlib of a pickled JSON string; None when the text is not that."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    inflate = zlib.decompressobj()
    try:
        data = inflate.decompress(raw, MAX_DECOMPRESSED)
    except zlib.error:
        return None
    if inflate.unconsumed_tail:
        raise CodeTestsError(f"compressed tests expand beyond {MAX_DECOMPRESSED >> 20} MiB")
    try:
        value = _StringsOnly(io.BytesIO(data)).load()
    except CodeTestsError:
        raise
    except Exception:  # noqa: BLE001  (not a pickle)
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        return _json(value)
    return value
