"""A persistent pool of sympy worker processes with a per-task timeout.

Why a process pool and not `signal.alarm`: an alarm only works in the main thread of the main
interpreter, while rewards run in trainer threads, data-loader workers and daemon processes. A worker
started with `subprocess.Popen` works from any of them (daemonic `multiprocessing` processes may not
have children, subprocesses they may). A task that runs over its timeout is not interrupted: its
worker is killed (SIGKILL) and a fresh one starts in the background, so sympy can never hang or
exhaust the caller, and a runaway worker also stops at its own memory limit (RLIMIT_AS).
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import selectors
import subprocess
import sys
import threading
import time

_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sympy_worker.py")
STARTUP_TIMEOUT_S = 60.0


class _Worker:
    def __init__(self, memory_mb: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-u", _WORKER, str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C on the trainer's terminal does not hit it mid-task
        )
        self.ready = False
        self.buf = b""

    def _readline(self, deadline: float) -> bytes | None:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return None  # the worker died
                self.buf += chunk
        finally:
            sel.close()
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def call(self, a: str, b: str, timeout_s: float) -> bool | None:
        if not self.ready:
            if self._readline(time.monotonic() + STARTUP_TIMEOUT_S) is None:
                raise TimeoutError("worker did not start")
            self.ready = True
        self.proc.stdin.write((json.dumps({"a": a, "b": b}) + "\n").encode())
        self.proc.stdin.flush()
        line = self._readline(time.monotonic() + timeout_s)
        if line is None:
            raise TimeoutError("task timed out")
        return json.loads(line)["eq"]

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class SympyPool:
    """`check(a, b, timeout_s)` -> True/False, or None when undecided (unparseable, timed out, worker died)."""

    def __init__(self, size: int = 2, memory_mb: int = 2048):
        self.size, self.memory_mb = size, memory_mb
        self.idle: queue.Queue[_Worker] = queue.Queue()
        self.started = 0
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.timeouts = 0

    def _get(self) -> _Worker:
        with self.lock:
            if self.pid != os.getpid():  # forked: the parent's workers are not ours
                self.idle, self.started, self.pid = queue.Queue(), 0, os.getpid()
            if self.idle.empty() and self.started < self.size:
                self.started += 1
                return _Worker(self.memory_mb)
        return self.idle.get()

    def check(self, a: str, b: str, timeout_s: float) -> bool | None:
        worker = self._get()
        try:
            result = worker.call(a, b, timeout_s)
        except (TimeoutError, OSError, ValueError, KeyError):
            self.timeouts += 1
            worker.kill()
            self.idle.put(_Worker(self.memory_mb))  # the replacement boots while the caller moves on
            return None
        self.idle.put(worker)
        return result

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().kill()
        self.started = 0


_POOL: SympyPool | None = None
_POOL_LOCK = threading.Lock()


def pool() -> SympyPool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = SympyPool()
            atexit.register(_POOL.close)
        return _POOL


def sympy_equivalent(a: str, b: str, timeout_s: float = 1.0) -> bool | None:
    return pool().check(a, b, timeout_s)
