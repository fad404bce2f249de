"""Start one sandboxed Python process with bubblewrap, talk to it over bounded pipes, and kill its whole tree.

The trusted side (this module, in the trainer) decides everything; the sandbox only gets:
- its own user, mount, PID, network, IPC, UTS and cgroup namespaces (`bwrap --unshare-all`), no further
  user namespaces (`--disable-userns`), no capabilities, a new session, death with its parent;
- an unprivileged uid inside (65534) AND outside: when the trainer is root, every sandbox runs under a uid
  of its own (`UID_BASE + slot`, claimed with a lock file) that owns no file on the host, so it can read
  only world-readable files that are mounted, signal nothing it did not start, and RLIMIT_NPROC counts
  exactly its own processes;
- a read-only root built from nothing: the interpreter, its standard library (site-packages masked by an
  empty read-only tmpfs), the shared libraries they link (found with `ldd`), `/etc/ld.so.cache`,
  /dev/null, /dev/zero, /dev/random, /dev/urandom, a fresh `/proc`, and a size-capped tmpfs `/tmp`.
  No host-writable path is mounted, so no filesystem socket is reachable; the network namespace has no
  interface but a downed loopback;
- limits on the whole tree where the host lets us create cgroups (v2, else v1 pids + memory + cpu):
  pids.max, a memory limit and one core of CPU for every process of the sandbox together; plus rlimits set by the trusted worker
  before any untrusted code runs (address space, file size, processes, CPU seconds, no core files);
- bounded output: the parent reads at most `max_output_kb` and kills the sandbox on more;
- a wall-clock kill of the whole tree: every process of the sandbox's cgroup (or of its uid) is killed,
  which takes the PID namespace down with its init; then its cgroups and lock are released.

When the trainer is root but the interpreter lives under a path the sandbox uid cannot traverse (pyenv
in a 0700 /root), the needed paths are bind-mounted once onto world-traversable mount points in a private
mount namespace (kept alive by an fd; sandboxes start inside it with `nsenter`), so nothing changes on the host.

Without bubblewrap, or where it cannot start, `require_sandbox()` raises `SandboxUnavailable`: there is no
fallback that runs untrusted code in a weaker way.
"""

from __future__ import annotations

import atexit
import fcntl
import glob
import json
import os
import random
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import dataclasses
from dataclasses import dataclass

from backends.rewards.sandbox import seccomp

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: `apt-get install -y bubblewrap`; Fedora: `dnf install bubblewrap`)"
UID_BASE = 1_900_000_000  # outside uids of sandboxes when the trainer is root: UID_BASE + slot (no real user)
UID_SLOTS = 4096
INSIDE_ID = 65534  # nobody/nogroup, inside the user namespace
WORKER = "/sandbox/worker.py"
SOLUTION = "/sandbox/solution.py"
CPU_PERIOD_US = 100_000  # with a cpu cgroup, a sandbox gets at most one core's worth of CPU time
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
_WORKER_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")
_LAUNCH = (  # sh, as the trainer's user: join the sandbox's cgroups, exec the rest (inherited fds beyond
    # stdin/stdout/stderr are closed by the worker before any untrusted code runs)
    'set -e; n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1"; shift; n=$((n-1)); done; exec "$@"'
)


_NOT_INSTALLED = ("code rewards run untrusted code and need a sandbox, but `bwrap` was not found on PATH: "
                  f"{INSTALL_HINT}. There is deliberately no weaker in-process fallback.")


class SandboxUnavailable(RuntimeError):
    """No isolation this machine can provide; code rewards refuse to run rather than run code unconfined."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock for all of a row's tests
    per_test_s: float = 2.0  # one program run, one function call, loading the solution
    memory_mb: int = 512  # the whole sandbox with cgroups; each process (address space) without
    file_size_mb: int = 16  # the sandbox's /tmp in all, and any one file
    max_processes: int = 16  # processes the untrusted code may have at once, itself included
    max_output_kb: int = 1024  # stdout (or one reply line) read from the sandbox; more kills it


@dataclass
class Exchange:
    """What came back from a program run: at most `max_output_kb` of stdout, and how it ended."""

    stdout: bytes
    exit_code: int | None  # None when it was killed (time or output limit)
    reason: str = ""  # "", "timeout", "output limit", "broken pipe"


# ---------------------------------------------------------------------------------------------------------
# What this host offers (probed once)


@dataclass(frozen=True)
class _Host:
    bwrap: str
    root_args: tuple[str, ...]  # bwrap arguments building the read-only root (interpreter, stdlib, libs)
    python: str
    privileged: bool  # root: own uid per sandbox, staged paths, cgroups
    setpriv: str | None
    nsenter: str | None
    staged_ns_fd: int | None  # a private mount namespace where unreachable paths are bound to world-reachable points
    stage: str
    cgroups: "_Cgroups | None"
    kernel_filter: bytes = b""  # seccomp program for bwrap --seccomp (every process of the sandbox)
    untrusted_filter: bytes = b""  # seccomp program the worker adds before untrusted code runs

    @property
    def processes_bounded(self) -> bool:
        """A cgroup bounds the whole tree's processes and memory: a solution may start processes."""
        return self.cgroups is not None and {"pids", "memory"} <= set(self.cgroups.controls)


_host: _Host | None = None
_host_error: str | None = None
_host_lock = threading.Lock()


def require_sandbox() -> _Host:
    """The probed host, or `SandboxUnavailable` saying what to install. Probed once per process."""
    global _host, _host_error
    if shutil.which("bwrap") is None:  # checked on every call: bubblewrap removed (or off PATH) means no more runs
        raise SandboxUnavailable(_NOT_INSTALLED)
    with _host_lock:
        if _host is None and _host_error is None:
            try:
                _host = _probe()
            except SandboxUnavailable as e:
                _host_error = str(e)
        if _host_error is not None:
            raise SandboxUnavailable(_host_error)
        return _host


def sandbox_available() -> bool:
    try:
        require_sandbox()
        return True
    except SandboxUnavailable:
        return False


def describe() -> dict:
    """What isolation this host gets and which limits hold (for logs, docs and tests)."""
    h = require_sandbox()
    if h.processes_bounded:
        processes = f"at most max_processes for the whole tree (cgroup {h.cgroups.kind} pids.max)"
        memory = "memory_mb for the whole tree (cgroup memory limit)"
    else:
        processes = "one: fork, vfork and non-thread clone are refused by seccomp (no cgroup to bound a tree)"
        memory = "memory_mb for the one process (RLIMIT_AS; its threads share it)"
    return {"bwrap": h.bwrap, "privileged": h.privileged, "per_sandbox_uid": h.privileged,
            "cgroups": h.cgroups.kind if h.cgroups else None,
            "whole_tree_limits": sorted(h.cgroups.controls) if h.cgroups else [],
            "seccomp": f"{seccomp.machine()}: {len(seccomp.KERNEL_DENIED)} syscalls refused, namespaces refused; "
                       "execve/execveat refused to untrusted code",
            "processes": processes, "memory": memory}


def _probe() -> _Host:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(_NOT_INSTALLED)
    privileged = os.geteuid() == 0
    tools = {name: shutil.which(name) for name in ("unshare", "setpriv", "nsenter", "mount", "ldd")}
    missing = [n for n, p in tools.items() if p is None and (privileged or n == "ldd")]  # util-linux, libc-bin
    if missing:
        raise SandboxUnavailable(f"the code sandbox needs {', '.join(missing)} (util-linux, libc-bin) besides bwrap")
    python = os.path.realpath(sys.executable)
    # The base installation's paths, not a virtual environment's: the venv's lib/python3.X holds its
    # site-packages and no lib-dynload (the C extension modules: zlib, _ctypes, _ssl, _sqlite3, ...)
    paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix,
                                      "installed_base": sys.base_prefix, "installed_platbase": sys.base_exec_prefix})
    stdlib = os.path.realpath(paths["stdlib"])
    platstdlib = os.path.realpath(paths["platstdlib"])
    dynload = os.path.join(platstdlib, "lib-dynload")
    libs = _shared_libraries(tools["ldd"], [python] + sorted(glob.glob(os.path.join(dynload, "*.so"))))
    wanted = [python, stdlib] + ([platstdlib] if not platstdlib.startswith(stdlib + os.sep) and platstdlib != stdlib
                                 else []) + libs
    if os.path.exists("/etc/ld.so.cache"):
        wanted.append("/etc/ld.so.cache")

    state = _state_dir(privileged)
    for old in glob.glob(os.path.join(state, "stage-*-*")):  # left by a process that was killed
        pid = os.path.basename(old).split("-")[1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(old, ignore_errors=True)
    stage = tempfile.mkdtemp(prefix=f"stage-{os.getpid()}-", dir=state)
    atexit.register(shutil.rmtree, stage, True)
    os.chmod(stage, 0o755)
    shutil.copyfile(_WORKER_SOURCE, os.path.join(stage, "worker.py"))
    os.chmod(os.path.join(stage, "worker.py"), 0o644)

    root_args: list[str] = []
    staged: list[tuple[str, str]] = []
    links_done: set[str] = set()
    bound: set[str] = set()
    for path in wanted:
        for link, target in _symlinks_on_the_way(path):
            if link not in links_done:
                links_done.add(link)
                root_args += ["--symlink", target, link]
        real = os.path.realpath(path)
        if real in bound:
            continue
        bound.add(real)
        source = real
        if privileged and not _world_reachable(real):
            point = os.path.join(stage, f"s{len(staged)}")
            if os.path.isdir(real):
                os.mkdir(point, 0o755)
            else:
                open(point, "w").close()
                os.chmod(point, 0o644)
            staged.append((real, point))
            source = point
        root_args += ["--ro-bind", source, real]
    site = os.path.realpath(paths["purelib"])
    for masked in {site, os.path.realpath(paths["platlib"])}:
        if masked.startswith(stdlib + os.sep) and os.path.isdir(masked):  # site-packages inside the stdlib dir
            root_args += ["--tmpfs", masked, "--remount-ro", masked]
    try:
        arch = seccomp.machine()
    except seccomp.UnknownArchitecture as e:
        raise SandboxUnavailable(f"{e}: the sandbox does not run without its seccomp filter") from None
    cgroups = _Cgroups.probe() if privileged else None
    host = _Host(bwrap=bwrap, root_args=tuple(root_args), python=python, privileged=privileged,
                 setpriv=tools["setpriv"], nsenter=tools["nsenter"],
                 staged_ns_fd=_staged_namespace(tools["unshare"], tools["mount"], staged) if staged else None,
                 stage=stage, cgroups=cgroups, kernel_filter=seccomp.kernel_filter(arch))
    host = dataclasses.replace(host, untrusted_filter=seccomp.untrusted_filter(host.processes_bounded, arch))
    _trial_run(host)
    return host


def _staged_namespace(unshare: str, mount: str, staged: list[tuple[str, str]]) -> int:
    """A private mount namespace (nothing changes on the host) where each unreachable path is bound onto its
    world-reachable mount point; kept alive by the returned fd, which sandboxes enter with nsenter."""
    script = 'm=$1; shift; while [ "$#" -gt 1 ]; do "$m" --bind "$1" "$2"; shift 2; done; echo ready; read _'
    holder = subprocess.Popen([unshare, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
                               mount, *[p for pair in staged for p in pair]],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = holder.stdout.readline()
        if line.strip() != b"ready":
            raise SandboxUnavailable(f"could not prepare the sandbox's mount namespace: {holder.stderr.read()[-400:]!r}")
        fd = os.open(f"/proc/{holder.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
        holder.stdout.close()
        holder.stderr.close()
    atexit.register(os.close, fd)
    return fd


def _state_dir(privileged: bool) -> str:
    """Where the sandbox keeps its per-process stage and uid locks: /run/r1dsl-sandbox (root), else a temp dir;
    not in /tmp when root, so nothing of ours appears among the host's temporary files."""
    base = "/run" if privileged and os.path.isdir("/run") and os.access("/run", os.W_OK) else tempfile.gettempdir()
    d = os.path.join(base, "r1dsl-sandbox" if base == "/run" else f"r1dsl-sandbox-{os.getuid()}")
    try:
        os.mkdir(d, 0o755)
    except FileExistsError:
        pass
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise SandboxUnavailable(f"{d} must be a directory owned by uid {os.getuid()}, not writable by others")
    return d


def _trial_run(host: _Host) -> None:
    """Start one sandbox with an honest program; any failure says why the sandbox is unavailable."""
    code = ("import math, itertools, collections, json, re, functools, heapq, sys, os\n"
            "print(os.getuid(), sum(map(int, sys.stdin.read().split())))\n")
    limits = Limits(timeout_s=30.0, per_test_s=30.0)
    try:
        with Sandbox("program", limits, code=code, host=host, keep_stderr=True) as box:
            got = box.communicate(b"1 2 3\n", time.monotonic() + 30.0)
            err = box.stderr_tail()
    except OSError as e:
        raise SandboxUnavailable(f"bubblewrap could not be started ({e}); {INSTALL_HINT}") from e
    if got.exit_code != 0 or got.stdout.split() != [str(INSIDE_ID).encode(), b"6"]:
        raise SandboxUnavailable(
            "bubblewrap is installed but could not start a sandbox here (a common cause: unprivileged user "
            "namespaces are disabled; `sysctl kernel.unprivileged_userns_clone=1` on older Debian kernels, "
            f"`kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 24.04): exit {got.exit_code}, "
            f"stderr: {err.strip()[-400:]!r}")


def _shared_libraries(ldd: str, binaries: list[str]) -> list[str]:
    out = set()
    for i in range(0, len(binaries), 64):
        r = subprocess.run([ldd, *binaries[i:i + 64]], capture_output=True, text=True, timeout=60)
        for line in r.stdout.splitlines():
            m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if m and os.path.exists(m.group(1)):
                out.add(m.group(1))
    return sorted(out)


def _symlinks_on_the_way(path: str) -> list[tuple[str, str]]:
    """(link, target) for each symlink met resolving `path` (ancestors first), so the sandbox resolves it alike."""
    found, todo, hops = [], os.path.abspath(path), 0
    while hops < 40:
        hops += 1
        parts = todo.strip("/").split("/")
        cur, changed = "/", False
        for i, part in enumerate(parts):
            nxt = os.path.join(cur, part)
            if os.path.islink(nxt):
                target = os.readlink(nxt)
                found.append((nxt, target))
                cur = os.path.normpath(os.path.join(cur, target))
                todo = os.path.join(cur, *parts[i + 1:]) if parts[i + 1:] else cur
                changed = True
                break
            cur = nxt
        if not changed:
            break
    return found


def _world_reachable(path: str) -> bool:
    parts = path.strip("/").split("/")
    cur = "/"
    for part in parts[:-1]:
        cur = os.path.join(cur, part)
        if not os.stat(cur).st_mode & stat.S_IXOTH:
            return False
    mode = os.stat(path).st_mode
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & need == need


# ---------------------------------------------------------------------------------------------------------
# Whole-tree limits: cgroups (v2, else v1 pids + memory)


class _Cgroups:
    def __init__(self, kind: str, parents: dict[str, str]):
        self.kind = kind  # "v2" or "v1"
        self.parents = parents  # controller -> parent directory (v2: one entry "unified")
        self.controls = ("pids", "memory", "cpu") if kind == "v2" else tuple(parents)
        self._n = 0
        self._lock = threading.Lock()

    @staticmethod
    def probe() -> "_Cgroups | None":
        try:
            with open("/proc/self/cgroup") as f:
                lines = [line.rstrip("\n").split(":", 2) for line in f]
        except OSError:
            return None
        v2_root = "/sys/fs/cgroup" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else None
        for _, ctrls, path in lines:
            if ctrls == "" and v2_root:
                parent = os.path.join(v2_root, path.lstrip("/"))
                try:
                    with open(os.path.join(parent, "cgroup.subtree_control")) as f:
                        enabled = f.read().split()
                except OSError:
                    enabled = []
                if {"pids", "memory"} <= set(enabled) and _can_make_child(parent):  # cpu too when enabled
                    return _Cgroups("v2", {"unified": parent})
        parents = {}
        for _, ctrls, path in lines:
            for ctrl in ("pids", "memory", "cpu"):
                mount = f"/sys/fs/cgroup/{ctrl}"
                if ctrl in ctrls.split(",") and os.path.exists(os.path.join(mount, "cgroup.procs")):
                    parent = os.path.join(mount, path.lstrip("/"))
                    if _can_make_child(parent):
                        parents[ctrl] = parent
        return _Cgroups("v1", parents) if parents else None

    def create(self, tag: str, limits: Limits) -> list[str]:
        with self._lock:
            self._n += 1
            name = f"r1dsl-sandbox-{os.getpid()}-{tag}-{self._n}"
        made = []
        try:
            mem = (limits.memory_mb + limits.file_size_mb + 64) << 20  # + its tmpfs + bwrap's own
            pids = limits.max_processes + 1  # + bwrap's monitor (the worker is the namespace's pid 1)
            for ctrl, parent in self.parents.items():
                d = os.path.join(parent, name)
                os.mkdir(d)
                made.append(d)
                if self.kind == "v2":
                    _write(d, "pids.max", pids)
                    _write(d, "memory.max", mem)
                    _write(d, "memory.swap.max", 0, optional=True)
                    _write(d, "cpu.max", f"{CPU_PERIOD_US} {CPU_PERIOD_US}", optional=True)
                elif ctrl == "pids":
                    _write(d, "pids.max", pids)
                elif ctrl == "memory":
                    _write(d, "memory.limit_in_bytes", mem)
                    _write(d, "memory.memsw.limit_in_bytes", mem, optional=True)
                else:
                    _write(d, "cpu.cfs_period_us", CPU_PERIOD_US, optional=True)
                    _write(d, "cpu.cfs_quota_us", CPU_PERIOD_US, optional=True)
            return made
        except OSError:
            self.remove(made)
            raise

    @staticmethod
    def pids(dirs: list[str]) -> set[int]:
        found = set()
        for d in dirs:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    found.update(int(x) for x in f.read().split())
            except OSError:
                pass
        return found

    @staticmethod
    def remove(dirs: list[str]) -> None:
        for d in dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _can_make_child(parent: str) -> bool:
    probe = os.path.join(parent, f"r1dsl-sandbox-probe-{os.getpid()}")
    try:
        os.mkdir(probe)
    except OSError:
        return False
    try:
        os.rmdir(probe)
    except OSError:
        pass
    return True


def _write(d: str, name: str, value, optional: bool = False) -> None:
    try:
        with open(os.path.join(d, name), "w") as f:
            f.write(str(value))
    except OSError:
        if not optional:
            raise


# ---------------------------------------------------------------------------------------------------------
# Per-sandbox uids (root only)


class _UidSlot:
    """A uid no other sandbox (of any process on this host) uses while we hold its lock file."""

    def __init__(self, sweep: bool):
        d = os.path.join(_state_dir(True), "uids")
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(d)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077:
            raise SandboxUnavailable(f"{d} must be a directory owned by root with mode 0700")
        start = random.randrange(UID_SLOTS)
        for i in range(UID_SLOTS):
            slot = (start + i) % UID_SLOTS
            fd = os.open(os.path.join(d, str(slot)), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.fd, self.uid = fd, UID_BASE + slot
            if sweep:  # a crashed trainer's leftovers, if any (with cgroups, its limits do not count them)
                _kill_until_gone(lambda: _pids_of_uid(self.uid))
            return
        raise SandboxUnavailable(f"all {UID_SLOTS} sandbox uids are in use")

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # drops the lock
            self.fd = None


def _pids_of_uid(uid: int) -> set[int]:
    """Every process whose real, effective, saved or filesystem uid is `uid` (from /proc/<pid>/status, which
    is right even for processes that made themselves non-dumpable)."""
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"Uid:"):
                        if str(uid).encode() in line.split()[1:]:
                            found.add(int(name))
                        break
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    """Running (not a zombie waiting for its parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _kill_until_gone(list_pids, keep: frozenset = frozenset(), seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while True:
        pids = {p for p in list_pids() if p not in keep and _alive(p)}
        if not pids:
            return True
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        if time.monotonic() > end:
            return False
        time.sleep(0.005)


# ---------------------------------------------------------------------------------------------------------
# One sandboxed process


class Sandbox:
    """`bwrap ... python -I -S -B /sandbox/worker.py MODE LIMITS`, with `code` at /sandbox/solution.py.

    Modes (see worker.py): "program" runs the code as a script; "solution" loads it and answers calls;
    "judge" runs a row's tests (trusted) and asks the parent for the solution's return values.
    Use as a context manager: leaving it kills every process of the sandbox and removes what it made.
    """

    def __init__(self, mode: str, limits: Limits, code: str | None = None, host: _Host | None = None,
                 keep_stderr: bool = False):
        self.limits = limits
        self._buf = bytearray()
        self._eof = False
        self._closed = False
        self._slot = None
        self._cgroups: list[str] = []
        self.proc = None
        host = host or require_sandbox()
        self._host = host
        code_fd = filter_fd = None
        try:
            if host.privileged:
                self._slot = _UidSlot(sweep=host.cgroups is None)
            if host.cgroups is not None:
                self._cgroups = host.cgroups.create(mode, limits)
            if code is not None:
                code_fd = _memfd("solution", code.encode("utf-8", "surrogatepass"))
            filter_fd = _memfd("seccomp", host.kernel_filter)
            argv = self._argv(mode, code_fd, filter_fd)
            self._stderr_file = tempfile.TemporaryFile() if keep_stderr else None
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr_file if keep_stderr else subprocess.DEVNULL,
                pass_fds=tuple(fd for fd in (code_fd, filter_fd, host.staged_ns_fd if self._slot else None)
                               if fd is not None),
                start_new_session=True, cwd="/",
                env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C.UTF-8"})
            self._in = self.proc.stdin.fileno()
            self._out = self.proc.stdout.fileno()
            os.set_blocking(self._in, False)
            os.set_blocking(self._out, False)
        except BaseException:
            self.close()
            raise
        finally:
            for fd in (code_fd, filter_fd):
                if fd is not None:
                    os.close(fd)

    def _argv(self, mode: str, code_fd: int | None, filter_fd: int) -> list[str]:
        h, lim = self._host, self.limits
        tree_pids = 1 if self._slot is not None else _count_own_processes() + 1  # + bwrap's monitor
        rlimits = {"as": (lim.memory_mb + 64) << 20, "fsize": lim.file_size_mb << 20,
                   "nproc": lim.max_processes + tree_pids, "cpu": int(lim.timeout_s) + 2, "nofile": 256,
                   "seccomp": h.untrusted_filter.hex()}
        bw = [h.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(INSIDE_ID),
              "--gid", str(INSIDE_ID), "--hostname", "sandbox", "--die-with-parent", "--new-session", "--as-pid-1",
              "--cap-drop", "ALL", "--seccomp", str(filter_fd), "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
              "--setenv", "LC_ALL", "C.UTF-8", *h.root_args]
        for dev in DEVICES:
            if os.path.exists(dev):
                bw += ["--dev-bind", dev, dev]
        for i, name in enumerate(("stdin", "stdout", "stderr")):
            bw += ["--symlink", f"/proc/self/fd/{i}", f"/dev/{name}"]
        bw += ["--symlink", "/proc/self/fd", "/dev/fd", "--proc", "/proc",
               "--size", str(lim.file_size_mb << 20), "--perms", "1777", "--tmpfs", "/tmp",
               "--ro-bind", os.path.join(h.stage, "worker.py"), WORKER]
        if code_fd is not None:
            bw += ["--ro-bind-data", str(code_fd), SOLUTION]
        bw += ["--remount-ro", "/", "--chdir", "/tmp", h.python, "-I", "-S", "-B", WORKER, mode,
               json.dumps(rlimits)]
        if self._slot is not None:
            bw = [h.setpriv, f"--reuid={self._slot.uid}", f"--regid={self._slot.uid}", "--clear-groups", "--", *bw]
        ns_fd = h.staged_ns_fd if self._slot is not None else None
        launch = ["/bin/sh", "-c", _LAUNCH, "sh", str(len(self._cgroups)),
                  *[os.path.join(d, "cgroup.procs") for d in self._cgroups], *bw]
        if ns_fd is not None:
            launch = [h.nsenter, f"--mount=/proc/self/fd/{ns_fd}", "--", *launch]
        return launch

    # -- talking to it -----------------------------------------------------------------------------------

    def send(self, data: bytes, deadline: float) -> bool:
        """Write all of `data` to its stdin before `deadline`; False if it stopped reading or died."""
        view = memoryview(data)
        while view:
            if not self._wait(self._in, select.POLLOUT, deadline):
                return False
            try:
                n = os.write(self._in, view[:65536])
            except BlockingIOError:
                continue
            except OSError:
                return False
            view = view[n:]
        return True

    def readline(self, deadline: float, max_bytes: int | None = None) -> bytes | None:
        """One line of its stdout (without the newline), or None on timeout, end of output or an overlong line."""
        limit = max_bytes or self.limits.max_output_kb << 10
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                return line if len(line) <= limit else None
            if len(self._buf) > limit or self._eof:
                return None
            if not self._fill(deadline):
                return None

    def read_exact(self, n: int, deadline: float) -> bytes | None:
        """Exactly n bytes of its stdout, or None on timeout or end of output."""
        while len(self._buf) < n:
            if self._eof or not self._fill(deadline):
                return None
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def communicate(self, data: bytes, deadline: float) -> Exchange:
        """Feed `data` as its whole stdin, collect its stdout until it exits, within `deadline` and the output limit."""
        limit = self.limits.max_output_kb << 10
        view = memoryview(data)
        stdin_open = True
        if not view:
            self._close_stdin()
            stdin_open = False
        poller = select.poll()
        poller.register(self._out, select.POLLIN)
        if stdin_open:
            poller.register(self._in, select.POLLOUT)
        while True:
            now = time.monotonic()
            if len(self._buf) > limit:
                return Exchange(bytes(self._buf[:limit]), None, "output limit")
            if self._eof and self.proc.poll() is not None:
                return Exchange(bytes(self._buf), self.proc.returncode)
            if now >= deadline:
                return Exchange(bytes(self._buf), None, "timeout")
            if self._eof:  # stdout closed but the sandbox still running: wait for it within the deadline
                try:
                    self.proc.wait(timeout=min(0.05, deadline - now))
                except subprocess.TimeoutExpired:
                    pass
                continue
            for fd, ev in poller.poll(max(1, int(min(deadline - now, 0.1) * 1000))):
                if fd == self._out:
                    self._read_some()
                    if self._eof:
                        poller.unregister(self._out)
                elif stdin_open:
                    try:
                        if ev & (select.POLLERR | select.POLLHUP):
                            raise BrokenPipeError
                        n = os.write(self._in, view[:65536])
                        view = view[n:]
                    except BlockingIOError:
                        continue
                    except OSError:
                        view = view[:0]
                    if not view:
                        poller.unregister(self._in)
                        self._close_stdin()
                        stdin_open = False

    def stderr_tail(self) -> str:
        if self._stderr_file is None:
            return ""
        self._stderr_file.seek(0)
        return self._stderr_file.read()[-4000:].decode(errors="replace")

    def _wait(self, fd: int, event: int, deadline: float) -> bool:
        poller = select.poll()
        poller.register(fd, event)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            evs = poller.poll(max(1, int(min(left, 0.1) * 1000)))
            if evs:
                return not any(ev & (select.POLLERR | select.POLLNVAL) for _, ev in evs) or bool(
                    event == select.POLLIN)
            if self.proc.poll() is not None and event == select.POLLOUT:
                return False

    def _fill(self, deadline: float) -> bool:
        if not self._wait(self._out, select.POLLIN, deadline):
            return False
        self._read_some()
        return True

    def _read_some(self) -> None:
        try:
            chunk = os.read(self._out, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self._buf += chunk
        else:
            self._eof = True

    def _close_stdin(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    # -- ending it -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Kill every process of the sandbox, reap bwrap, remove its cgroups, release its uid. Idempotent."""
        if self._closed:
            return
        self._closed = True
        proc = self.proc
        if proc is not None:
            keep = frozenset({proc.pid})

            def members():  # a cgroup cannot be left by an unprivileged process; without one, the uid
                if self._cgroups:
                    return _Cgroups.pids(self._cgroups)
                return _pids_of_uid(self._slot.uid) if self._slot is not None else set()

            # everything but bwrap's monitor first, so the monitor reaps the namespace's init; then the monitor
            if self._cgroups or self._slot is not None:
                _kill_until_gone(members, keep, seconds=2.0)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            if self._cgroups or self._slot is not None:
                _kill_until_gone(members, seconds=5.0)
                _wait_reaped(members)
            for f in (proc.stdin, proc.stdout):
                try:
                    f and f.close()
                except OSError:
                    pass
        if self._cgroups:
            _Cgroups.remove(self._cgroups)
        if self._slot is not None:
            self._slot.release()
        if getattr(self, "_stderr_file", None) is not None:
            self._stderr_file.close()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass


def _wait_reaped(members, seconds: float = 1.0) -> None:
    """Zombies of the sandbox are reaped by their parent (bwrap's monitor, the host's init): wait for them briefly."""
    end = time.monotonic() + seconds
    while members() and time.monotonic() < end:
        time.sleep(0.005)


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _count_own_processes() -> int:
    return len(_pids_of_uid(os.getuid()))
