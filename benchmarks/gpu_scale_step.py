"""One GRPO step of a Qwen2.5-0.5B-shaped model in bf16 with FSDP2 on GPU: peak memory and step time.

    python -m torch.distributed.run --standalone --nproc_per_node 1 benchmarks/gpu_scale_step.py
    python -m torch.distributed.run --standalone --nproc_per_node 8 benchmarks/gpu_scale_step.py --precision bf16-mixed

The same code path as the grpo stage with `resources { gpus_per_node = N  sharding = "fsdp"  precision = ... }`:
`setup_fabric` (ModelParallelStrategy, fully_shard per decoder layer, NCCL), the reference under the same
precision and sharding, `sample_groups` (decode loop, preallocated KV cache), then `update` (reference pass,
chunked selective log-probs with gradient, backward, AdamW). Random weights, Qwen2.5-0.5B's shape (vocabulary
151,936, hidden 896, 24 layers), a word-level tokenizer with Qwen2.5's 151,665 ids and no EOS, so completions
run to exactly --completion tokens. Prints, per rank, torch.cuda.max_memory_allocated during the update and
overall, and the wall time of rollout and update (after one warm-up step).

Not run in this repository's development: no GPU was available (CPU figures: benchmarks/scale_memory.py).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from scale_memory import QWEN25_05B, TOKENIZER_IDS, build  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=1, help="prompts per rank")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--completion", type=int, default=512)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--precision", choices=("bf16-true", "bf16-mixed", "32-true"), default="bf16-true")
    ap.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--steps", type=int, default=2, help="the first is a warm-up")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "needs a GPU (CPU figures: benchmarks/scale_memory.py)"

    import os

    from omegaconf import OmegaConf

    from r1dsl.config import TrainerConfig
    from r1dsl.ir import Optim

    from backends.grpo.rollout import sample_groups
    from backends.grpo.step import Scored, eval_mode, update
    from backends.models import disable_dropout, weights_dtype
    from backends.trainer import build_optimizer
    from backends.trainer.fabric import setup_fabric, setup_frozen, setup_trainable, unwrap

    world = int(os.environ.get("WORLD_SIZE", 1))
    fabric = setup_fabric(TrainerConfig(accelerator="gpu", devices=world, num_nodes=1, strategy="fsdp",
                           precision=args.precision))
    model, tokenizer = build(args.layers)
    model = model.to(weights_dtype(args.precision))
    disable_dropout(model)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    reference = setup_frozen(fabric, copy.deepcopy(model))
    policy, optimizer, _ = setup_trainable(fabric, model, lambda p: build_optimizer(p, Optim(lr=1e-6)))
    grpo = OmegaConf.create({
        "num_generations_per_prompt": args.group, "micro_batch_size": args.micro_batch, "kl_penalty": 0.001,
        "kl_type": "k3", "ratio_clip_min": 0.2, "ratio_clip_max": 0.2, "loss_aggregation": "sequence",
        "advantage_scaling": "std", "inner_epochs": 1, "temperature": 1.0,
        "max_completion_tokens": args.completion, "truncated": "keep",
    })
    n_params = sum(p.numel() for p in unwrap(policy).parameters())
    fabric.print(f"Qwen2.5-0.5B shape, {args.layers} layers, {n_params / 1e6:.1f}M parameters, {args.precision}, "
                 f"FSDP2 over {world} GPU(s), G={args.group} x {args.prompts} prompt(s)/rank, "
                 f"{args.prompt}+{args.completion} tokens, gradient checkpointing {args.gradient_checkpointing}, "
                 f"vocabulary {QWEN25_05B['vocab_size']}")
    prompts = [" ".join(f"t{1 + (7 * i + 13 * j + fabric.global_rank) % (TOKENIZER_IDS - 1)}" for i in range(args.prompt))
               for j in range(args.prompts)]
    for step in range(args.steps):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        with torch.no_grad(), eval_mode(unwrap(policy)), fabric.autocast():
            r = sample_groups(unwrap(policy), tokenizer, prompts, args.group, max_prompt_tokens=args.prompt,
                              max_completion_tokens=args.completion, stop=(),
                              generator=torch.Generator(device=fabric.device).manual_seed(step))
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        rollout_peak = torch.cuda.max_memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        rewards = torch.rand(len(r.texts), generator=torch.Generator().manual_seed(step))
        stats = update(fabric, policy, reference, optimizer, Scored(r, args.group, rewards, {}), grpo, max_grad_norm=1.0)
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        update_peak = torch.cuda.max_memory_allocated()
        print(f"[rank {fabric.global_rank}] step {step}{' (warm-up)' if step == 0 else ''}: rollout {t1 - t0:.2f} s "
              f"(peak {rollout_peak / 2**30:.2f} GiB), update {t2 - t1:.2f} s (peak {update_peak / 2**30:.2f} GiB), "
              f"step {t2 - t0:.2f} s, kl {stats['kl']:.2e}, grad_norm {stats['grad_norm']:.3f}", flush=True)


if __name__ == "__main__":
    main()
