"""A persistent pool of sympy worker processes; every task ends by its deadline.

Why a process pool and not `signal.alarm`: an alarm only works in the main thread of the main
interpreter, while rewards run in trainer threads, data-loader workers and daemon processes. A worker
started with `subprocess.Popen` works from any of them (daemonic `multiprocessing` processes may not
have children, subprocesses they may). A task that runs over its timeout is not interrupted: its
worker is killed (SIGKILL) and a fresh one starts in the background, so sympy can never hang or
exhaust the caller, and a runaway worker also stops at its own memory limit (RLIMIT_AS). The deadline
covers waiting for a free worker and for a starting one (importing sympy): a task never waits longer
than its budget, it is reported undecided instead. Workers receive expression trees as JSON, never text.
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


class StartingUp(Exception):
    """The worker has not finished importing sympy by the deadline (it keeps starting; nothing is killed)."""


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

    def call(self, a, b, deadline: float) -> bool | None:
        """Send one task; raise TimeoutError when the answer is not back by `deadline` (monotonic)."""
        if not self.ready:
            if self._readline(deadline) is None:
                if self.proc.poll() is not None:
                    raise OSError("worker died while starting")
                raise StartingUp()
            self.ready = True
        self.proc.stdin.write((json.dumps({"a": a, "b": b}) + "\n").encode())
        self.proc.stdin.flush()
        line = self._readline(deadline)
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

    def _get(self, deadline: float) -> _Worker | None:
        with self.lock:
            if self.pid != os.getpid():  # forked: the parent's workers are not ours
                self.idle, self.started, self.pid = queue.Queue(), 0, os.getpid()
            if self.idle.empty() and self.started < self.size:
                self.started += 1
                return _Worker(self.memory_mb)
        try:
            return self.idle.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def warm(self) -> None:
        """Start a worker in the background if none is running (returns at once)."""
        with self.lock:
            if self.pid != os.getpid():
                self.idle, self.started, self.pid = queue.Queue(), 0, os.getpid()
            if self.started == 0:
                self.started += 1
                self.idle.put(_Worker(self.memory_mb))

    def check(self, a, b, timeout_s: float) -> bool | None:
        """Decide one pair within `timeout_s` in all (waiting for a free or starting worker included)."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        worker = self._get(deadline)
        if worker is None:
            return None
        try:
            result = worker.call(a, b, deadline)
        except StartingUp:
            self.idle.put(worker)  # still importing sympy: keep it for the next task
            return None
        except (TimeoutError, OSError, ValueError, KeyError):
            self.timeouts += 1
            worker.kill()
            self.idle.put(_Worker(self.memory_mb))  # the replacement boots while the caller moves on
            return None
        self.idle.put(worker)
        return result if result in (True, False) else None

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


def sympy_equivalent(a, b, timeout_s: float = 1.0) -> bool | None:
    """Two JSON trees (`equivalence.tree_to_json`) equal per sympy? None when undecided within `timeout_s`."""
    return pool().check(a, b, timeout_s)
