"""Run untrusted Python against tests in a separate, locked-down process.

Layers (all applied to every run):
- a fresh temporary directory as cwd and HOME, removed afterwards; a minimal environment;
- `setrlimit` inside the child before the solution runs: CPU seconds, address space, file size,
  process count (RLIMIT_NPROC counts every process of the user, so the limit is the user's current
  count plus `max_processes`), no core files. (Set in the child itself rather than with
  `preexec_fn`, which is unsafe in a multi-threaded trainer.)
- namespaces, when `unshare` can create them (probed once): a new network namespace (no interface
  but a downed loopback: no network at all), a PID namespace (the trainer is invisible, so it cannot
  be signalled; when the sandbox's init exits the kernel kills every process left in it), and a mount
  namespace where every mount is remounted read-only except the work dir, then locked by a nested
  user namespace (so the solution cannot remount it writable);
- without namespaces: the child drops root to `nobody` and installs an audit hook that refuses
  sockets, spawning programs, ctypes, signals outside its group and writes outside the work dir. An
  audit hook is a Python-level guard: native code could bypass it, hence ctypes is refused;
- a wall-clock limit in the parent: the child runs in its own session (`start_new_session`) and the
  whole process group is SIGKILLed at the end, whatever happened.

Limits of the score (not of the host's safety): the tests run in the solution's interpreter, so code
that overrides `__eq__` or reads the harness's memory can fake passing tests.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

_HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_harness.py")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock for the whole run
    per_test_s: float = 2.0  # each test (and loading the solution)
    memory_mb: int = 512
    file_size_mb: int = 16
    max_processes: int = 16


@functools.lru_cache(maxsize=1)
def namespaces_available() -> bool:
    """Can this process create user + mount + network + PID namespaces with `unshare`?"""
    exe = shutil.which("unshare")
    if exe is None:
        return False
    try:
        r = subprocess.run([exe, "-rmn", "--pid", "--fork", "--kill-child", "true"], capture_output=True, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _user_process_count() -> int:
    uid, n = os.getuid(), 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                n += os.stat(f"/proc/{name}").st_uid == uid
            except OSError:
                pass
    return n


def run_tests(code: str, tests: list, limits: Limits = Limits(), use_namespaces: bool | None = None) -> list[bool]:
    """Which tests pass. `tests` are Python snippets (asserts) run after the solution, or
    {"input", "output"} dicts for a stdin/stdout program. Any failure of the sandbox is a failed test."""
    if not tests:
        return []
    isolate = namespaces_available() if use_namespaces is None else use_namespaces
    workdir = tempfile.mkdtemp(prefix="r1dsl_sandbox_")
    os.chmod(workdir, 0o777 if not isolate else 0o700)  # without namespaces the child runs as nobody
    nonce = secrets.token_hex(16)
    request = {
        "workdir": workdir,
        "isolate_fs": isolate,
        "audit_guard": not isolate,
        "nonce": nonce,
        "code": code,
        "tests": tests,
        "per_test_s": limits.per_test_s,
        "limits": {
            "cpu_s": int(limits.timeout_s) + 1,
            "memory_mb": limits.memory_mb,
            "file_size_mb": limits.file_size_mb,
            "nproc": _user_process_count() + limits.max_processes,
        },
    }
    cmd = [sys.executable, "-I", _HARNESS]
    if isolate:
        cmd = [shutil.which("unshare"), "-rmn", "--pid", "--fork", "--kill-child"] + cmd
    env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = None
    try:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate((json.dumps(request) + "\n").encode(), timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            out = b""
        for line in out.decode(errors="replace").splitlines():
            try:
                got = json.loads(line)
            except ValueError:
                continue
            if isinstance(got, dict) and got.get("nonce") == nonce and len(got.get("passed", ())) == len(tests):
                return [bool(x) for x in got["passed"]]
        return [False] * len(tests)
    except OSError:
        return [False] * len(tests)
    finally:
        if proc is not None:
            _kill_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the session we started: the child and anything it forked
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.communicate(timeout=2)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        for f in (proc.stdin, proc.stdout):
            try:
                f and f.close()
            except OSError:
                pass
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass
