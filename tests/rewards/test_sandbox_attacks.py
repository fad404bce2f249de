"""Attacks on code_accuracy's sandbox, one or more per finding of issue 11. Each asserts the reward is 0 (or an
honest neighbour's reward unchanged), the host untouched, and no process of the sandbox left afterwards."""

import json
import os
import resource
import socket
import stat
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sandbox_package import LOAD

from backends.rewards import REWARDS
from backends.rewards.sandbox import Limits, Sandbox, sandbox_available

pytestmark = pytest.mark.skipif(not sandbox_available(), reason="bubblewrap (bwrap) is not installed")

PARAMS = dict(timeout_s=10.0, per_test_s=5.0, memory_mb=256, file_size_mb=4, max_processes=16, max_output_kb=256)
LIMITS = Limits(**PARAMS)


def completion(code):
    return f"<think>sure</think><answer>\n```python\n{code}\n```\n</answer>"


def reward(code, tests, **params):
    return REWARDS["code_accuracy"]([completion(code)], [{"tests": tests}], **{**PARAMS, **params})[0]


def program_output(code, stdin=b""):
    """Run `code` as a sandboxed program; its stdout, for probes of what the sandbox can see."""
    with Sandbox("program", LIMITS, code=code) as box:
        return box.communicate(stdin, time.monotonic() + 10).stdout.decode(errors="replace")


def processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def sandbox_processes() -> list[int]:
    """Processes running code inside a sandbox of this test process, or orphaned (a leak, whoever started it);
    other people's test runs on this machine have sandboxes of their own."""
    return [p for p in processes_with("\0/sandbox/worker.py\0") if p != os.getpid() and _ours_or_orphaned(p)]


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _ours_or_orphaned(pid: int) -> bool:
    parent = _ppid(pid)
    if parent in (0, 1):
        return True
    for _ in range(64):
        if pid == os.getpid():
            return True
        if pid <= 1:
            return False
        pid = _ppid(pid)
    return False


@pytest.fixture(autouse=True)
def nothing_left_running():
    yield
    end = time.monotonic() + 3
    while sandbox_processes() and time.monotonic() < end:
        time.sleep(0.05)
    left = sandbox_processes()
    assert left == [], [_describe(p) for p in left]


def _describe(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            status = {k: v.strip() for k, v in (line.split(":", 1) for line in f if ":" in line)}
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ")[-200:]
        return pid, status.get("State"), status.get("PPid"), status.get("Uid"), cmd
    except OSError:
        return pid, "gone"


# -- the judge is outside: tampering with the solution's own interpreter changes nothing -----------------------

WRONG_F = "def f(x):\n    return -1\n"
TESTS = "assert f(2) == 4\nassert f(3) == 9"


@pytest.mark.parametrize("attack", [
    "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.compile = lambda *a, **k: None\n",
    "import builtins\n_real = builtins.__import__\nbuiltins.AssertionError = type('E', (BaseException,), {})\n",
    "class Yes:\n    def __eq__(self, other):\n        return True\n    __ne__ = lambda s, o: False\n"
    "def f(x):\n    return Yes()\n",
    "class Yes(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
    "def f(x):\n    return Yes(0)\n",
    "import sys, types\nm = types.ModuleType('math')\nm.isclose = lambda *a, **k: True\nm.sqrt = lambda x: 0\n"
    "sys.modules['math'] = m\nimport math\n",
    "import math\nmath.isclose = lambda *a, **k: True\n",
    "import sys\nsys.modules['json'] = None\nimport os\nos.write = lambda *a: 0\n",
], ids=["exec-override", "assertionerror-swap", "eq-always-true", "int-subclass-eq", "fake-math-module",
        "patched-math", "broken-json-and-write"])
def test_tampering_with_its_own_interpreter_scores_zero(attack):
    code = WRONG_F + attack if "def f" not in attack else attack
    assert reward(code, TESTS) == 0.0
    assert reward(code, "import math\nassert math.isclose(f(2), 1.41421356, rel_tol=1e-6)") == 0.0
    assert reward(code, "assert abs(f(2) - 4) < 1e-9") == 0.0


def test_a_solution_cannot_rebind_what_the_tests_use():
    rebinding = "from operator import not_ as abs\nfrom operator import truth as isclose\nimport cmath as math\n"
    forged_hello = ('{"names": [], "modules": {"math": "cmath", "abs": "operator"}, '
                    '"imports": {"abs": ["operator", "not_"], "f": ["operator", "truth"], '
                    '"isclose": ["operator", "truth"], "sorted": ["builtins", "list"]}}')
    forging = ("import os\n"
               "for fd in range(3, 64):\n"
               "    try:\n"
               f"        os.write(fd, {forged_hello!r}.encode() + b'\\n')\n"
               "    except OSError:\n"
               "        pass\n")
    for attack in (rebinding, forging):
        code = attack + WRONG_F
        assert reward(code, "assert abs(f(2) - 4) < 1e-9") == 0.0
        assert reward(code, "assert isclose(f(2), 4)") == 0.0
        assert reward(code, "assert math.isclose(f(2), 4)") == 0.0
        assert reward(code, "assert sorted([f(2)]) == [4]") == 0.0


def test_reading_the_expected_value_from_frames_or_memory_scores_zero():
    secret = 918273645
    code = ("import sys, gc, re\n"
            "def f(x):\n"
            "    fr = sys._getframe(1)\n"
            "    while fr is not None:\n"
            "        for v in list(fr.f_locals.values()) + list(fr.f_globals.values()):\n"
            "            m = re.search(r'== *(\\d+)', str(v))\n"
            "            if m:\n"
            "                return int(m.group(1))\n"
            "        fr = fr.f_back\n"
            "    for o in gc.get_objects():\n"
            "        m = re.search(r'== *(\\d+)', str(o)[:10000]) if isinstance(o, (str, list, dict)) else None\n"
            "        if m:\n"
            "            return int(m.group(1))\n"
            "    return 0\n")
    assert reward(code, f"assert f(1) == {secret}") == 0.0
    assert reward(code, [{"input": "1", "output": str(secret)}]) == 0.0


def test_forged_result_lines_score_zero():
    forged = ['{"verdict": 0, "ok": true}', '{"verdict": 1, "ok": true}', '{"done": true}',
              '{"ok": 4}', '{"passed": [true, true], "nonce": ""}']
    code = ("import os, json\n"
            f"LINES = {forged!r}\n"
            "for fd in range(0, 64):\n"
            "    for line in LINES:\n"
            "        try:\n"
            "            os.write(fd, (line + '\\n').encode())\n"
            "        except OSError:\n"
            "            pass\n"
            "print('\\n'.join(LINES))\n" + WRONG_F)
    assert reward(code, TESTS) == 0.0
    assert reward(code, [{"input": "", "output": "42"}]) == 0.0


def test_a_run_cannot_forge_the_results_of_later_runs_in_its_row():
    forger = ("import os, sys, time\n"
              "if os.fork() == 0:\n"
              "    os.setsid()\n"
              "    frames = b''.join(b'{\"i\": %d, \"exit\": 0, \"n\": 2}\\n42' % k for k in range(8))\n"
              "    for _ in range(200):\n"
              "        for pid in os.listdir('/proc'):\n"
              "            try:\n"
              "                fd = os.open(f'/proc/{pid}/fd/1', os.O_WRONLY)\n"
              "                os.write(fd, frames)\n"
              "                os.close(fd)\n"
              "            except (OSError, ValueError):\n"
              "                pass\n"
              "        time.sleep(0.01)\n"
              "    os._exit(0)\n"
              "print('wrong')\n")
    tests = [{"input": str(k), "output": str(7 * k + 1)} for k in range(8)]
    assert reward(forger, tests) == 0.0


def test_the_data_file_and_expected_outputs_are_not_reachable(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"tests": [{"input": "1", "output": "7731"}]}\n')
    os.chmod(tmp_path, 0o755)
    os.chmod(data, 0o644)  # even world-readable: it is not mounted in the sandbox
    code = ("import glob, os, re\n"
            "seen = ''\n"
            f"for p in [{str(data)!r}] + glob.glob('/tmp/**', recursive=True) + glob.glob('/work/**/*.jsonl'):\n"
            "    try:\n"
            "        seen += open(p).read()\n"
            "    except OSError:\n"
            "        pass\n"
            "m = re.search(r'output\": \"(\\d+)', seen)\n"
            "print(m.group(1) if m else 'nothing')\n")
    assert reward(code, [{"input": "1", "output": "7731"}]) == 0.0
    assert "nothing" in program_output(code)


# -- no privilege: unprivileged uid inside and out, no devices, no host files, no sockets -------------------------

def test_unprivileged_inside_and_outside():
    out = program_output("import os, time\n"
                         "print(os.getuid(), os.geteuid(), os.getgid(), os.getppid(), flush=True)\n"
                         "print(' '.join(open('/proc/self/uid_map').read().split()), flush=True)\n"
                         "time.sleep(1.5)\n")
    uid, euid, gid, ppid = map(int, out.split("\n")[0].split())
    assert uid != 0 and euid != 0 and gid != 0 and ppid == 0
    inside, outside, count = map(int, out.split("\n")[1].split())
    assert inside == uid and outside != 0 and count == 1


def test_no_sandbox_process_is_root_on_the_host():
    marker = f"r1dsl-uid-probe-{uuid.uuid4().hex}"
    seen_uids = []
    with Sandbox("program", LIMITS, code=f"import time\nprint('up', flush=True)\ntime.sleep(3)  # {marker}\n") as box:
        assert box.readline(time.monotonic() + 10) == b"up"
        for pid in sandbox_processes():
            with open(f"/proc/{pid}/status") as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
            seen_uids.append(uids)
    assert seen_uids and all(u != "0" for uids in seen_uids for u in uids)


def test_no_devices_beyond_null_zero_random():
    out = program_output("import os, json\n"
                         "print(json.dumps(sorted(os.listdir('/dev'))))\n"
                         "for p in ['/dev/sda', '/dev/vda', '/dev/kmsg', '/dev/mem', '/dev/loop0', '/dev/nvme0n1']:\n"
                         "    try:\n"
                         "        os.close(os.open(p, os.O_WRONLY))\n"
                         "        print('OPENED', p)\n"
                         "    except OSError:\n"
                         "        pass\n"
                         "try:\n"
                         "    os.mknod('/tmp/blk', 0o600 | 0o060000, os.makedev(8, 0))\n"
                         "    print('OPENED mknod')\n"
                         "except OSError:\n"
                         "    pass\n")
    assert "OPENED" not in out
    listed = json.loads(out.split("\n")[0])
    assert set(listed) <= {"null", "zero", "random", "urandom", "stdin", "stdout", "stderr", "fd"}


def test_host_secrets_are_unreadable(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("hunter2")
    os.chmod(secret, 0o600)
    code = ("out = []\n"
            f"for p in ['/etc/shadow', '/etc/passwd', '/root/.bash_history', {str(secret)!r}, '/proc/1/environ',\n"
            "          '/sys/kernel/notes', '/proc/kcore']:\n"
            "    try:\n"
            "        out.append(open(p, 'rb').read(100))\n"
            "    except OSError:\n"
            "        pass\n"
            "print('hunter2' in repr(out), len(out))\n")
    assert program_output(code).split()[0] == "False"
    top = json.loads(program_output("import os, json\nprint(json.dumps([os.listdir('/'), os.listdir('/etc')]))"))
    assert set(top[0]) <= {"dev", "etc", "lib", "lib64", "proc", "root", "sandbox", "tmp", "usr", "opt", "home"}
    assert set(top[1]) <= {"ld.so.cache"}


def test_filesystem_and_abstract_unix_sockets_are_unreachable(tmp_path):
    os.chmod(tmp_path, 0o777)
    path = str(tmp_path / "host.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o777)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name = f"\0r1dsl-test-{uuid.uuid4().hex}"
    abstract.bind(name)
    accepted = []
    for s in (server, abstract):
        s.listen(4)
        s.settimeout(0.2)

    def accept():
        end = time.monotonic() + 8
        while time.monotonic() < end:
            for s in (server, abstract):
                try:
                    accepted.append(s.accept())
                except OSError:
                    pass

    t = threading.Thread(target=accept)
    t.start()
    code = ("import socket\nok = []\n"
            f"for addr in [{path!r}, {name!r}, '/run/systemd/private', '/var/run/docker.sock']:\n"
            "    s = socket.socket(socket.AF_UNIX)\n"
            "    try:\n"
            "        s.connect(addr)\n"
            "        ok.append(addr)\n"
            "    except OSError:\n"
            "        pass\n"
            "try:\n"
            "    socket.create_connection(('1.1.1.1', 53), timeout=1)\n"
            "    ok.append('net')\n"
            "except OSError:\n"
            "    pass\n"
            "print(len(ok))\n")
    try:
        assert program_output(code).strip() == "0"
    finally:
        t.join()
        server.close()
        abstract.close()
    assert accepted == []


# -- whole-sandbox limits ----------------------------------------------------------------------------------------

def test_fork_bomb_is_capped_for_the_whole_sandbox():
    code = ("import os, time\n"
            "def f():\n"
            "    n = 0\n"
            "    for _ in range(66):\n"
            "        try:\n"
            "            if os.fork() == 0:\n"
            "                time.sleep(20)\n"
            "                os._exit(0)\n"
            "            n += 1\n"
            "        except OSError:\n"
            "            pass\n"
            "    return n\n")
    assert reward(code, "assert f() == 66", max_processes=16) == 0.0
    out = program_output(code + "print(f())\n")
    assert 0 < int(out.strip()) <= 15  # itself and 15 children


def test_memory_is_capped_across_processes():
    code = ("import os\n"
            "def f():\n"
            "    ok = 0\n"
            "    kids = []\n"
            "    for _ in range(5):\n"
            "        r, w = os.pipe()\n"
            "        pid = os.fork()\n"
            "        if pid == 0:\n"
            "            try:\n"
            "                b = b'x' * (120 << 20)\n"
            "                os.write(w, b'1')\n"
            "                import time; time.sleep(3)\n"
            "            finally:\n"
            "                os._exit(0)\n"
            "        os.close(w)\n"
            "        kids.append(r)\n"
            "    for r in kids:\n"
            "        ok += len(os.read(r, 1))\n"
            "    return ok\n")
    assert reward(code, "assert f() == 5", memory_mb=256) == 0.0


def test_file_size_is_capped_across_processes():
    code = ("import os\n"
            "def f():\n"
            "    for i in range(16):\n"
            "        if os.fork() == 0:\n"
            "            try:\n"
            "                with open(f'/tmp/big{i}', 'wb') as fh:\n"
            "                    for _ in range(4):\n"
            "                        fh.write(b'x' * (1 << 20))\n"
            "            finally:\n"
            "                os._exit(0)\n"
            "        os.wait()\n"
            "    return sum(os.path.getsize(f'/tmp/{n}') for n in os.listdir('/tmp'))\n")
    assert reward(code, "assert f() >= 16 * (4 << 20)", file_size_mb=4) == 0.0
    total = int(program_output(code + "print(f())\n").strip())
    assert total <= 4 << 20


def _rss_kb():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])


def test_an_output_flood_is_cut_off_and_does_not_grow_the_trainer():
    before_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = _rss_kb()
    t = time.perf_counter()
    flood = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(200):\n    sys.stdout.write(chunk)\n"
    assert reward(flood, [{"input": "", "output": "x"}], max_output_kb=256) == 0.0
    assert reward("def f():\n    return 'x' * (200 << 20)\n", "assert f() == 'x'", max_output_kb=256) == 0.0
    assert time.perf_counter() - t < 40
    grown_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_peak
    assert _rss_kb() - before < 50_000 and grown_peak < 50_000  # KiB: far below the 200 MB written


def test_a_swallowed_timeout_is_still_a_wall_clock_kill():
    code = ("import signal, time\n"
            "for s in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
            "    signal.signal(s, lambda *a: None)\n"
            "def f():\n"
            "    while True:\n"
            "        try:\n"
            "            time.sleep(1)\n"
            "        except BaseException:\n"
            "            pass\n")
    t = time.perf_counter()
    assert reward(code, "assert f() is None", timeout_s=3.0, per_test_s=1.5) == 0.0
    assert reward(code + "f()\n", [{"input": "", "output": ""}], timeout_s=3.0, per_test_s=1.5) == 0.0
    assert time.perf_counter() - t < 20  # two rows cut at 3 s each, plus start-up on a loaded machine


def test_daemons_do_not_survive_the_run():
    marker = f"r1dsl-daemon-{uuid.uuid4().hex}"
    code = ("import os, sys, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        os.closerange(0, 64)\n"
            f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '{marker}'])\n"
            "    os._exit(0)\n"
            "time.sleep(0.5)\n"
            "def f():\n"
            "    return 1\n")
    assert reward(code, "assert f() == 2") == 0.0
    assert reward(code, [{"input": "", "output": "x"}]) == 0.0
    time.sleep(0.2)
    assert processes_with(marker) == []


# -- filesystem escapes ------------------------------------------------------------------------------------------

def test_writes_outside_its_tmp_fail_and_the_host_is_untouched(tmp_path):
    os.chmod(tmp_path, 0o777)
    targets = [str(tmp_path / "escaped"), "/tmp/r1dsl_escaped_probe", "/etc/r1dsl_escaped_probe",
               os.path.join(os.path.dirname(os.__file__), "r1dsl_escaped_probe.py"), "/r1dsl_escaped_probe",
               "/sandbox/r1dsl_escaped_probe"]
    code = ("import os\nhits = []\n"
            f"for p in {targets!r}:\n"
            "    for how in ('open', 'os.open', 'rename', 'symlink', 'mkdir'):\n"
            "        try:\n"
            "            if how == 'open':\n"
            "                open(p, 'w').write('x')\n"
            "            elif how == 'os.open':\n"
            "                os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o777))\n"
            "            elif how == 'rename':\n"
            "                open('/tmp/mine', 'w').write('x')\n"
            "                os.rename('/tmp/mine', p)\n"
            "            elif how == 'symlink':\n"
            "                os.symlink(os.path.dirname(p), '/tmp/link')\n"
            "                open('/tmp/link/' + os.path.basename(p), 'w').write('x')\n"
            "            else:\n"
            "                os.mkdir(p)\n"
            "            hits.append((p, how))\n"
            "        except OSError:\n"
            "            pass\n"
            "        for q in ('/tmp/link',):\n"
            "            try:\n"
            "                os.unlink(q)\n"
            "            except OSError:\n"
            "                pass\n"
            "open('/tmp/inside.txt', 'w').write('fine')\n"
            "print(len([h for h in hits if not h[0].startswith('/tmp/')]), open('/tmp/inside.txt').read())\n")
    assert program_output(code).split() == ["0", "fine"]
    for p in targets:
        assert not os.path.exists(p), p


def test_remounting_and_new_namespaces_fail():
    code = ("import ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "r1 = libc.mount(None, b'/', None, 32 | 4096, None)\n"  # MS_REMOUNT | MS_BIND, read-write
            "r2 = libc.unshare(0x10000000)\n"  # CLONE_NEWUSER
            "r3 = libc.unshare(0x00020000)\n"  # CLONE_NEWNS
            "try:\n"
            "    open('/usr/r1dsl_probe', 'w')\n"
            "    w = 'WROTE'\n"
            "except OSError:\n"
            "    w = 'ro'\n"
            "print(r1, r2, r3, w)\n")
    assert program_output(code).split() == ["-1", "-1", "-1", "ro"]


# -- other processes: the parent, siblings ---------------------------------------------------------------------

def test_the_trainer_is_invisible_and_cannot_be_traced_or_signalled():
    me = os.getpid()
    code = ("import ctypes, os, signal\n"
            "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "traced = signalled = memread = 0\n"
            f"for pid in set(pids) | {{1, 2, {me}, os.getppid()}}:\n"
            "    if pid in (0, os.getpid()):\n"
            "        continue\n"
            "    traced += libc.ptrace(16, pid, None, None) == 0\n"  # PTRACE_ATTACH
            "    try:\n"
            "        os.kill(pid, 0)\n"
            "        signalled += pid != os.getpid()\n"
            "    except OSError:\n"
            "        pass\n"
            "    try:\n"
            "        open(f'/proc/{pid}/mem', 'rb').read(1)\n"
            "        memread += 1\n"
            "    except OSError:\n"
            "        pass\n"
            "print(len(pids), traced, signalled, memread)\n")
    n, traced, signalled, memread = map(int, program_output(code).split())
    assert n <= 2 and traced == 0 and signalled == 0 and memread == 0  # only itself (and a child) in its /proc
    assert os.getpid() == me


def test_a_hostile_neighbour_cannot_hurt_an_honest_sandbox_or_the_trainer():
    honest = ("import time\ndef f(x):\n    time.sleep(0.8)\n    return x * x\n", TESTS)
    hostile = ("import os, signal\n"
               "for _ in range(3):\n"
               "    try:\n"
               "        os.kill(-1, signal.SIGKILL)\n"
               "    except OSError:\n"
               "        pass\n"
               f"    for pid in range(1, 400):\n"
               "        try:\n"
               "            if pid != os.getpid():\n"
               "                os.kill(pid, signal.SIGKILL)\n"
               "        except OSError:\n"
               "            pass\n"
               f"for pid in ({os.getpid()}, {os.getppid()}):\n"
               "    try:\n"
               "        os.kill(pid, signal.SIGKILL)\n"
               "    except OSError:\n"
               "        pass\n" + WRONG_F, TESTS)
    fn = REWARDS["code_accuracy"]
    rows = [{"tests": t} for _, t in (honest, hostile, honest, hostile)]
    comps = [completion(c) for c, _ in (honest, hostile, honest, hostile)]
    assert fn(comps, rows, **PARAMS, max_workers=4) == [1.0, 0.0, 1.0, 0.0]


def test_concurrent_sandboxes_each_get_their_own_limits():
    code = ("import os, time\n"
            "def f():\n"
            "    n = 0\n"
            "    for _ in range(14):\n"
            "        try:\n"
            "            if os.fork() == 0:\n"
            "                time.sleep(3)\n"
            "                os._exit(0)\n"
            "            n += 1\n"
            "        except OSError:\n"
            "            pass\n"
            "    return n\n")
    with ThreadPoolExecutor(4) as pool:  # 4 x 14 children fit when each sandbox has its own 16
        got = list(pool.map(lambda _: reward(code, "assert f() == 14"), range(4)))
    assert got == [1.0] * 4


def test_temporary_state_is_removed():
    before = set(os.listdir(tempfile.gettempdir()))
    os.environ["R1DSL_TRAINER_SECRET"] = "hunter2"
    try:
        assert "hunter2" not in program_output("import os\nprint(dict(os.environ))")  # a clean environment
    finally:
        del os.environ["R1DSL_TRAINER_SECRET"]
    assert reward("def f(x):\n    return x * x\n", TESTS) == 1.0
    after = set(os.listdir(tempfile.gettempdir()))
    assert {n for n in after - before if n.startswith("r1dsl-sandbox")} == set()  # (r1dsl_ is the old sandbox)
    cg = [d for d in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup") if os.path.isdir(d)]
    for root in cg:
        for dirpath, dirnames, _ in os.walk(root):
            assert not [d for d in dirnames if d.startswith(f"r1dsl-sandbox-{os.getpid()}-")], dirpath
            break


def test_the_uid_lock_directory_is_private():
    if os.geteuid() != 0:
        pytest.skip("per-sandbox uids are used only when the trainer is root")
    d = "/run/r1dsl-sandbox/uids" if os.path.isdir("/run/r1dsl-sandbox") else \
        os.path.join(tempfile.gettempdir(), "r1dsl-sandbox-0", "uids")
    st = os.lstat(d)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and st.st_mode & 0o077 == 0


def test_each_sandbox_has_its_own_cgroup_limits_while_it_runs():
    from backends.rewards.sandbox import describe

    if not describe()["cgroups"]:
        pytest.skip("this host gives no writable cgroup (limits are per process there, see docs/rewards.md)")
    with Sandbox("program", LIMITS, code="import time\nprint('up', flush=True)\ntime.sleep(3)\n") as box:
        assert box.readline(time.monotonic() + 10) == b"up"
        values = {}
        for d in box._cgroups:
            for name in ("pids.max", "memory.limit_in_bytes", "memory.max", "cpu.cfs_quota_us", "cpu.max"):
                if os.path.exists(os.path.join(d, name)):
                    with open(os.path.join(d, name)) as f:
                        values[name] = f.read().split()[0]
            with open(os.path.join(d, "cgroup.procs")) as f:
                assert box.proc.pid in {int(x) for x in f.read().split()}  # joined before bwrap started
    assert int(values["pids.max"]) == LIMITS.max_processes + 1
    memory = int(values.get("memory.max", values.get("memory.limit_in_bytes")))
    assert memory <= (LIMITS.memory_mb + LIMITS.file_size_mb + 64) << 20
    if "cpu.cfs_quota_us" in values or "cpu.max" in values:
        assert int(values.get("cpu.cfs_quota_us", values.get("cpu.max"))) == 100_000
    assert all(not os.path.exists(d) for d in box._cgroups)  # removed afterwards


def test_no_file_descriptor_beyond_stdio_reaches_the_code():
    keep = os.open("/etc/hostname" if os.path.exists("/etc/hostname") else "/dev/null", os.O_RDONLY)
    os.set_inheritable(keep, True)
    try:
        out = program_output("import os\nprint(len(os.listdir('/proc/self/fd')))")
    finally:
        os.close(keep)
    assert out.strip() == "4"  # 0, 1, 2 and the directory listing itself


def test_a_root_only_file_inside_a_mounted_directory_stays_unreadable():
    """The stdlib directory is mounted; a root-owned 0600 file put there is visible but unreadable, because the
    sandbox is not root outside its namespace either (a 0644 neighbour, for contrast, is readable)."""
    if os.geteuid() != 0:
        pytest.skip("needs a root trainer to create the root-owned file")
    stdlib = os.path.dirname(os.__file__)
    tag = uuid.uuid4().hex
    secret, public = os.path.join(stdlib, f"r1dsl_secret_{tag}.txt"), os.path.join(stdlib, f"r1dsl_public_{tag}.txt")
    try:
        for path, mode in ((secret, 0o600), (public, 0o644)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            os.write(fd, b"hunter2")
            os.close(fd)
        code = ("import os\n"
                f"for p in ({secret!r}, {public!r}):\n"
                "    try:\n"
                "        print(os.path.exists(p), open(p).read())\n"
                "    except OSError as e:\n"
                "        print(os.path.exists(p), type(e).__name__)\n")
        assert program_output(code).split() == ["True", "PermissionError", "True", "hunter2"]
    finally:
        for path in (secret, public):
            if os.path.exists(path):
                os.unlink(path)


NON_ROOT_PROBE = LOAD + r'''
L = I.Limits(timeout_s=10, per_test_s=5, memory_mb=256, file_size_mb=4, max_processes=8)
print("privileged", I.describe()["privileged"])
print("snippets", J.run_tests("def f(x):\n    return x * x\n", ["assert f(2) == 4", "assert f(3) == 10"], L))
print("stdio", J.run_tests("print(int(input()) + 1)", [{"input": "1", "output": "2"}], L))
me = os.getpid()
with I.Sandbox("program", L, code=f"import os\nprint(sum(p.isdigit() for p in os.listdir('/proc')) <= 2, os.path.exists('/proc/{me}'))") as b:
    print("proc", b.communicate(b"", time.monotonic() + 10).stdout.decode().strip())
'''


def test_a_non_root_trainer_gets_the_sandbox_too():
    """The same package run by an unprivileged user (the system Python, stdlib only): no per-sandbox uid and no
    cgroups there, but the namespaces, the read-only root and the judging outside all hold."""
    import shutil
    import subprocess
    import sys

    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or system_python is None or shutil.which("setpriv") is None:
        pytest.skip("needs a root trainer (to become an unprivileged user with setpriv) and /usr/bin/python3")
    package = os.path.dirname(sys.modules["backends.rewards.sandbox.isolation"].__file__)
    r = subprocess.run(["setpriv", "--reuid=4321", "--regid=4321", "--clear-groups", system_python, "-c", NON_ROOT_PROBE,
                        package],
                       capture_output=True, text=True, timeout=180, env={"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp"})
    shutil.rmtree("/tmp/r1dsl-sandbox-4321", ignore_errors=True)  # that user's (now empty) state directory
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[:4] == ["privileged False", "snippets [True, False]", "stdio [True]",
                                        "proc True False"], r.stdout
