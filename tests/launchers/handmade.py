"""Small `Pipeline` objects built by hand from IR dataclasses, the way the compiler builds them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable

from r1dsl import compiler
from r1dsl.ir import (
    GRPO,
    Dataset,
    Model,
    Optim,
    Pipeline,
    Recipe,
    RejectionFilters,
    Resources,
    Reward,
    Sampling,
    Stage,
    StageJob,
    Template,
    TinyModelConfig,
    Train,
)
from r1dsl.kinds import KINDS

R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags. "
    "User: {prompt}. Assistant:"
)

ACCURACY = Reward("accuracy", "math_accuracy", 1.0, {"extract": "answer_tag"})
FORMAT = Reward("format", "format", 1.0)


def stage_config(stage: Stage, recipe: Recipe, run_dir: Path) -> dict:
    """The stage's config as the compiler writes it (a distill stage as the sft job the checker lowers it to)."""
    lowered = replace(stage, kind=KINDS[stage.kind].lowered_to or stage.kind)
    return compiler.stage_config(recipe, lowered, Path(run_dir))


def make_recipe(stages: Iterable[Stage], name: str = "tiny_r1_zero", extra_models: Iterable[Model] = ()) -> Recipe:
    models = {
        "tiny": Model("tiny", "tiny", tiny=TinyModelConfig()),
        "qwen_1_5b": Model("qwen_1_5b", "hf", path="Qwen/Qwen2.5-Math-1.5B"),
        "qwen_7b": Model("qwen_7b", "hf", path="Qwen/Qwen2.5-Math-7B"),
        "llama_8b": Model("llama_8b", "hf", path="meta-llama/Llama-3.1-8B"),
    }
    models.update({m.name: m for m in extra_models})
    datasets = {
        "corpus": Dataset("corpus", "generator", generator="corpus", size=2000, provides=("text",)),
        "arith": Dataset("arith", "generator", generator="arithmetic", size=400, provides=("prompt", "answer")),
        "arith_test": Dataset("arith_test", "generator", generator="arithmetic", size=50, seed=99, provides=("prompt", "answer")),
        "gsm": Dataset("gsm", "jsonl", path="/data/gsm8k.jsonl", fields={"prompt": "question", "answer": "answer"},
                       provides=("prompt", "answer")),
        "rs": Dataset("rs", "stage", path="rs", provides=("prompt", "response")),
    }
    return Recipe(
        name=name,
        file=f"{name}.r1",
        models=models,
        datasets=datasets,
        templates={"r1_zero": Template("r1_zero", R1_ZERO_TEMPLATE)},
        rewards={"accuracy": ACCURACY, "format": FORMAT},
        stages=tuple(stages),
    )


def make_pipeline(recipe: Recipe, run_dir: Path, target: str = "slurm") -> Pipeline:
    run_dir = Path(run_dir).resolve()
    jobs = tuple(
        StageJob(stage=s, config=stage_config(s, recipe, run_dir), dir=str(run_dir / s.name), config_hash="0" * 16)
        for s in recipe.stages
    )
    return Pipeline(recipe=recipe, run_dir=str(run_dir), target=target, jobs=jobs)


def grpo_stage(name: str = "zero", init: str = "qwen_1_5b", init_is_stage: bool = False, **resources) -> Stage:
    return Stage(
        name=name,
        kind="grpo",
        init=init,
        init_is_stage=init_is_stage,
        data=("arith",),
        template="r1_zero",
        rewards=(ACCURACY, FORMAT),
        optim=Optim(lr=3e-6),
        grpo=GRPO(num_generations_per_prompt=16, num_prompts_per_step=32, micro_batch_size=4, steps=100,
                  kl_penalty=0.001, max_prompt_tokens=256, max_completion_tokens=1024),
        resources=Resources(**{"nodes": 1, "gpus_per_node": 8, **resources}),
        eval_data=("arith_test",),
        after=(init,) if init_is_stage else (),
    )


def two_stage_cpu(run_dir: Path, **resources) -> Pipeline:
    """pretrain `base` then grpo `zero` from it: the smallest dependent pair."""
    res = Resources(**{"gpus_per_node": 0, "cpu_processes": 1, "time_limit_min": 5, **resources})
    base = Stage("base", "pretrain", "tiny", False, ("corpus",), train=Train(steps=5), resources=res)
    zero = replace(grpo_stage("zero", "base", True), resources=res)
    return make_pipeline(make_recipe([base, zero]), run_dir)


def r1_like(run_dir: Path, target: str = "nemo-rl") -> Pipeline:
    """grpo -> rejection_sample -> distill (two students) -> eval, on hub models."""
    gpu = Resources(nodes=2, gpus_per_node=8, tensor_parallel=2, time_limit_min=600)
    zero = grpo_stage("zero", "qwen_7b", False, nodes=2, tensor_parallel=2)
    rs = Stage("rs", "rejection_sample", "zero", True, ("arith",), template="r1_zero", rewards=(ACCURACY, FORMAT),
               sampling=Sampling(samples_per_prompt=4, temperature=1.0), filters=RejectionFilters(),
               resources=gpu, after=("zero",))
    students = [
        Stage(f"students_{m}", "distill", m, False, ("rs",), optim=Optim(lr=lr),
              train=Train(steps=200, epochs=2, batch_size=64, micro_batch_size=1, max_seq_len=4096),
              resources=gpu, after=("rs",), student_of="students")
        for m, lr in (("qwen_1_5b", 1e-4), ("llama_8b", 5e-5))
    ]
    final = Stage("final_eval", "eval", "students_qwen_1_5b", True, ("arith_test",), template="r1_zero",
                  rewards=(ACCURACY,), sampling=Sampling(), resources=gpu, after=("students_qwen_1_5b",))
    return make_pipeline(make_recipe([zero, rs, *students, final], name="r1_like"), run_dir, target)
