"""`r1dsl plan RECIPE`: what each stage costs before anything is submitted.

Per stage: GPUs and their layout (data x tensor x pipeline parallel), memory per GPU (weights,
gradients, Adam states, activations, the rollout KV cache), tokens processed, FLOPs and GPU-hours
at a stated utilisation. A stage that cannot fit in GPU memory is an error.

The model of memory, stated once (bytes per parameter N, sharded over the model-parallel group
mp = tensor_parallel * pipeline_parallel, and the Adam states also over the data-parallel group dp,
as Megatron's distributed optimizer and NeMo-RL's FSDP2 do):

    weights      2 N / mp            bf16 (a GRPO stage with kl_penalty > 0 holds a reference copy too)
    gradients    2 N / mp            bf16
    Adam         12 N / (mp dp)      fp32 master weights, first and second moments
    activations  full recomputation: the checkpointed input of every layer on this pipeline stage,
                 one layer's working set (34 bytes per token per hidden unit, Korthikanti et al. 2022,
                 flash attention) and the fp32 logits, for one micro-batch, divided by tp
    KV cache     rollout stages: 2 (K, V) x layers x kv_heads x head_dim x 2 bytes per token (MLA: the
                 512 + 64 latent per layer), for every sequence in flight on one generation replica
                 (the whole rollout batch spread over replicas, at most 256 sequences each, as vLLM)

Colocated generation (rollout_gpus = 0) offloads the training state while it generates (NeMo-RL,
veRL): the peak is the larger of the two phases. Every sequence counts at its maximum length, so
tokens, FLOPs and hours are upper bounds. FLOPs: 6 N per trained token, 2 N per generated or
scored token (N = active parameters for MoE), plus causal attention, layers x attn_dim x L^2 per
forward pass of a sequence of length L (three times that to train). Hours: training, scoring and
prefill run at TRAIN_MFU of the bf16 peak, decoding (memory-bound) at GENERATION_MFU. Torch-free.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from r1dsl.ir import Model, Recipe, Stage, TinyModelConfig
from r1dsl.kinds import KINDS

GiB = 1024**3
PEAK_BF16_FLOPS = 989e12  # H100 / H800 SXM, dense bf16
TRAIN_MFU = 0.40  # model FLOPs utilisation of training steps
GENERATION_MFU = 0.10  # decoding is memory-bound: a tenth of peak is typical for vLLM at long lengths
GPU_MEMORY_GB = 80.0  # GiB: H100 / H800 / A100 80GB
MAX_SEQS_PER_REPLICA = 256  # vLLM's default max_num_seqs
ASSUMED_PROMPT_TOKENS = 512  # rejection sampling and eval name no prompt length
# Row counts of public single-split benchmarks, for eval stages whose datasets give no `size`.
KNOWN_DATASET_ROWS = {"HuggingFaceH4/aime_2024": 30, "HuggingFaceH4/MATH-500": 500}


@dataclass(frozen=True)
class Arch:
    """What the plan needs of an architecture."""

    name: str
    params: float  # total parameters
    active_params: float  # per token (MoE: shared + routed experts used)
    layers: int
    hidden: int
    kv_bytes_per_token: float  # bf16 K and V of every layer (MLA: the compressed latent)
    vocab: int
    attn_dim: int  # heads x (query-key dim + value dim): causal attention costs layers x attn_dim x L^2 per sequence
    heads: int = 0  # attention heads (tensor parallelism splits them: TP must divide this)
    kv_heads: int = 0  # key-value heads (Megatron's num_query_groups, which TP must divide too)
    experts: int = 0  # routed experts per MoE layer (0: dense)


def _gqa_kv(layers: int, kv_heads: int, head_dim: int) -> float:
    return 2 * layers * kv_heads * head_dim * 2


def _dense(name, params, layers, hidden, kv_heads, head_dim, vocab, heads) -> Arch:
    return Arch(name, params, params, layers, hidden, _gqa_kv(layers, kv_heads, head_dim), vocab, heads * 2 * head_dim,
                heads, kv_heads)


# Published configurations (config.json of each model on the Hugging Face hub); no network needed.
KNOWN_ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        _dense("qwen2.5-1.5b", 1.54e9, 28, 1536, 2, 128, 151936, heads=12),
        _dense("qwen2.5-7b", 7.62e9, 28, 3584, 4, 128, 152064, heads=28),
        _dense("qwen2.5-14b", 14.7e9, 48, 5120, 8, 128, 152064, heads=40),
        _dense("qwen2.5-32b", 32.8e9, 64, 5120, 8, 128, 152064, heads=40),
        _dense("llama-3.1-8b", 8.03e9, 32, 4096, 8, 128, 128256, heads=32),
        _dense("llama-3.3-70b", 70.6e9, 80, 8192, 8, 128, 128256, heads=64),
        # MoE with multi-head latent attention: 671B total, 37B active; KV cache = 61 x (512 + 64) bf16;
        # 128 heads, query-key dim 192 (128 + 64 rope), value dim 128.
        # 256 routed experts per MoE layer (config.json n_routed_experts).
        Arch("deepseek-v3", 671e9, 37e9, 61, 7168, 61 * (512 + 64) * 2, 129280, 128 * (192 + 128), 128, 128, 256),
    )
}


VLLM_OVERHEAD_GIB = 2.0  # vLLM's profile-run activations, CUDA graphs and NCCL buffers per GPU (an estimate)
VLLM_UTILIZATION_STEP = 0.05  # a chosen gpu_memory_utilization is rounded up to this
VLLM_MAX_UTILIZATION = 0.95


@dataclass(frozen=True)
class VllmRoom:
    """Memory per GPU of a vLLM engine colocated with a trainer (GiB), against gpu_memory_utilization x capacity.

    vLLM takes `utilization` of the card for its weights, its overhead and the KV cache, and refuses to start
    when weights + overhead leave no KV block for one sequence of max_model_len. The trainer's resident share
    (its bf16 weights, kept while vLLM generates; optimizer states are offloaded) must fit in the rest.
    """

    utilization: float
    capacity_gib: float
    weights_gib: float  # bf16 weights / (vLLM TP x PP)
    kv_gib: float  # one sequence of max_model_len (not divided over TP: an upper bound, exact for MLA's latent)
    trainer_gib: float  # the colocated trainer's bf16 weights / (its TP x PP); 0 when generation has its own GPUs

    @property
    def need_gib(self) -> float:
        return self.weights_gib + VLLM_OVERHEAD_GIB + self.kv_gib

    @property
    def budget_gib(self) -> float:
        return self.utilization * self.capacity_gib

    @property
    def fits(self) -> bool:
        return self.need_gib <= self.budget_gib and self.trainer_gib <= self.capacity_gib - self.budget_gib

    def smallest_fitting(self) -> float | None:
        """The smallest utilization (a multiple of VLLM_UTILIZATION_STEP) that fits both sides, or None."""
        steps = math.ceil(self.need_gib / self.capacity_gib / VLLM_UTILIZATION_STEP - 1e-9)
        util = round(steps * VLLM_UTILIZATION_STEP, 2)
        if util > VLLM_MAX_UTILIZATION or self.trainer_gib > self.capacity_gib * (1 - util):
            return None
        return util

    def sequences(self) -> int:
        """Max-length sequences whose KV cache fits the budget."""
        room = self.budget_gib - self.weights_gib - VLLM_OVERHEAD_GIB
        return max(0, int(room // self.kv_gib)) if self.kv_gib else 0

    def __str__(self) -> str:
        trainer = f"; the colocated trainer keeps {self.trainer_gib:.1f} GiB of the other " \
                  f"{self.capacity_gib - self.budget_gib:.1f}" if self.trainer_gib else ""
        return (f"vLLM at gpu_memory_utilization {self.utilization:g} has {self.budget_gib:.1f} GiB of "
                f"{self.capacity_gib:.0f} per GPU for {self.weights_gib:.1f} GiB of bf16 weights + "
                f"{VLLM_OVERHEAD_GIB:.0f} GiB overhead + {self.kv_gib:.2f} GiB KV cache per max-length sequence "
                f"(room for {self.sequences()}){trainer}")


def vllm_room(arch: Arch, *, tp: int, pp: int, max_len: int, utilization: float, trainer_mp: int = 0,
              capacity_gib: float = GPU_MEMORY_GB) -> VllmRoom:
    """VllmRoom of `arch` on a vLLM engine of tp x pp GPUs; trainer_mp: the colocated trainer's TP x PP (0: none)."""
    return VllmRoom(utilization, capacity_gib, 2 * arch.params / (tp * pp) / GiB,
                    arch.kv_bytes_per_token * max_len / pp / GiB,
                    2 * arch.params / trainer_mp / GiB if trainer_mp else 0.0)


def known_arch(hub_id: str) -> Arch | None:
    """The table entry of a hub id: `Qwen/Qwen2.5-Math-7B` -> qwen2.5-7b, `deepseek-ai/DeepSeek-R1` -> deepseek-v3."""
    name = hub_id.rsplit("/", 1)[-1].lower()
    name = re.sub(r"-(math|instruct|base|chat|coder)(?=-|$)", "", name)
    name = re.sub(r"-(instruct|base|chat)$", "", name)
    if name.startswith("deepseek-r1") and "distill" not in name or name.startswith("deepseek-v3"):
        return KNOWN_ARCHS["deepseek-v3"]
    return KNOWN_ARCHS.get(name)


def arch_from_config(name: str, hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int,
                     vocab: int, tied: bool) -> Arch:
    """A dense decoder (Llama / Qwen2 layout) from its config numbers."""
    head_dim = hidden // heads
    kv_dim = kv_heads * head_dim
    per_layer = 2 * hidden * hidden + 2 * hidden * kv_dim + 3 * hidden * intermediate + 2 * hidden
    params = layers * per_layer + vocab * hidden * (1 if tied else 2) + hidden
    return _dense(name, float(params), layers, hidden, kv_heads, head_dim, vocab, heads)


def model_arch(model: Model) -> Arch | None:
    if model.source == "tiny":
        t = model.tiny or TinyModelConfig()
        return arch_from_config(model.name, t.hidden_size, t.num_layers, t.num_heads, t.num_heads,
                                t.intermediate_size, t.vocab_size, tied=False)
    if model.source == "hf" and model.path:
        return known_arch(model.path)
    if model.source == "local" and model.path:
        config = Path(model.path) / "config.json"
        if config.exists():
            c = json.loads(config.read_text())
            try:
                heads = c["num_attention_heads"]
                return arch_from_config(model.name, c["hidden_size"], c["num_hidden_layers"], heads,
                                        c.get("num_key_value_heads", heads), c["intermediate_size"],
                                        c["vocab_size"], c.get("tie_word_embeddings", False))
            except KeyError:
                return None
    return None


# ---------------------------------------------------------------- the plan of one stage


@dataclass
class StagePlan:
    stage: str
    kind: str
    model: str  # architecture name, or "?" when unknown
    params: float | None
    gpus: int  # 0: CPU stage
    layout: str  # "dp x tp x pp"
    memory_gb: dict[str, float] = field(default_factory=dict)  # per GPU: weights, gradients, adam, activations, kv_cache
    peak_gb: float = 0.0
    capacity_gb: float = GPU_MEMORY_GB
    train_tokens: float = 0.0
    generated_tokens: float = 0.0  # sampled or scored without gradients (prefill + decode + logprob passes)
    flops: float = 0.0
    gpu_hours: float = 0.0
    wall_hours: float = 0.0
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _rows(recipe: Recipe, names: tuple[str, ...], produced: dict[str, float]) -> float | None:
    """Rows of the stage's datasets: generator/declared sizes, or an earlier stage's estimated output."""
    total = 0.0
    for name in names:
        ds = recipe.datasets.get(name)
        if ds is not None and ds.source == "stage":
            rows = produced.get(ds.path or name)
        elif ds is not None and ds.size:
            rows = float(ds.size)
        elif ds is not None and ds.source == "hf" and ds.path in KNOWN_DATASET_ROWS:
            rows = float(KNOWN_DATASET_ROWS[ds.path])
        elif ds is None:
            rows = produced.get(name)
        else:
            rows = None
        if rows is None:
            return None
        total += rows
    return total


def _layout(stage: Stage, p: StagePlan) -> tuple[int, int, int]:
    res = stage.resources
    mp = res.tensor_parallel * res.pipeline_parallel
    train_gpus = p.gpus - res.rollout_gpus if res.rollout_gpus else p.gpus
    if p.gpus and train_gpus % mp:
        p.errors.append(f"{train_gpus} training GPUs do not divide into tensor_parallel x pipeline_parallel = {mp}")
    dp = max(1, train_gpus // mp) if p.gpus else res.world_size
    return dp, res.tensor_parallel if p.gpus else 1, res.pipeline_parallel if p.gpus else 1


def plan_stage(stage: Stage, recipe: Recipe, arch: Arch | None, produced: dict[str, float], *,
               gpu_memory_gb: float = GPU_MEMORY_GB, train_mfu: float = TRAIN_MFU,
               generation_mfu: float = GENERATION_MFU) -> StagePlan:
    res = stage.resources
    gpus = res.nodes * res.gpus_per_node
    p = StagePlan(stage.name, stage.kind, arch.name if arch else "?", arch.params if arch else None, gpus, "",
                  capacity_gb=gpu_memory_gb)
    dp, tp, pp = _layout(stage, p)
    p.layout = f"{dp}x{tp}x{pp}"
    p.notes += [f"data schedule: {line}" for line in stage.data_schedule()]
    if arch is None:
        p.notes.append("model size unknown (hub id not in the table of known architectures): memory and FLOPs not estimated")
        return p
    n, n_active = arch.params, arch.active_params
    mp = tp * pp
    on_gpu = gpus > 0
    weight_bytes = 2 if on_gpu else 4  # bf16 on GPU, fp32 on CPU
    row = KINDS[stage.kind]
    trains, rollout = row.trains, row.generates

    # ---- tokens, and FLOPs by kind of work: trained (6 N per token + 3x attention), scored or
    # prefilled (2 N + attention, compute-bound like training) and decoded (2 N + attention, memory-bound)
    fwd = lambda seqs, length: seqs * (2 * n_active * length + arch.layers * arch.attn_dim * length**2)  # noqa: E731
    train_flops = scored_flops = decode_flops = 0.0
    seq_len, micro = stage.train.max_seq_len, stage.train.micro_batch_size
    if row.steps_section == "grpo":
        g = stage.grpo
        seqs = g.steps // g.updates_per_rollout * g.rollout_size  # outputs generated: rollouts x rollout size
        prompt, completion = g.max_prompt_tokens, g.max_completion_tokens
        seq_len, micro = prompt + completion, g.micro_batch_size
        scoring_passes = 1 + (1 if g.kl_penalty > 0 else 0)  # old-policy (and reference) log-probs
        p.train_tokens = seqs * seq_len * g.inner_epochs
        p.generated_tokens = seqs * completion
        train_flops = 3 * fwd(seqs * g.inner_epochs, seq_len)
        scored_flops = scoring_passes * fwd(seqs, seq_len) + fwd(seqs, prompt)
        decode_flops = fwd(seqs, seq_len) - fwd(seqs, prompt)
        rollout_batch, gen_len = g.num_prompts_per_step * g.num_generations_per_prompt, seq_len
        p.notes.append(f"{seqs:,.0f} completions of up to {completion:,} tokens; {scoring_passes} scoring pass(es) each")
    elif rollout:
        s = stage.sampling
        rows = _rows(recipe, stage.data, produced)
        prompts = min(rows, s.max_prompts) if rows is not None and s.max_prompts else (rows if rows is not None else s.max_prompts)
        prompt, completion = ASSUMED_PROMPT_TOKENS, s.max_completion_tokens
        gen_len = prompt + completion
        rollout_batch = MAX_SEQS_PER_REPLICA * max(1, (gpus or 1) // mp)
        if prompts is None:
            p.notes.append("prompts unknown (give the datasets a `size`): tokens and FLOPs not estimated")
        else:
            samples = prompts * s.samples_per_prompt
            p.generated_tokens = samples * completion
            scored_flops = fwd(samples, prompt)
            decode_flops = fwd(samples, gen_len) - fwd(samples, prompt)
            if row.produces == "data":
                produced[stage.name] = samples  # an upper bound: before the filters
            p.notes.append(f"{prompts:,.0f} prompts x {s.samples_per_prompt} samples; prompts of {prompt} tokens assumed")
    else:
        t = stage.train
        steps = t.steps
        if t.epochs:
            rows = _rows(recipe, stage.data, produced)
            if rows is None:
                p.notes.append(f"epochs = {t.epochs} over rows of unknown count: {t.steps} steps assumed "
                               "(give the datasets a `size`)")
            else:
                steps = math.ceil(t.epochs * rows / t.batch_size)
                p.notes.append(f"{t.epochs} epochs x {rows:,.0f} rows = {steps:,} steps")
        seqs = float(steps) * t.batch_size * (2 if row.pairs else 1)  # preference pairs
        p.train_tokens = seqs * t.max_seq_len
        train_flops = 3 * fwd(seqs, t.max_seq_len)

    # ---- memory per GPU
    mem: dict[str, float] = {}
    if trains:
        mem["weights"] = weight_bytes * n / mp
        if stage.grpo is not None and stage.grpo.kl_penalty > 0:
            mem["weights"] += 2 * n / mp  # the frozen reference policy
        mem["gradients"] = weight_bytes * n / mp
        mem["adam"] = (12 if on_gpu else 8) * n / (mp * dp)
        tokens = micro * seq_len
        layers_here = math.ceil(arch.layers / pp)
        mem["activations"] = (tokens * arch.hidden * 2 * layers_here + 34 * tokens * arch.hidden
                              + 4 * tokens * arch.vocab) / tp
    train_peak = sum(mem.values())
    gen_peak = 0.0
    if rollout:
        gen_gpus = (res.rollout_gpus or gpus) or 1
        replicas = max(1, gen_gpus // mp)
        in_flight = min(math.ceil(rollout_batch / replicas), MAX_SEQS_PER_REPLICA)
        mem["kv_cache"] = in_flight * gen_len * arch.kv_bytes_per_token / mp
        gen_peak = 2 * n / mp + mem["kv_cache"]
        if not trains:
            mem["weights"] = 2 * n / mp
        p.notes.append(f"KV cache: {in_flight} sequences of up to {gen_len:,} tokens in flight per generation replica")
    p.memory_gb = {k: v / GiB for k, v in mem.items()}
    # Separate rollout GPUs hold the generation side, the others the training side; colocated GPUs
    # hold one side at a time (the other is offloaded): either way the larger side is the peak.
    p.peak_gb = max(train_peak, gen_peak) / GiB
    if on_gpu and p.peak_gb > gpu_memory_gb:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in p.memory_gb.items())
        p.errors.append(f"needs {p.peak_gb:.1f} GiB per GPU, more than {gpu_memory_gb:.0f} ({parts}): raise "
                        "tensor_parallel/pipeline_parallel or nodes, or lower micro_batch_size or the sequence length")

    # ---- FLOPs and hours
    p.flops = train_flops + scored_flops + decode_flops
    if on_gpu:
        compute_bound = (train_flops + scored_flops) / (PEAK_BF16_FLOPS * train_mfu)
        p.gpu_hours = (compute_bound + decode_flops / (PEAK_BF16_FLOPS * generation_mfu)) / 3600
        p.wall_hours = p.gpu_hours / gpus
        if p.wall_hours * 60 > res.time_limit_min:
            # --requeue alone does not apply to a time limit: SLURM ends the job as TIMEOUT and cancels the stages
            # waiting on it (afterok). Our SLURM job script checkpoints and requeues itself before the limit.
            jobs = math.ceil(p.wall_hours * 60 / res.time_limit_min)
            p.notes.append(f"about {p.wall_hours:,.0f} h of wall clock, over time_limit_min = {res.time_limit_min}: "
                           f"--target slurm checkpoints before each limit (checkpoint_before_limit_s), requeues the "
                           f"job and resumes, about {jobs} jobs in a row; a NeMo-RL job ends at its limit (TIMEOUT) "
                           "and cancels the stages after it: run submit.sh again to resume it")
    return p


def plan(recipe: Recipe, *, gpu_memory_gb: float = GPU_MEMORY_GB, train_mfu: float = TRAIN_MFU,
         generation_mfu: float = GENERATION_MFU) -> "Plan":
    """One StagePlan per stage, in run order (printing the result gives the table)."""
    archs: dict[str, Arch | None] = {}
    produced: dict[str, float] = {}
    plans = Plan()
    plans.settings = (gpu_memory_gb, train_mfu, generation_mfu)
    for stage in recipe.stages:
        if stage.init_is_stage:
            arch = archs.get(stage.init)
        else:
            model = recipe.models.get(stage.init)
            arch = model_arch(model) if model else None
        archs[stage.name] = arch
        plans.append(plan_stage(stage, recipe, arch, produced, gpu_memory_gb=gpu_memory_gb,
                                train_mfu=train_mfu, generation_mfu=generation_mfu))
    return plans


class Plan(list):
    """A list of StagePlan whose text is the table `r1dsl plan` prints."""

    settings = (GPU_MEMORY_GB, TRAIN_MFU, GENERATION_MFU)

    @property
    def errors(self) -> list[str]:
        return [f"stage `{p.stage}`: {e}" for p in self for e in p.errors]

    def __str__(self) -> str:
        return render_table(self, *self.settings)


def _num(x: float) -> str:
    for unit, size in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


def render_table(plans: list[StagePlan], gpu_memory_gb: float = GPU_MEMORY_GB, train_mfu: float = TRAIN_MFU,
                 generation_mfu: float = GENERATION_MFU) -> str:
    head = ("stage", "kind", "model", "GPUs", "dp x tp x pp", "weights", "grads", "adam", "activ", "KV", "peak",
            "train tok", "gen tok", "FLOPs", "GPU-h")
    rows = [head]
    for p in plans:
        m = p.memory_gb
        cell = lambda k: f"{m[k]:.1f}" if k in m else "-"  # noqa: E731
        rows.append((
            p.stage, p.kind, p.model, str(p.gpus) if p.gpus else "cpu", p.layout,
            cell("weights"), cell("gradients"), cell("adam"), cell("activations"), cell("kv_cache"),
            f"{p.peak_gb:.1f}" + (" !" if p.errors else ""),
            _num(p.train_tokens) if p.train_tokens else "-", _num(p.generated_tokens) if p.generated_tokens else "-",
            f"{p.flops:.2g}" if p.flops else "-", f"{p.gpu_hours:,.0f}" if p.gpu_hours else "-",
        ))
    total_hours = sum(p.gpu_hours for p in plans)
    rows.append(("total", "", "", "", "", "", "", "", "", "", "", "", "", f"{sum(p.flops for p in plans):.2g}",
                 f"{total_hours:,.0f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < 5 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    out = [f"memory per GPU in GiB (of {gpu_memory_gb:.0f}): bf16 weights and gradients sharded over tp x pp, Adam "
           f"states over all training GPUs, activations with full recomputation; GPU-hours at {train_mfu:.0%} MFU "
           f"(training, scoring, prefill) and {generation_mfu:.0%} (decoding) of {PEAK_BF16_FLOPS / 1e12:.0f} "
           "TFLOPS bf16; every sequence at its maximum length (upper bounds)", "", *lines]
    notes = [f"  {p.stage}: {n}" for p in plans for n in p.notes]
    if notes:
        out += ["", "notes:", *notes]
    errors = [f"error: stage `{p.stage}`: {e}" for p in plans for e in p.errors]
    if errors:
        out += ["", *errors]
    return "\n".join(out)
