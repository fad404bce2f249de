"""Peak memory of GRPO scoring, naive vs chunked, and of one whole GRPO step, on a Qwen2.5-0.5B-shaped model.

    MALLOC_MMAP_THRESHOLD_=65536 flock /work/.heavy.lock python benchmarks/scale_memory.py --layers 24

The model is Qwen2.5-0.5B's shape built from a config with random weights (vocabulary 151,936, hidden 896,
MLP 4,864, 14 heads / 2 KV heads, tied embeddings; `--layers` of its 24 decoder layers), fp32 (`32-true`,
what a CPU stage trains in). The tokenizer is a word-level one with Qwen2.5's 151,665 ids ("t0" ... ), no
EOS and no stop string, so every completion runs to exactly `--completion` tokens (deterministic length).

1. Rollout: one prompt of `--prompt` tokens, G = `--group` completions (`sample_groups`, the decode loop with
   its preallocated KV cache).
2. Scoring pass, naive vs new, on the same `--compare-rows` completions, each forward + backward of
   sum(log-probs) with gradient checkpointing on for both (so the decoder's activations are the same):
     naive: one forward to [B, T, V] logits, fp32 log_softmax kept for backward, gather, entropy from it
            (the scoring this repository had before: full-vocabulary log-softmax);
     new:   `backends.grpo.rollout.token_logprobs` (hidden states, LM head in chunks recomputed in backward).
   Measured: peak live tensor bytes above the pass's start (torch profiler memory events) and the RSS
   high-water above the pass's start (/proc/self/statm polled every 2 ms); the parameters' .grad buffers
   exist before the pass (they are the model's memory, not the scoring's), so what is counted is what
   scoring allocates: logits, log-softmax, activations, and the temporary gradients that backward adds in.
3. One GRPO update (`backends.grpo.step.update`, what the grpo stage runs: reference pass, policy pass,
   backward, AdamW step) on the G completions with random rewards, gradient checkpointing on; the
   process's RSS high-water (ru_maxrss) at the end covers everything: model, reference, gradients, Adam.

glibc keeps freed blocks below its mmap threshold in the heap; MALLOC_MMAP_THRESHOLD_ makes large tensors
go back to the system when freed, so RSS follows live tensors (the script re-executes itself with it set).
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

QWEN25_05B = dict(vocab_size=151_936, hidden_size=896, intermediate_size=4_864, num_attention_heads=14,
                  num_key_value_heads=2, max_position_embeddings=32_768, rope_theta=1_000_000.0,
                  rms_norm_eps=1e-6, tie_word_embeddings=True)
TOKENIZER_IDS = 151_665  # Qwen2.5's tokenizer; the model pads its vocabulary to 151,936


def build(layers: int):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    vocab = {"<pad>": 0, **{f"t{i}": i for i in range(1, TOKENIZER_IDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", padding_side="left")
    torch.manual_seed(0)
    config = Qwen2Config(num_hidden_layers=layers, pad_token_id=0, bos_token_id=None, eos_token_id=None, **QWEN25_05B)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.float32)
    model.generation_config.eos_token_id = None
    return model, tokenizer


class PeakRSS:
    """RSS high-water above the block's start, polled from /proc/self/statm."""

    def __enter__(self):
        self.start = self.peak = rss()
        self.running = True
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self):
        while self.running:
            self.peak = max(self.peak, rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss())
        self.delta = self.peak - self.start


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_tensor_bytes(fn) -> int:
    """Peak of live CPU tensor bytes allocated inside fn (torch profiler memory events), above its start."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def naive_logprobs(model, r, temperature: float):
    """Full-vocabulary scoring: [B, T, V] logits, an fp32 log-softmax kept for backward, gather; entropy from it."""
    from backends.grpo.rollout import positions

    Lp = r.prompt_ids.shape[1]
    ids = torch.cat([r.prompt_ids, r.completion_ids[:, :-1]], 1)
    mask = torch.cat([r.prompt_mask, r.completion_mask[:, :-1]], 1)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), use_cache=False).logits[:, Lp - 1 :]
    logp_all = torch.log_softmax(logits.float() / temperature, dim=-1)  # (B, T, V)
    logp = logp_all.gather(-1, r.completion_ids.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def new_logprobs(model, r, temperature: float):
    from backends.grpo.rollout import token_logprobs

    return token_logprobs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, temperature,
                          with_entropy=True, rows_per_prompt=1, vocab_size=r.vocab_size)


def scoring_pass(score, model, r, temperature: float) -> None:
    """Forward and backward of sum(log-probs); gradients accumulate into the preallocated .grad buffers."""
    logp, _ = score(model, r, temperature)
    (logp * r.completion_mask).sum().backward()
    model.zero_grad(set_to_none=False)


def rows(r, n: int):
    from backends.grpo.rollout import Rollout

    return Rollout(r.prompt_ids[:n], r.prompt_mask[:n], r.completion_ids[:n], r.completion_mask[:n], r.truncated[:n],
                   r.texts[:n], r.sample_logprobs[:n], r.vocab_size)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--completion", type=int, default=512)
    ap.add_argument("--compare-rows", type=int, default=4, help="completions in the naive-vs-new scoring pass")
    ap.add_argument("--micro-batch", type=int, default=8, help="GRPO micro_batch_size of the whole step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", choices=("none", "compare", "step"), default="none")
    args = ap.parse_args()
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    torch.set_num_threads(args.threads)

    from omegaconf import OmegaConf

    from r1dsl.config import TrainerConfig
    from r1dsl.ir import Optim

    from backends.grpo.rollout import sample_groups
    from backends.grpo.step import Scored, eval_mode, update
    from backends.models import disable_dropout
    from backends.trainer import build_optimizer
    from backends.trainer.fabric import setup_fabric, setup_frozen, setup_trainable

    print(f"uptime: {os.popen('uptime').read().strip()}")
    t0 = time.perf_counter()
    model, tokenizer = build(args.layers)
    disable_dropout(model)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: Qwen2.5-0.5B shape, {args.layers} layers, {n_params / 1e6:.1f}M parameters, fp32; "
          f"G={args.group}, prompt {args.prompt} + completion {args.completion} tokens; {args.threads} threads")

    fabric = setup_fabric(TrainerConfig(accelerator="cpu", devices=1, strategy="auto", precision="32-true"))
    torch.set_num_threads(args.threads)
    prompt = " ".join(f"t{1 + (7 * i) % (TOKENIZER_IDS - 1)}" for i in range(args.prompt))
    t = time.perf_counter()
    with torch.no_grad(), eval_mode(model):
        r = sample_groups(model, tokenizer, [prompt], args.group, max_prompt_tokens=args.prompt,
                          max_completion_tokens=args.completion, temperature=1.0, stop=(),
                          generator=torch.Generator().manual_seed(0))
    assert int(r.lengths.min()) == args.completion, "every completion runs to the length limit"
    print(f"rollout: {tuple(r.completion_ids.shape)} completions in {time.perf_counter() - t:.1f} s")

    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    if args.skip != "compare":
        sub = rows(r, args.compare_rows)
        B, T, V = args.compare_rows, args.completion, QWEN25_05B["vocab_size"]
        print(f"scoring pass (forward + backward, gradient checkpointing on), {B} x {T} tokens; "
              f"one fp32 [B, T, V] tensor = {gib(B * T * V * 4)}")
        for p in model.parameters():  # the model's own gradient buffers are not the scoring's memory: allocate them first
            p.grad = torch.zeros_like(p)
        results = {}
        for name, score in (("naive", naive_logprobs), ("new", new_logprobs)):
            t = time.perf_counter()
            with PeakRSS() as mem:
                tensors = peak_tensor_bytes(lambda: scoring_pass(score, model, sub, 1.0))
            results[name] = (tensors, mem.delta, time.perf_counter() - t)
            print(f"  {name:5s}: peak tensor bytes {gib(tensors)}, RSS high-water above start {gib(mem.delta)}, "
                  f"{time.perf_counter() - t:.1f} s")
        print(f"  new / naive: tensor bytes {results['new'][0] / results['naive'][0]:.3f}, "
              f"RSS {results['new'][1] / max(results['naive'][1], 1):.3f}")

    if args.skip != "step":
        grpo = OmegaConf.create({
            "num_generations_per_prompt": args.group, "micro_batch_size": args.micro_batch, "kl_penalty": 0.001,
            "kl_type": "k3", "ratio_clip_min": 0.2, "ratio_clip_max": 0.2, "loss_aggregation": "sequence",
            "advantage_scaling": "std", "inner_epochs": 1, "temperature": 1.0,
            "max_completion_tokens": args.completion, "truncated": "keep",
        })
        model.zero_grad(set_to_none=True)
        reference = setup_frozen(fabric, copy.deepcopy(model))
        policy, optimizer, _ = setup_trainable(fabric, model, lambda p: build_optimizer(p, Optim(lr=1e-6)))
        scored = Scored(r, args.group, torch.rand(len(r.texts), generator=torch.Generator().manual_seed(0)), {})
        t = time.perf_counter()
        with PeakRSS() as mem:
            stats = update(fabric, policy, reference, optimizer, scored, grpo, max_grad_norm=1.0)
        print(f"GRPO update (reference + policy pass, backward, AdamW; micro_batch_size {args.micro_batch}): "
              f"{time.perf_counter() - t:.1f} s, kl {stats['kl']:.2e}, RSS high-water above start {gib(mem.delta)}")
    print(f"process RSS high-water (ru_maxrss, whole run): {gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}; "
          f"total {time.perf_counter() - t0:.0f} s; uptime: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
