"""Checked IR -> Pipeline of StageJobs -> run folder (config.yaml per stage, manifest.json).

The compiled config of a stage (docs/design.md, "The compiled stage config") is the single source of
truth of its runner: everything is resolved here (absolute paths, routing, defaults), so a backend
never re-reads the recipe. Launch scripts are the target's business (r1dsl/local.py, backends/launchers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from r1dsl import hub, ir
from r1dsl.config import (
    CheckpointConfig,
    DataConfig,
    DatasetConfig,
    ExpManagerConfig,
    InitConfig,
    ModelConfig,
    RewardConfig,
    StageConfig,
    TrainerConfig,
    plain,
)
from r1dsl.kinds import KINDS

ROOT = Path(__file__).resolve().parent.parent  # the project: r1dsl/, backends/, templates/


def compile_recipe(recipe: ir.Recipe, run_dir: str | os.PathLike | None = None, target: str = "local") -> ir.Pipeline:
    """One StageJob per stage, in run order; `run_dir` defaults to runs/<recipe name>."""
    run = Path(run_dir if run_dir is not None else Path("runs") / recipe.name).resolve()
    code = code_version()
    jobs: list[ir.StageJob] = []
    hashes: dict[str, str] = {}
    for stage in recipe.stages:
        config = stage_config(recipe, stage, run)
        inputs = _inputs(recipe, stage, run)
        digest = hashlib.sha256()
        digest.update(json.dumps(config, sort_keys=True, default=str).encode())
        for dep in stage.after:
            digest.update(hashes.get(dep, dep).encode())
        for path in inputs:
            digest.update(_input_fingerprint(path).encode())
        digest.update(code.encode())
        hashes[stage.name] = digest.hexdigest()
        jobs.append(ir.StageJob(stage, config, str(run / stage.name), hashes[stage.name]))
    return ir.Pipeline(recipe, str(run), target, tuple(jobs))


# ---------------------------------------------------------------- what a target can run

# Parallelism beyond data parallel (DDP or FSDP) that each target implements. The checker does not know the
# target: compile refuses model parallel for SLURM (its sbatch would run r1dsl's data-parallel trainer, every
# rank loading the whole model), and the local target's preflight refuses to --run it (r1dsl/preflight.py).
MODEL_PARALLEL_TARGETS = {"nemo-rl": ("tensor_parallel", "pipeline_parallel")}


def model_parallel_misfits(stages, target: str) -> list[tuple[ir.Stage, str, int]]:
    """(stage, setting, size) for each tensor/pipeline parallel size above 1 of `stages` that `target` cannot run."""
    able = MODEL_PARALLEL_TARGETS.get(target, ())
    return [(stage, key, getattr(stage.resources, key)) for stage in stages
            for key in ("tensor_parallel", "pipeline_parallel") if getattr(stage.resources, key) > 1 and key not in able]


def target_errors(recipe: ir.Recipe, target: str):
    """E010 diagnostics for model parallel on a target that trains data-parallel only."""
    from r1dsl.diagnostics import Diagnostic

    return [
        Diagnostic(
            "E010", f"stage `{stage.name}`: resources.{key} = {size} cannot run on the {target} target, which trains "
            "data-parallel only (DDP, or FSDP with sharding = \"fsdp\"): every rank would load the whole model",
            stage.span,
            help=f"compile with `--target nemo-rl` (DTensor/Megatron {key.replace('_', ' ')}), or set {key} = 1 and "
                 "shard with `resources { sharding = \"fsdp\" }`",
        )
        for stage, key, size in model_parallel_misfits(recipe.stages, target)
    ]


# ---------------------------------------------------------------- one stage's config


def stage_config(recipe: ir.Recipe, stage: ir.Stage, run: Path) -> dict[str, Any]:
    """The stage's config.yaml as plain data (`typed_config` written out)."""
    return typed_config(recipe, stage, run).to_dict()


def typed_config(recipe: ir.Recipe, stage: ir.Stage, run: Path) -> StageConfig:
    """The typed stage config (r1dsl/config.py): the IR sections as they are, plus what is resolved here."""
    res = stage.resources
    gpu = res.gpus_per_node > 0
    exp_dir = run / stage.name
    row = KINDS[stage.kind]
    if row.steps_section is not None:
        steps = getattr(stage, row.steps_section)
        max_steps, seed, every = steps.steps, steps.seed, steps.checkpoint_every
    else:
        max_steps, seed, every = None, (stage.sampling.seed if stage.sampling else 0), stage.train.checkpoint_every
    train_sets = [] if row.data_is_eval else list(stage.data)
    return StageConfig(
        name=stage.name,
        kind=stage.kind,
        recipe=recipe.name,
        student_of=stage.student_of,
        trainer=TrainerConfig(
            accelerator="gpu" if gpu else "cpu",
            devices=res.processes_per_node,
            num_nodes=res.nodes,
            strategy="fsdp" if res.sharding == "fsdp" else ("ddp" if res.world_size > 1 else "auto"),
            precision=training_precision(res),
            max_steps=max_steps,
            seed=seed,
        ),
        model=ModelConfig(
            init=_init(recipe, stage, run),
            template=recipe.templates[stage.template].text if stage.template else None,
            data=DataConfig(
                train=tuple(_dataset(recipe, name, run, stage, row.scores_data) for name in train_sets),
                eval=tuple(_dataset(recipe, name, run, stage, True) for name in stage.eval_data),
            ),
            rewards=tuple(RewardConfig(r.name, r.rule, r.weight, _reward_params(recipe, r, run)) for r in stage.rewards),
            optim=stage.optim,
            train=stage.train,
            grpo=stage.grpo if "grpo" in row.sections else None,
            sampling=stage.sampling,
            filters=stage.filters,
            rollout=stage.rollout,
        ),
        resources=res,
        exp_manager=ExpManagerConfig(
            run_dir=str(run),
            exp_dir=str(exp_dir),
            name=stage.name,
            resume_if_exists=True,
            create_tensorboard_logger=True,
            create_csv_logger=True,
            checkpoint_callback_params=CheckpointConfig(str(exp_dir / "checkpoints"), every, True),
        ),
    )


def training_precision(res: ir.Resources) -> str:
    """resources.precision with `auto` resolved: bf16-mixed on GPU, 32-true on CPU."""
    if res.precision != "auto":
        return res.precision
    return "bf16-mixed" if res.gpus_per_node > 0 else "32-true"


def _init(recipe: ir.Recipe, stage: ir.Stage, run: Path) -> InitConfig:
    if stage.init_is_stage:
        return InitConfig("stage", str(run / stage.init / "model"), None, stage.init)
    model = recipe.models[stage.init]
    return InitConfig(model.source, model.path, model.tiny, model.name)


def _dataset(recipe: ir.Recipe, name: str, run: Path, stage: ir.Stage, scored: bool) -> DatasetConfig:
    ds = recipe.datasets[name]
    path = str(run / ds.path / "data.jsonl") if ds.source == "stage" else ds.path
    rewards = [r.name for r in stage.rewards if not r.datasets or name in r.datasets] if scored else []
    return DatasetConfig(ds.name, ds.source, ds.generator, path, ds.split, ds.size, ds.seed, dict(ds.fields),
                         _plain(ds.params), tuple(ds.provides), tuple(rewards), ds.eval_samples_per_prompt,
                         stage.data_from_step.get(name, 0))


def _reward_params(recipe: ir.Recipe, reward: ir.Reward, run: Path) -> dict[str, Any]:
    """A reward's parameters, with a model reference replaced by where it loads from."""

    def where(value: Any) -> Any:
        if isinstance(value, ir.StageModel):
            return str(run / value.stage / "model")
        if isinstance(value, ir.ModelRef):
            model = recipe.models[value.model]
            if model.source == "tiny":  # built where it is used, like a stage's tiny starting point
                return {"source": "tiny", "path": None, "tiny": _plain(model.tiny), "name": model.name}
            return model.path or model.name
        return _plain(value)

    return {k: where(v) for k, v in reward.params.items()}


_plain = plain  # dataclasses, mappings and tuples as plain dicts and lists (what YAML and JSON take)


# ---------------------------------------------------------------- inputs, outputs, hashes


def _inputs(recipe: ir.Recipe, stage: ir.Stage, run: Path) -> list[str]:
    out = [_init(recipe, stage, run).path or f"tiny:{stage.init}"]
    if not stage.init_is_stage and recipe.models[stage.init].source == "hf":
        out[0] = f"hf:{recipe.models[stage.init].path}"
    for name in list(stage.data) + [d for d in stage.eval_data if d not in stage.data]:
        ds = recipe.datasets[name]
        if ds.source == "stage":
            out.append(str(run / ds.path / "data.jsonl"))
        elif ds.source == "generator":
            out.append(f"generator:{ds.generator}")
        elif ds.source == "hf":
            out.append(f"hf:{ds.path}")
        else:
            out.append(ds.path)
    return out


def outputs(job: ir.StageJob) -> list[str]:
    d = Path(job.dir)
    row = KINDS[job.stage.kind]
    files = []
    if row.saves_model:
        files.append(d / "model")
    if row.produces == "data":
        files += [d / "data.jsonl", d / "data_summary.json"]
    if job.stage.eval_data:
        files.append(d / "eval.json")
    files.append(d / "DONE")
    return [str(f) for f in files]


def _input_fingerprint(path: str) -> str:
    """A file's content hash (size and mtime above 64 MiB); other inputs (hub ids, generators) by name."""
    p = Path(path)
    try:
        if p.is_file():
            stat = p.stat()
            if stat.st_size > 64 << 20:
                return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
            return hashlib.sha256(p.read_bytes()).hexdigest()
    except OSError:
        pass
    return path


def code_version() -> str:
    """A hash of the code that runs a stage (r1dsl, backends, templates): a change re-keys every stage."""
    digest = hashlib.sha256()
    for folder in ("r1dsl", "backends", "templates"):
        base = ROOT / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix in (".py", ".lark", ".j2") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- the run folder


def manifest(pipeline: ir.Pipeline) -> dict[str, Any]:
    return {
        "recipe": pipeline.recipe.name,
        "file": os.path.abspath(pipeline.recipe.file),
        "target": pipeline.target,
        "run_dir": pipeline.run_dir,
        "code_version": code_version(),
        "order": [job.stage.name for job in pipeline.jobs],
        # the commit of each hub model and dataset in the local cache (`r1dsl fetch` puts them there; None: not yet)
        "hub": hub.pins(pipeline.recipe),
        "stages": [
            {
                "name": job.stage.name,
                "kind": job.stage.kind,
                "after": list(job.stage.after),
                "student_of": job.stage.student_of,
                "dir": job.dir,
                "config": str(Path(job.dir) / "config.yaml"),
                "inputs": _inputs(pipeline.recipe, job.stage, Path(pipeline.run_dir)),
                "outputs": outputs(job),
                "config_hash": job.config_hash,
            }
            for job in pipeline.jobs
        ],
    }


def config_yaml(config: Any) -> str:
    """A stage config as OmegaConf YAML. Recipe text is data, never an interpolation: every `${` in a string
    is escaped (`\\${`, with the backslashes before it doubled), so a template or path holding `${x}` loads back
    as written when the stage runner resolves its config."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(_literal(_plain(config))))


def _literal(value: Any) -> Any:
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: "\\" * (2 * len(m.group(1)) + 1) + "${", value) if "${" in value else value
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v) for v in value]
    return value


_INTERPOLATION = re.compile(r"(\\*)\$\{")


def write_run_folder(pipeline: ir.Pipeline) -> list[Path]:
    """config.yaml of every stage and manifest.json; returns the files written."""
    written = []
    run = Path(pipeline.run_dir)
    for job in pipeline.jobs:
        folder = Path(job.dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "config.yaml"
        _write(path, config_yaml(dict(job.config)))
        written.append(path)
    path = run / "manifest.json"
    _write(path, json.dumps(manifest(pipeline), indent=2) + "\n")
    written.append(path)
    return written


def _write(path: Path, text: str, mode: int | None = None) -> None:
    """Write through a temp file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    if mode is not None:
        tmp.chmod(mode)
    os.replace(tmp, path)
