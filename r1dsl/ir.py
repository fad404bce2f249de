"""The checked, frozen intermediate representation of a recipe.

Every backend reads these types (or the YAML compiled from them) and never a parse tree.
Field metadata is the schema: the checker validates each field from its `metadata`
(`min`, `max`, `min_exclusive`, `choices`, `doc`), so adding a knob is one field here.
Units live in names (`lr`, `max_completion_tokens`, `time_limit_min`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from r1dsl.settings import LIMITS, SEED_MAX, Param, knob  # noqa: F401  (the settings vocabulary; Param for reward rules)


@dataclass(frozen=True)
class Span:
    file: str
    line: int
    col: int
    end_line: int
    end_col: int


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class TinyModelConfig:
    """A small transformers architecture built from a config, for the embedded default."""

    arch: str = knob("qwen2", "transformers architecture", choices=("qwen2", "llama"))
    hidden_size: int = knob(128, "width", min=8, max=1 << 16)
    num_layers: int = knob(4, "depth", min=1, max=1024)
    num_heads: int = knob(4, "attention heads", min=1, max=1024)
    intermediate_size: int = knob(512, "MLP width", min=8, max=1 << 18)
    vocab_size: int = knob(512, "size of the locally trained tokenizer", min=64, max=1 << 20)
    max_position_embeddings: int = knob(512, "longest sequence", min=16, max=1 << 20)


@dataclass(frozen=True)
class Model:
    name: str
    source: str  # "tiny" | "hf" (hub id) | "local" (a directory with config.json)
    path: str | None = None
    tiny: TinyModelConfig | None = None
    span: Span | None = None


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # "generator" | "jsonl" | "parquet" | "hf" | "stage" (an earlier stage's output)
    generator: str | None = None  # arithmetic | countdown | code | chat | corpus
    path: str | None = None  # file, hub name, or producing stage name when source == "stage"
    split: str = "train"
    size: int | None = None  # rows to generate or to take
    seed: int = 0
    fields: Mapping[str, str] = field(default_factory=dict)  # canonical name -> column in the file
    params: Mapping[str, Any] = field(default_factory=dict)  # generator parameters (difficulty, ...)
    provides: tuple[str, ...] = ()  # canonical fields a row carries: prompt, answer, tests, response, ...
    span: Span | None = None
    eval_samples_per_prompt: int | None = knob(
        None, "k completions per prompt when this set is evaluated (pass@1 over k, pass@k, cons@k); default: the "
        "stage's sampling.samples_per_prompt. The paper's k: 64 for AIME and GPQA, 16 for MATH-500, 8 for "
        "LiveCodeBench [V2 D.1]", min=1, max=1024)


@dataclass(frozen=True)
class Template:
    name: str
    text: str  # contains "{prompt}"
    span: Span | None = None


@dataclass(frozen=True)
class ModelRef:
    """A reward parameter that names a declared model (a judge, a reward model); compiled to its path or hub id."""

    model: str


@dataclass(frozen=True)
class StageModel:
    """A reward parameter that names an earlier stage: that stage's `model/` folder (a judge, a reward model)."""

    stage: str


@dataclass(frozen=True)
class Reward:
    """One weighted reward rule; `datasets` routes it (empty: every dataset of the stage)."""

    name: str
    rule: str  # key in the reward registry
    weight: float = 1.0
    params: Mapping[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()
    span: Span | None = None


# ---------------------------------------------------------------- stage settings


@dataclass(frozen=True)
class Resources:
    nodes: int = knob(1, "machines", min=1, max=100_000)
    gpus_per_node: int = knob(0, "GPUs per machine (0: CPU)", min=0, max=1024)
    tensor_parallel: int = knob(1, "tensor-parallel size", min=1, max=1024)
    pipeline_parallel: int = knob(1, "pipeline-parallel size", min=1, max=1024)
    rollout_gpus: int = knob(0, "GPUs reserved for generation (0: colocated)", min=0, max=1 << 20)
    cpu_processes: int = knob(1, "processes per node when gpus_per_node is 0 (DDP on gloo)", min=1, max=1024)
    time_limit_min: int = knob(60, "wall-clock limit of the stage's job", min=1, max=525_600)
    partition: str | None = knob(None, "SLURM partition")
    account: str | None = knob(None, "SLURM account")
    container_image: str | None = knob(None, "container image the SLURM stage runs in (see container_runtime)")
    container_runtime: str = knob("pyxis", "how a SLURM stage runs container_image: pyxis/enroot (srun "
                                  "--container-image) or apptainer (apptainer exec)", choices=("pyxis", "apptainer"))
    checkpoint_before_limit_s: int = knob(300, "SLURM: seconds before time_limit_min at which the job checkpoints and "
                                          "requeues itself (at most half the limit)", min=30, max=525_600 * 30)
    precision: str = knob(
        "auto", "training precision: bf16-mixed (fp32 master weights, bf16 autocast), bf16-true (weights, grads and "
        "optimizer states in bf16), 32-true; auto: bf16-mixed on GPU, 32-true on CPU",
        choices=("auto", "bf16-mixed", "bf16-true", "32-true"),
    )
    sharding: str = knob(
        "none", "none: every rank holds the whole model (DDP); fsdp: FSDP2, parameters, gradients and optimizer "
        "states sharded over the data-parallel ranks, one fully_shard unit per decoder layer", choices=("none", "fsdp"),
    )
    gradient_checkpointing: bool = knob(False, "recompute each decoder layer's activations in backward (less memory)")

    @property
    def processes_per_node(self) -> int:
        """Processes a stage runs on each machine: one per GPU, else cpu_processes (computed here only)."""
        return self.gpus_per_node if self.gpus_per_node > 0 else self.cpu_processes

    @property
    def world_size(self) -> int:
        """All the stage's processes (rollout GPUs included)."""
        return self.processes_per_node * self.nodes


@dataclass(frozen=True)
class Optim:
    lr: float = knob(1e-4, "peak learning rate", min_exclusive=0.0, max=10.0)
    min_lr_ratio: float = knob(0.1, "cosine floor as a fraction of lr", min=0.0, max=1.0)
    lr_schedule: str = knob("cosine", "learning-rate schedule", choices=("cosine", "constant", "linear"))
    warmup_steps: int = knob(0, "linear warm-up steps", min=0, max=10**9)
    weight_decay: float = knob(0.0, "AdamW weight decay", min=0.0, max=100.0)
    max_grad_norm: float = knob(1.0, "gradient clipping", min_exclusive=0.0, max=1e6)


@dataclass(frozen=True)
class Train:
    """Settings shared by pretrain, sft and distill."""

    steps: int = knob(100, "optimizer steps", min=1, max=10**9)
    epochs: int | None = knob(None, "passes over the data (overrides steps when set)", min=1, max=10**6)
    batch_size: int = knob(16, "sequences per optimizer step (global)", min=1, max=1 << 20)
    micro_batch_size: int = knob(16, "sequences per forward pass per process", min=1, max=1 << 20)
    max_seq_len: int = knob(256, "tokens per sequence", min=8, max=1 << 20)
    checkpoint_every: int = knob(50, "steps between checkpoints", min=1, max=10**9)
    seed: int = knob(0, "random seed", min=0, max=SEED_MAX)


@dataclass(frozen=True)
class GRPO:
    """GRPO as in DeepSeekMath eq. 3; names follow NeMo-RL where a term exists."""

    num_generations_per_prompt: int = knob(8, "group size G", min=2, max=1024)
    num_prompts_per_step: int = knob(8, "questions per rollout (NeMo-RL's num_prompts_per_step: its step is one "
                                     "rollout); the rollout holds num_prompts_per_step x G outputs", min=1, max=1 << 20)
    train_global_batch_size: int | None = knob(
        None, "outputs per optimizer step, as NeMo-RL's policy.train_global_batch_size (verl: ppo_mini_batch_size x G; "
        "TRL: rollout / steps_per_generation): the rollout is split into mini-batches of this many outputs (whole "
        "groups), one optimizer step each, the later ones off-policy (the ratio and its clip act); unset: the whole "
        "rollout, one optimizer step per rollout", min=2, max=1 << 30)
    micro_batch_size: int = knob(16, "sequences per forward/backward", min=1, max=1 << 20)
    steps: int = knob(100, "optimizer steps, as the papers count them (a rollout makes mini_batches x inner_epochs "
                      "of them); also the unit of checkpoint_every, reference_refresh_steps and the lr schedule",
                      min=1, max=10**9)
    kl_penalty: float = knob(0.001, "beta, the KL coefficient", min=0.0, max=1000.0)
    kl_type: str = knob("k3", "KL estimator", choices=("k1", "k2", "k3"))
    ratio_clip_min: float = knob(0.2, "epsilon low", min_exclusive=0.0, max=100.0)
    ratio_clip_max: float = knob(0.2, "epsilon high", min_exclusive=0.0, max=100.0)
    loss_aggregation: str = knob(
        "sequence", "sequence (paper), token (DAPO) or constant (Dr. GRPO)", choices=("sequence", "token", "constant")
    )
    advantage_scaling: str = knob("std", "divide by group std, or not (Dr. GRPO)", choices=("std", "none"))
    inner_epochs: int = knob(1, "passes over each rollout's mini-batches (PPO epochs)", min=1, max=1000)
    temperature: float = knob(1.0, "rollout temperature", min_exclusive=0.0, max=100.0)
    top_p: float = knob(1.0, "rollout nucleus", min_exclusive=0.0, max=1.0)
    max_prompt_tokens: int = knob(128, "longest prompt", min=1, max=1 << 20)
    max_completion_tokens: int = knob(64, "longest completion", min=1, max=1 << 20)
    reference_refresh_steps: int | None = knob(None, "replace the reference by the policy every N steps", min=1, max=10**9)
    truncated: str = knob("keep", "completions cut at the length limit", choices=("keep", "mask", "penalize"))
    checkpoint_every: int = knob(25, "steps between checkpoints", min=1, max=10**9)
    seed: int = knob(0, "random seed", min=0, max=SEED_MAX)

    @property
    def rollout_size(self) -> int:
        """Outputs per rollout: num_prompts_per_step x G."""
        return self.num_prompts_per_step * self.num_generations_per_prompt

    @property
    def mini_batches(self) -> int:
        """Optimizer steps per pass over a rollout (TRL's steps_per_generation); the checker makes it exact."""
        return self.rollout_size // (self.train_global_batch_size or self.rollout_size)

    @property
    def updates_per_rollout(self) -> int:
        """Optimizer steps per rollout: mini_batches x inner_epochs; `steps` counts these."""
        return self.mini_batches * self.inner_epochs


@dataclass(frozen=True)
class Sampling:
    """Generation for rejection sampling and evaluation."""

    samples_per_prompt: int = knob(4, "k completions per prompt (an eval set's eval_samples_per_prompt wins)",
                                   min=1, max=1024)
    temperature: float = knob(0.6, "sampling temperature (0: greedy); evaluation reports pass@1 over k samples at "
                              "this temperature (the paper: 0.6, top-p 0.95 [V2 D.1])", min=0.0, max=100.0)
    top_p: float = knob(0.95, "nucleus", min_exclusive=0.0, max=1.0)
    max_completion_tokens: int = knob(64, "longest completion", min=1, max=1 << 20)
    max_prompts: int | None = knob(None, "take at most this many prompts", min=1, max=10**9)
    seed: int = knob(0, "random seed", min=0, max=SEED_MAX)


@dataclass(frozen=True)
class Rollout:
    """Which engine generates completions: GRPO groups, rejection samples and evaluation.

    `engine` is NeMo-RL's `policy.generation.backend` (TRL: `use_vllm`); the vLLM settings keep the names
    NeMo-RL's `generation.vllm_cfg` and TRL's `vllm_*` options use.
    """

    engine: str = knob("hf", "hf: our batched sampler on the policy itself; vllm: a colocated vLLM engine that gets "
                       "the policy's weights after every optimizer step", choices=("hf", "vllm"))
    gpu_memory_utilization: float = knob(0.5, "vllm on GPUs: the fraction of GPU memory the engine takes (weights + "
                                         "KV cache); the rest is the trainer's", min_exclusive=0.0, max=1.0)
    cpu_kv_cache_gb: int = knob(2, "vllm on CPUs: GiB for the engine's KV cache (VLLM_CPU_KVCACHE_SPACE)",
                               min=1, max=1 << 16)
    max_model_len: int | None = knob(None, "vllm: longest prompt + completion (default: the model's "
                                     "max_position_embeddings)", min=16, max=1 << 20)
    enforce_eager: bool = knob(True, "vllm: no CUDA graphs or compilation (faster start, slower decode on GPUs)")


@dataclass(frozen=True)
class RejectionFilters:
    finished: bool = knob(True, "drop completions cut at the length limit before they stopped")
    correct: bool = knob(True, "keep only completions the rule rewards call correct")
    format: bool = knob(True, "keep only well-formatted completions")
    language: float | None = knob(None, "minimum language-consistency score", min=0.0, max=1.0)
    code_blocks: bool = knob(False, "drop chains of thought that contain a fenced code block (```)")
    max_paragraph_chars: int | None = knob(None, "drop chains of thought with a paragraph (text between blank lines) "
                                           "longer than this many characters", min=1, max=1 << 24)
    repetition: float | None = knob(None, "drop chains of thought in which at least this fraction of the 4-word windows "
                                    "repeat an earlier one", min_exclusive=0.0, max=1.0)
    judge: str | None = knob(None, "reward name of a judge whose verdict must pass")
    max_completion_tokens: int | None = knob(None, "drop longer completions", min=1, max=1 << 20)
    dedup: bool = knob(True, "drop duplicate completions per prompt")
    keep_per_prompt: int | None = knob(None, "keep at most this many per prompt", min=1, max=1024)


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str  # pretrain | sft | grpo | rejection_sample | distill | eval
    init: str  # a model name or an earlier stage's name
    init_is_stage: bool
    data: tuple[str, ...]  # dataset names (a stage-sourced dataset names its producer)
    template: str | None = None
    data_from_step: Mapping[str, int] = field(default_factory=dict)  # grpo: dataset -> the step it joins the pool
    rewards: tuple[Reward, ...] = ()
    optim: Optim = field(default_factory=Optim)
    train: Train = field(default_factory=Train)
    grpo: GRPO | None = None
    sampling: Sampling | None = None
    filters: RejectionFilters | None = None
    rollout: Rollout = field(default_factory=Rollout)
    resources: Resources = field(default_factory=Resources)
    eval_data: tuple[str, ...] = ()  # held-out sets evaluated after training
    after: tuple[str, ...] = ()  # stages this one reads from (derived: init and stage-sourced data)
    student_of: str | None = None  # distill: the declaration this job was expanded from
    span: Span | None = None

    def data_schedule(self) -> list[str]:
        """One line per dataset that joins a grpo stage's prompt pool late (what graph and plan show)."""
        steps = self.grpo.steps if self.grpo else None
        return [f"{ds} from step {n}" + (f" of {steps} (the last {steps - n})" if steps else "")
                for ds, n in sorted(self.data_from_step.items(), key=lambda kv: (kv[1], kv[0])) if n > 0]


@dataclass(frozen=True)
class Recipe:
    name: str
    file: str
    models: Mapping[str, Model]
    datasets: Mapping[str, Dataset]
    templates: Mapping[str, Template]
    rewards: Mapping[str, Reward]
    stages: tuple[Stage, ...]  # in a valid run order

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


# ---------------------------------------------------------------- compiled jobs


@dataclass(frozen=True)
class StageJob:
    """One stage compiled: what a launcher needs to write and submit its script."""

    stage: Stage
    config: Mapping[str, Any]  # the content of <dir>/config.yaml
    dir: str  # absolute stage folder
    config_hash: str  # content hash of the resolved config, its inputs' hashes and the code version


@dataclass(frozen=True)
class Pipeline:
    recipe: Recipe
    run_dir: str  # absolute
    target: str  # local | slurm | nemo-rl
    jobs: tuple[StageJob, ...]  # in run order
