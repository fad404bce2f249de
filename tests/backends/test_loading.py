"""load_rows: every dataset source, field mapping, and errors that name the place."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from conftest import generated

from backends.data.loading import DataError, load_rows
from r1dsl.config import DatasetConfig


def entry(name, source, path, **extra) -> DatasetConfig:
    return DatasetConfig(name=name, source=source, path=str(path), **extra)


def test_generator_rows_carry_dataset_name_and_routed_rewards():
    rows = load_rows(replace(generated("arith", "arithmetic", 5, seed=1), rewards=("accuracy",)))
    assert len(rows) == 5
    assert all(r["_dataset"] == "arith" and r["_rewards"] == ["accuracy"] for r in rows)


def test_jsonl_fields_are_mapped_to_canonical_names(tmp_path):
    path = tmp_path / "gsm.jsonl"
    path.write_text('{"question": "1+1?", "gold": "2"}\n\n{"question": "2+2?", "gold": "4"}\n')
    rows = load_rows(entry("gsm", "jsonl", path, fields={"prompt": "question", "answer": "gold"}, provides=["prompt", "answer"]))
    assert [(r["prompt"], r["answer"]) for r in rows] == [("1+1?", "2"), ("2+2?", "4")]


def test_a_bad_jsonl_line_names_path_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b",}\n')
    with pytest.raises(DataError, match=rf"{path}:2: not valid JSON"):
        load_rows(entry("bad", "jsonl", path))


def test_a_missing_field_says_how_to_map_it(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(DataError, match="lacks field.*prompt.*fields"):
        load_rows(entry("x", "jsonl", path, provides=["prompt"]))


def test_size_takes_the_first_rows_and_stage_output_reads_jsonl(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"prompt": str(i), "response": "r"}) + "\n" for i in range(10)))
    rows = load_rows(entry("rs", "stage", path, size=3))
    assert [r["prompt"] for r in rows] == ["0", "1", "2"]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"problem": ["1+2"], "solution": ["3"]}), path)
    rows = load_rows(entry("pq", "parquet", path, fields={"prompt": "problem", "answer": "solution"}))
    assert rows[0]["prompt"] == "1+2" and rows[0]["answer"] == "3"


def test_hf_dataset_not_in_the_cache_is_a_clear_offline_error(monkeypatch, tmp_path):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    with pytest.raises(DataError, match="not in the local Hugging Face cache"):
        load_rows(entry("numina", "hf", "nobody/no-such-dataset-r1dsl"))


def test_unknown_generator():
    with pytest.raises(DataError, match="unknown generator 'nope'"):
        load_rows(replace(generated("a", "arithmetic", 1), generator="nope"))
