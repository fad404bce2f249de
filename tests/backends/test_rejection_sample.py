"""Rejection sampling: the filters in order, the provenance of kept rows, and resumption after a crash."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from backends.stages.rejection_sample import FILTERS, Candidate, apply_filters
from r1dsl.config import RewardConfig, plain
from r1dsl.ir import RejectionFilters, Sampling

from tests.backends.conftest import generated, stage_config, write_config

REWARDS = [
    RewardConfig(name="accuracy", rule="math_accuracy"),
    RewardConfig(name="format", rule="format"),
    RewardConfig(name="language", rule="language_consistency"),
]


def candidate(prompt_id, text, accuracy, fmt, language=1.0, truncated=False, tokens=10):
    c = Candidate({"prompt": f"p{prompt_id}", "answer": "1"}, prompt_id, 0, text, tokens, truncated)
    c.rewards = {"accuracy": accuracy, "format": fmt, "language": language}
    return c


def fresh_counts():
    return {f: {"seen": 0, "kept": 0} for f in FILTERS}


def test_each_filter_drops_what_it_names_and_counts_it():
    cands = [
        candidate(0, "a", 1.0, 1.0),
        candidate(0, "a ", 1.0, 1.0),  # duplicate of the first up to whitespace
        candidate(0, "b", 0.0, 1.0),  # wrong
        candidate(1, "c", 1.0, 0.0),  # badly formatted
        candidate(1, "d", 1.0, 1.0, language=0.5),  # mixed language
        candidate(1, "e", 1.0, 1.0, truncated=True),  # unfinished
        candidate(1, "f", 1.0, 1.0, tokens=99),  # too long
        candidate(1, "g", 1.0, 1.0),
        candidate(1, "h", 1.0, 1.0),
    ]
    filters = RejectionFilters(correct=True, format=True, language=0.9, max_completion_tokens=50, dedup=True, keep_per_prompt=1)
    counts = fresh_counts()
    kept = apply_filters(cands, filters, REWARDS, counts)
    assert [c.text for c in kept] == ["a", "g"]
    assert counts["finished"] == {"seen": 9, "kept": 8}
    assert counts["correct"] == {"seen": 8, "kept": 7}
    assert counts["format"] == {"seen": 7, "kept": 6}
    assert counts["language"] == {"seen": 6, "kept": 5}
    assert counts["judge"] == {"seen": 5, "kept": 5}
    assert counts["length"] == {"seen": 5, "kept": 4}
    assert counts["dedup"] == {"seen": 4, "kept": 3}
    assert counts["keep_per_prompt"] == {"seen": 3, "kept": 2}


def test_disabled_filters_keep_everything_and_unrouted_rewards_do_not_count():
    cands = [candidate(0, "x", math.nan, 0.0), candidate(0, "y", 0.0, 0.0)]
    counts = fresh_counts()
    kept = apply_filters(cands, RejectionFilters(correct=False, format=False, dedup=False), REWARDS, counts)
    assert [c.text for c in kept] == ["x", "y"]
    counts = fresh_counts()
    kept = apply_filters(cands, RejectionFilters(correct=True, format=False), REWARDS, counts)
    assert [c.text for c in kept] == ["x"]  # NaN: accuracy is not routed to that row, so it cannot fail it


def _config(tmp_path, **filters):
    cfg = stage_config(
        tmp_path,
        "rs",
        "rejection_sample",
        train=[generated("arith", "arithmetic", size=6, seed=3)],
        sampling=Sampling(samples_per_prompt=3, temperature=1.0, top_p=1.0, max_completion_tokens=12),
        filters=RejectionFilters(**{"correct": False, "format": False, "keep_per_prompt": 2, **filters}),
    )
    return cfg


def _run(config_path):
    return subprocess.run([sys.executable, "-m", "backends.run_stage", str(config_path)], capture_output=True, text=True, timeout=300)


def test_stage_writes_rows_with_provenance_and_a_summary(tmp_path):
    cfg = _config(tmp_path)
    proc = _run(write_config(cfg))
    assert proc.returncode == 0, proc.stderr
    exp = tmp_path / "rs"
    rows = [json.loads(line) for line in (exp / "data.jsonl").read_text().splitlines()]
    summary = json.loads((exp / "data_summary.json").read_text())
    assert summary["seen"] == 6 * 3
    assert summary["kept"] == len(rows) and 0 < len(rows) <= 6 * 2
    for name, c in summary["per_filter"].items():  # the report says what each filter dropped
        assert c["dropped"] == c["seen"] - c["kept"], name
    assert sum(c["dropped"] for c in summary["per_filter"].values()) == summary["seen"] - summary["kept"]
    results = json.loads((tmp_path / "results.json").read_text())["rs"]
    assert results["dropped/keep_per_prompt"] == summary["per_filter"]["keep_per_prompt"]["dropped"]
    for row in rows:
        assert {"prompt", "response", "answer", "source_stage", "checkpoint", "prompt_id", "sample_index", "rewards"} <= row.keys()
        assert row["source_stage"] == "rs" and set(row["rewards"]) == {"accuracy", "format"}
    per_prompt = {}
    for row in rows:
        per_prompt[row["prompt_id"]] = per_prompt.get(row["prompt_id"], 0) + 1
    assert max(per_prompt.values()) <= 2
    assert (exp / "DONE").exists() and not (exp / "data.partial.jsonl").exists()
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["rs"]["samples_seen"] == 18


def test_a_chunk_cut_off_mid_write_is_dropped_on_resume(tmp_path, monkeypatch):
    import backends.stages.rejection_sample as rs

    cfg = _config(tmp_path)
    cfg["model"]["data"]["train"] = plain([generated("arith", "arithmetic", size=6, seed=3), generated("more", "arithmetic", size=4, seed=4)])
    path = write_config(cfg)
    exp = tmp_path / "rs"
    # The state a SIGKILL leaves after the first chunk was recorded and the second was half-appended.
    good = json.dumps({"prompt": "1+1", "response": "r", "source_stage": "rs", "prompt_id": 0}) + "\n"
    (exp / "data.partial.jsonl").write_text(good + '{"prompt": "torn')
    (exp / "data.progress.json").write_text(
        json.dumps({"done_chunks": ["arith:0"], "counts": {f: {"seen": 18, "kept": 1} for f in FILTERS}, "partial_bytes": len(good)})
    )
    proc = _run(path)
    assert proc.returncode == 0, proc.stderr
    lines = (exp / "data.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # every line parses: the torn tail is gone
    assert rows[0]["prompt"] == "1+1"  # the finished chunk was not sampled again
    assert all(r["source_dataset"] == "more" for r in rows[1:])
    summary = json.loads((exp / "data_summary.json").read_text())
    assert summary["seen"] == 18 + 4 * 3


# -- R1's readability filters [V1 2.3.3] and the cold-start repetition filter, on crafted chains of thought ---------

def test_a_chain_of_thought_with_a_code_block_is_dropped_but_code_after_the_reasoning_is_not():
    with_fence = candidate(0, "<think> let me try\n```python\nprint(1)\n```\n</think> 1", 1.0, 1.0)
    answer_code = candidate(1, "<think> plain reasoning </think>\n```python\nprint(1)\n```", 1.0, 1.0)
    inline = candidate(2, "<think> the value of `x` is 1 </think> 1", 1.0, 1.0)
    counts = fresh_counts()
    kept = apply_filters([with_fence, answer_code, inline], RejectionFilters(correct=False, format=False, code_blocks=True),
                         REWARDS, counts)
    assert kept == [answer_code, inline]
    assert counts["code_blocks"] == {"seen": 3, "kept": 2}


def test_a_chain_of_thought_with_a_long_paragraph_is_dropped():
    short_paragraphs = candidate(0, "<think>" + "\n\n".join(["word " * 20] * 10) + "</think> 1", 1.0, 1.0)
    one_wall = candidate(1, "<think>" + "word " * 200 + "</think> 1", 1.0, 1.0)
    lines_no_blank = candidate(2, "<think>" + "\n".join(["word " * 20] * 10) + "</think> 1", 1.0, 1.0)  # one paragraph
    counts = fresh_counts()
    filters = RejectionFilters(correct=False, format=False, max_paragraph_chars=500)
    kept = apply_filters([short_paragraphs, one_wall, lines_no_blank], filters, REWARDS, counts)
    assert kept == [short_paragraphs]
    assert counts["paragraphs"] == {"seen": 3, "kept": 1}


def test_a_looping_chain_of_thought_is_dropped_by_the_repetition_filter():
    loop = candidate(0, "<think>" + "wait, let me check again. " * 50 + "</think> 1", 1.0, 1.0)
    prose = candidate(1, "<think>" + " ".join(f"step {i} adds {i + 1} to the total" for i in range(30)) + "</think> 1", 1.0, 1.0)
    counts = fresh_counts()
    kept = apply_filters([loop, prose], RejectionFilters(correct=False, format=False, repetition=0.5), REWARDS, counts)
    assert kept == [prose]
    assert counts["repetition"] == {"seen": 2, "kept": 1}


def test_the_text_scans_are_linear_on_hostile_input():
    import time

    from backends.stages.rejection_sample import has_code_block, longest_paragraph_chars, repeated_fraction

    hostile = ("`" * 2 + "\n") * 200_000 + "x" * 1_000_000
    start = time.perf_counter()
    assert not has_code_block(hostile)
    assert longest_paragraph_chars(hostile) == 1_600_000  # one paragraph: no blank line in it
    assert repeated_fraction("a b " * 200_000) > 0.99
    assert time.perf_counter() - start < 5.0
