"""Load the rows of one compiled dataset entry (`model.data.train[i]` of a stage config).

Every source ends as a list of dicts with canonical field names (prompt, answer, tests, response, text);
`fields` maps a canonical name to the file's column. Rows also carry `_dataset` (the dataset name) and,
when the stage routes rewards to this dataset, `_rewards` (the reward names `registry.score` applies).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from r1dsl.config import DatasetConfig


class DataError(Exception):
    """A dataset that cannot be read; the message starts with the place (`path:line: why`)."""


def load_rows(dataset: DatasetConfig) -> list[dict[str, Any]]:
    """The rows of a dataset entry: generated, read from jsonl/parquet/hf, or an earlier stage's output."""
    source, size = dataset.source, dataset.size
    if source == "generator":
        rows = _generate(dataset)
    elif source in ("jsonl", "stage"):
        rows = read_jsonl(dataset.path, limit=size)
    elif source == "parquet":
        rows = _read_parquet(dataset.path, limit=size)
    elif source == "hf":
        rows = _read_hf(dataset.path, dataset.split, limit=size)
    else:
        raise DataError(f"{dataset.name}: unknown dataset source {source!r}")
    rows = [_map_fields(row, dataset.fields) for row in rows]
    _check_provides(rows, dataset)
    for row in rows:
        row["_dataset"] = dataset.name
        if dataset.rewards:
            row["_rewards"] = list(dataset.rewards)
    return rows


def _generate(dataset: DatasetConfig) -> list[dict[str, Any]]:
    from backends.data.generators import GENERATORS

    import backends.data  # noqa: F401  (registers the built-in generators)

    name = dataset.generator
    if name not in GENERATORS:
        raise DataError(f"{dataset.name}: unknown generator {name!r} (known: {', '.join(sorted(GENERATORS))})")
    return GENERATORS[name](dataset.size, seed=dataset.seed, **dict(dataset.params))


def read_jsonl(path: str | os.PathLike, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; blank lines are skipped; a bad line raises DataError("path:line: why")."""
    return list(iter_jsonl(path, limit))


def iter_jsonl(path: str | os.PathLike | None, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a JSON-lines file one at a time (a file of any size in constant memory)."""
    if not path or not Path(path).exists():
        raise DataError(f"{path}: no such file")
    n = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield row
            n += 1
            if limit is not None and n >= limit:
                return


def _read_parquet(path: str, limit: int | None) -> list[dict[str, Any]]:
    return list(iter_parquet(path, limit))


def iter_parquet(path: str | None, limit: int | None = None, batch_rows: int = 2048) -> Iterator[dict[str, Any]]:
    """The rows of a parquet file a record batch at a time (a file of any size in bounded memory)."""
    if not path or not Path(path).exists():
        raise DataError(f"{path}: no such file")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
    n = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            for row in batch.to_pylist():
                yield row
                n += 1
                if limit is not None and n >= limit:
                    return
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: not a readable parquet file ({e})") from None


def _read_hf(name: str, split: str, limit: int | None) -> list[dict[str, Any]]:
    ds = open_hf(name, split)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return [dict(r) for r in ds]


def open_hf(name: str, split: str):
    """A Hugging Face dataset (memory-mapped Arrow) from the local cache only: a stage never downloads.

    First the hub cache's snapshot of the repository (what `r1dsl fetch` downloads), read as a local folder;
    then the `datasets` library's own cache (a dataset loaded once with `datasets.load_dataset`)."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"{name}: hf datasets need the `datasets` package (pip install datasets)") from None
    _offline()
    from r1dsl.hub import cached_revision, hub_cache, repo_folder

    cache = hub_cache()
    commit = cached_revision(cache, "dataset", name)
    source = str(repo_folder(cache, "dataset", name) / "snapshots" / commit) if commit else name
    try:
        return datasets.load_dataset(source, split=split)
    except Exception as e:
        raise DataError(
            f"{name}: not in the local Hugging Face cache (split {split!r}); stages run offline. "
            f"Run `r1dsl fetch RECIPE` once on a machine with network that shares the cache ({cache}), "
            f"or export it to jsonl and use `jsonl = ...`. ({type(e).__name__}: {e})"
        ) from None


def _offline() -> None:
    """Hugging Face libraries read these flags at import time; set them in the modules too, or they may retry the network."""
    os.environ["HF_DATASETS_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"
    import datasets.config
    import huggingface_hub.constants

    datasets.config.HF_DATASETS_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    huggingface_hub.constants.HF_HUB_OFFLINE = True


def _map_fields(row: dict[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """Rename file columns to canonical names (`fields` is canonical -> column); other columns stay."""
    if not fields:
        return dict(row)
    out = dict(row)
    for canonical, column in fields.items():
        if column in row:
            out[canonical] = row[column]
    return out


def _check_provides(rows: list[dict[str, Any]], dataset: DatasetConfig) -> None:
    where = dataset.path or dataset.generator or dataset.name
    for i, row in enumerate(rows):
        missing = [f for f in dataset.provides if f not in row]
        if missing:
            raise DataError(f"{where}: row {i + 1} lacks field(s) {', '.join(missing)} (map them with `fields {{ ... }}`)")
