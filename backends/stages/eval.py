"""Evaluation: greedy accuracy, format rate, completion length, pass@1 and cons@k over k samples.

`evaluate(model, tokenizer, rows, template, rewards, sampling) -> dict` is the reusable core (`rewards`: compiled
`RewardConfig`s, `sampling`: an `ir.Sampling` or None for its defaults);
`evaluate_stage(run, model, tokenizer)` evaluates a stage's `model.data.eval` sets after training and
writes `<stage>/eval.json`, `<stage>/eval_examples.jsonl` and the stage's entry of `results.json`;
`run(cfg)` is the `eval` stage itself (its data are the sets to evaluate).

Which reward is "accuracy": every rule whose registration needs a ground truth (`answer` or `tests`);
"format rate" is the `format` rule. Metric keys are plain for one eval set and `<set>/<metric>` for several.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from functools import partial
from typing import Any, Mapping, Sequence

import torch

import backends.rewards  # noqa: F401  (registers the built-in reward rules)
from backends.generation import render_prompt, sample  # noqa: F401  (render_prompt: also imported from here)
from backends.rewards.registry import GROUND_TRUTH_FIELDS, REWARDS, score  # noqa: F401
from r1dsl.config import DatasetConfig, InitConfig, ModelConfig, RewardConfig
from r1dsl.ir import Sampling


def default_rewards(rows: Sequence[Mapping[str, Any]]) -> list[RewardConfig]:
    """Rewards for a stage that names none: math accuracy where rows carry an answer, and the format rule."""
    out = []
    if rows and "answer" in rows[0] and "math_accuracy" in REWARDS:
        out.append(RewardConfig(name="accuracy", rule="math_accuracy"))
    if "format" in REWARDS:
        out.append(RewardConfig(name="format", rule="format"))
    return out


def _split_rewards(rewards: Sequence[RewardConfig]) -> tuple[list[str], list[str]]:
    """Names of the correctness rewards and of the format rewards."""
    correct, fmt = [], []
    for r in rewards:
        rule = REWARDS.get(r.rule)
        if rule is not None and any(f in rule.needs for f in GROUND_TRUTH_FIELDS):
            correct.append(r.name)
        elif r.rule == "format":
            fmt.append(r.name)
    return correct, fmt


def _row_means(per_rule: Mapping[str, list[float]], names: Sequence[str], n: int) -> list[float] | None:
    """Per completion, the mean of the named rewards that apply to it (NaN: not routed)."""
    if not names:
        return None
    out = []
    for i in range(n):
        values = [per_rule[name][i] for name in names if not math.isnan(per_rule[name][i])]
        out.append(sum(values) / len(values) if values else math.nan)
    return out


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def _generate(model, tokenizer, prompts, k, temperature, top_p, max_tokens, seed, rows_per_batch=256, engine=None):
    texts, lengths, truncated = [], [], []
    per_batch = max(1, rows_per_batch // k)
    for i in range(0, len(prompts), per_batch):
        s = (engine.sample if engine is not None else partial(sample, model))(
            tokenizer,
            prompts[i : i + per_batch],
            num_samples=k,
            max_new_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            generator_seed=seed + i,
        )
        texts += s.texts
        lengths += s.completion_lengths
        truncated += s.truncated
    return texts, lengths, truncated


def run_eval(model, tokenizer, rows, template, rewards: Sequence[RewardConfig], sampling: Sampling | None,
             engine=None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics of one set, and one record per prompt (prompt, greedy completion, its rewards); `engine`: a vLLM
    engine holding the model's weights generates instead of the model itself."""
    sampling = sampling or Sampling()
    rows = list(rows)[: sampling.max_prompts] if sampling.max_prompts else list(rows)
    rewards = list(rewards or default_rewards(rows))
    correct_names, format_names = _split_rewards(rewards)
    prompts = [render_prompt(template, str(r["prompt"]), tokenizer) for r in rows]
    max_tokens, k = sampling.max_completion_tokens, sampling.samples_per_prompt
    n = len(rows)
    metrics: dict[str, float] = {"num_prompts": float(n)}
    if n == 0:
        return metrics, []

    # greedy: one completion per prompt
    texts, lengths, truncated = _generate(model, tokenizer, prompts, 1, 0.0, 1.0, max_tokens, sampling.seed, engine=engine)
    totals, per_rule = score(rewards, texts, rows, lengths)
    correct = _row_means(per_rule, correct_names, n)
    fmt = _row_means(per_rule, format_names, n)
    if correct is not None:
        metrics["accuracy"] = _mean(correct)
    if fmt is not None:
        metrics["format_rate"] = _mean(fmt)
    metrics["reward"] = _mean(totals)
    for name, values in per_rule.items():
        metrics[f"reward/{name}"] = _mean(values)
    metrics["mean_completion_tokens"] = sum(lengths) / n
    metrics["truncated_rate"] = sum(truncated) / n
    records = [
        {"prompt": r["prompt"], "completion": t, "answer": r.get("answer"), "reward": tot, **{f"reward/{k_}": v[i] for k_, v in per_rule.items()}}
        for i, (r, t, tot) in enumerate(zip(rows, texts, totals))
    ]

    # k samples per prompt at the stage's temperature: pass@1 (mean correctness) and cons@k (majority answer)
    if k > 1 and sampling.temperature > 0:
        texts_k, lengths_k, _ = _generate(
            model, tokenizer, prompts, k, sampling.temperature, sampling.top_p, max_tokens, sampling.seed + 1,
            engine=engine,
        )
        rows_k = [row for row in rows for _ in range(k)]
        _, per_rule_k = score(rewards, texts_k, rows_k, lengths_k)
        correct_k = _row_means(per_rule_k, correct_names, n * k)
        fmt_k = _row_means(per_rule_k, format_names, n * k)
        if correct_k is not None:
            metrics["pass@1"] = _mean(correct_k)
            metrics[f"cons@{k}"] = _majority_accuracy(texts_k, correct_k, k)
        if fmt_k is not None:
            metrics["format_rate_sampled"] = _mean(fmt_k)
        metrics["mean_completion_tokens_sampled"] = sum(lengths_k) / (n * k)
    return metrics, records


def evaluate(model, tokenizer, rows, template, rewards: Sequence[RewardConfig], sampling: Sampling | None) -> dict[str, float]:
    """Metrics of `model` on `rows` (see the module doc); `sampling` is a compiled `sampling` block or None."""
    from backends.trainer.fabric import unwrap

    return run_eval(unwrap(model), tokenizer, rows, template, rewards, sampling)[0]


def _majority_accuracy(texts: list[str], correct: list[float], k: int) -> float:
    """Per prompt, the correctness of a completion carrying the most frequent extracted answer."""
    from backends.rewards.extract import extract_answer

    hits = []
    for i in range(0, len(texts), k):
        answers = [extract_answer(t) for t in texts[i : i + k]]
        counted = Counter(a.strip() for a in answers if a is not None and a.strip())
        if not counted:
            hits.append(0.0)
            continue
        top = counted.most_common(1)[0][0]
        j = next(j for j, a in enumerate(answers) if a is not None and a.strip() == top)
        value = correct[i + j]
        hits.append(0.0 if math.isnan(value) else value)
    return sum(hits) / len(hits)


def evaluate_stage(run, model, tokenizer, datasets=None, engine=None) -> dict[str, float]:
    """Evaluate the stage's eval sets on rank 0; writes eval.json, eval_examples.jsonl and results.json.

    Returns the metrics (keys `<set>/<metric>` when there are several sets); other ranks return {}.
    """
    from backends.data.loading import load_rows
    from backends.trainer.results import atomic_write_json, atomic_write_text, update_results

    cfg = run.cfg.model
    datasets = list(cfg.data.eval) if datasets is None else list(datasets)
    if not datasets:
        return {}
    metrics: dict[str, float] = {}
    if run.is_main:
        plain = _evaluable(run, model)
        by_set: dict[str, dict[str, float]] = {}
        examples: list[dict[str, Any]] = []
        for dataset in datasets:
            rows = load_rows(dataset)
            set_metrics, records = run_eval(plain, tokenizer, rows, cfg.template, _rewards_for(cfg, dataset), cfg.sampling,
                                            engine=engine)
            by_set[str(dataset.name)] = set_metrics
            examples += [{"dataset": str(dataset.name), **r} for r in records]
            run.print(f"[{run.name}] eval {dataset.name}: " + ", ".join(f"{k}={v:.3f}" for k, v in set_metrics.items() if k != "num_prompts"))
        if len(by_set) == 1:
            metrics = dict(next(iter(by_set.values())))
        else:
            metrics = {f"{name}/{k}": v for name, m in by_set.items() for k, v in m.items()}
        atomic_write_json(run.exp_dir / "eval.json", by_set)
        atomic_write_text(run.exp_dir / "eval.md", markdown_table(by_set))
        with open(run.exp_dir / "eval_examples.jsonl", "w", encoding="utf-8") as f:
            for r in examples:
                f.write(json.dumps(r, default=str) + "\n")
        update_results(run.run_dir, run.name, metrics)
    run.fabric.barrier()
    return metrics


def _evaluable(run, model):
    """A module rank 0 can generate with alone: the model itself, or, when it is sharded over several ranks
    (its forward would wait for the others), the full model the stage has just exported to <stage>/model."""
    from backends.models import load_policy
    from backends.trainer.fabric import is_sharded, unwrap

    if is_sharded(run.fabric) and run.world_size > 1:
        exported = run.exp_dir / "model"
        if not (exported / "config.json").exists():
            raise RuntimeError(f"{exported}: a sharded model is evaluated from its export; save the model first")
        return load_policy(InitConfig(source="local", path=str(exported)), run.device, run.precision)[0].eval()
    return unwrap(model)


def markdown_table(by_set: Mapping[str, Mapping[str, float]]) -> str:
    """One row per eval set, one column per metric."""
    metrics = list(dict.fromkeys(k for m in by_set.values() for k in m))
    lines = ["| set | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, m in by_set.items():
        cells = [f"{m[k]:.4g}" if isinstance(m.get(k), float) else str(m.get(k, "-")) for k in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _rewards_for(cfg: ModelConfig, dataset: DatasetConfig) -> list[RewardConfig]:
    """The stage's rewards routed to this dataset (all of them unless the dataset names some)."""
    routed = dataset.rewards
    return [r for r in cfg.rewards if r.name in routed] if routed else list(cfg.rewards)


def run(cfg) -> dict[str, float]:
    """The `eval` stage: evaluate its model on its data (and eval sets) with its sampling settings."""
    from backends.models import load_policy
    from backends.trainer import StageRun

    from backends.vllm_engine import record_engine, stage_engine

    run = StageRun(cfg)
    model, tokenizer = load_policy(cfg.model.init, run.device)
    engine = stage_engine(run, cfg, model, tokenizer)
    datasets = [*cfg.model.data.train, *cfg.model.data.eval]
    metrics = evaluate_stage(run, model.eval(), tokenizer, datasets, engine=engine)
    record_engine(run, engine)
    run.finish(metrics)
    return metrics
