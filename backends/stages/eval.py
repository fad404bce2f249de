"""Evaluation as the paper reports it [V2 D.1]: pass@1, pass@k and cons@k over k samples, greedy beside them.

`evaluate(model, tokenizer, rows, template, rewards, sampling) -> dict` is the reusable core (`rewards`: compiled
`RewardConfig`s, `sampling`: an `ir.Sampling` or None for its defaults);
`evaluate_stage(run, model, tokenizer)` evaluates a stage's `model.data.eval` sets after training and
writes `<stage>/eval.json`, `<stage>/eval_examples.jsonl` and the stage's entry of `results.json`;
`run(cfg)` is the `eval` stage itself (its data are the sets to evaluate).

Which reward is "accuracy": every rule whose registration needs a ground truth (`answer` or `tests`);
"format rate" is the `format` rule. Metric keys are plain for one eval set and `<set>/<metric>` for several;
each metric `m` comes with `m_se`, its standard error over prompts (see `run_eval`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, Sequence

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


def standard_error(values: Sequence[float]) -> float:
    """The standard error of the mean of `values` (one per prompt): sample std (n - 1) / sqrt(n); NaN below 2."""
    values = [v for v in values if not math.isnan(v)]
    n = len(values)
    if n < 2:
        return math.nan
    m = sum(values) / n
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1) / n)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. (2021)'s unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _per_prompt(values: Sequence[float], k: int) -> list[float]:
    """Mean of each prompt's k values (NaN-free ones), in prompt order."""
    return [_mean(values[i : i + k]) for i in range(0, len(values), k)]


def _put(metrics: dict[str, float], name: str, per_prompt: Sequence[float]) -> None:
    """`name` = the mean over prompts and `name_se` its standard error over prompts."""
    metrics[name] = _mean(per_prompt)
    metrics[f"{name}_se"] = standard_error(per_prompt)
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
             engine=None, samples_per_prompt: int | None = None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics of one set, and one record per prompt (prompt, greedy completion, its rewards); `engine`: a vLLM
    engine holding the model's weights generates instead of the model itself; `samples_per_prompt`: the set's
    k (its `eval_samples_per_prompt`), else the sampling block's.

    Headline, over k samples per prompt at the sampling temperature and top-p [V2 D.1]: `pass@1` (mean
    correctness), `pass@k` (Chen et al.'s unbiased estimator, k > 1), `cons@k` (the majority answer's
    correctness, see `consensus`), `format_rate`, `reward`, lengths. Greedy decoding is reported beside them as
    `greedy_accuracy` and `greedy_format_rate` (temperature 0: the samples are the greedy completions, k = 1).
    Every metric `m` is a mean over prompts and comes with `m_se`, its standard error over prompts.
    """
    sampling = sampling or Sampling()
    rows = list(rows)[: sampling.max_prompts] if sampling.max_prompts else list(rows)
    rewards = list(rewards or default_rewards(rows))
    correct_names, format_names = _split_rewards(rewards)
    prompts = [render_prompt(template, str(r["prompt"]), tokenizer) for r in rows]
    max_tokens = sampling.max_completion_tokens
    sampled = sampling.temperature > 0
    k = (samples_per_prompt or sampling.samples_per_prompt) if sampled else 1
    n = len(rows)
    metrics: dict[str, float] = {"num_prompts": float(n), "samples_per_prompt": float(k)}
    if n == 0:
        return metrics, []

    # greedy: one completion per prompt, reported as greedy_* (and the records)
    texts, lengths, truncated = _generate(model, tokenizer, prompts, 1, 0.0, 1.0, max_tokens, sampling.seed, engine=engine)
    totals, per_rule = score(rewards, texts, rows, lengths)
    correct = _row_means(per_rule, correct_names, n)
    fmt = _row_means(per_rule, format_names, n)
    if correct is not None:
        _put(metrics, "greedy_accuracy", correct)
    if fmt is not None:
        _put(metrics, "greedy_format_rate", fmt)
    records = [
        {"prompt": r["prompt"], "completion": t, "answer": r.get("answer"), "reward": tot, **{f"reward/{k_}": v[i] for k_, v in per_rule.items()}}
        for i, (r, t, tot) in enumerate(zip(rows, texts, totals))
    ]

    # k samples per prompt at the stage's temperature: the headline metrics
    if sampled:
        texts_k, lengths_k, truncated_k = _generate(
            model, tokenizer, prompts, k, sampling.temperature, sampling.top_p, max_tokens, sampling.seed + 1,
            engine=engine,
        )
        rows_k = [row for row in rows for _ in range(k)]
        totals_k, per_rule_k = score(rewards, texts_k, rows_k, lengths_k)
    else:
        texts_k, lengths_k, truncated_k, totals_k, per_rule_k = texts, lengths, truncated, totals, per_rule
    correct_k = _row_means(per_rule_k, correct_names, n * k)
    fmt_k = _row_means(per_rule_k, format_names, n * k)
    if correct_k is not None:
        _put(metrics, "pass@1", _per_prompt(correct_k, k))
        if k > 1:
            solved = [[v >= 1.0 for v in correct_k[i : i + k] if not math.isnan(v)] for i in range(0, n * k, k)]
            _put(metrics, f"pass@{k}", [pass_at_k(len(s), sum(s), k) if len(s) == k else math.nan for s in solved])
            voter = next((r for r in rewards if r.name in correct_names and r.rule in VOTERS), None)
            if voter is not None:
                _put(metrics, f"cons@{k}", consensus(texts_k, per_rule_k[voter.name], voter, k))
    if fmt_k is not None:
        _put(metrics, "format_rate", _per_prompt(fmt_k, k))
    _put(metrics, "reward", _per_prompt(totals_k, k))
    for name, values in per_rule_k.items():
        _put(metrics, f"reward/{name}", _per_prompt(values, k))
    _put(metrics, "mean_completion_tokens", _per_prompt([float(t) for t in lengths_k], k))
    _put(metrics, "truncated_rate", _per_prompt([float(t) for t in truncated_k], k))
    return metrics, records


def evaluate(model, tokenizer, rows, template, rewards: Sequence[RewardConfig], sampling: Sampling | None) -> dict[str, float]:
    """Metrics of `model` on `rows` (see the module doc); `sampling` is a compiled `sampling` block or None."""
    from backends.trainer.fabric import unwrap

    return run_eval(unwrap(model), tokenizer, rows, template, rewards, sampling)[0]


# ---------------------------------------------------------------- majority vote (cons@k)


@dataclass(frozen=True)
class Voter:
    """How a correctness rule's answers vote: its extractor and its equivalence, both from the rule's own module."""

    answer: Callable[[str, Mapping[str, Any]], str | None]  # (completion, rule params) -> the answer, or None
    same: Callable[[str, str, Mapping[str, Any]], bool]  # (answer, answer, rule params) -> one vote?


def _math_answer(completion: str, params: Mapping[str, Any]) -> str | None:
    from backends.rewards.extract import extract_answer

    got = extract_answer(completion, params["extract"], params["answer_tag"])
    got = got.strip() if got is not None else None
    return got if got and len(got) <= params["max_answer_chars"] else None


def _math_same(a: str, b: str, params: Mapping[str, Any]) -> bool:
    from backends.rewards.equivalence import equivalent  # cached: a pair asked twice is decided once

    return equivalent(a, b, params["timeout_s"], params["max_answer_chars"], params["use_sympy"])


# correctness rules whose answers can be voted on (code has no single answer to vote on)
VOTERS: dict[str, Voter] = {"math_accuracy": Voter(_math_answer, _math_same)}


def majority(answers: Sequence[str | None], same: Callable[[str, str], bool]) -> int | None:
    """Index of the answer the most samples agree with (None: no sample has an answer).

    Answers are grouped by `same` (mathematical equivalence): identical strings first, then each new distinct
    string is compared with the first answer of each group so far, so at most d^2 / 2 calls for d distinct
    answers (d <= k). Ties go to the group whose first answer came first (lowest sample index). The returned
    index is that first answer's, the completion whose correctness is the vote's.
    """
    groups: list[list[int]] = []  # sample indices, the first one the group's representative
    by_text: dict[str, int] = {}  # answer string -> its group
    for i, a in enumerate(answers):
        if a is None:
            continue
        g = by_text.get(a)
        if g is None:
            g = next((j for j, grp in enumerate(groups) if same(answers[grp[0]], a)), None)  # type: ignore[arg-type]
            if g is None:
                g = len(groups)
                groups.append([])
            by_text[a] = g
        groups[g].append(i)
    if not groups:
        return None
    best = max(range(len(groups)), key=lambda j: (len(groups[j]), -groups[j][0]))
    return groups[best][0]


def consensus(texts: Sequence[str], correct: Sequence[float], reward: RewardConfig, k: int) -> list[float]:
    """Per prompt (k consecutive completions), the correctness of the majority answer: `reward`'s extractor picks
    each completion's answer, its equivalence groups them (`majority`), and the vote scores what `reward` gave
    the winning answer's first completion (that answer against the gold). No answer at all: 0; not routed: NaN."""
    voter = VOTERS[reward.rule]
    params = {**REWARDS[reward.rule].defaults(), **reward.params}
    out = []
    for i in range(0, len(texts), k):
        j = majority([voter.answer(t, params) for t in texts[i : i + k]], lambda a, b: voter.same(a, b, params))
        value = 0.0 if j is None else correct[i + j]
        out.append(math.nan if all(math.isnan(v) for v in correct[i : i + k]) else (0.0 if math.isnan(value) else value))
    return out


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
                                            engine=engine, samples_per_prompt=dataset.eval_samples_per_prompt)
            by_set[str(dataset.name)] = set_metrics
            examples += [{"dataset": str(dataset.name), **r} for r in records]
            run.print(f"[{run.name}] eval {dataset.name}: " + ", ".join(
                f"{k}={v:.3f}" + (f"±{set_metrics[k + '_se']:.3f}" if f"{k}_se" in set_metrics else "")
                for k, v in set_metrics.items() if k != "num_prompts" and not k.endswith("_se")))
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
