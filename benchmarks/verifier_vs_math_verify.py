"""Our math verifier against the `math-verify` package on tests/data/answer_pairs.jsonl, in one run.

Prints, for each verifier, agreement with the human labels (overall, per form, and on the pairs held
out from tuning: our verifier was developed against the others) and verifications per second. Ours is timed with a cold cache on every pass (the cache would otherwise answer everything);
its sympy worker is started before timing, as math-verify's imports are. math-verify is given each
answer as `$...$` or `\\boxed{...}`, whichever agrees more with the labels (reported).

    python benchmarks/verifier_vs_math_verify.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(ROOT, "tests", "data", "answer_pairs.jsonl")


def load() -> list[dict]:
    with open(DATA) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_ours(rows):
    from backends.rewards import equivalence

    equivalence.clear_cache()
    return [equivalence.equivalent(r["gold"], r["predicted"]) for r in rows]


def run_math_verify(rows, wrap):
    from math_verify import parse, verify

    out = []
    for r in rows:
        try:
            out.append(bool(verify(parse(wrap(r["gold"])), parse(wrap(r["predicted"])))))
        except Exception:  # noqa: BLE001  (math-verify raising counts as "not equivalent")
            out.append(False)
    return out


def timed(fn, rows, repeat):
    best, verdicts = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        verdicts = fn(rows)
        best = min(best, time.perf_counter() - t)
    return verdicts, len(rows) / best


def report(name, rows, verdicts, per_s):
    right = [v == r["equivalent"] for v, r in zip(verdicts, rows)]
    by_form = defaultdict(lambda: [0, 0])
    for ok, r in zip(right, rows):
        by_form[r["form"]][0] += ok
        by_form[r["form"]][1] += 1
    fp = sum(v and not r["equivalent"] for v, r in zip(verdicts, rows))
    fn = sum(not v and r["equivalent"] for v, r in zip(verdicts, rows))
    print(f"{name}: accuracy {sum(right)}/{len(rows)} = {sum(right) / len(rows):.3f}  (false +: {fp}, false -: {fn})  "
          f"{per_s:,.0f} verifications/s")
    print("   " + "  ".join(f"{form} {a}/{b}" for form, (a, b) in sorted(by_form.items())))
    held = [ok for ok, r in zip(right, rows) if r.get("holdout")]
    tuned = [ok for ok, r in zip(right, rows) if not r.get("holdout")]
    print(f"   tuning pairs {sum(tuned)}/{len(tuned)}, held-out pairs {sum(held)}/{len(held)}")
    return sum(right) / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    rows = load()
    print(f"{len(rows)} labelled pairs ({sum(r['equivalent'] for r in rows)} equivalent), best of {args.repeat} passes\n")

    from backends.rewards.equivalence import STATS
    from backends.rewards.sympy_pool import sympy_equivalent

    one = ["num", 1, 1]
    sympy_equivalent(one, one, 60.0)  # start the worker outside the timing
    ours, ours_per_s = timed(run_ours, rows, args.repeat)
    acc_ours = report("r1dsl   ", rows, ours, ours_per_s)
    print(f"   paths per pass: " + ", ".join(f"{k} {v // args.repeat}" for k, v in STATS.items() if k != "cache_hit"))

    import math_verify  # noqa: F401  (import outside the timing)

    wraps = {"$...$": lambda s: f"${s}$", "\\boxed{...}": lambda s: f"\\boxed{{{s}}}"}
    best = max(wraps, key=lambda w: sum(v == r["equivalent"] for v, r in zip(run_math_verify(rows, wraps[w]), rows)))
    mv, mv_per_s = timed(lambda rs: run_math_verify(rs, wraps[best]), rows, args.repeat)
    acc_mv = report(f"math-verify (answers as {best})", rows, mv, mv_per_s)

    print(f"\naccuracy: r1dsl {acc_ours:.3f} vs math-verify {acc_mv:.3f};  throughput: {ours_per_s / mv_per_s:.1f}x")
    if args.show_misses:
        for name, got in (("r1dsl", ours), ("math-verify", mv)):
            for v, r in zip(got, rows):
                if v != r["equivalent"]:
                    print(f"  {name} miss [{r['form']}] {r['gold']!r} vs {r['predicted']!r}: label {r['equivalent']}")


if __name__ == "__main__":
    main()
