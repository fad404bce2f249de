"""Memory per rank of an SFT data set the size of the paper's phase-3 set: lists of dicts vs memory-mapped rows.

The paper's phase-3 SFT set is 804,745 samples of ~5,355 tokens [V2 B.3.3]. This writes a synthetic jsonl with
`--rows` rows of about `--tokens` tokens of response each (4 characters a token), then starts `--ranks`
processes at once, as the ranks of one node would be, each loading the set as the sft stage does and reading
`--reads` random rows:
- `list`: `load_rows` (what the sft stage did before: every row a Python dict in every rank);
- `table`: `open_rows` (one conversion to an Arrow file, memory-mapped by every rank; backends/data/table.py).
It reports each rank's private memory (RssAnon: what the ranks cannot share) and file-backed pages (RssFile: the
page cache, shared by the ranks and reclaimable), and the one-off conversion time. A `list` run that would not
fit in this machine's memory is not started; its size is extrapolated from a smaller run and says so.

    python benchmarks/sft_data_memory.py --rows 804745 --tokens 250 --ranks 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RANK = r"""
import json, random, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from backends.data.loading import load_rows
from backends.data.table import open_rows
from r1dsl.config import DatasetConfig

def status(key):
    return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1]) / 1024

entry = DatasetConfig(name='sft', source='jsonl', path={path!r}, provides=('prompt', 'response'))
t0 = time.perf_counter()
rows = load_rows(entry) if {how!r} == 'list' else open_rows(entry, Path({cache!r}))
loaded = time.perf_counter() - t0
rng = random.Random({rank})
chars = sum(len(rows[rng.randrange(len(rows))]['response']) for _ in range({reads}))
print(json.dumps({{'rank': {rank}, 'rows': len(rows), 'load_s': loaded, 'anon_mb': status('RssAnon'),
                  'file_mb': status('RssFile'), 'hwm_mb': status('VmHWM'), 'chars_read': chars}}))
"""


def write_set(path: Path, rows: int, tokens: int) -> float:
    """A jsonl of `rows` prompt/response pairs, responses of ~4*tokens characters; returns its size in GB."""
    filler = ("the quick brown fox jumps over a lazy dog " * (tokens // 8 + 1))[: 4 * tokens]
    with open(path, "w") as f:
        for i in range(rows):
            f.write(json.dumps({"prompt": f"Problem {i}: what is {i} + {i}?", "response": f"{filler} {2 * i}"}) + "\n")
    return path.stat().st_size / 1e9


def run_ranks(how: str, path: Path, cache: Path, ranks: int, reads: int) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, "-c", RANK.format(root=str(ROOT), path=str(path), cache=str(cache),
                                                                 how=how, rank=r, reads=reads)],
                              stdout=subprocess.PIPE, text=True) for r in range(ranks)]
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a {how} rank failed (exit {p.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=804_745, help="samples (paper's phase-3 SFT set: 804,745)")
    ap.add_argument("--tokens", type=int, default=5_355, help="response tokens per sample (paper: ~5,355)")
    ap.add_argument("--ranks", type=int, default=2, help="processes started at once, as one node's ranks")
    ap.add_argument("--reads", type=int, default=2_000, help="random rows each rank reads")
    ap.add_argument("--dir", default=None, help="where the synthetic set goes (default: a temp folder)")
    args = ap.parse_args()

    folder = Path(args.dir or tempfile.mkdtemp(prefix="sft_memory_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sft.jsonl"
    t0 = time.perf_counter()
    gb = write_set(path, args.rows, args.tokens)
    print(f"synthetic set: {args.rows:,} rows x ~{args.tokens:,} tokens = {gb:.2f} GB jsonl "
          f"(written in {time.perf_counter() - t0:.0f} s); {args.ranks} ranks, {args.reads:,} random reads each")
    print(f"load: {os.getloadavg()[0]:.1f}, CPUs: {os.cpu_count()}")

    free_gb = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 1e9
    results = {}
    for how in ("table", "list"):
        if how == "list" and gb * 2.5 * args.ranks > 0.8 * free_gb:  # a str per row costs >2x its UTF-8 bytes
            print(f"list: not run ({args.ranks} ranks x ~{gb * 2.5:.1f} GB of Python objects > {0.8 * free_gb:.0f} GB "
                  "free here); it grows in proportion to the set")
            continue
        cache = folder / f"cache-{how}"
        t0 = time.perf_counter()
        results[how] = run_ranks(how, path, cache, args.ranks, args.reads)
        wall = time.perf_counter() - t0
        anon = [r["anon_mb"] for r in results[how]]
        files = [r["file_mb"] for r in results[how]]
        print(f"{how:>5}: {wall:6.1f} s wall (first use, conversion included) | per rank RssAnon "
              f"{min(anon):,.0f}-{max(anon):,.0f} MB, RssFile {min(files):,.0f}-{max(files):,.0f} MB, peak RSS "
              f"{max(r['hwm_mb'] for r in results[how]):,.0f} MB")
        if how == "table":
            again = run_ranks(how, path, cache, args.ranks, args.reads)
            print(f"table, converted file reused: load {max(r['load_s'] for r in again):.2f} s, RssAnon "
                  f"{max(r['anon_mb'] for r in again):,.0f} MB per rank")
    if "list" in results and "table" in results:
        ratio = max(r["anon_mb"] for r in results["list"]) / max(r["anon_mb"] for r in results["table"])
        print(f"private memory per rank, list / table: {ratio:.1f}x")


if __name__ == "__main__":
    main()
