"""Rejection sampling (DeepSeek-R1 phase 3): sample k completions per prompt, keep the good ones.

For every prompt of the stage's data, `samples_per_prompt` completions are drawn from the stage's model;
each passes through the recipe's filters in a fixed order and the survivors become an SFT dataset:

    finished -> correct -> format -> language -> code_blocks -> paragraphs -> repetition -> judge -> length
    -> dedup -> keep_per_prompt

`language`, `code_blocks` and `paragraphs` are R1's readability filters: "we have filtered out
chain-of-thought with mixed languages, long paragraphs, and code blocks" [V1 2.3.3]; `repetition` is the
filter of its cold-start data collection [V2 B.3.3]. These scan the chain of thought (the text inside the
reasoning tags), each in one linear pass.

`<stage>/data.jsonl` holds one row per kept completion with its provenance (source stage, checkpoint
hash, dataset, prompt id, sample index, every reward value); `<stage>/data_summary.json` counts what each
filter saw, kept and dropped. Prompts are processed in chunks; a chunk's kept rows are appended to a partial file
whose progress is recorded atomically, so a killed stage resumes after its last finished chunk, and
data.jsonl appears only when every chunk is done (write, then rename).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import functools
from pathlib import Path
from typing import Any, Mapping, Sequence

import backends.rewards  # noqa: F401  (registers the built-in reward rules)
from backends.generation import render_prompt
from backends.rewards.language import chain_of_thought
from backends.rewards.registry import GROUND_TRUTH_FIELDS, REWARDS, score
from backends.trainer.results import atomic_write_json
from r1dsl.config import InitConfig, RewardConfig, plain
from r1dsl.ir import RejectionFilters

FILTERS = ("finished", "correct", "format", "language", "code_blocks", "paragraphs", "repetition", "judge", "length",
           "dedup", "keep_per_prompt")
_TESTED = FILTERS[: FILTERS.index("dedup")]  # the filters that test one candidate at a time
REPEAT_WINDOW = 4  # words per window of the repetition filter
PROMPTS_PER_CHUNK = 64


def run(cfg) -> dict[str, float]:
    from backends.data.loading import load_rows
    from backends.generation import sample
    from backends.models import load_policy
    from backends.stages.eval import _rewards_for
    from backends.trainer import StageRun
    from backends.vllm_engine import record_engine, stage_engine

    run = StageRun(cfg)
    model, tokenizer = load_policy(cfg.model.init, run.device)
    model.eval()
    engine = stage_engine(run, cfg, model, tokenizer)  # None: sample from the model itself (rollout.engine = hf)
    sampling, filters = cfg.model.sampling, cfg.model.filters  # ir.Sampling, ir.RejectionFilters
    checkpoint = checkpoint_hash(cfg.model.init)

    partial = run.exp_dir / "data.partial.jsonl"
    progress_path = run.exp_dir / "data.progress.json"
    progress = _load_progress(progress_path)  # {"done_chunks": [...], "counts": {...}}
    counts = {f: {"seen": 0, "kept": 0} for f in FILTERS} | (progress["counts"] or {})

    chunks = []
    for dataset in cfg.model.data.train:
        rows = load_rows(dataset)
        if sampling.max_prompts:
            rows = rows[: sampling.max_prompts]
        rewards = _rewards_for(cfg.model, dataset)
        for start in range(0, len(rows), PROMPTS_PER_CHUNK):
            chunks.append((f"{dataset.name}:{start}", dataset, rows[start : start + PROMPTS_PER_CHUNK], start, rewards))

    k = sampling.samples_per_prompt
    finished = (run.exp_dir / "data.jsonl").exists()  # renamed into place only after its summary was written
    if run.is_main and not finished:
        _truncate(partial, int(progress.get("partial_bytes", 0)))  # drop rows of a chunk cut off mid-write
        with run.progress(len(chunks), len(progress["done_chunks"]), f"{run.name} sampling") as bar:
            for chunk_id, dataset, rows, first_id, rewards in chunks:
                if chunk_id in progress["done_chunks"]:
                    continue
                prompts = [render_prompt(cfg.model.template, str(r["prompt"]), tokenizer) for r in rows]
                samples = (engine.sample if engine is not None else functools.partial(sample, model))(
                    tokenizer,
                    prompts,
                    num_samples=k,
                    max_new_tokens=sampling.max_completion_tokens,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    generator_seed=sampling.seed + first_id,
                )
                candidates = [
                    Candidate(row, first_id + i // k, i % k, text, length, trunc)
                    for i, (row, text, length, trunc) in enumerate(
                        zip([r for r in rows for _ in range(k)], samples.texts, samples.completion_lengths, samples.truncated)
                    )
                ]
                _, per_rule = score(rewards, [c.text for c in candidates], [c.row for c in candidates],
                                    [c.tokens for c in candidates])
                for i, c in enumerate(candidates):
                    c.rewards = {name: values[i] for name, values in per_rule.items()}
                kept = apply_filters(candidates, filters, rewards, counts)
                with open(partial, "a", encoding="utf-8") as f:
                    for c in kept:
                        f.write(json.dumps(provenance_row(c, run.name, checkpoint, str(dataset.name)), default=str) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                progress["done_chunks"].append(chunk_id)
                progress["counts"] = counts
                progress["partial_bytes"] = partial.stat().st_size
                atomic_write_json(progress_path, progress)
                bar.update(len(progress["done_chunks"]), kept=counts["keep_per_prompt"]["kept"])

        partial.touch()
        seen = counts["finished"]["seen"]
        kept_total = counts["keep_per_prompt"]["kept"]
        per_filter = {name: {**c, "dropped": c["seen"] - c["kept"]} for name, c in counts.items()}
        atomic_write_json(run.exp_dir / "data_summary.json", {"seen": seen, "kept": kept_total, "per_filter": per_filter})
        os.replace(partial, run.exp_dir / "data.jsonl")
        progress_path.unlink(missing_ok=True)
        run.print(f"[{run.name}] kept {kept_total} of {seen} samples -> {run.exp_dir / 'data.jsonl'}")
        for name in FILTERS:
            run.print(f"[{run.name}]   {name:16s} kept {counts[name]['kept']:6d} / {counts[name]['seen']:6d}"
                      f"  dropped {counts[name]['seen'] - counts[name]['kept']:6d}")
    record_engine(run, engine)
    run.fabric.barrier()

    summary = json.loads((run.exp_dir / "data_summary.json").read_text())
    metrics = {"samples_seen": float(summary["seen"]), "samples_kept": float(summary["kept"])}
    metrics["keep_rate"] = metrics["samples_kept"] / metrics["samples_seen"] if metrics["samples_seen"] else 0.0
    for name, c in summary["per_filter"].items():
        metrics[f"dropped/{name}"] = float(c["seen"] - c["kept"])
    run.finish(metrics)
    return metrics


class Candidate:
    """One sampled completion on its way through the filters."""

    def __init__(self, row: Mapping[str, Any], prompt_id: int, sample_index: int, text: str, tokens: int, truncated: bool):
        self.row, self.prompt_id, self.sample_index = row, prompt_id, sample_index
        self.text, self.tokens, self.truncated = text, tokens, truncated
        self.rewards: dict[str, float] = {}


def apply_filters(
    candidates: Sequence[Candidate], filters: RejectionFilters, rewards: Sequence[RewardConfig], counts: dict[str, dict[str, int]]
) -> list[Candidate]:
    """The candidates every enabled filter keeps; `counts[filter]` accumulates seen/kept."""
    correct_names = [r.name for r in rewards if _rule(r) is not None and any(f in _rule(r).needs for f in GROUND_TRUTH_FIELDS)]
    format_names = [r.name for r in rewards if r.rule == "format"]
    language_names = [r.name for r in rewards if r.rule == "language_consistency"]
    think_tag, opens = _think_tag(rewards)

    chains: dict[int, str] = {}  # the chain of thought of each candidate, extracted once for all the filters

    def cot(c: Candidate) -> str:
        if id(c) not in chains:
            chains[id(c)] = chain_of_thought(c.text, think_tag, opens)
        return chains[id(c)]

    def all_at_least(c: Candidate, names: Sequence[str], threshold: float) -> bool:
        values = [c.rewards.get(n, math.nan) for n in names]
        return all(math.isnan(v) or v >= threshold for v in values)  # NaN: not routed to this row's dataset

    tests = {
        "finished": (lambda c: not c.truncated) if filters.finished else None,
        "correct": (lambda c: all_at_least(c, correct_names, 1.0)) if filters.correct else None,
        "format": (lambda c: all_at_least(c, format_names, 1.0)) if filters.format else None,
        "language": (lambda c: all_at_least(c, language_names, filters.language)) if filters.language is not None else None,
        "code_blocks": (lambda c: not has_code_block(cot(c))) if filters.code_blocks else None,
        "paragraphs": ((lambda c: longest_paragraph_chars(cot(c)) <= filters.max_paragraph_chars)
                       if filters.max_paragraph_chars is not None else None),
        "repetition": (lambda c: repeated_fraction(cot(c)) < filters.repetition) if filters.repetition is not None else None,
        "judge": (lambda c: all_at_least(c, [filters.judge], 0.5)) if filters.judge else None,
        "length": (lambda c: c.tokens <= filters.max_completion_tokens) if filters.max_completion_tokens else None,
    }
    survivors = list(candidates)
    for name in _TESTED:
        counts[name]["seen"] += len(survivors)
        if tests[name] is not None:
            survivors = [c for c in survivors if tests[name](c)]
        counts[name]["kept"] += len(survivors)

    counts["dedup"]["seen"] += len(survivors)
    if filters.dedup:
        seen_texts: set[tuple[int, str]] = set()
        unique = []
        for c in survivors:
            key = (c.prompt_id, " ".join(c.text.split()))
            if key not in seen_texts:
                seen_texts.add(key)
                unique.append(c)
        survivors = unique
    counts["dedup"]["kept"] += len(survivors)

    counts["keep_per_prompt"]["seen"] += len(survivors)
    limit = filters.keep_per_prompt
    if limit:
        per_prompt: dict[int, int] = {}
        capped = []
        for c in survivors:
            if per_prompt.get(c.prompt_id, 0) < limit:
                per_prompt[c.prompt_id] = per_prompt.get(c.prompt_id, 0) + 1
                capped.append(c)
        survivors = capped
    counts["keep_per_prompt"]["kept"] += len(survivors)
    return survivors


def has_code_block(text: str) -> bool:
    """A fenced code block: a line that starts with ``` (or ~~~), as Markdown renders one."""
    return any(line.lstrip().startswith(("```", "~~~")) for line in text.splitlines())


def longest_paragraph_chars(text: str) -> int:
    """Characters of the longest paragraph: a run of non-blank lines (one pass)."""
    longest = current = 0
    for line in text.splitlines():
        if line.strip():
            current += len(line.strip()) + (1 if current else 0)
            longest = max(longest, current)
        else:
            current = 0
    return longest


def repeated_fraction(text: str, n: int = REPEAT_WINDOW) -> float:
    """The fraction of n-word windows that repeat an earlier window (0.0 for text with fewer than n words).

    A model stuck in a loop ("wait, let me check. wait, let me check. ...") scores near 1; ordinary prose
    near 0. One pass with a set of window hashes: linear in the words.
    """
    words = text.split()
    total = len(words) - n + 1
    if total <= 0:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for i in range(total):
        window = tuple(words[i : i + n])
        if window in seen:
            repeats += 1
        else:
            seen.add(window)
    return repeats / total


def _think_tag(rewards: Sequence[RewardConfig]) -> tuple[str, bool]:
    """The reasoning tag (and whether the prompt opens it) the stage's format or language reward declares."""
    for reward in rewards:
        if reward.rule in ("format", "language_consistency"):
            params = {**REWARDS[reward.rule].defaults(), **reward.params}
            return str(params.get("think_tag", "think")), bool(params.get("prompt_opens_think", False))
    return "think", False


def provenance_row(c: Candidate, stage: str, checkpoint: str, dataset: str) -> dict[str, Any]:
    row = {"prompt": c.row["prompt"], "response": c.text}
    if c.row.get("answer") is not None:
        row["answer"] = c.row["answer"]
    if c.row.get("tests") is not None:
        row["tests"] = c.row["tests"]
    row.update(
        source_stage=stage,
        checkpoint=checkpoint,
        source_dataset=dataset,
        prompt_id=c.prompt_id,
        sample_index=c.sample_index,
        completion_tokens=c.tokens,
        rewards={k: (None if math.isnan(v) else v) for k, v in c.rewards.items()},
    )
    return row


def checkpoint_hash(init: InitConfig) -> str:
    """sha256 of the weights a stage samples from (a hub id or tiny config hashes by its description)."""
    path = Path(init.path or "")
    if init.source in ("stage", "local") and path.is_dir():
        h = hashlib.sha256()
        for f in sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin")):
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()[:16]
    return hashlib.sha256(json.dumps(plain(init), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _rule(reward: RewardConfig):
    return REWARDS.get(reward.rule)


def _truncate(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size > size:
        with open(path, "r+b") as f:
            f.truncate(size)


def _load_progress(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"done_chunks": [], "counts": None, "partial_bytes": 0}
