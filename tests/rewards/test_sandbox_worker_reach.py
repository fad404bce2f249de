"""A solution shares a uid with the sandbox's trusted worker, its parent (PID 1 of the sandbox). Found by an
independent suite for issue 19: on a stdin/stdout row the solution could take the worker's pipes to the
trainer with pidfd_getfd, or open them as /proc/1/fd/N, and read /proc/1/mem. The worker is now not dumpable
and pidfd_getfd / process_madvise are in the kernel filter (with the rest of Docker's list). Run as root and,
where setpriv and the system Python allow, as an ordinary user."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from sandbox_package import LOAD

from backends.rewards.sandbox import sandbox_available, seccomp

pytestmark = pytest.mark.skipif(not sandbox_available(), reason="bubblewrap (bwrap) is not installed")

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "backends", "rewards", "sandbox")
NR = seccomp.ARCHES[seccomp.machine()][1]

# what a solution tries against its parent (the worker) and PID 1; one line of JSON
REACH = r'''
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
got = {}
for pid in sorted({1, os.getppid()}):
    pfd = libc.syscall(%(pidfd_open)d, pid, 0)
    stolen = []
    if pfd >= 0:
        for n in range(8):
            fd = libc.syscall(%(pidfd_getfd)d, pfd, n, 0)
            if fd >= 0:
                stolen.append(n)
    got[f"pidfd_getfd {pid}"] = stolen
    opened = []
    for n in range(8):
        try:
            os.close(os.open(f"/proc/{pid}/fd/{n}", os.O_WRONLY))
            opened.append(n)
        except OSError:
            pass
    got[f"proc fd {pid}"] = opened
    try:
        with open(f"/proc/{pid}/mem", "rb") as f:
            got[f"mem {pid}"] = "readable"
    except OSError as e:
        got[f"mem {pid}"] = e.strerror
print(json.dumps(got, sort_keys=True))
''' % {"pidfd_open": 434, "pidfd_getfd": 438}  # the same numbers on x86_64 and aarch64

# Loads the package by path (an ordinary user's system Python has only the stdlib); runs REACH as a
# stdin/stdout row (forked child of the worker), as a program (the worker's own process: self only) and
# an honest row; prints JSON.
DRIVER = LOAD + r'''
reach = sys.stdin.read()
L = I.Limits(timeout_s=20, per_test_s=10, memory_mb=256, file_size_mb=4, max_processes=8)
out = {"privileged": I.describe()["privileged"]}
with I.Sandbox("programs", L, code=reach) as b:
    b.send((json.dumps({"per_test_s": 10, "max_output": 65536, "inputs": [""]}) + "\n").encode(),
           time.monotonic() + 20)
    head = json.loads(b.readline(time.monotonic() + 20))
    out["row"] = json.loads(b.read_exact(head["n"], time.monotonic() + 20))
out["honest"] = J.run_tests("a, b = map(int, input().split())\nprint(a + b)", [{"input": "2 3", "output": "5"}], L)
print(json.dumps(out))
'''

ROW_CLEAN = {"pidfd_getfd 1": [], "proc fd 1": [], "mem 1": "Permission denied"}


def _check(r):
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout)
    assert got["row"] == ROW_CLEAN, got["row"]  # the worker is both PID 1 and the child's parent
    assert got["honest"] == [True]
    return got


def test_a_stdin_stdout_solution_cannot_reach_the_workers_pipes_or_memory():
    r = subprocess.run([sys.executable, "-c", DRIVER, PACKAGE], input=REACH, capture_output=True, text=True,
                       timeout=300)
    assert _check(r)["privileged"] is (os.geteuid() == 0)


def test_the_same_as_an_ordinary_user():
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or system_python is None or shutil.which("setpriv") is None:
        pytest.skip("an ordinary-user run needs a root test process, setpriv and /usr/bin/python3")
    r = subprocess.run(["setpriv", "--reuid=4323", "--regid=4323", "--clear-groups", system_python, "-c", DRIVER,
                        PACKAGE], input=REACH, capture_output=True, text=True, timeout=300,
                       env={"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp"})
    shutil.rmtree("/tmp/r1dsl-sandbox-4323", ignore_errors=True)
    assert _check(r)["privileged"] is False


@pytest.mark.parametrize("arch", sorted(seccomp.ARCHES))
def test_dockers_ptrace_class_and_obsolete_calls_are_in_every_table(arch):
    table = seccomp.ARCHES[arch][1]
    for name in ("pidfd_getfd", "process_madvise", "kcmp", "process_vm_readv", "process_vm_writev", "ptrace",
                 "nfsservctl"):
        assert name in table and name in seccomp.KERNEL_DENIED, (arch, name)
    prog = seccomp.kernel_filter(arch)
    for name in ("pidfd_getfd", "process_madvise"):  # compiled in: a JEQ on its number
        assert any(prog[i:i + 2] == b"\x15\x00" and int.from_bytes(prog[i + 4:i + 8], "little") == table[name]
                   for i in range(0, len(prog), 8)), (arch, name)
