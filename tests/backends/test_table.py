"""Large SFT sets stay on disk: rows converted once to a memory-mapped Arrow file, read per row (backends/data/table.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backends.data.loading import DataError, load_rows
from backends.data.table import Concat, open_rows
from r1dsl.config import DatasetConfig

ROOT = Path(__file__).resolve().parents[2]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _entry(path: Path, **kw) -> DatasetConfig:
    kw.setdefault("provides", ("prompt", "response"))
    return DatasetConfig(name=kw.pop("name", "d"), source=kw.pop("source", "jsonl"), path=str(path), **kw)


def test_rows_read_back_as_the_list_loader_reads_them(tmp_path):
    rows = [{"q": f"what is {i}+1?", "a": str(i + 1), "other": i} for i in range(50)]
    rows[3]["q"] = [{"role": "user", "content": "a chat prompt"}]  # any JSON value round-trips
    rows[4]["a"] = "ünïcode \u2028 line separator"
    entry = _entry(_jsonl(tmp_path / "r.jsonl", rows), fields={"prompt": "q", "response": "a"}, size=40)
    table = open_rows(entry, tmp_path / "cache")
    listed = load_rows(entry)
    assert len(table) == len(listed) == 40
    for i in range(40):
        assert table[i] == {"prompt": listed[i]["prompt"], "response": listed[i]["response"], "_dataset": "d"}
    assert table[-1] == table[39]
    with pytest.raises(IndexError):
        table[40]


def test_converted_once_and_again_when_the_file_changes(tmp_path):
    src = _jsonl(tmp_path / "r.jsonl", [{"prompt": "p", "response": "r"}])
    open_rows(_entry(src), tmp_path / "cache")
    first = list((tmp_path / "cache").glob("*.arrow"))
    open_rows(_entry(src), tmp_path / "cache")
    assert list((tmp_path / "cache").glob("*.arrow")) == first  # reused, not rewritten
    _jsonl(src, [{"prompt": "p2", "response": "r2"}, {"prompt": "p3", "response": "r3"}])
    again = open_rows(_entry(src), tmp_path / "cache")
    assert len(again) == 2 and again[0]["prompt"] == "p2"


def test_a_row_without_a_needed_field_is_named(tmp_path):
    src = _jsonl(tmp_path / "r.jsonl", [{"prompt": "p", "response": "r"}, {"prompt": "p"}])
    with pytest.raises(DataError, match=r"row 2 lacks field\(s\) response"):
        open_rows(_entry(src), tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.arrow"))  # nothing half-written is left to be reused


def test_parquet_and_generated_sources(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"prompt": ["a", "b", "c"], "response": ["1", "2", "3"]}), tmp_path / "r.parquet")
    parquet = open_rows(_entry(tmp_path / "r.parquet", source="parquet"), tmp_path / "cache")
    assert [parquet[i]["response"] for i in range(3)] == ["1", "2", "3"]
    gen = DatasetConfig(name="g", source="generator", generator="arithmetic", size=7, seed=3, provides=("prompt", "answer"))
    generated = open_rows(gen, tmp_path / "cache")
    assert [generated[i]["answer"] for i in range(7)] == [r["answer"] for r in load_rows(gen)]
    both = Concat([parquet, generated])
    assert len(both) == 10 and both[3]["_dataset"] == "g" and both[2]["response"] == "3"


def test_memory_does_not_grow_with_the_data(tmp_path):
    """80 MB of responses: the list loader holds them in the process; the table keeps them in the page cache."""
    src = tmp_path / "big.jsonl"
    with open(src, "w") as f:
        for i in range(40_000):
            f.write(json.dumps({"prompt": f"question {i}", "response": "x" * 2000 + str(i)}) + "\n")
    probe = f"""
import random, sys
from pathlib import Path
from backends.data.loading import load_rows
from backends.data.table import open_rows
from r1dsl.config import DatasetConfig
def anon():
    return int(next(l for l in open('/proc/self/status') if l.startswith('RssAnon')).split()[1]) // 1024
entry = DatasetConfig(name='d', source='jsonl', path={str(src)!r}, provides=('prompt', 'response'))
before = anon()
rows = load_rows(entry) if sys.argv[1] == 'list' else open_rows(entry, Path({str(tmp_path / 'cache')!r}))
for i in random.Random(0).sample(range(len(rows)), 2000):
    assert rows[i]['response'].endswith(str(i))
print(anon() - before)
"""
    grown = {}
    for how in ("table", "list"):  # the table's conversion runs first, in its own process
        out = subprocess.run([sys.executable, "-c", probe, how], capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-2000:]
        grown[how] = int(out.stdout.split()[-1])
    assert grown["list"] > 60, grown  # the list loader holds the 80 MB of text
    assert grown["table"] < grown["list"] / 4, grown


def test_sft_examples_encode_each_row_as_the_list_path_did(tmp_path):
    """The sft stage trains on `Examples` over memory-mapped rows: the same (input_ids, labels), in the same order."""
    from backends.models import build_tiny_tokenizer
    from backends.stages.sft import Examples, build_examples

    tok = build_tiny_tokenizer(256)
    gen = DatasetConfig(name="chat", source="generator", generator="chat", size=25, seed=1, provides=("prompt", "response"))
    rows = load_rows(gen)
    lazy = Examples(open_rows(gen, tmp_path / "cache"), tok, "User: {prompt} Assistant:", max_seq_len=48)
    eager = build_examples(rows, tok, "User: {prompt} Assistant:", max_seq_len=48)
    assert len(lazy) == len(eager) == 25
    assert [lazy[i] for i in range(25)] == eager
