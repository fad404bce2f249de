"""Smoke mode: the same stage graph with tiny stand-ins, so CI can afford to run any recipe end to end.

`smoke(recipe)` keeps every stage, edge, reward and route, and replaces what costs money:
  - every model by a micro transformers config of the same family (llama or qwen2), built locally;
  - every file or hub dataset by a synthetic generator that provides the same fields, a few rows each;
  - every stage's length by a few steps, short completions and small batches on one CPU process;
  - rejection filters by pass-through ones (an untrained stand-in is never correct), so data still flows.
What it checks is the pipeline's shape and data flow, not learning.
"""

from __future__ import annotations

from dataclasses import replace

from r1dsl import ir

ROWS = 16  # rows of every stand-in dataset
MICRO = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=320, max_position_embeddings=512)


def stand_in_model(model: ir.Model) -> ir.Model:
    family = "llama" if "llama" in f"{model.name} {model.path or ''} {model.tiny.arch if model.tiny else ''}".lower() else "qwen2"
    return replace(model, source="tiny", path=None, tiny=ir.TinyModelConfig(arch=family, **MICRO))


def stand_in_generator(provides: tuple[str, ...]) -> str:
    """The shipped generator whose rows carry the fields a dataset provides."""
    fields = set(provides)
    if "text" in fields:
        return "corpus"
    if {"chosen", "rejected"} <= fields:
        return "preference_pairs"
    if "tests" in fields:
        return "code"
    if "answer" in fields:
        return "arithmetic_cot" if "response" in fields else "arithmetic"
    return "chat"


def stand_in_dataset(ds: ir.Dataset) -> ir.Dataset:
    # k samples per prompt when evaluated: at most the stage's smoke sampling (2), so pass@k and cons@k still run
    k = min(ds.eval_samples_per_prompt, 2) if ds.eval_samples_per_prompt else ds.eval_samples_per_prompt
    if ds.source == "stage":
        return replace(ds, eval_samples_per_prompt=k)
    if ds.source == "generator":
        return replace(ds, size=min(ds.size or ROWS, ROWS), eval_samples_per_prompt=k)
    generator = stand_in_generator(ds.provides)
    return replace(ds, source="generator", generator=generator, path=None, split="train", size=ROWS, fields={}, params={},
                   eval_samples_per_prompt=k)


def smoke_grpo(g: ir.GRPO) -> ir.GRPO:
    """Two rollouts of 2 prompts x 2; a split rollout stays split (one group per optimizer step)."""
    small = replace(g, num_generations_per_prompt=2, num_prompts_per_step=2, micro_batch_size=4, steps=2,
                    train_global_batch_size=2 if g.train_global_batch_size else None, max_prompt_tokens=384,
                    max_completion_tokens=8, reference_refresh_steps=None, checkpoint_every=1)
    return replace(small, steps=2 * small.updates_per_rollout, micro_batch_size=2 if g.train_global_batch_size else 4)


def stand_in_stage(stage: ir.Stage) -> ir.Stage:
    return replace(
        stage,
        train=replace(stage.train, steps=2, epochs=None, batch_size=4, micro_batch_size=4, max_seq_len=128, checkpoint_every=1),
        optim=replace(stage.optim, warmup_steps=0),
        grpo=smoke_grpo(stage.grpo) if stage.grpo else None,
        sampling=replace(stage.sampling, samples_per_prompt=2, max_completion_tokens=8, max_prompts=4) if stage.sampling else None,
        filters=ir.RejectionFilters(finished=False, correct=False, format=False, language=None, judge=None,
                                    dedup=False, keep_per_prompt=None) if stage.filters else None,
        resources=ir.Resources(),
        data_from_step={ds: min(step, 1) for ds, step in stage.data_from_step.items()},  # step 1 of 2: both phases run
    )


def smoke(recipe: ir.Recipe) -> ir.Recipe:
    return replace(
        recipe,
        models={name: stand_in_model(m) for name, m in recipe.models.items()},
        datasets={name: stand_in_dataset(d) for name, d in recipe.datasets.items()},
        stages=tuple(stand_in_stage(s) for s in recipe.stages),
    )
