"""Rows of a large dataset without holding them in Python: a memory-mapped Arrow file, read one row at a time.

The paper's phase-3 SFT set is 804,745 samples of ~5,355 tokens (~17 GB of text): as Python lists of dicts it
would be copied into every rank's memory. `open_rows` converts a dataset entry once (streaming, a batch of rows
at a time) into an Arrow IPC file under the stage's folder and memory-maps it; each rank reads it from the page
cache, which all ranks on a node share. Only the canonical fields the stage needs are kept (`provides`, after
the `fields` mapping), each stored as its JSON text so any value (a string, a chat message list) round-trips
exactly. A hub dataset is already a memory-mapped Arrow table in the `datasets` cache and is read in place.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from backends.data.loading import DataError, _map_fields, iter_jsonl, iter_parquet, load_rows, open_hf
from r1dsl.config import DatasetConfig

BATCH_ROWS = 2048  # rows converted per Arrow record batch: bounds the conversion's own memory


class Rows(Sequence):
    """A dataset entry's rows, each a dict of its canonical fields (plus `_dataset`), read on demand."""

    def __init__(self, table: pa.Table, name: str, encoded: bool):
        self.table, self.name, self._encoded = table, name, encoded

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        row = self.table.slice(i % len(self), 1).to_pylist()[0]
        if self._encoded:
            row = {k: json.loads(v) for k, v in row.items() if v is not None}
        row["_dataset"] = self.name
        return row

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)


class Concat(Sequence):
    """Several `Rows` read as one sequence, in order."""

    def __init__(self, parts: list[Rows]):
        self.parts = [p for p in parts if len(p)]
        self._ends = []
        total = 0
        for p in self.parts:
            total += len(p)
            self._ends.append(total)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        if not 0 <= i < len(self):
            raise IndexError(i)
        for part, end in zip(self.parts, self._ends):
            if i < end:
                return part[i - (end - len(part))]
        raise IndexError(i)


def open_rows(dataset: DatasetConfig, cache_dir: Path) -> Rows:
    """The rows of a dataset entry, memory-mapped; converted into `cache_dir` on first use (safe across ranks)."""
    needed = tuple(dataset.provides)
    if dataset.source == "hf":
        return _hf_rows(dataset, needed)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{dataset.name}-{_key(dataset)}.arrow"
    if not path.exists():
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one rank converts; the others wait, then read its file
            if not path.exists():
                _convert_in_child(dataset, needed, path)
    table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    return Rows(table, dataset.name, encoded=True)


def _convert_in_child(dataset: DatasetConfig, needed: tuple[str, ...], path: Path) -> None:
    """Convert in a fresh interpreter: the parsing's garbage would otherwise stay in this rank's heap for good."""
    import dataclasses
    import subprocess
    import sys

    spec = json.dumps({"dataset": dataclasses.asdict(dataset), "needed": list(needed), "path": str(path)})
    done = subprocess.run([sys.executable, "-m", "backends.data.table"], input=spec, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
        raise DataError(last.removeprefix("backends.data.loading.DataError: ").removeprefix("DataError: "))


def _convert(dataset: DatasetConfig, needed: tuple[str, ...], path: str) -> None:
    tmp = Path(f"{path}.tmp{os.getpid()}")
    try:
        _write(tmp, _batches(dataset, needed), needed)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _key(dataset: DatasetConfig) -> str:
    """What the converted file depends on: the source file (path, size, mtime) and the mapping."""
    stat = ""
    if dataset.path and Path(dataset.path).is_file():
        st = Path(dataset.path).stat()
        stat = f"{st.st_size}:{st.st_mtime_ns}"
    what = [dataset.source, dataset.path, stat, dataset.generator, dataset.size, dataset.seed,
            sorted(dataset.fields.items()), sorted(dataset.params.items()), list(dataset.provides)]
    return hashlib.sha256(json.dumps(what, default=str).encode()).hexdigest()[:16]


def _batches(dataset: DatasetConfig, needed: tuple[str, ...]) -> Iterator[list[dict[str, Any]]]:
    """The entry's rows with canonical names, a batch at a time, never the whole file in memory."""
    if dataset.source in ("jsonl", "stage"):
        rows: Any = iter_jsonl(dataset.path, dataset.size)
    elif dataset.source == "parquet":
        rows = iter_parquet(dataset.path, dataset.size, BATCH_ROWS)
    else:  # generated rows are small: the list loader makes them
        rows = iter(load_rows(dataset))
    batch = []
    where = dataset.path or dataset.generator or dataset.name
    for n, row in enumerate(rows, start=1):
        row = _map_fields(row, dataset.fields)
        missing = [f for f in needed if f not in row]
        if missing:
            raise DataError(f"{where}: row {n} lacks field(s) {', '.join(missing)} (map them with `fields {{ ... }}`)")
        batch.append({f: row[f] for f in needed})
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _write(path: Path, batches: Iterator[list[dict[str, Any]]], needed: tuple[str, ...]) -> None:
    schema = pa.schema([(f, pa.large_string()) for f in needed])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for batch in batches:
            columns = [pa.array([json.dumps(r[f], ensure_ascii=False) for r in batch], pa.large_string()) for f in needed]
            writer.write_batch(pa.record_batch(columns, schema=schema))


def _hf_rows(dataset: DatasetConfig, needed: tuple[str, ...]) -> Rows:
    ds = open_hf(dataset.path, dataset.split)
    if dataset.size is not None:
        ds = ds.select(range(min(dataset.size, len(ds))))
    table = ds.with_format("arrow")[:]  # zero-copy slices of the memory-mapped cache files
    renames = {column: canonical for canonical, column in dataset.fields.items() if column in table.column_names}
    table = table.rename_columns([renames.get(c, c) for c in table.column_names])
    missing = [f for f in needed if f not in table.column_names]
    if missing:
        raise DataError(f"{dataset.path}: lacks field(s) {', '.join(missing)} (map them with `fields {{ ... }}`)")
    return Rows(table.select(list(needed)), dataset.name, encoded=False)


def _main() -> int:
    """`python -m backends.data.table` with a JSON spec on stdin: the conversion, run by `_convert_in_child`."""
    import sys

    spec = json.load(sys.stdin)
    d = spec["dataset"]
    dataset = DatasetConfig(**{**d, "provides": tuple(d["provides"]), "rewards": tuple(d["rewards"])})
    try:
        _convert(dataset, tuple(spec["needed"]), spec["path"])
    except DataError as e:
        print(f"DataError: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
