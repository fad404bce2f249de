"""The NeMo-RL target: NeMo-RL v0.7.0 configs for grpo and sft (distill) stages, our backend for the rest.

For each grpo/sft stage, the config starts from a faithful copy of NeMo-RL's own example config
(`templates/nemo_rl/grpo_math_1B.yaml`, `sft.yaml`, Apache-2.0) and overrides only the keys a
recipe maps onto, so every key and type is NeMo-RL's. Written into the run folder:

    <run_dir>/submit.sh                  submits every stage with afterok on its inputs (as --target slurm)
    <run_dir>/<stage>/nemo_rl.yaml       grpo, sft, distill students: the NeMo-RL config
    <run_dir>/<stage>/prompt.txt         the recipe template in NeMo-RL's prompt-file format
    <run_dir>/<stage>/train.jsonl ...    generated datasets written out for NeMo-RL's ResponseDataset
    <run_dir>/<stage>/nemo_rl_run.sh     entry point, then DCP -> Hugging Face into <stage>/model
    <run_dir>/<stage>/job.sbatch         other kinds (pretrain, rejection_sample, eval): our backend

NeMo-RL stages are submitted through NeMo-RL's `ray.sub` (`sbatch --nodes=cluster.num_nodes`,
COMMAND/CONTAINER/MOUNTS in the environment). NeMo-RL lives in $NEMO_RL_DIR at compile time
(default /opt/nemo-rl, where the NeMo-RL container has it); the image is the stage's
`resources.container_image` or $NEMO_RL_CONTAINER. Recipe features NeMo-RL cannot express are
listed by `unsupported(pipeline)`; the compiler prints them as warnings. Torch-free.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.launchers import slurm
from r1dsl.ir import Dataset, Pipeline, StageJob
from r1dsl.render import TEMPLATES_DIR, render, shell_quote

NEMO_RL_VERSION = "v0.7.0"
REFERENCE_DIR = TEMPLATES_DIR / "nemo_rl"
REFERENCE_CONFIGS = {"grpo": "grpo_math_1B.yaml", "sft": "sft.yaml", "distillation": "distillation_math.yaml"}
ENTRY_POINTS = {"grpo": "examples/run_grpo_math.py", "sft": "examples/run_sft.py"}
NEMO_KINDS = {"grpo": "grpo", "sft": "sft", "distill": "sft"}  # recipe kind -> NeMo-RL algorithm

# Keys that NeMo-RL documents in the reference configs' comments (the ResponseDataset example under
# `data:`) rather than as live keys; emitted configs may use these in addition to the key tree.
DOCUMENTED_DATA_KEYS = {
    "train": {"dataset_name": str, "data_path": str, "input_key": str, "output_key": str, "split": str},
    "validation": {"dataset_name": str, "data_path": str, "input_key": str, "output_key": str, "split": str},
    "default": {"dataset_name": str, "input_key": str, "output_key": str, "prompt_file": str,
                "system_prompt_file": type(None), "processor": str, "env_name": str},
}
# The math environment scores a boxed/extracted answer against the reference: our math_accuracy.
MATH_RULES = {"math_accuracy"}
# A plain concatenation for SFT: the prompt file already holds the recipe's template.
PASSTHROUGH_CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"


def nemo_rl_dir() -> str:
    return os.environ.get("NEMO_RL_DIR", "/opt/nemo-rl")


def reference_config(name: str) -> dict[str, Any]:
    """A NeMo-RL example config as plain data, interpolations (`${...}`) kept as strings."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(REFERENCE_DIR / REFERENCE_CONFIGS[name]), resolve=False)


@dataclass
class Translation:
    """One stage in NeMo-RL terms: its config, the files it needs, and what did not carry over."""

    algorithm: str  # grpo | sft
    config: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # file name in the stage folder -> content
    warnings: list[str] = field(default_factory=list)


def runs_on_nemo_rl(job: StageJob) -> bool:
    return job.stage.kind in NEMO_KINDS


# ---------------------------------------------------------------- recipe -> NeMo-RL keys


def model_name(job: StageJob, pipeline: Pipeline, warn: list[str]) -> str:
    """policy.model_name: a hub id, a local directory, or the Hugging Face model of an earlier stage."""
    stage = job.stage
    if stage.init_is_stage:
        return str(Path(pipeline.run_dir) / stage.init / "model")
    model = pipeline.recipe.models[stage.init]
    if model.source in ("hf", "local") and model.path:
        return model.path
    warn.append(
        f"stage `{stage.name}`: model `{model.name}` is built from a config (tiny); NeMo-RL loads Hugging Face "
        "models only: start from a pretrain stage (our backend saves <stage>/model) or use `hf =`/`path =`"
    )
    return model.name


def prompt_file_text(template: str) -> str:
    """The recipe template (`{prompt}`) as a NeMo-RL prompt file (a Python format string with `{}`)."""
    return template.replace("{", "{{").replace("}", "}}").replace("{{prompt}}", "{}")


def dataset_block(ds: Dataset, job: StageJob, pipeline: Pipeline, role: str, output_key: str,
                  tr: Translation) -> dict[str, Any]:
    """One `data.train` / `data.validation` entry (NeMo-RL's ResponseDataset) for a recipe dataset."""
    fields = dict(ds.fields)
    block: dict[str, Any] = {"dataset_name": "ResponseDataset", "input_key": fields.get("prompt", "prompt"),
                             "output_key": fields.get(output_key, output_key)}
    if ds.source == "stage":
        block["data_path"] = str(Path(pipeline.run_dir) / (ds.path or ds.name) / "data.jsonl")
        block["input_key"], block["output_key"] = "prompt", output_key
    elif ds.source in ("jsonl", "parquet"):
        block["data_path"] = str(ds.path)
        if ds.source == "parquet":
            tr.warnings.append(f"stage `{job.stage.name}`: dataset `{ds.name}` is parquet; NeMo-RL's "
                               "ResponseDataset reads JSON lines: convert it or use the jsonl form")
    elif ds.source == "hf":
        block["data_path"] = str(ds.path)
        block["split"] = ds.split
    elif ds.source == "generator":
        from backends.data.generators import GENERATORS
        import backends.data  # noqa: F401  (registers the built-in generators)

        rows = GENERATORS[ds.generator].fn(ds.size or 1000, ds.seed, **dict(ds.params))
        file_name = f"{role}_{ds.name}.jsonl"
        tr.files[file_name] = "".join(json.dumps(r) + "\n" for r in rows)
        block["data_path"] = str(Path(job.dir) / file_name)
        block["input_key"], block["output_key"] = "prompt", output_key
    if ds.source in ("jsonl", "hf") and ds.size:
        tr.warnings.append(f"stage `{job.stage.name}`: dataset `{ds.name}` takes {ds.size} rows in the recipe; "
                           "NeMo-RL reads the whole file")
    return block


def data_blocks(job: StageJob, pipeline: Pipeline, cfg: dict[str, Any], output_key: str, tr: Translation) -> None:
    stage, datasets = job.stage, pipeline.recipe.datasets
    train = [dataset_block(datasets[n], job, pipeline, "train", output_key, tr) for n in stage.data]
    cfg["data"]["train"] = train[0] if len(train) == 1 else train
    if stage.eval_data and stage.kind == "grpo":
        cfg["data"]["validation"] = dataset_block(datasets[stage.eval_data[0]], job, pipeline, "validation",
                                                  output_key, tr)
        if len(stage.eval_data) > 1:
            tr.warnings.append(f"stage `{stage.name}`: NeMo-RL validates on one dataset; only "
                               f"`{stage.eval_data[0]}` of {list(stage.eval_data)} is evaluated")
    else:
        cfg["data"]["validation"] = None
        if stage.eval_data:
            tr.warnings.append(f"stage `{stage.name}`: eval sets after SFT ({list(stage.eval_data)}) have no NeMo-RL "
                               "equivalent (its SFT validates loss only): add an eval stage, which runs on our backend")
    if stage.template:
        tr.files["prompt.txt"] = prompt_file_text(pipeline.recipe.templates[stage.template].text)
        cfg["data"]["default"]["prompt_file"] = str(Path(job.dir) / "prompt.txt")
    else:
        cfg["data"]["default"]["prompt_file"] = None


def optimizer_keys(job: StageJob, policy: dict[str, Any], total_steps: int) -> None:
    """AdamW lr/weight decay, clipping and the warm-up + decay schedule as NeMo-RL's scheduler list."""
    optim = job.stage.optim
    policy["optimizer"]["kwargs"]["lr"] = float(optim.lr)
    policy["optimizer"]["kwargs"]["weight_decay"] = float(optim.weight_decay)
    policy["max_grad_norm"] = float(optim.max_grad_norm)
    megatron_optim = policy["megatron_cfg"]["optimizer"]
    megatron_optim["lr"] = float(optim.lr)
    megatron_optim["min_lr"] = float(optim.lr * (optim.min_lr_ratio if optim.lr_schedule != "constant" else 1.0))
    megatron_optim["weight_decay"] = float(optim.weight_decay)
    megatron_sched = policy["megatron_cfg"]["scheduler"]
    megatron_sched["lr_decay_style"] = optim.lr_schedule
    megatron_sched["lr_decay_iters"] = int(total_steps)
    megatron_sched["lr_warmup_iters"] = int(optim.warmup_steps)
    megatron_sched["lr_warmup_init"] = float(optim.lr * 0.1)
    warmup = max(1, optim.warmup_steps)
    decay_steps = max(1, total_steps - warmup)
    floor = float(optim.min_lr_ratio)
    if optim.lr_schedule == "cosine":
        decay = {"name": "torch.optim.lr_scheduler.CosineAnnealingLR",
                 "kwargs": {"T_max": decay_steps, "eta_min": float(optim.lr * floor)}}
    elif optim.lr_schedule == "linear":
        decay = {"name": "torch.optim.lr_scheduler.LinearLR",
                 "kwargs": {"start_factor": 1.0, "end_factor": floor, "total_iters": decay_steps}}
    else:
        decay = {"name": "torch.optim.lr_scheduler.ConstantLR", "kwargs": {"factor": 1.0, "total_iters": 10000000000}}
    start = 0.1 if optim.warmup_steps else 1.0
    policy["scheduler"] = [
        {"name": "torch.optim.lr_scheduler.LinearLR",
         "kwargs": {"start_factor": start, "end_factor": 1.0, "total_iters": warmup}},
        decay,
        {"milestones": [warmup]},
    ]


def parallel_keys(job: StageJob, cfg: dict[str, Any], tr: Translation) -> None:
    """cluster.*, and DTensor (tensor parallel) or Megatron (pipeline parallel): exactly one enabled."""
    res, name = job.stage.resources, job.stage.name
    cfg["cluster"]["num_nodes"] = int(res.nodes)
    if res.gpus_per_node == 0:
        tr.warnings.append(f"stage `{name}`: runs on CPU in the recipe (gpus_per_node = 0); NeMo-RL needs GPUs: "
                           "the config asks for 1 GPU per node")
    cfg["cluster"]["gpus_per_node"] = int(max(1, res.gpus_per_node))
    policy = cfg["policy"]
    policy["dtensor_cfg"]["tensor_parallel_size"] = int(res.tensor_parallel)
    policy["megatron_cfg"]["tensor_model_parallel_size"] = int(res.tensor_parallel)
    policy["megatron_cfg"]["pipeline_model_parallel_size"] = int(res.pipeline_parallel)
    use_megatron = res.pipeline_parallel > 1
    policy["dtensor_cfg"]["enabled"] = not use_megatron  # DTensor is FSDP2: `sharding` is always on there
    policy["megatron_cfg"]["enabled"] = use_megatron
    # NeMo-RL runs on GPUs: auto is bf16 there (fp32 master weights either way); only 32-true asks for float32
    policy["precision"] = "float32" if res.precision == "32-true" else "bfloat16"
    for backend in ("dtensor_cfg", "megatron_cfg"):
        policy[backend]["activation_checkpointing"] = bool(res.gradient_checkpointing)


def grpo_config(job: StageJob, pipeline: Pipeline) -> Translation:
    stage, g = job.stage, job.stage.grpo
    assert g is not None, f"grpo stage {stage.name} without grpo settings"
    cfg = reference_config("grpo")
    tr = Translation("grpo", cfg)
    warn = tr.warnings
    gr = cfg["grpo"]
    gr["num_prompts_per_step"] = int(g.num_prompts_per_step)
    gr["num_generations_per_prompt"] = int(g.num_generations_per_prompt)
    gr["max_num_steps"] = int(g.steps)
    gr["seed"] = int(g.seed)
    # DeepSeekMath eq. 3: A = (r - mean(r)) / std(r) over the whole group, not leave-one-out.
    gr["use_leave_one_out_baseline"] = False
    gr["normalize_rewards"] = g.advantage_scaling == "std"
    gr["overlong_filtering"] = g.truncated == "mask"
    gr["val_period"] = int(g.checkpoint_every) if stage.eval_data else 0
    gr["val_at_end"] = bool(stage.eval_data)
    loss = cfg["loss_fn"]
    loss["reference_policy_kl_penalty"] = float(g.kl_penalty)
    loss["reference_policy_kl_type"] = g.kl_type
    loss["ratio_clip_min"] = float(g.ratio_clip_min)
    loss["ratio_clip_max"] = float(g.ratio_clip_max)
    loss["token_level_loss"] = g.loss_aggregation == "token"

    policy = cfg["policy"]
    policy["model_name"] = model_name(job, pipeline, warn)
    # On-policy: one optimizer step per rollout batch of prompts x generations.
    policy["train_global_batch_size"] = int(g.num_prompts_per_step * g.num_generations_per_prompt)
    policy["train_micro_batch_size"] = int(g.micro_batch_size)
    policy["max_total_sequence_length"] = int(g.max_prompt_tokens + g.max_completion_tokens)
    cfg["data"]["max_input_seq_length"] = int(g.max_prompt_tokens)
    gen = policy["generation"]
    gen["temperature"] = float(g.temperature)
    gen["top_p"] = float(g.top_p)
    gen["max_new_tokens"] = int(g.max_completion_tokens)
    gen["vllm_cfg"]["tensor_parallel_size"] = int(stage.resources.tensor_parallel)
    optimizer_keys(job, policy, g.steps)
    parallel_keys(job, cfg, tr)
    rollout_placement(job, cfg, tr)
    checkpoint_and_logger_keys(job, cfg, g.checkpoint_every)
    data_blocks(job, pipeline, cfg, "answer", tr)
    cfg["env"]["math"]["num_workers"] = int(cfg["env"]["math"]["num_workers"])

    if g.loss_aggregation == "constant":
        warn.append(f"stage `{stage.name}`: loss_aggregation = \"constant\" (Dr. GRPO) has no NeMo-RL key; "
                    "the config uses sequence-level averaging (token_level_loss: false)")
    if g.reference_refresh_steps:
        warn.append(f"stage `{stage.name}`: reference_refresh_steps = {g.reference_refresh_steps} (R1-Zero resets "
                    "the reference every 400 steps) has no NeMo-RL key: the reference stays the initial policy")
    if g.inner_epochs > 1:
        warn.append(f"stage `{stage.name}`: inner_epochs = {g.inner_epochs} has no NeMo-RL key: NeMo-RL makes one "
                    "pass over each rollout batch")
    if g.truncated == "penalize":
        warn.append(f"stage `{stage.name}`: truncated = \"penalize\" has no exact NeMo-RL equivalent "
                    "(grpo.reward_shaping is DAPO's soft overlong penalty): truncated completions are kept")
    reward_warnings(job, warn)
    return tr


def reward_warnings(job: StageJob, warn: list[str]) -> None:
    """NeMo-RL's math environment gives 1 for a correct answer, else 0: that is all it can score."""
    stage = job.stage
    if any(r.datasets for r in stage.rewards):
        warn.append(f"stage `{stage.name}`: rewards are routed per dataset (route {{ ... }}); NeMo-RL picks an "
                    "environment per dataset (env_name), and the config sends every dataset to the math environment")
    if not any(r.rule in MATH_RULES for r in stage.rewards):
        warn.append(f"stage `{stage.name}`: no math_accuracy reward; NeMo-RL's math environment scores answer "
                    "correctness only, and that is what the config uses")
    for r in stage.rewards:
        if r.rule not in MATH_RULES:
            warn.append(f"stage `{stage.name}`: reward `{r.name}` (rule {r.rule}) has no NeMo-RL equivalent: "
                        "its math environment scores answer correctness only; the reward is dropped")
        elif r.weight != 1.0:
            warn.append(f"stage `{stage.name}`: reward `{r.name}` has weight {r.weight}; NeMo-RL's math "
                        "environment has no weights (1 for a correct answer)")


def rollout_placement(job: StageJob, cfg: dict[str, Any], tr: Translation) -> None:
    """rollout_gpus > 0: generation on its own GPUs (policy.generation.colocated.enabled = false)."""
    res = job.stage.resources
    colocated = cfg["policy"]["generation"]["colocated"]
    if res.rollout_gpus == 0:
        colocated["enabled"] = True
        return
    colocated["enabled"] = False
    if res.nodes == 1:
        colocated["resources"]["gpus_per_node"] = int(res.rollout_gpus)
        colocated["resources"]["num_nodes"] = None
    elif res.gpus_per_node and res.rollout_gpus % res.gpus_per_node == 0:
        colocated["resources"]["num_nodes"] = int(res.rollout_gpus // res.gpus_per_node)
        colocated["resources"]["gpus_per_node"] = None
    else:
        colocated["enabled"] = True
        tr.warnings.append(f"stage `{job.stage.name}`: rollout_gpus = {res.rollout_gpus} on {res.nodes} nodes is "
                           "not whole nodes; NeMo-RL places dedicated generation by node: generation is colocated")


def checkpoint_and_logger_keys(job: StageJob, cfg: dict[str, Any], every: int) -> None:
    stage_dir = Path(job.dir)
    ck = cfg["checkpointing"]
    ck["enabled"] = True
    ck["checkpoint_dir"] = str(stage_dir / "checkpoints")
    ck["save_period"] = int(every)
    logger = cfg["logger"]
    logger["log_dir"] = str(stage_dir / "logs")
    logger["wandb_enabled"] = False
    logger["tensorboard_enabled"] = True
    logger["mlflow_enabled"] = False
    logger["swanlab_enabled"] = False
    # literal names: the references interpolate ${data.train.dataset_name}, absent when data.train is a list
    for backend in ("wandb", "swanlab"):
        logger[backend]["name"] = job.stage.name
    logger["mlflow"]["run_name"] = job.stage.name
    if isinstance(logger.get("tensorboard"), dict) and "log_dir" in logger["tensorboard"]:
        logger["tensorboard"]["log_dir"] = str(stage_dir / "tb")


def sft_config(job: StageJob, pipeline: Pipeline) -> Translation:
    stage, t = job.stage, job.stage.train
    cfg = reference_config("sft")
    tr = Translation("sft", cfg)
    s = cfg["sft"]
    s["max_num_steps"] = int(t.steps)
    # min(max_num_epochs * len(dataloader), max_num_steps): with epochs set, epochs decide.
    s["max_num_epochs"] = int(t.epochs) if t.epochs else 1000000
    if t.epochs:
        s["max_num_steps"] = 1000000000
    s["seed"] = int(t.seed)
    s["val_period"] = 0
    s["val_at_start"] = False
    s["val_at_end"] = False
    policy = cfg["policy"]
    policy["model_name"] = model_name(job, pipeline, tr.warnings)
    policy["tokenizer"]["chat_template"] = PASSTHROUGH_CHAT_TEMPLATE
    policy["train_global_batch_size"] = int(t.batch_size)
    policy["train_micro_batch_size"] = int(min(t.micro_batch_size, t.batch_size))
    policy["max_total_sequence_length"] = int(t.max_seq_len)
    optimizer_keys(job, policy, t.steps)
    parallel_keys(job, cfg, tr)
    checkpoint_and_logger_keys(job, cfg, t.checkpoint_every)
    # No validation set: keep the best checkpoints by training loss.
    cfg["checkpointing"]["metric_name"] = "train:loss"
    cfg["checkpointing"]["higher_is_better"] = False
    data_blocks(job, pipeline, cfg, "response", tr)
    return tr


def translate(job: StageJob, pipeline: Pipeline) -> Translation:
    return grpo_config(job, pipeline) if NEMO_KINDS[job.stage.kind] == "grpo" else sft_config(job, pipeline)


# ---------------------------------------------------------------- writing the run folder


def to_yaml(cfg: dict[str, Any], header: str) -> str:
    from omegaconf import OmegaConf

    return header + OmegaConf.to_yaml(OmegaConf.create(cfg))


def emit_nemo_stage(job: StageJob, pipeline: Pipeline, tr: Translation) -> tuple[list[Path], slurm.Submission]:
    stage_dir = Path(job.dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    written = [slurm.write_stage_config(job)]
    header = (f"# NeMo-RL {NEMO_RL_VERSION} {tr.algorithm} config for stage {slurm.label(job.stage.name)}, written by "
              f"`r1dsl compile --target nemo-rl` from examples/configs/{REFERENCE_CONFIGS[tr.algorithm]}\n")
    config = stage_dir / "nemo_rl.yaml"
    config.write_text(to_yaml(tr.config, header))
    written.append(config)
    for name, text in tr.files.items():
        (stage_dir / name).write_text(text)
        written.append(stage_dir / name)
    run_script = slurm.write_script(stage_dir / "nemo_rl_run.sh", render(
        "nemo_rl/stage_run.sh.j2",
        stage_dir=str(stage_dir),
        config=str(config),
        checkpoint_dir=tr.config["checkpointing"]["checkpoint_dir"],
        nemo_rl_dir=nemo_rl_dir(),
        entry_point=ENTRY_POINTS[tr.algorithm],
    ))
    written.append(run_script)

    res = job.stage.resources
    gpus = tr.config["cluster"]["gpus_per_node"]
    env = {
        "COMMAND": f"bash {shell_quote(run_script)}",  # ray.sub runs COMMAND through a shell
        "GPUS_PER_NODE": str(gpus),
        # the run folder, and a NeMo-RL checkout of this machine when $NEMO_RL_DIR names one (else the container's)
        "MOUNTS": ",".join(f"{m}:{m}" for m in sorted({pipeline.run_dir, os.environ.get("NEMO_RL_DIR", pipeline.run_dir)})),
    }
    image = res.container_image or os.environ.get("NEMO_RL_CONTAINER")
    if image:
        env["CONTAINER"] = image
    options = [o for o in slurm.common_options(job, pipeline, gpus_per_node=gpus)
               if not o.startswith(("--ntasks", "--cpus-per-task"))]
    options.append("--exclusive")
    submission = slurm.Submission(
        index=slurm.job_index(pipeline)[job.stage.name],
        name=job.stage.name,
        label=f"{slurm.label(job.stage.name)} ({slurm.label(job.stage.kind)}, NeMo-RL)",
        done=str(stage_dir / "DONE"),
        after=slurm.after_indices(job, pipeline),
        args=(*options, str(Path(nemo_rl_dir()) / "ray.sub")),
        prefix=("env", *(f"{k}={v}" for k, v in env.items())),
    )
    return written, submission


def emit(pipeline: Pipeline) -> list[Path]:
    """Write NeMo-RL configs and run scripts for grpo/sft/distill stages, sbatch scripts for the others."""
    written: list[Path] = []
    submissions: list[slurm.Submission] = []
    for job in pipeline.jobs:
        if runs_on_nemo_rl(job):
            paths, submission = emit_nemo_stage(job, pipeline, translate(job, pipeline))
        else:
            paths, submission = slurm.emit_stage(job, pipeline)
        written += paths
        submissions.append(submission)
    written.append(slurm.write_submit_script(pipeline, submissions))
    return written


def unsupported(pipeline: Pipeline) -> list[str]:
    """Recipe features with no NeMo-RL equivalent, one warning each (the compiler prints them)."""
    warnings: list[str] = []
    for job in pipeline.jobs:
        if runs_on_nemo_rl(job):
            warnings += translate(job, pipeline).warnings
        else:
            warnings.append(f"stage `{job.stage.name}`: NeMo-RL has no {job.stage.kind} stage; it runs on r1dsl's "
                            "own backend (python -m backends.run_stage) in the same SLURM chain")
    if not any(job.stage.resources.container_image for job in pipeline.jobs if runs_on_nemo_rl(job)) and \
            not os.environ.get("NEMO_RL_CONTAINER") and any(runs_on_nemo_rl(j) for j in pipeline.jobs):
        warnings.append("no container image for the NeMo-RL stages: set resources.container_image, or "
                        "NEMO_RL_CONTAINER when compiling (ray.sub needs CONTAINER)")
    return list(dict.fromkeys(warnings))


def run(pipeline: Pipeline, dry_run: bool = False) -> int:
    """Emit, then run submit.sh (NeMo-RL stages through ray.sub, the others through our sbatch scripts)."""
    return slurm.run_submit(pipeline, emit, dry_run)


def batch_arithmetic(cfg: dict[str, Any]) -> bool:
    """On-policy GRPO: one optimizer step per rollout batch."""
    g = cfg["grpo"]
    return cfg["policy"]["train_global_batch_size"] == g["num_prompts_per_step"] * g["num_generations_per_prompt"]

