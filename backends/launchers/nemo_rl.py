"""The NeMo-RL target: NeMo-RL v0.7.0 configs for grpo and sft (distill) stages, our backend for the rest.

For each grpo/sft stage, the config starts from a faithful copy of NeMo-RL's own example config
(`templates/nemo_rl/grpo_math_1B.yaml`, `sft.yaml`, Apache-2.0) and overrides only the keys a
recipe maps onto, so every key and type is NeMo-RL's (tests validate each config with v0.7.0's own
`MasterConfig`). Written into the run folder:

    <run_dir>/submit.sh                  submits every stage with afterok on its inputs (as --target slurm)
    <run_dir>/ray.sub                    NeMo-RL v0.7.0's ray.sub, unchanged: sbatch reads it on the host
    <run_dir>/<stage>/nemo_rl.yaml       grpo, sft, distill students: the NeMo-RL config
    <run_dir>/<stage>/prompt.txt         the recipe template in NeMo-RL's prompt-file format
    <run_dir>/<stage>/train_<name>.jsonl generated datasets written out for NeMo-RL's ResponseDataset
    <run_dir>/<stage>/nemo_rl_run.sh     entry point, then checkpoint -> Hugging Face into <stage>/model
    <run_dir>/<stage>/job.sbatch         other kinds (pretrain, rejection_sample, eval): our backend

NeMo-RL stages are submitted as `sbatch ... <run_dir>/ray.sub` from the run folder (ray.sub keeps its
logs in $SLURM_SUBMIT_DIR and makes it the container's working directory), with COMMAND, CONTAINER,
MOUNTS and GPUS_PER_NODE in the environment. ray.sub splits CONTAINER, MOUNTS, the submit folder,
partition and account into srun's words unquoted, so each must be a plain word: anything else is
refused at compile time (`refusals`), as is whatever NeMo-RL would reject at setup. Compile-time
settings (environment): NEMO_RL_CONTAINER (default the v0.7.0 image), NEMO_RL_DIR (NeMo-RL inside
the container, default /opt/nemo-rl; a host checkout there is mounted), NEMO_RL_BF16_DIR (BF16
conversions of DeepSeek-V3's FP8 hub weights), R1DSL_WANDB_PROJECT (W&B logging), HF_HOME.
Recipe features NeMo-RL cannot express are listed by `unsupported(pipeline)`. Torch-free.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backends.launchers import slurm
from r1dsl.ir import Dataset, Model, Pipeline, Span, StageJob
from r1dsl.kinds import KINDS
from r1dsl.render import TEMPLATES_DIR, render, shell_quote

NEMO_RL_VERSION = "v0.7.0"
REFERENCE_DIR = TEMPLATES_DIR / "nemo_rl"
REFERENCE_CONFIGS = {"grpo": "grpo_math_1B.yaml", "sft": "sft.yaml", "distillation": "distillation_math.yaml"}
RAY_SUB = REFERENCE_DIR / "ray.sub"  # NeMo-RL v0.7.0's launcher, copied unchanged
# Entry points and converters in the NeMo-RL tree (v0.6.0 renamed run_grpo_math.py to run_grpo.py).
ENTRY_POINTS = {"grpo": "examples/run_grpo.py", "sft": "examples/run_sft.py"}
CONVERTERS = {"dtensor": "examples/converters/convert_dcp_to_hf.py",
              "megatron": "examples/converters/convert_megatron_to_hf.py"}
MEGATRON_WEIGHTS = "megatron_weights"  # <stage>/megatron_weights: link to the newest checkpoint's policy/weights
NEMO_KINDS = {name: k.nemo_rl for name, k in KINDS.items() if k.nemo_rl}  # recipe kind -> NeMo-RL algorithm (r1dsl/kinds.py)
# docs/guides/nemotron-3-super.md of v0.7.0 builds on this image.
DEFAULT_CONTAINER = "nvcr.io/nvidia/nemo-rl:v0.7.0"

# NeMo-RL's COMMON_CHAT_TEMPLATES.passthrough_prompt_response (nemo_rl/data/chat_templates.py): the
# messages' contents concatenated, no chat tokens (its TokenizerConfig types chat_template as a string).
PASSTHROUGH_CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"
# The math environment scores a boxed/extracted answer against the reference: our math_accuracy.
MATH_RULES = {"math_accuracy"}
# Environment variables the run script exports when the SFT schedule depends on the data's row count,
# read by the config through OmegaConf's built-in resolvers.
TOTAL_STEPS = "${oc.decode:${oc.env:R1DSL_TOTAL_STEPS}}"
DECAY_STEPS = "${oc.decode:${oc.env:R1DSL_DECAY_STEPS}}"

# ray.sub (v0.7.0) puts these unquoted into srun's command line (`srun $COMMON_SRUN_ARGS ...`,
# `--container-mounts=$MOUNTS`, `--container-workdir=$SLURM_SUBMIT_DIR`, `-p $SLURM_JOB_PARTITION`)
# and into the heredoc scripts it runs in the containers: only characters that neither word
# splitting, globbing nor a double-quoted heredoc treat specially. Paths also exclude `,` and `:`,
# the separators of a pyxis mount list; an image may hold `:` (tag) and `#` (enroot's registry mark).
_PATH_WORD = re.compile(r"/[A-Za-z0-9_./@+=-]*")
_IMAGE_WORD = re.compile(r"[A-Za-z0-9_./@:#+=-]+")
_SLURM_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HUB_FP8_DEEPSEEK = re.compile(r"deepseek-ai/DeepSeek-(V3|R1)(-Base|-0324|-Zero)?", re.IGNORECASE)


def nemo_rl_dir() -> str:
    """NeMo-RL's tree inside the container (the run script `cd`s there)."""
    return os.environ.get("NEMO_RL_DIR", "/opt/nemo-rl")


def container_image(job: StageJob) -> str:
    return job.stage.resources.container_image or os.environ.get("NEMO_RL_CONTAINER") or DEFAULT_CONTAINER


slurm_account = slurm.account  # resources.account, else SBATCH_ACCOUNT (one rule for both targets' stages)
slurm_partition = slurm.partition


def hf_home() -> str:
    """The Hugging Face cache the compile machine uses; mounted at the same path and exported as HF_HOME."""
    return os.path.abspath(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")


def reference_config(name: str) -> dict[str, Any]:
    """A NeMo-RL example config as plain data, interpolations (`${...}`) kept as strings."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(REFERENCE_DIR / REFERENCE_CONFIGS[name]), resolve=False)


def literal(text: str) -> str:
    """A recipe string as an OmegaConf value that resolves to itself: `${` escaped as `\\${`.

    NeMo-RL resolves every interpolation when it loads the config; backslashes right before `${`
    are doubled (OmegaConf reads `\\\\` there as one backslash).
    """
    return re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)


@dataclass(frozen=True)
class Refusal:
    """Something the target will not emit because NeMo-RL or ray.sub would fail on it (or be subverted)."""

    stage: str
    message: str
    help: str
    span: Span | None = None

    def __str__(self) -> str:
        where = f"{self.span.file}:{self.span.line}:{self.span.col}: " if self.span else ""
        return f"{where}error: stage `{self.stage}`: {self.message}\n  help: {self.help}"


class TargetError(Exception):
    """emit() of a pipeline the target refuses; `refusals` says why (the CLI prints them before emitting)."""

    def __init__(self, refusals: list[Refusal]):
        self.refusals = refusals
        super().__init__("\n".join(str(r) for r in refusals))


@dataclass
class Translation:
    """One stage in NeMo-RL terms: its config, the files it needs, and what did not carry over."""

    algorithm: str  # grpo | sft
    config: dict[str, Any]
    backend: str = "dtensor"  # dtensor | megatron: the policy's training backend, and so its checkpoint format
    files: dict[str, str] = field(default_factory=dict)  # file name in the stage folder -> content
    warnings: list[str] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    mounts: set[str] = field(default_factory=set)  # host folders the container must see
    row_files: list[str] = field(default_factory=list)  # data files whose rows size an epoch-based schedule
    # hub datasets the run script writes out with the recipe's columns: (hub id, split, {field: column}, file)
    hub_extracts: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)

    def refuse(self, job: StageJob, message: str, help: str) -> None:
        self.refusals.append(Refusal(job.stage.name, message, help, job.stage.span))


def runs_on_nemo_rl(job: StageJob) -> bool:
    return job.stage.kind in NEMO_KINDS


# ---------------------------------------------------------------- the model


def root_model(job: StageJob, pipeline: Pipeline) -> Model | None:
    """The declared model a stage's weights descend from (following `from` through earlier stages)."""
    stage = job.stage
    names = {s.name: s for s in pipeline.recipe.stages}
    while stage.init_is_stage and stage.init in names:
        stage = names[stage.init]
    return None if stage.init_is_stage else pipeline.recipe.models.get(stage.init)


def architecture(job: StageJob, pipeline: Pipeline):
    """plan.Arch of the stage's model (heads, layers, experts), or None when unknown."""
    from r1dsl.plan import model_arch

    model = root_model(job, pipeline)
    return model_arch(model) if model is not None else None


def training_backend(job: StageJob, pipeline: Pipeline) -> str:
    """megatron (pipeline parallel, or MoE) or dtensor: the policy's backend, and so its checkpoint format."""
    arch = architecture(job, pipeline)
    return "megatron" if job.stage.resources.pipeline_parallel > 1 or (arch is not None and arch.experts) else "dtensor"


def megatron_hand_off(job: StageJob, pipeline: Pipeline) -> StageJob | None:
    """The earlier NeMo-RL Megatron stage this Megatron stage starts from, when there is one: it then loads that
    stage's Megatron checkpoint (policy.pretrained_checkpoint) and needs no Hugging Face export of it."""
    stage = job.stage
    if not stage.init_is_stage or not runs_on_nemo_rl(job) or training_backend(job, pipeline) != "megatron":
        return None
    source = next((j for j in pipeline.jobs if j.stage.name == stage.init), None)
    if source is None or not runs_on_nemo_rl(source) or training_backend(source, pipeline) != "megatron":
        return None
    return source


def needs_hf_export(job: StageJob, pipeline: Pipeline) -> bool:
    """A Hugging Face model in <stage>/model is written unless every stage starting from this one loads its
    Megatron checkpoint; a last stage keeps its export (what users take away)."""
    users = [j for j in pipeline.jobs if j.stage.init_is_stage and j.stage.init == job.stage.name]
    return not users or any(megatron_hand_off(j, pipeline) is None for j in users)


def model_name(job: StageJob, pipeline: Pipeline, tr: Translation) -> str:
    """policy.model_name: a hub id, a local directory, or the Hugging Face model of an earlier stage.

    From an earlier Megatron stage, a Megatron stage reads that stage's Megatron checkpoint instead
    (policy.pretrained_checkpoint, format megatron_bridge: NeMo-RL resolves the newest iter_* under it), and
    model_name is the root model (its tokenizer and architecture): no Hugging Face export in between.
    """
    stage = job.stage
    source = megatron_hand_off(job, pipeline)
    if source is not None:
        tr.config["policy"]["pretrained_checkpoint"] = {
            "path": literal(str(Path(source.dir) / MEGATRON_WEIGHTS)), "format": "megatron_bridge"}
        model = root_model(job, pipeline)
        if model is None:
            tr.refuse(job, "its weights descend from no declared model", "start the chain from a declared model")
            return stage.init
    elif stage.init_is_stage:
        return str(Path(pipeline.run_dir) / stage.init / "model")
    else:
        model = pipeline.recipe.models[stage.init]
    if model.source == "hf" and model.path and _HUB_FP8_DEEPSEEK.fullmatch(model.path):
        bf16_dir = os.environ.get("NEMO_RL_BF16_DIR")
        name = model.path.split("/")[-1] + "-BF16"
        if not bf16_dir:
            tr.refuse(job, f"model `{model.name}` ({model.path}) is published in FP8; NeMo-RL trains DeepSeek-V3 from "
                           "a BF16 Hugging Face conversion (NeMo-RL docs/guides/deepseek.md)",
                      f"convert it as that guide shows into DIR/{name} and compile with NEMO_RL_BF16_DIR=DIR")
            return model.path
        path = os.path.join(os.path.abspath(bf16_dir), name)
        if not os.path.isfile(os.path.join(path, "config.json")):
            tr.refuse(job, f"model `{model.name}` ({model.path}) is read from its BF16 conversion {path!r}, which "
                           "holds no Hugging Face model (config.json) on this machine",
                      f"convert the FP8 weights into {path} (NeMo-RL docs/guides/deepseek.md), or point "
                      "NEMO_RL_BF16_DIR at the folder that holds it")
        tr.mounts.add(os.path.abspath(bf16_dir))
        return path
    if model.source == "hf" and model.path:
        return model.path
    if model.source == "local" and model.path:
        path = os.path.abspath(model.path)
        tr.mounts.add(path)
        return path
    tr.refuse(job, f"model `{model.name}` is built from a config (tiny {{ ... }}); NeMo-RL loads Hugging Face models only",
              "start this stage from a pretrain stage (our backend saves <stage>/model), or declare the model "
              "with `hf =` or `path =`")
    return model.name


def prompt_file_text(template: str) -> str:
    """The recipe template (`{prompt}`) as a NeMo-RL prompt file (a Python format string with `{}`)."""
    return template.replace("{", "{{").replace("}", "}}").replace("{{prompt}}", "{}")


# ---------------------------------------------------------------- data


def has_answer(ds: Dataset) -> bool:
    return "answer" in ds.provides or "answer" in dict(ds.fields)


def dataset_block(ds: Dataset, job: StageJob, pipeline: Pipeline, role: str, output: str,
                  tr: Translation) -> dict[str, Any]:
    """One `data.train` / `data.validation` entry (NeMo-RL's ResponseDataset) for a recipe dataset.

    `output` is the canonical field NeMo-RL reads as the second message: `answer` (GRPO's ground
    truth for the math environment) or `response` (SFT's target).
    """
    fields = dict(ds.fields)
    block: dict[str, Any] = {"dataset_name": "ResponseDataset", "input_key": literal(fields.get("prompt", "prompt")),
                             "output_key": literal(fields.get(output, output))}
    if ds.source == "stage":
        path = str(Path(pipeline.run_dir) / (ds.path or ds.name) / "data.jsonl")
        block["data_path"] = literal(path)
        block["input_key"], block["output_key"] = "prompt", output
        tr.row_files.append(path)
    elif ds.source in ("jsonl", "parquet"):
        path = os.path.abspath(str(ds.path))
        block["data_path"] = literal(path)  # NeMo-RL v0.7.0 reads .json/.jsonl and .parquet files
        tr.mounts.add(os.path.dirname(path))
        tr.row_files.append(path)
    elif ds.source == "hf":
        # ResponseDataset uses a `messages` column whenever the data has one (OpenR1-Math-220k does) and then
        # ignores input_key/output_key: the run script writes the recipe's columns out under our names first.
        path = str(Path(job.dir) / f"{role}_{ds.name}.jsonl")
        columns = {"prompt": fields.get("prompt", "prompt"), output: fields.get(output, output)}
        tr.hub_extracts.append((str(ds.path), str(ds.split), columns, path))
        block["data_path"] = literal(path)
        block["input_key"], block["output_key"] = "prompt", output
    elif ds.source == "generator":
        from backends.data.generators import GENERATORS
        import backends.data  # noqa: F401  (registers the built-in generators)

        rows = GENERATORS[ds.generator](ds.size, ds.seed, **dict(ds.params))
        file_name = f"{role}_{ds.name}.jsonl"
        tr.files[file_name] = "".join(json.dumps(r) + "\n" for r in rows)
        path = str(Path(job.dir) / file_name)
        block["data_path"] = literal(path)
        block["input_key"], block["output_key"] = "prompt", output
        tr.row_files.append(path)
    if ds.source in ("jsonl", "parquet", "hf") and ds.size:
        tr.warnings.append(f"stage `{job.stage.name}`: dataset `{ds.name}` takes {ds.size} rows in the recipe; "
                           "NeMo-RL reads the whole file")
    return block


def grpo_datasets(job: StageJob, pipeline: Pipeline, names: tuple[str, ...], tr: Translation) -> list[str]:
    """The datasets NeMo-RL's math environment can score: those whose rows carry an answer."""
    kept = []
    for name in names:
        ds = pipeline.recipe.datasets[name]
        if has_answer(ds):
            kept.append(name)
            continue
        why = ("its rows carry tests, not an answer: NeMo-RL's code environment runs the model's code but does "
               "not check it against tests" if "tests" in ds.provides or "tests" in dict(ds.fields) else
               "its rows carry no answer: NeMo-RL's math environment compares the completion with the answer, "
               "and a ResponseDataset without one would use the rows' `messages` (or fail)")
        tr.warnings.append(f"stage `{job.stage.name}`: dataset `{name}` is left out of the NeMo-RL run: {why}")
    return kept


def data_blocks(job: StageJob, pipeline: Pipeline, cfg: dict[str, Any], tr: Translation) -> None:
    stage, datasets = job.stage, pipeline.recipe.datasets
    grpo = stage.kind == "grpo"
    names = grpo_datasets(job, pipeline, stage.data, tr) if grpo else list(stage.data)
    if not names:
        tr.refuse(job, f"none of its datasets ({', '.join(stage.data)}) has an answer for NeMo-RL's math environment",
                  "run this stage with --target slurm (our backend scores every reward rule), or add a dataset "
                  "with an answer field")
        names = list(stage.data)
    output = "answer" if grpo else "response"
    train = [dataset_block(datasets[n], job, pipeline, "train", output, tr) for n in names]
    cfg["data"]["train"] = train[0] if len(train) == 1 else train
    evals = grpo_datasets(job, pipeline, stage.eval_data, tr) if grpo else []
    if evals:
        cfg["data"]["validation"] = dataset_block(datasets[evals[0]], job, pipeline, "validation", output, tr)
        if len(evals) > 1:
            tr.warnings.append(f"stage `{stage.name}`: NeMo-RL validates on one dataset; only "
                               f"`{evals[0]}` of {list(stage.eval_data)} is evaluated")
    else:
        cfg["data"]["validation"] = None
        if stage.eval_data and not grpo:
            tr.warnings.append(f"stage `{stage.name}`: eval sets after SFT ({list(stage.eval_data)}) have no NeMo-RL "
                               "equivalent (its SFT validates loss only): add an eval stage, which runs on our backend")
    # The recipe template is the whole prompt: NeMo-RL formats it once (prompt_file) and its passthrough
    # chat template adds no chat tokens around it.
    cfg["policy"]["tokenizer"]["chat_template"] = PASSTHROUGH_CHAT_TEMPLATE
    if stage.template:
        tr.files["prompt.txt"] = prompt_file_text(pipeline.recipe.templates[stage.template].text)
        cfg["data"]["default"]["prompt_file"] = literal(str(Path(job.dir) / "prompt.txt"))
    else:
        cfg["data"]["default"]["prompt_file"] = None


# ---------------------------------------------------------------- optimizer and schedule


def optimizer_keys(job: StageJob, policy: dict[str, Any], total_steps: int | str, decay_steps: int | str) -> None:
    """AdamW lr/weight decay, clipping and the warm-up + decay schedule as NeMo-RL's scheduler list.

    `total_steps`/`decay_steps` are numbers, or interpolations of what the run script counts.
    """
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
    megatron_sched["lr_decay_iters"] = total_steps
    megatron_sched["lr_warmup_iters"] = int(optim.warmup_steps)
    megatron_sched["lr_warmup_init"] = float(optim.lr * 0.1)
    warmup = max(1, optim.warmup_steps)
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


def decay_steps(job: StageJob, total_steps: int) -> int:
    """Steps of the decay phase after warm-up (the run script computes the same for epoch-based SFT)."""
    return max(1, total_steps - max(1, job.stage.optim.warmup_steps))


# ---------------------------------------------------------------- parallel layout


def pipeline_stage_layers(layers: int, pp: int) -> tuple[int, int] | None:
    """(first, last) layer counts when `layers` does not split evenly over `pp` stages.

    Middle stages take ceil(layers / pp) each and the first and last share the rest (the first one more),
    as NeMo-RL's DeepSeek-V3 recipe does: 61 layers over 8 stages are 7 + 6 x 8 + 6. None: no layout fits.
    """
    middle = -(-layers // pp)
    rest = layers - middle * (pp - 2)
    if pp < 3 or rest < 2:
        return None
    return (rest + 1) // 2, rest // 2


def parallel_keys(job: StageJob, pipeline: Pipeline, cfg: dict[str, Any], tr: Translation) -> None:
    """cluster.*, and DTensor (tensor parallel) or Megatron (pipeline parallel, MoE): exactly one enabled."""
    res, name = job.stage.resources, job.stage.name
    cfg["cluster"]["num_nodes"] = int(res.nodes)
    if res.gpus_per_node == 0:
        tr.warnings.append(f"stage `{name}`: runs on CPU in the recipe (gpus_per_node = 0); NeMo-RL needs GPUs: "
                           "the config asks for 1 GPU per node")
    cfg["cluster"]["gpus_per_node"] = int(max(1, res.gpus_per_node))
    policy = cfg["policy"]
    arch = architecture(job, pipeline)
    moe = bool(arch is not None and arch.experts)
    tr.backend = training_backend(job, pipeline)
    megatron = policy["megatron_cfg"]
    policy["dtensor_cfg"]["tensor_parallel_size"] = int(res.tensor_parallel)
    megatron["tensor_model_parallel_size"] = int(res.tensor_parallel)
    megatron["pipeline_model_parallel_size"] = int(res.pipeline_parallel)
    policy["dtensor_cfg"]["enabled"] = tr.backend == "dtensor"
    megatron["enabled"] = tr.backend == "megatron"
    # DTensor is FSDP2 (`sharding` is always on there). NeMo-RL runs on GPUs: auto is bf16 there (fp32 master
    # weights either way); only 32-true asks for float32
    policy["precision"] = "float32" if res.precision == "32-true" else "bfloat16"
    for backend in ("dtensor_cfg", "megatron_cfg"):
        policy[backend]["activation_checkpointing"] = bool(res.gradient_checkpointing)
    if res.tensor_parallel >= 4:
        # NeMo-RL's Policy asserts this for TP >= 4 (lm_policy.py; docs/guides/dtensor-tp-accuracy.md)
        policy["logprob_batch_size"] = "${policy.train_micro_batch_size}"
    if tr.backend == "megatron" and res.pipeline_parallel > 1:
        policy["dynamic_batching"]["enabled"] = False  # lm_policy.py: dynamic batching needs one pipeline stage
    if arch is None:
        return
    tp = res.tensor_parallel
    if arch.heads and arch.heads % tp:
        tr.refuse(job, f"tensor_parallel = {tp} does not divide the {arch.heads} attention heads of its model "
                       f"({arch.name}); NeMo-RL's training and vLLM shard heads evenly",
                  f"use a tensor_parallel that divides {arch.heads}")
    elif arch.kv_heads and arch.kv_heads % tp:
        tr.refuse(job, f"tensor_parallel = {tp} does not divide the {arch.kv_heads} key-value heads of its model "
                       f"({arch.name}); training shards the key and value projections by head (Megatron: "
                       "num_query_groups % TP == 0)", f"use a tensor_parallel that divides {arch.kv_heads}")
    pp = res.pipeline_parallel
    if pp > 1 and arch.layers % pp:
        split = pipeline_stage_layers(arch.layers, pp)
        if split is None:
            tr.refuse(job, f"pipeline_parallel = {pp} cannot split the {arch.layers} layers of {arch.name}",
                      f"use a pipeline_parallel that divides {arch.layers}, or a smaller one")
        else:
            megatron["num_layers_in_first_pipeline_stage"], megatron["num_layers_in_last_pipeline_stage"] = split
    if moe:
        deepseek_v3_keys(job, cfg, arch, tr)


def deepseek_v3_keys(job: StageJob, cfg: dict[str, Any], arch, tr: Translation) -> None:
    """MoE settings after NeMo-RL's own DeepSeek-V3 GRPO recipe
    (examples/configs/recipes/llm/grpo-dapomath17k-dsv3-megatron.yaml, 32 nodes x 8 GPUs)."""
    res = job.stage.resources
    megatron = cfg["policy"]["megatron_cfg"]
    gpus = res.nodes * max(1, res.gpus_per_node) - res.rollout_gpus
    per_stage = gpus // (res.tensor_parallel * res.pipeline_parallel) * res.tensor_parallel  # TP x DP of a stage
    # experts spread over every GPU of a pipeline stage (the recipe: EP 32 = TP 8 x CP 4), dividing the experts
    megatron["expert_model_parallel_size"] = max(d for d in range(1, per_stage + 1)
                                                 if per_stage % d == 0 and arch.experts % d == 0)
    context_parallel(job, cfg, gpus // (res.tensor_parallel * res.pipeline_parallel), tr)
    megatron["activation_checkpointing"] = True
    megatron["sequence_parallel"] = res.tensor_parallel > 1
    megatron["apply_rope_fusion"] = False
    megatron["moe_enable_deepep"] = True
    megatron["moe_token_dispatcher_type"] = "flex"
    policy = cfg["policy"]
    policy["train_micro_batch_size"] = 1
    policy["logprob_batch_size"] = 1
    policy["generation_batch_size"] = 64
    if cfg["policy"].get("generation") is not None:
        vllm = policy["generation"]["vllm_cfg"]
        vllm["tensor_parallel_size"] = 32  # 1.3 TB of BF16 weights: 4 nodes x 8 GPUs per vLLM engine
        vllm["async_engine"] = True
        policy["generation"]["vllm_kwargs"] = {"moe_backend": "triton"}  # refit-compatible MoE kernels
        if job.stage.grpo is not None and job.stage.grpo.micro_batch_size != 1:
            tr.warnings.append(f"stage `{job.stage.name}`: DeepSeek-V3 trains with micro-batches of 1 in NeMo-RL's "
                               "recipe; grpo.micro_batch_size is not used")


# NeMo-RL's DeepSeek-V3 recipe: context parallel 4 at 16,384 tokens, i.e. 4,096 tokens of a sequence per CP rank.
REFERENCE_TOKENS_PER_CP_RANK = 16384 // 4


def context_parallel(job: StageJob, cfg: dict[str, Any], data_parallel: int, tr: Translation) -> None:
    """megatron_cfg.context_parallel_size: the power of two that keeps a sequence's tokens per CP rank at the
    reference's 4,096, capped by the data-parallel replicas it splits (TP x PP x CP x DP = the training GPUs)."""
    policy = cfg["policy"]
    seq = int(policy["max_total_sequence_length"])
    want = 1 << max(0, math.ceil(math.log2(seq / REFERENCE_TOKENS_PER_CP_RANK)))
    cp = 1
    while cp * 2 <= want and data_parallel % (cp * 2) == 0:
        cp *= 2
    policy["megatron_cfg"]["context_parallel_size"] = cp
    # the reference's rule: sequences padded to a multiple of TP x 2 x CP (Megatron's CP load balancing)
    policy["make_sequence_length_divisible_by"] = int(policy["megatron_cfg"]["tensor_model_parallel_size"]) * 2 * cp
    if seq / cp > 2 * REFERENCE_TOKENS_PER_CP_RANK:  # more than twice the reference's share per rank
        tr.warnings.append(f"stage `{job.stage.name}`: context_parallel_size {cp} (the data-parallel replicas, "
                           f"{data_parallel}, allow no more) puts {seq // cp:,} tokens of a {seq:,}-token sequence on "
                           f"each rank; NeMo-RL's DeepSeek-V3 recipe puts {REFERENCE_TOKENS_PER_CP_RANK:,} (CP 4 at "
                           "16,384): add nodes for more")


def rollout_placement(job: StageJob, pipeline: Pipeline, cfg: dict[str, Any], tr: Translation) -> None:
    """rollout_gpus > 0: generation on its own GPUs (policy.generation.colocated.enabled = false).

    grpo.py's setup asserts: on one node, colocated.resources.gpus_per_node > 0 and num_nodes null or 1;
    across nodes, whole nodes (num_nodes > 0) with gpus_per_node equal to cluster.gpus_per_node.
    """
    res = job.stage.resources
    generation = cfg["policy"]["generation"]
    colocated = generation["colocated"]
    vllm_tp = generation["vllm_cfg"]["tensor_parallel_size"]
    if res.rollout_gpus == 0:
        colocated["enabled"] = True
        rollout = res.nodes * max(1, res.gpus_per_node)
    elif res.nodes == 1:
        colocated["enabled"] = False
        colocated["resources"]["gpus_per_node"] = int(res.rollout_gpus)
        colocated["resources"]["num_nodes"] = None
        rollout = res.rollout_gpus
    elif res.gpus_per_node and res.rollout_gpus % res.gpus_per_node == 0:
        colocated["enabled"] = False
        colocated["resources"]["num_nodes"] = int(res.rollout_gpus // res.gpus_per_node)
        colocated["resources"]["gpus_per_node"] = int(res.gpus_per_node)
        rollout = res.rollout_gpus
    else:
        colocated["enabled"] = True
        rollout = res.nodes * max(1, res.gpus_per_node)
        tr.warnings.append(f"stage `{job.stage.name}`: rollout_gpus = {res.rollout_gpus} on {res.nodes} nodes is "
                           "not whole nodes; NeMo-RL places dedicated generation by node: generation is colocated")
    if rollout % vllm_tp:
        tr.refuse(job, f"vLLM's tensor parallel size {vllm_tp} does not divide the {rollout} generation GPUs",
                  "choose rollout_gpus (or nodes x gpus_per_node) as a multiple of it")
    vllm_memory(job, pipeline, cfg, tr)


def vllm_memory(job: StageJob, pipeline: Pipeline, cfg: dict[str, Any], tr: Translation) -> None:
    """gpu_memory_utilization that lets vLLM start: its weights, overhead and one max-length sequence's KV cache
    within it, the colocated trainer's resident weights in the rest (r1dsl.plan.vllm_room). When the recipe's
    value leaves no room, the smallest that does is chosen (and said); when none does, the stage is refused."""
    from r1dsl.plan import GPU_MEMORY_GB, vllm_room

    arch = architecture(job, pipeline)
    if arch is None:
        return
    gen, res = cfg["policy"]["generation"], job.stage.resources
    vllm = gen["vllm_cfg"]
    max_len = int(vllm.get("max_model_len") if isinstance(vllm.get("max_model_len"), int)
                  else cfg["policy"]["max_total_sequence_length"])
    room = vllm_room(arch, tp=int(vllm["tensor_parallel_size"]), pp=int(vllm.get("pipeline_parallel_size") or 1),
                     max_len=max_len, utilization=float(vllm["gpu_memory_utilization"]),
                     trainer_mp=res.tensor_parallel * res.pipeline_parallel if gen["colocated"]["enabled"] else 0,
                     capacity_gib=GPU_MEMORY_GB)
    if room.fits:
        return
    chosen = room.smallest_fitting()
    if chosen is None:
        tr.refuse(job, f"no gpu_memory_utilization lets vLLM start on {GPU_MEMORY_GB:.0f} GiB cards: {room}",
                  "raise the vLLM tensor parallel size (more GPUs per engine), give generation its own GPUs "
                  "(rollout_gpus), or shorten max_model_len")
        return
    vllm["gpu_memory_utilization"] = chosen
    tr.warnings.append(f"stage `{job.stage.name}`: rollout.gpu_memory_utilization = {room.utilization:g} leaves vLLM "
                       f"no room ({room}); the config uses {chosen:g}: "
                       f"{replace(room, utilization=chosen)}")


# ---------------------------------------------------------------- the two algorithms


def save_lead_s(job: StageJob) -> int:
    """Seconds before the job's time limit that NeMo-RL must have saved its last checkpoint by: a tenth of the
    limit, between 15 minutes and 2 hours (at least checkpoint_before_limit_s), for the save itself."""
    limit = job.stage.resources.time_limit_min * 60
    return max(job.stage.resources.checkpoint_before_limit_s, min(7200, max(900, limit // 10)))


def save_before_limit(job: StageJob) -> str | None:
    """checkpointing.checkpoint_must_save_by written in the config: NeMo-RL saves and stops once this much time
    has passed since ITS training loop started (after Ray, the model import and vLLM are up).

    The run script replaces it with the time left from its own start (SLURM_JOB_END_TIME, or the job's start
    + limit) minus save_lead_s, so start-up comes out of the budget rather than the lead; this value, measured
    from the job's start, is the fallback where SLURM exports neither. None when under 10 minutes remain.
    """
    budget = job.stage.resources.time_limit_min * 60 - save_lead_s(job)
    return None if budget < 600 else duration(budget)


def duration(seconds: int) -> str:
    """NeMo-RL's DD:HH:MM:SS (nemo_rl/utils/timer.py)."""
    days, rest = divmod(seconds, 86400)
    return f"{days:02d}:{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"


def checkpoint_and_logger_keys(job: StageJob, pipeline: Pipeline, cfg: dict[str, Any], every: int) -> None:
    stage_dir = Path(job.dir)
    ck = cfg["checkpointing"]
    ck["enabled"] = True
    ck["checkpoint_dir"] = literal(str(stage_dir / "checkpoints"))
    ck["save_period"] = int(every)
    ck["checkpoint_must_save_by"] = save_before_limit(job)
    logger = cfg["logger"]
    logger["log_dir"] = literal(str(stage_dir / "logs"))
    project = os.environ.get("R1DSL_WANDB_PROJECT")
    logger["wandb_enabled"] = bool(project)
    if project:
        logger["wandb"]["project"] = literal(project)
    logger["tensorboard_enabled"] = True
    logger["mlflow_enabled"] = False
    logger["swanlab_enabled"] = False
    # literal names: the references interpolate ${data.train.dataset_name}, absent when data.train is a list
    run_name = literal(f"{pipeline.recipe.name}.{job.stage.name}")
    for backend in ("wandb", "swanlab"):
        logger[backend]["name"] = run_name
    logger["mlflow"]["run_name"] = run_name
    if isinstance(logger.get("tensorboard"), dict) and "log_dir" in logger["tensorboard"]:
        logger["tensorboard"]["log_dir"] = literal(str(stage_dir / "tb"))


def grpo_config(job: StageJob, pipeline: Pipeline) -> Translation:
    stage, g = job.stage, job.stage.grpo
    assert g is not None, f"grpo stage {stage.name} without grpo settings"
    cfg = reference_config("grpo")
    tr = Translation("grpo", cfg)
    warn = tr.warnings
    gr = cfg["grpo"]
    # NeMo-RL's step is one rollout of num_prompts_per_step x G outputs, trained in optimizer steps of
    # policy.train_global_batch_size (old log-probs once per rollout); it counts steps, checkpoints and the lr
    # scheduler in rollouts, the recipe in optimizer steps: the checker makes them whole rollouts.
    per_rollout = g.updates_per_rollout
    rollouts = g.steps // per_rollout
    gr["num_prompts_per_step"] = int(g.num_prompts_per_step)
    gr["num_generations_per_prompt"] = int(g.num_generations_per_prompt)
    gr["max_num_steps"] = int(rollouts)
    # Training stops at min(max_num_steps, epochs over the prompts): each epoch has at least one step
    # (drop_last batches of num_prompts_per_step), so `steps` epochs never stop it early.
    gr["max_num_epochs"] = int(rollouts)
    gr["seed"] = int(g.seed)
    # DeepSeekMath eq. 3: A = (r - mean(r)) / std(r) over the whole group, not leave-one-out.
    gr["use_leave_one_out_baseline"] = False
    gr["normalize_rewards"] = g.advantage_scaling == "std"
    gr["overlong_filtering"] = g.truncated == "mask"
    loss = cfg["loss_fn"]
    loss["reference_policy_kl_penalty"] = float(g.kl_penalty)
    loss["reference_policy_kl_type"] = g.kl_type
    loss["ratio_clip_min"] = float(g.ratio_clip_min)
    loss["ratio_clip_max"] = float(g.ratio_clip_max)
    loss["token_level_loss"] = g.loss_aggregation == "token"

    policy = cfg["policy"]
    policy["model_name"] = literal(model_name(job, pipeline, tr))
    # outputs per optimizer step (unset: the whole rollout, one optimizer step per rollout)
    policy["train_global_batch_size"] = int(g.train_global_batch_size or g.rollout_size)
    policy["train_micro_batch_size"] = int(g.micro_batch_size)
    policy["max_total_sequence_length"] = int(g.max_prompt_tokens + g.max_completion_tokens)
    cfg["data"]["max_input_seq_length"] = int(g.max_prompt_tokens)
    gen = policy["generation"]
    gen["temperature"] = float(g.temperature)
    gen["top_p"] = float(g.top_p)
    gen["max_new_tokens"] = int(g.max_completion_tokens)
    gen["vllm_cfg"]["tensor_parallel_size"] = int(stage.resources.tensor_parallel)
    # NeMo-RL generates with vLLM whatever `rollout.engine` says; the engine's memory share is the recipe's
    gen["vllm_cfg"]["gpu_memory_utilization"] = float(stage.rollout.gpu_memory_utilization)
    if stage.rollout.max_model_len is not None:
        gen["vllm_cfg"]["max_model_len"] = int(stage.rollout.max_model_len)
    optimizer_keys(job, policy, int(rollouts), decay_steps(job, rollouts))
    parallel_keys(job, pipeline, cfg, tr)
    rollout_placement(job, pipeline, cfg, tr)
    checkpoint_and_logger_keys(job, pipeline, cfg, g.checkpoint_every // per_rollout)
    data_blocks(job, pipeline, cfg, tr)
    validates = cfg["data"]["validation"] is not None
    gr["val_period"] = int(g.checkpoint_every // per_rollout) if validates else 0
    gr["val_at_start"] = False
    gr["val_at_end"] = validates
    cfg["env"]["math"]["num_workers"] = int(cfg["env"]["math"]["num_workers"])

    if g.loss_aggregation == "constant":
        warn.append(f"stage `{stage.name}`: loss_aggregation = \"constant\" (Dr. GRPO) has no NeMo-RL key; "
                    "the config uses sequence-level averaging (token_level_loss: false)")
    if g.reference_refresh_steps:
        warn.append(f"stage `{stage.name}`: reference_refresh_steps = {g.reference_refresh_steps} (R1-Zero resets "
                    "the reference every 400 steps) has no NeMo-RL key: the reference stays the initial policy")
    if per_rollout > 1 and stage.optim.warmup_steps:
        warn.append(f"stage `{stage.name}`: NeMo-RL steps its lr scheduler once per rollout, not once per optimizer "
                    f"step: warmup_steps = {stage.optim.warmup_steps} counts rollouts there ({per_rollout} optimizer "
                    "steps each)")
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
        warn.append(f"stage `{stage.name}`: rewards are routed per dataset (route {{ ... }}); NeMo-RL's math "
                    "environment scores every dataset it trains on")
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


def sft_config(job: StageJob, pipeline: Pipeline) -> Translation:
    stage, t = job.stage, job.stage.train
    cfg = reference_config("sft")
    tr = Translation("sft", cfg)
    s = cfg["sft"]
    s["seed"] = int(t.seed)
    s["val_period"] = 0
    s["val_at_start"] = False
    s["val_at_end"] = False
    policy = cfg["policy"]
    policy["model_name"] = literal(model_name(job, pipeline, tr))
    policy["train_global_batch_size"] = int(t.batch_size)
    policy["train_micro_batch_size"] = int(min(t.micro_batch_size, t.batch_size))
    policy["max_total_sequence_length"] = int(t.max_seq_len)
    parallel_keys(job, pipeline, cfg, tr)
    checkpoint_and_logger_keys(job, pipeline, cfg, t.checkpoint_every)
    # No validation set: keep the best checkpoints by training loss.
    cfg["checkpointing"]["metric_name"] = "train:loss"
    cfg["checkpointing"]["higher_is_better"] = False
    data_blocks(job, pipeline, cfg, tr)
    if t.epochs:
        # NeMo-RL stops at min(max_num_steps, max_num_epochs x batches per epoch); the schedule must end
        # there too, so the run script counts the rows and exports the step counts (nemo_rl_run.sh).
        s["max_num_epochs"] = int(t.epochs)
        s["max_num_steps"] = TOTAL_STEPS
        optimizer_keys(job, policy, TOTAL_STEPS, DECAY_STEPS)
        hub = [n for n in stage.data if pipeline.recipe.datasets[n].source == "hf"]
        if hub:
            tr.refuse(job, f"train.epochs = {t.epochs} over hub dataset(s) {hub}: the schedule's length needs the row "
                           "count, which the run script cannot count for a hub dataset",
                      "set train.steps instead of train.epochs, or use a local jsonl/parquet copy")
    else:
        s["max_num_epochs"] = int(t.steps)  # each epoch has at least one step: `steps` decides
        s["max_num_steps"] = int(t.steps)
        optimizer_keys(job, policy, int(t.steps), decay_steps(job, t.steps))
    return tr


def translate(job: StageJob, pipeline: Pipeline) -> Translation:
    tr = grpo_config(job, pipeline) if NEMO_KINDS[job.stage.kind] == "grpo" else sft_config(job, pipeline)
    launch_checks(job, pipeline, tr)
    return tr


# ---------------------------------------------------------------- launching through ray.sub


def mounts(pipeline: Pipeline, trs: list[Translation]) -> list[str]:
    """Host folders the NeMo-RL containers see at the same path: the run folder, data files and local models
    outside it, the HF cache, and a host NeMo-RL checkout named by $NEMO_RL_DIR."""
    run = pipeline.run_dir
    folders = {run} | {m for tr in trs for m in tr.mounts}
    if os.path.isdir(hf_home()):  # pyxis fails the job on a mount whose source folder does not exist
        folders.add(hf_home())
    if os.environ.get("NEMO_RL_DIR") and os.path.isdir(os.environ["NEMO_RL_DIR"]):
        folders.add(os.path.abspath(os.environ["NEMO_RL_DIR"]))
    inside = {f for f in folders if any(f != g and f.startswith(g.rstrip("/") + "/") for g in folders)}
    return sorted(folders - inside)


def launch_checks(job: StageJob, pipeline: Pipeline, tr: Translation) -> None:
    """What ray.sub needs of the stage: an account and partition, and values it can pass to srun as one word each."""
    res = job.stage.resources
    account, partition = slurm_account(job), slurm_partition(job)
    if not account or not partition:
        tr.refuse(job, "NeMo-RL's ray.sub needs a SLURM account and partition: its `#SBATCH --account=ACCOUNT` and "
                       "`--partition=PARTITION` placeholders stay in force otherwise, and it passes both to srun",
                  f"set resources.account and resources.partition (e.g. --set {job.stage.name}.resources.account=NAME), "
                  "or SBATCH_ACCOUNT and SBATCH_PARTITION when compiling")
    for what, value, pattern in (("the partition", partition, _SLURM_NAME),
                                 ("the account", account, _SLURM_NAME),
                                 ("the container image", container_image(job), _IMAGE_WORD)):
        if value and not pattern.fullmatch(value):
            tr.refuse(job, f"{what} {value!r} holds characters ray.sub would split or expand: it passes it to srun "
                           "unquoted", f"use only the characters {pattern.pattern}")
    for folder in sorted({pipeline.run_dir, *mounts(pipeline, [tr])}):
        if not _PATH_WORD.fullmatch(folder):
            what = "the run folder" if folder == pipeline.run_dir else "mounted folder"
            tr.refuse(job, f"{what} {folder!r} holds characters ray.sub would split or expand: it passes mounts and "
                           "the submit folder to srun unquoted (--container-mounts, --container-workdir, -o)",
                      f"use a path of the characters {_PATH_WORD.pattern} (no blanks, quotes, `$`, `,` or `:`)")


def run_script_values(job: StageJob, pipeline: Pipeline, tr: Translation, config: Path) -> dict[str, Any]:
    """Everything templates/nemo_rl/stage_run.sh.j2 renders (the template holds no logic)."""
    t = job.stage.train
    epochs = bool(tr.algorithm == "sft" and t.epochs)
    return {
        "stage_dir": str(Path(job.dir)),
        "config": str(config),
        "checkpoint_dir": str(Path(job.dir) / "checkpoints"),
        "nemo_rl_dir": nemo_rl_dir(),
        "hf_home": hf_home(),
        "entry_point": ENTRY_POINTS[tr.algorithm],
        "backend": tr.backend,
        "converter": CONVERTERS[tr.backend],
        "uv_extra": ["--extra", "mcore"] if tr.backend == "megatron" else [],
        "hf_export": needs_hf_export(job, pipeline),
        "megatron_weights": str(Path(job.dir) / MEGATRON_WEIGHTS) if tr.backend == "megatron" else "",
        # the step count of a finished run (NeMo-RL names checkpoints step_<steps done> and always saves the last)
        "max_steps": "$R1DSL_TOTAL_STEPS" if epochs else int(tr.config[tr.algorithm]["max_num_steps"]),
        "row_files": tr.row_files if epochs else [],
        "epochs": int(t.epochs or 0) if epochs else 0,
        "batch_size": int(t.batch_size),
        "warmup": max(1, job.stage.optim.warmup_steps),
        "hub_extracts": [(hub, split, json.dumps(columns), path) for hub, split, columns, path in tr.hub_extracts],
        "limit_s": int(job.stage.resources.time_limit_min * 60),
        "save_lead_s": save_lead_s(job),
    }


def sbatch_options(job: StageJob, pipeline: Pipeline, gpus: int) -> list[str]:
    """ray.sub's sbatch options; they override its `#SBATCH` lines (nodes, job name, time, account, partition)."""
    res = job.stage.resources
    options = [
        f"--job-name={slurm.label(pipeline.recipe.name)}.{slurm.label(job.stage.name)}",
        f"--nodes={res.nodes}",
        f"--time={res.time_limit_min}",
        f"--output={slurm.slurm_path(job.dir)}/slurm-%j.out",
        "--open-mode=append",
        "--requeue",  # ray.sub keeps each restart's logs apart; the run script resumes and skips what is done
        "--kill-on-invalid-dep=yes",
        "--exclusive",
        f"--gres=gpu:{gpus}",
    ]
    options.append(f"--partition={slurm_partition(job)}")
    options.append(f"--account={slurm_account(job)}")
    return options


def emit_nemo_stage(job: StageJob, pipeline: Pipeline, tr: Translation, ray_sub: Path,
                    mount_list: list[str]) -> tuple[list[Path], slurm.Submission]:
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
    run_script = slurm.write_script(stage_dir / "nemo_rl_run.sh",
                                    render("nemo_rl/stage_run.sh.j2", **run_script_values(job, pipeline, tr, config)))
    written.append(run_script)

    gpus = tr.config["cluster"]["gpus_per_node"]
    env = {
        "COMMAND": f"bash {shell_quote(run_script)}",  # ray.sub writes COMMAND to a file the head runs with bash
        "CONTAINER": container_image(job),
        "MOUNTS": ",".join(f"{m}:{m}" for m in mount_list),
        "GPUS_PER_NODE": str(gpus),
    }
    submission = slurm.Submission(
        index=slurm.job_index(pipeline)[job.stage.name],
        name=job.stage.name,
        label=f"{slurm.label(job.stage.name)} ({slurm.label(job.stage.kind)}, NeMo-RL)",
        done=str(stage_dir / "DONE"),
        after=slurm.after_indices(job, pipeline),
        args=(*sbatch_options(job, pipeline, gpus), str(ray_sub)),
        prefix=("env", *(f"{k}={v}" for k, v in env.items())),
    )
    return written, submission


def to_yaml(cfg: dict[str, Any], header: str) -> str:
    from omegaconf import OmegaConf

    return header + OmegaConf.to_yaml(OmegaConf.create(cfg))


def translations(pipeline: Pipeline) -> dict[str, Translation]:
    return {job.stage.name: translate(job, pipeline) for job in pipeline.jobs if runs_on_nemo_rl(job)}


def refusals(pipeline: Pipeline) -> list[Refusal]:
    """What the target will not emit (the CLI prints these and writes nothing)."""
    trs = translations(pipeline)
    found: list[Any] = [r for tr in trs.values() for r in tr.refusals]
    found += slurm.refusals(pipeline, [job for job in pipeline.jobs if not runs_on_nemo_rl(job)])
    return list(dict.fromkeys(found))


def emit(pipeline: Pipeline) -> list[Path]:
    """Write NeMo-RL configs and run scripts for grpo/sft/distill stages, sbatch scripts for the others."""
    trs = translations(pipeline)
    refused = refusals(pipeline)
    if refused:
        raise TargetError(refused)
    written: list[Path] = []
    submissions: list[slurm.Submission] = []
    ray_sub = Path(pipeline.run_dir) / "ray.sub"
    if trs:
        ray_sub.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RAY_SUB, ray_sub)
        written.append(ray_sub)
    mount_list = mounts(pipeline, list(trs.values()))
    for job in pipeline.jobs:
        if runs_on_nemo_rl(job):
            paths, submission = emit_nemo_stage(job, pipeline, trs[job.stage.name], ray_sub, mount_list)
        else:
            paths, submission = slurm.emit_stage(job, pipeline)
        written += paths
        submissions.append(submission)
    written.append(slurm.write_submit_script(pipeline, submissions))
    return written


def unsupported(pipeline: Pipeline) -> list[str]:
    """Recipe features with no NeMo-RL equivalent, one warning each (the compiler prints them)."""
    warnings: list[str] = []
    trs = translations(pipeline)
    for job in pipeline.jobs:
        if runs_on_nemo_rl(job):
            warnings += trs[job.stage.name].warnings
        else:
            warnings.append(f"stage `{job.stage.name}`: NeMo-RL has no {job.stage.kind} stage; it runs on r1dsl's "
                            "own backend (python -m backends.run_stage) in the same SLURM chain")
    return list(dict.fromkeys(warnings))


def runtime_table(pipeline: Pipeline) -> str:
    """What runs each stage under this target (for `r1dsl plan --target nemo-rl`): entry point, training and
    generation engines, and vLLM's memory per GPU (plan.vllm_room) for the generation of NeMo-RL stages."""
    from r1dsl.plan import GPU_MEMORY_GB, GiB, vllm_room

    trs = translations(pipeline)
    lines = [f"on NeMo-RL {NEMO_RL_VERSION} (GPUs of {GPU_MEMORY_GB:.0f} GiB):"]
    for job in pipeline.jobs:
        name, res = job.stage.name, job.stage.resources
        if not runs_on_nemo_rl(job):
            lines.append(f"  {name}: r1dsl backend (python -m backends.run_stage in job.sbatch), "
                         f"{res.nodes} x {res.gpus_per_node} ranks, engine {job.stage.rollout.engine}")
            arch = architecture(job, pipeline)
            if arch is not None and res.gpus_per_node and 2 * arch.params / GiB > GPU_MEMORY_GB:
                lines.append(f"    ! every rank loads the whole model: {arch.params / 1e9:,.0f}B parameters x 2 bytes "
                             f"(bf16) = {2 * arch.params / GiB:,.0f} GiB per GPU, more than {GPU_MEMORY_GB:.0f}: "
                             "this stage cannot run at this scale on this target (issue 23 item 1)")
            continue
        tr = trs[name]
        policy = tr.config["policy"]
        m = policy["megatron_cfg"]
        layout = (f"Megatron TP {m['tensor_model_parallel_size']} x PP {m['pipeline_model_parallel_size']} x CP "
                  f"{m['context_parallel_size']}" + (f", EP {m['expert_model_parallel_size']}" if
                                                     m.get("expert_model_parallel_size", 1) > 1 else "")
                  if tr.backend == "megatron" else f"DTensor TP {policy['dtensor_cfg']['tensor_parallel_size']}")
        start = (f"from {policy['pretrained_checkpoint']['path']} (Megatron)" if "pretrained_checkpoint" in policy
                 else f"from {policy['model_name']}")
        lines.append(f"  {name}: {ENTRY_POINTS[tr.algorithm]} through ray.sub; training {layout}; {start}")
        arch = architecture(job, pipeline)
        if tr.algorithm == "grpo" and arch is not None:
            gen = policy["generation"]
            vllm = gen["vllm_cfg"]
            mp = res.tensor_parallel * res.pipeline_parallel
            room = vllm_room(arch, tp=int(vllm["tensor_parallel_size"]), pp=1,
                             max_len=int(policy["max_total_sequence_length"]),
                             utilization=float(vllm["gpu_memory_utilization"]),
                             trainer_mp=mp if gen["colocated"]["enabled"] else 0)
            lines.append(f"    generation: vLLM TP {vllm['tensor_parallel_size']}, "
                         f"{'colocated' if gen['colocated']['enabled'] else 'own GPUs'}: {room}")
    return "\n".join(lines)


def run(pipeline: Pipeline, dry_run: bool = False) -> int:
    """Emit, then run submit.sh (NeMo-RL stages through ray.sub, the others through our sbatch scripts)."""
    return slurm.run_submit(pipeline, emit, dry_run)


def batch_arithmetic(cfg: dict[str, Any]) -> bool:
    """GRPO: a rollout of num_prompts_per_step x G outputs splits into optimizer steps of train_global_batch_size."""
    g = cfg["grpo"]
    return (g["num_prompts_per_step"] * g["num_generations_per_prompt"]) % cfg["policy"]["train_global_batch_size"] == 0
