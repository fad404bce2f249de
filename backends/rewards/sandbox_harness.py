"""Runs inside the sandbox (see `sandbox.py`): lock the process down, run a solution, run its tests.

Standalone on purpose (imports nothing from this project). Reads one JSON request on stdin, writes one
JSON result line on the stdout it was given; the solution's own output goes to a size-limited file.
"""

import ctypes
import io
import json
import os
import resource
import signal
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
CLONE_NEWUSER = 0x10000000
_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
          "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME}


def _unescape(path):
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def read_only_filesystem(workdir):
    """In our own mount namespace: every mount read-only except `workdir`; then a nested user namespace so
    the solution (namespace root until now) can no longer remount anything writable."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    wd = workdir.encode()
    if libc.mount(wd, wd, None, MS_BIND, None) != 0:
        raise OSError(ctypes.get_errno(), "bind mount of the work dir")
    failed = []
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split() for line in f]
    for fields in mounts:
        point, opts = _unescape(fields[4]), fields[5].split(",")
        if point == workdir:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for o in opts:
            flags |= _FLAGS.get(o, 0)
        if libc.mount(None, point.encode(), None, flags, None) != 0 and "ro" not in opts:
            failed.append(point)
    if libc.unshare(CLONE_NEWUSER) != 0:
        raise OSError(ctypes.get_errno(), "nested user namespace")
    return failed


def set_limits(lim):
    def both(res, value):
        value = int(value)
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            soft, hard = resource.getrlimit(res)
            resource.setrlimit(res, (min(value, hard) if hard != resource.RLIM_INFINITY else value, hard))

    both(resource.RLIMIT_CPU, lim["cpu_s"])
    both(resource.RLIMIT_AS, lim["memory_mb"] << 20)
    both(resource.RLIMIT_FSIZE, lim["file_size_mb"] << 20)
    both(resource.RLIMIT_NPROC, lim["nproc"])
    both(resource.RLIMIT_CORE, 0)


def audit_guard(workdir):
    """Fallback when namespaces are unavailable: refuse network, process spawning, signals to other
    process groups, native code and writes outside the work dir at the Python level. Native code
    (ctypes, cffi, a compiled extension) could bypass it, so ctypes loading is refused too."""
    blocked = ("socket.", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "ctypes.",
               "_posixsubprocess")
    pgid = os.getpgid(0)
    root = os.path.realpath(workdir)

    def hook(event, args):
        if event.startswith(blocked) and event != "socket.getaddrinfo":
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event in ("os.kill", "os.killpg"):
            target = args[0]
            if event == "os.killpg" and target != pgid or event == "os.kill" and target not in (0, os.getpid()):
                raise PermissionError("sandbox: signals outside the sandbox are not allowed")
        if event == "open" and len(args) > 1 and args[1] and any(c in str(args[1]) for c in "wax+"):
            path = args[0]
            if isinstance(path, (str, bytes)) and not os.path.realpath(path).startswith(root):
                raise PermissionError("sandbox: writes outside the work dir are not allowed")

    sys.addaudithook(hook)


class _TestTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _TestTimeout()


def main():
    req = json.loads(sys.stdin.readline())
    sys.stdin.close()
    workdir = req["workdir"]
    os.chdir(workdir)
    if req["isolate_fs"]:
        read_only_filesystem(workdir)
        os.chdir(workdir)  # re-enter through the writable bind mount (the old cwd is on the read-only one)
    results_fd = os.dup(1)
    out = os.open(os.path.join(workdir, "output.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    set_limits(req["limits"])
    if req["audit_guard"]:
        if os.geteuid() == 0:  # no namespace to confine root: become nobody for the solution
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        audit_guard(workdir)
    nonce, code, tests, per_test_s = req["nonce"], req["code"], req["tests"], req["per_test_s"]
    del req
    signal.signal(signal.SIGALRM, _alarm)
    passed = []
    ns = {"__name__": "solution", "__builtins__": __builtins__}
    if tests and isinstance(tests[0], dict):  # stdin/stdout tests: run the program once per test
        for t in tests:
            buf = io.StringIO()
            sys.stdin, sys.stdout = io.StringIO(t["input"]), buf
            ok = False
            try:
                signal.setitimer(signal.ITIMER_REAL, per_test_s)
                exec(compile(code, "solution.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
                signal.setitimer(signal.ITIMER_REAL, 0)
                ok = buf.getvalue().split() == str(t["output"]).split()
            except BaseException:  # noqa: BLE001  (anything the solution raises, SystemExit included, fails it)
                ok = False
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            passed.append(ok)
    else:
        try:
            signal.setitimer(signal.ITIMER_REAL, per_test_s)
            exec(compile(code, "solution.py", "exec"), ns)
            signal.setitimer(signal.ITIMER_REAL, 0)
            loaded = True
        except BaseException:  # noqa: BLE001
            signal.setitimer(signal.ITIMER_REAL, 0)
            loaded = False
        for t in tests:
            ok = False
            if loaded:
                try:
                    signal.setitimer(signal.ITIMER_REAL, per_test_s)
                    exec(compile(t, "test.py", "exec"), ns)
                    ok = True
                except BaseException:  # noqa: BLE001
                    ok = False
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            passed.append(ok)
    os.write(results_fd, (json.dumps({"nonce": nonce, "passed": passed}) + "\n").encode())
    os._exit(0)


if __name__ == "__main__":
    main()
