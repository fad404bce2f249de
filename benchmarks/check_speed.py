"""How long `r1dsl check` takes on every shipped recipe, one fresh process per run (the user's view).

    python benchmarks/check_speed.py [--runs 7] [--budget 0.3]

Prints the median wall time per process (and CPU time, which the machine's load does not inflate),
next to a bare `python -c pass` for scale; exits 1 when the median wall time exceeds the budget.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the child, exit status)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--budget", type=float, default=0.3, help="seconds of wall time per process")
    args = p.parse_args()
    recipes = sorted(str(r) for r in (ROOT / "recipes").glob("*.r1"))
    check = [sys.executable, "-m", "r1dsl", "check", *recipes]
    baseline = [sys.executable, "-c", "pass"]
    timed(check)  # warm the LALR table cache and the OS file cache
    runs = [timed(check) for _ in range(args.runs)]
    bare = [timed(baseline) for _ in range(args.runs)]
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    base_wall = statistics.median(b[0] for b in bare)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"r1dsl check on {len(recipes)} recipes: {wall:.3f} s wall, {cpu:.3f} s CPU per process "
          f"(median of {args.runs}; exit status {runs[0][2]})")
    print(f"python -c pass:                    {base_wall:.3f} s wall (load average {load:.1f} on {os.cpu_count()} cores)")
    verdict = "within" if wall <= args.budget else "OVER"
    print(f"{verdict} the budget of {args.budget:.2f} s wall per process")
    return 0 if wall <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
