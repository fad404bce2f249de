"""The sandbox's kernel surface (issue 19): a seccomp filter refuses what CPython never needs, untrusted code
cannot exec anything (a binary written to /tmp included), and where no cgroup bounds a process tree a solution
is one process. Each blocked class is tried from inside with raw syscalls (ctypes), as root and, through
setpriv, as an ordinary user; controls show the same calls work outside the sandbox and honest code still
passes."""

import dataclasses
import json
import os
import shutil
import struct
import subprocess
import sys
import time

import pytest

from backends.rewards.sandbox import Limits, Sandbox, run_tests, sandbox_available
from backends.rewards.sandbox import seccomp
from backends.rewards.sandbox.isolation import describe, require_sandbox
from sandbox_package import LOAD as LOAD_SANDBOX_PACKAGE

pytestmark = pytest.mark.skipif(not sandbox_available(), reason="bubblewrap (bwrap) is not installed")
LIMITS = Limits(timeout_s=20.0, per_test_s=10.0, memory_mb=256, file_size_mb=4, max_processes=16, max_output_kb=256)
X86 = seccomp.machine() == "x86_64"

# Each probe makes one raw syscall and prints [return value, errno]. Numbers from the filter's own table.
NR = seccomp.ARCHES[seccomp.machine()][1]
PROBE = r'''
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return [r, ctypes.get_errno()]
buf = ctypes.create_string_buffer(4096)
NR = json.loads(%r)
out = {
    "io_uring_setup": sc(NR["io_uring_setup"], 8, buf),
    "ptrace": sc(NR["ptrace"], 0, 0, 0, 0),
    "process_vm_readv": sc(NR["process_vm_readv"], 1, buf, 1, buf, 1, 0),
    "bpf": sc(NR["bpf"], 0, buf, 48),
    "perf_event_open": sc(NR["perf_event_open"], buf, 0, -1, -1, 0),
    "keyctl": sc(NR["keyctl"], 0, -3, 1),
    "add_key": sc(NR["add_key"], ctypes.c_char_p(b"user"), ctypes.c_char_p(b"k"), buf, 1, -3),
    "mount": sc(NR["mount"], ctypes.c_char_p(b"none"), ctypes.c_char_p(b"/tmp"), ctypes.c_char_p(b"tmpfs"), 0, 0),
    "umount2": sc(NR["umount2"], ctypes.c_char_p(b"/tmp"), 0),
    "fsopen": sc(NR["fsopen"], ctypes.c_char_p(b"tmpfs"), 0),
    "unshare-user": sc(NR["unshare"], 0x10000000),
    "unshare-net": sc(NR["unshare"], 0x40000000),
    "setns": sc(NR["setns"], 0, 0),
    "clone-newuser": sc(NR["clone"], 0x10000000 | 17, 0, 0, 0, 0),
    "clone3": sc(NR["clone3"], buf, 88),
    "userfaultfd": sc(NR["userfaultfd"], 0),
    "personality": sc(NR["personality"], 0x0040000),
    "kexec_load": sc(NR["kexec_load"], 0, 0, 0, 0),
    "init_module": sc(NR["init_module"], buf, 0, ctypes.c_char_p(b"")),
    "reboot": sc(NR["reboot"], 0xfee1dead, 0x28121969, 0, 0),
    "swapon": sc(NR["swapon"], ctypes.c_char_p(b"/tmp/x"), 0),
    "open_by_handle_at": sc(NR["open_by_handle_at"], -100, buf, 0),
    "syslog": sc(NR["syslog"], 3, buf, 100),
    "sethostname": sc(NR["sethostname"], ctypes.c_char_p(b"x"), 1),
    "chroot": sc(NR["chroot"], ctypes.c_char_p(b"/tmp")),
    "acct": sc(NR["acct"], ctypes.c_char_p(b"/tmp/a")),
    "getpid": sc(39 if "fork" in NR else 172),
}
if "fork" in NR:  # x86_64: the x32 ABI (the same getpid with bit 30 set)
    out["x32-getpid"] = sc(0x40000000 | 39)
print(json.dumps(out))
''' % json.dumps(NR)

REFUSED = ["io_uring_setup", "ptrace", "process_vm_readv", "bpf", "perf_event_open", "keyctl", "add_key", "mount",
           "umount2", "fsopen", "unshare-user", "unshare-net", "setns", "clone-newuser", "userfaultfd", "personality",
           "kexec_load", "init_module", "reboot", "swapon", "open_by_handle_at", "syslog", "sethostname", "chroot",
           "acct"] + (["x32-getpid"] if X86 else [])


def _program(code: str, host=None) -> tuple[str, int]:
    with Sandbox("program", LIMITS, code=code, host=host) as box:
        got = box.communicate(b"", time.monotonic() + 20)
    return got.stdout.decode(errors="replace"), got.exit_code


def test_every_refused_class_gets_eperm_inside():
    out, status = _program(PROBE)
    assert status == 0, out
    got = json.loads(out)
    for name in REFUSED:
        assert got[name] == [-1, 1], f"{name}: {got[name]} (expected EPERM from the filter)"
    assert got["clone3"] == [-1, 38]  # ENOSYS: the C library falls back to clone, whose flags the filter reads
    assert got["getpid"][0] == 1  # an ordinary call works (the worker is pid 1 of its namespace)


HARMLESS = r'''
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(4096)
ctypes.set_errno(0)
r = libc.syscall(ctypes.c_long(%d), ctypes.c_long(8), buf)
print(json.dumps([r, ctypes.get_errno()]))
''' % NR["io_uring_setup"]


def test_the_probe_can_see_the_difference_outside():
    """Control: outside the sandbox the same io_uring_setup returns a descriptor (where the kernel has io_uring),
    so the EPERM inside is the filter's doing. Only this harmless call runs outside: the others would act on the
    host as root."""
    outside = json.loads(subprocess.run([sys.executable, "-c", HARMLESS], capture_output=True, text=True,
                                        timeout=60).stdout)
    if outside[0] < 0:
        pytest.skip(f"io_uring is not available on this kernel (errno {outside[1]}): no control")
    inside, _ = _program(HARMLESS)
    assert outside[0] >= 0 and json.loads(inside) == [-1, 1]


def _tiny_elf() -> bytes:
    """A 120+12-byte static x86_64 ELF that exits with status 42 (no libc, no interpreter)."""
    code = bytes([0xBF, 42, 0, 0, 0, 0xB8, 60, 0, 0, 0, 0x0F, 0x05])  # mov edi,42; mov eax,60; syscall
    entry = 0x400000 + 64 + 56
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7, 2, 0x3E, 1, entry, 64, 0, 0,
                       64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 64 + 56 + len(code), 64 + 56 + len(code), 0x1000)
    return ehdr + phdr + code


EXEC_PROBE = r'''
import os, json
elf = bytes.fromhex(%r)
out = {}
with open("/tmp/a", "wb") as f:
    f.write(elf)
os.chmod("/tmp/a", 0o755)
for name, call in (("execv-tmp", lambda: os.execv("/tmp/a", ["a"])),
                   ("execv-python", lambda: os.execv("/proc/self/exe", ["python", "-c", "1"])),
                   ("posix_spawn", lambda: os.waitpid(os.posix_spawn("/tmp/a", ["a"], {}), 0)),
                   ("memfd-exec", lambda: (lambda fd: (os.write(fd, elf), os.execve(fd, ["a"], {})))(os.memfd_create("x")))):
    try:
        call()
        out[name] = "ran"
    except OSError as e:
        out[name] = e.errno
print(json.dumps(out))
'''


@pytest.mark.skipif(not X86, reason="the hand-made ELF is x86_64")
def test_a_written_binary_cannot_be_run():
    elf = _tiny_elf()
    path = f"/tmp/r1dsl-elf-{os.getpid()}"
    with open(path, "wb") as f:
        f.write(elf)
    os.chmod(path, 0o755)
    assert subprocess.run([path]).returncode == 42  # control: the binary is valid and runs outside
    os.unlink(path)
    out, status = _program(EXEC_PROBE % elf.hex())
    got = json.loads(out)
    assert got["execv-tmp"] == 1 and got["execv-python"] == 1 and got["memfd-exec"] == 1, got
    assert got["posix_spawn"] in (1, 11), got  # EPERM from exec, or from the spawn's clone where processes are refused


FORK_PROBE = r'''
import json, os, threading
out = {}
try:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    out["fork"] = "ok"
except OSError as e:
    out["fork"] = e.errno
box = []
t = threading.Thread(target=lambda: box.append(sum(range(1000))))
t.start()
t.join()
out["thread"] = box
print(json.dumps(out))
'''


def _unbounded_host():
    """The host as it is without cgroups (an ordinary user on a cluster): no tree to bound, so no processes."""
    h = require_sandbox()
    return dataclasses.replace(h, cgroups=None, untrusted_filter=seccomp.untrusted_filter(False))


def test_without_cgroups_a_solution_is_one_process_and_threads_still_work():
    out, _ = _program(FORK_PROBE, host=_unbounded_host())
    assert json.loads(out) == {"fork": 1, "thread": [499500]}


def test_without_cgroups_children_cannot_add_up_memory():
    # five children of 200 MB each would hold 1 GB at once with memory_mb = 256; none can be started
    code = ("import os\nkids = []\nfor _ in range(5):\n    try:\n        pid = os.fork()\n    except OSError:\n"
            "        break\n    if pid == 0:\n        x = bytearray(200 << 20)\n        os._exit(0)\n    kids.append(pid)\n"
            "print(len(kids))\n")
    out, _ = _program(code, host=_unbounded_host())
    assert out.strip() == "0"


def test_where_cgroups_bound_the_tree_processes_are_allowed():
    if not require_sandbox().processes_bounded:
        pytest.skip("this host has no cgroup with pids and memory for the sandbox")
    out, _ = _program(FORK_PROBE)
    assert json.loads(out) == {"fork": "ok", "thread": [499500]}


def test_describe_says_which_limits_hold():
    d = describe()
    assert "seccomp" in d and "refused" in d["seccomp"]
    assert ("pids.max" in d["processes"]) == require_sandbox().processes_bounded
    assert "RLIMIT_AS" in d["memory"] or "cgroup" in d["memory"]


HONEST = [
    ("import zlib, binascii, base64, lzma, bz2, json, hashlib, struct, math, itertools, collections, heapq, bisect\n"
     "def f(s):\n    b = s.encode()\n    assert zlib.decompress(zlib.compress(b)) == b\n"
     "    assert lzma.decompress(lzma.compress(b)) == b and bz2.decompress(bz2.compress(b)) == b\n"
     "    return base64.b64encode(b).decode() + binascii.hexlify(b).decode()\n",
     ["assert f('hi') == 'aGk=' + '6869'"]),
    ("import ctypes, sqlite3, ssl, decimal, fractions, datetime, re, array, random, statistics, string, functools\n"
     "def g(n):\n    db = sqlite3.connect(':memory:')\n    db.execute('create table t (x)')\n"
     "    db.executemany('insert into t values (?)', [(i,) for i in range(n)])\n"
     "    return db.execute('select sum(x) from t').fetchone()[0] + ctypes.c_int(0).value\n",
     ["assert g(10) == 45"]),
    ("import sys\nprint(sum(map(int, sys.stdin.read().split())))\n", [{"input": "1 2 3", "output": "6"}]),
]


@pytest.mark.parametrize("code, tests", HONEST, ids=["compression", "ctypes-sqlite-ssl", "stdin"])
def test_honest_solutions_with_stdlib_imports_pass(code, tests):
    assert run_tests(code, tests, LIMITS) == [True] * len(tests)


NON_ROOT = LOAD_SANDBOX_PACKAGE + r'''
L = I.Limits(timeout_s=20, per_test_s=10, memory_mb=256, file_size_mb=4, max_processes=8)
out = {"describe": I.describe()}
for name, code in json.loads(sys.argv[2]).items():
    with I.Sandbox("program", L, code=code) as b:
        out[name] = b.communicate(b"", time.monotonic() + 20).stdout.decode()
out["honest"] = J.run_tests("import zlib, base64\ndef f(s):\n    return base64.b64encode(zlib.compress(s.encode()))\n",
                            ["assert f('a') == f('a')"], L)
print(json.dumps(out))
'''


def test_as_an_ordinary_user_the_same_classes_are_refused():
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or system_python is None or shutil.which("setpriv") is None:
        pytest.skip("needs a root trainer (to become an unprivileged user with setpriv) and /usr/bin/python3")
    package = os.path.dirname(seccomp.__file__)
    probes = {"kernel": PROBE, "fork": FORK_PROBE}
    r = subprocess.run(["setpriv", "--reuid=4322", "--regid=4322", "--clear-groups", system_python, "-c", NON_ROOT,
                        package, json.dumps(probes)],
                       capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp"})
    shutil.rmtree("/tmp/r1dsl-sandbox-4322", ignore_errors=True)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    assert got["describe"]["privileged"] is False and "refused by seccomp" in got["describe"]["processes"]
    kernel = json.loads(got["kernel"])
    for name in REFUSED:
        assert kernel[name] == [-1, 1], (name, kernel[name])
    assert json.loads(got["fork"]) == {"fork": 1, "thread": [499500]}
    assert got["honest"] == [True]


VENV_PROBE = LOAD_SANDBOX_PACKAGE + r'''
L = I.Limits(timeout_s=20, per_test_s=10, memory_mb=256, file_size_mb=4, max_processes=8)
code = "import importlib\ndef can(m):\n    try:\n        importlib.import_module(m)\n        return True\n    except ImportError:\n        return False\n"
mods = json.loads(sys.argv[2])
tests = [f"assert can({m!r})" for m in mods]
with I.Sandbox("program", L, code="import sys\nprint(sys.prefix)") as b:
    prefix = b.communicate(b"", time.monotonic() + 20).stdout.decode().strip()
print(json.dumps({"imports": dict(zip(mods, J.run_tests(code, tests, L))), "prefix": prefix, "venv": sys.prefix}))
'''


def test_a_trainer_in_a_virtual_environment_gives_solutions_the_base_standard_library(tmp_path):
    """The root holds the base interpreter's standard library and what its C extensions link to, never the venv's
    lib/python3.X or any site-packages."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    stdlib = ["zlib", "binascii", "base64", "ctypes", "lzma", "bz2", "sqlite3", "ssl", "_decimal", "hashlib", "json"]
    third_party = ["pip", "setuptools", "torch", "backends"]
    r = subprocess.run([str(venv / "bin" / "python"), "-c", VENV_PROBE, os.path.dirname(seccomp.__file__),
                        json.dumps(stdlib + third_party)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    assert got["venv"] == str(venv) and got["prefix"] != str(venv)
    assert {m: got["imports"][m] for m in stdlib} == {m: True for m in stdlib}
    assert {m: got["imports"][m] for m in third_party} == {m: False for m in third_party}
