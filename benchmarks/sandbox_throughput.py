"""Programs per second through the code sandbox against a plain `subprocess.run` of the same programs, in one run.

Peers, interleaved pass by pass so that both see the same machine load:
- plain:   `subprocess.run([sys.executable, "-I", "-S", file], input=..., capture_output=True)` (no isolation);
- sandbox: `Sandbox("program", ...)`, one sandbox per program (bwrap, own uid, cgroup, read-only root,
           bounded output, whole-tree kill and cleanup): the isolation's cost per start;
- batched: `code_accuracy` on rows of 10 stdin/stdout tests (one sandbox per row, a forked child per test,
           compared in the parent), counted in programs/s;
- rows:    `code_accuracy` on rows of assert snippets (two sandboxes per row: solution + judge), rows/s.
Each program is a small honest solution (stdlib imports, reads stdin). Reports the median and the range
over `--repeat` passes, the machine load (`uptime`) before and after, and the date.

    flock /work/.heavy.lock python benchmarks/sandbox_throughput.py [--programs 40] [--repeat 5] [--workers 1]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PROGRAMS = [
    ("import sys\nprint(sum(map(int, sys.stdin.read().split())))\n", "1 2 3 4", "10"),
    ("import math, sys\nn = int(sys.stdin.readline())\nprint(math.factorial(n) % 1000003)\n", "50",
     str(__import__("math").factorial(50) % 1000003)),
    ("import collections, sys\nc = collections.Counter(sys.stdin.read().split())\nprint(c.most_common(1)[0][0])\n",
     "a b a c a", "a"),
    ("import heapq, sys\nxs = list(map(int, sys.stdin.read().split()))\nprint(*heapq.nsmallest(3, xs))\n",
     "5 3 9 1 7", "1 3 5"),
    ("import itertools, functools, re, json\nprint(len(list(itertools.permutations(range(6)))))\n", "", "720"),
]
ROW_CODE = "def add(a, b):\n    return a + b\n"
ROW_TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0\nassert add(2, 2) == 4"


def run_plain(items, workers):
    def one(item):
        path, stdin = item
        r = subprocess.run([sys.executable, "-I", "-S", path], input=stdin.encode(), capture_output=True, timeout=30)
        return r.returncode == 0
    with ThreadPoolExecutor(workers) as pool:
        return all(pool.map(one, items))


def run_sandbox(items, workers):
    from backends.rewards.sandbox import Limits, Sandbox

    limits = Limits()

    def one(item):
        code, stdin = item
        with Sandbox("program", limits, code=code) as box:
            return box.communicate(stdin.encode(), time.monotonic() + 30).exit_code == 0
    with ThreadPoolExecutor(workers) as pool:
        return all(pool.map(one, items))


def run_batched(items, workers):
    from backends.rewards import REWARDS

    rows, comps = [], []
    for k in range(0, len(items), 10):
        code, stdin = items[k]
        expected = next(e for c, i, e in PROGRAMS if c == code)
        comps.append(f"<answer>\n```python\n{code}```\n</answer>")
        rows.append({"tests": [{"input": stdin, "output": expected or ""}] * len(items[k:k + 10])})
    got = REWARDS["code_accuracy"](comps, rows, max_workers=workers)
    return all(v == 1.0 for v, c in zip(got, comps))


def run_rows(n, workers):
    from backends.rewards import REWARDS

    comp = f"<answer>\n```python\n{ROW_CODE}```\n</answer>"
    got = REWARDS["code_accuracy"]([comp] * n, [{"tests": ROW_TESTS}] * n, max_workers=workers)
    return all(v == 1.0 for v in got)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--programs", type=int, default=40)
    ap.add_argument("--rows", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    from backends.rewards.sandbox import describe, require_sandbox

    require_sandbox()  # the one-off probe is not timed
    load_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="r1dsl-bench-")
    files = []
    for i, (code, stdin, _) in enumerate(PROGRAMS):
        path = os.path.join(tmp, f"p{i}.py")
        with open(path, "w") as f:
            f.write(code)
        files.append((path, stdin))
    plain_items = [files[i % len(files)] for i in range(args.programs)]
    box_items = [(PROGRAMS[i % len(PROGRAMS)][0], PROGRAMS[i % len(PROGRAMS)][1]) for i in range(args.programs)]
    batch_items = [(PROGRAMS[(i // 10) % len(PROGRAMS)][0], PROGRAMS[(i // 10) % len(PROGRAMS)][1])
                   for i in range(args.programs)]
    rates = {"plain": [], "sandbox": [], "batched": [], "rows": []}
    for _ in range(args.repeat):
        for name, fn, items, n in (("plain", run_plain, plain_items, args.programs),
                                   ("sandbox", run_sandbox, box_items, args.programs),
                                   ("batched", run_batched, batch_items, args.programs),
                                   ("rows", run_rows, args.rows, args.rows)):
            t = time.perf_counter()
            assert fn(items, args.workers), f"{name}: a program failed"
            rates[name].append(n / (time.perf_counter() - t))
    load_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    for p, _ in files:
        os.unlink(p)
    os.rmdir(tmp)

    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; sandbox: {describe()}")
    print(f"load before: {load_before}\nload after:  {load_after}")
    print(f"{args.programs} programs and {args.rows} rows per pass, {args.repeat} passes, {args.workers} worker(s)")
    for name, unit in (("plain", "programs/s"), ("sandbox", "programs/s (a sandbox each)"),
                       ("batched", "programs/s (rows of 10 tests, a sandbox per row)"),
                       ("rows", "rows/s (assert snippets, 2 sandboxes each)")):
        r = rates[name]
        print(f"{name:8s} median {statistics.median(r):7.1f} {unit}  range {min(r):.1f}-{max(r):.1f}")
    for name in ("sandbox", "batched"):
        ratios = [s / p for s, p in zip(rates[name], rates["plain"])]
        print(f"{name} / plain, per pass: median {statistics.median(ratios):.2f}  range {min(ratios):.2f}-{max(ratios):.2f}")


if __name__ == "__main__":
    main()
