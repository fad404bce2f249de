"""code_accuracy and its sandbox, against honest and hostile code. Runs with namespaces when this machine
allows them and always with the fallback (audit hook, nobody user)."""

import os
import time

import pytest

from backends.rewards import REWARDS
from backends.rewards.code_accuracy import extract_code, split_tests
from backends.rewards.sandbox import Limits, namespaces_available, run_tests

FAST = Limits(timeout_s=3.0, per_test_s=1.0, memory_mb=256, file_size_mb=1, max_processes=8)
MODES = [pytest.param(True, id="namespaces"), pytest.param(False, id="audit-fallback")]
if not namespaces_available():
    MODES = MODES[1:]


def completion(code):
    return f" <think> easy </think> <answer>\n```python\n{code}\n```\n</answer>"


def test_extract_code_and_split_tests():
    assert extract_code("```python\nx=1\n``` then ```py\nx=2\n```") == "x=2\n"
    assert extract_code("<answer>```\ny=3\n```</answer>") == "y=3\n"
    assert split_tests("import math\nassert f(1)==1\nassert f(2)==2") == ["import math\nassert f(1)==1",
                                                                          "import math\nassert f(2)==2"]
    assert split_tests('[{"input": "1", "output": "2"}]') == [{"input": "1", "output": "2"}]


def test_pass_rate_and_all_pass():
    fn = REWARDS["code_accuracy"].fn
    rows = [{"tests": "assert add(1, 2) == 3\nassert add(2, 2) == 4\nassert add(0, 0) == 1"}] * 2
    comps = [completion("def add(a, b):\n    return a + b"), "no code here"]
    assert fn(comps, rows, mode="pass_rate") == [pytest.approx(2 / 3), 0.0]
    assert fn(comps, rows, mode="all_pass") == [0.0, 0.0]
    assert fn([completion("print(int(input()) * 2)")], [{"tests": [{"input": "21", "output": "42"}]}]) == [1.0]


HOSTILE = {
    "sleeps": "import time\ntime.sleep(60)",
    "busy loop": "while True:\n    pass",
    "fork bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    "allocates without bound": "x = []\nwhile True:\n    x.append(bytearray(10**7))",
    "opens a socket": "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)",
    "kills its parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "kills its group": "import os, signal\nos.killpg(0, signal.SIGKILL)",
    "huge file": "open('big', 'wb').write(b'x' * (50 << 20))",
    "remounts rw": "import subprocess\nsubprocess.run(['mount', '-o', 'remount,rw,bind', '/'])\n"
                   "open(os.environ.get('ESCAPE', '/tmp/r1dsl_escape'), 'w')",
}


@pytest.mark.parametrize("isolate", MODES)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_code_fails_within_its_bound_and_the_caller_survives(name, isolate):
    code = HOSTILE[name] + "\ndef f():\n    return 1\n"
    t = time.perf_counter()
    assert run_tests(code, ["assert f() == 1"], FAST, use_namespaces=isolate) in ([False], [True])
    assert time.perf_counter() - t < FAST.timeout_s + 3.0
    if name in ("sleeps", "busy loop", "fork bomb", "allocates without bound", "opens a socket", "huge file"):
        assert run_tests(code, ["assert f() == 1"], FAST, use_namespaces=isolate) == [False]


@pytest.mark.parametrize("isolate", MODES)
def test_nothing_escapes_the_work_dir(isolate, tmp_path):
    outside = [str(tmp_path / "escaped"), "/tmp/r1dsl_escaped_probe", os.path.join(os.getcwd(), "r1dsl_escaped_probe")]
    code = "ok = []\nfor p in %r:\n    try:\n        open(p, 'w').write('x')\n        ok.append(p)\n    except OSError:\n" \
           "        pass\nopen('inside.txt', 'w').write('fine')\nassert open('inside.txt').read() == 'fine'\n" % outside
    assert run_tests(code, ["assert True"], FAST, use_namespaces=isolate) == [True]
    for p in outside:
        assert not os.path.exists(p), p


@pytest.mark.parametrize("isolate", MODES)
def test_no_process_outlives_the_run(isolate):
    marker = f"r1dsl_orphan_{os.getpid()}_{isolate}"
    code = f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(30)  # {marker}\n    os._exit(0)\n"
    run_tests(code.replace("time.sleep(30)", f"time.sleep(30); '{marker}'"), ["assert True"], FAST,
              use_namespaces=isolate)
    time.sleep(0.2)
    leftover = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"sandbox_harness" in f.read():
                    leftover.append(pid)
        except OSError:
            pass
    if isolate:
        assert leftover == []  # the PID namespace took the setsid() child down with it
