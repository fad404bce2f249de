"""Rollout engines on one GRPO group batch: the colocated vLLM engine vs our HF sampler, plus vLLM's weight sync.

    flock /work/.heavy.lock python benchmarks/rollout_engines.py              # CPU, Qwen2.5-0.5B-shaped
    python benchmarks/rollout_engines.py --device cuda                        # GPU (vllm package), same model

The model has Qwen2.5-0.5B's shape (vocab 151,936, hidden 896, 24 layers, 14 heads / 2 KV heads, MLP 4,864,
tied embeddings) with random weights, built from a config and saved with the locally trained tiny tokenizer
(no hub). Both engines get the same 16 prompts (the R1-Zero template around arithmetic questions, ~110
tokens), G = 8 completions each, temperature 1, no stop but EOS: random weights almost never emit EOS, so
every completion runs to --new-tokens and both engines generate the same number of tokens.
Reported: tokens/s of each engine (median of --repeats timed calls after a warm-up call), the ratio, and the
time to load the policy's weights into the engine (`VLLMEngine.load_weights`, median of --repeats) as a
fraction of one step's rollout on vLLM (a lower bound on a step: scoring and the update come on top).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QWEN25_05B = dict(vocab_size=151_936, hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, intermediate_size=4_864, max_position_embeddings=2_048,
                  tie_word_embeddings=True, rms_norm_eps=1e-6)


def build_model_dir(path: Path, layers: int):
    """A random Qwen2.5-0.5B-shaped model saved with the tiny tokenizer (reused when already there)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from backends.models import build_tiny_tokenizer, save_policy

    tokenizer = build_tiny_tokenizer(512)
    if (path / "config.json").exists():
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), tokenizer
    torch.manual_seed(0)
    config = Qwen2Config(**{**QWEN25_05B, "num_hidden_layers": layers}, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    save_policy(model, tokenizer, path)
    return model, tokenizer


def prompts(n: int) -> list[str]:
    from backends.data.synthetic import R1_ZERO_TEMPLATE, arithmetic

    return [R1_ZERO_TEMPLATE.replace("{prompt}", row["prompt"]) for row in arithmetic(n, seed=0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--layers", type=int, default=24, help="fewer to fit a small machine (the shape is otherwise 0.5B)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hf-repeats", type=int, default=1, help="timed HF calls (slow on CPU)")
    parser.add_argument("--model-dir", default="/tmp/r1dsl-qwen25-05b-shape")
    parser.add_argument("--kv-cache-gb", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    import torch

    from backends.grpo.rollout import sample_groups
    from backends.vllm_engine import VLLMEngine
    from r1dsl.ir import Rollout

    model_dir = Path(f"{args.model_dir}-{args.layers}l")
    model, tokenizer = build_model_dir(model_dir, args.layers)
    gpu = args.device == "cuda"
    model = model.to(args.device).eval()
    texts = prompts(args.prompts)
    common = dict(max_prompt_tokens=256, max_completion_tokens=args.new_tokens, temperature=1.0, top_p=1.0, stop=())
    load = os.getloadavg()
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.0f}M parameters ({args.layers} layers), {args.prompts} prompts x G={args.group}, "
          f"{args.new_tokens} new tokens, device {args.device}, torch threads {torch.get_num_threads()}, load {load}")

    def run_hf(seed: int) -> tuple[float, int]:
        generator = torch.Generator(device=args.device).manual_seed(seed)
        start = time.perf_counter()
        r = sample_groups(model, tokenizer, texts, args.group, generator=generator, **common)
        if gpu:
            torch.cuda.synchronize()
        return time.perf_counter() - start, int(r.completion_mask.sum())

    # HF first: vLLM's CPU worker binds the process's OpenMP threads when it starts
    run_hf(0) if args.hf_repeats > 1 else None  # warm-up only when there are several timed calls (slow on CPU)
    hf = [run_hf(1 + i) for i in range(args.hf_repeats)]
    print(f"hf sampler: {[f'{t:.1f}s/{n} tok' for t, n in hf]}")

    start = time.perf_counter()
    engine = VLLMEngine(str(model_dir), Rollout(cpu_kv_cache_gb=args.kv_cache_gb, max_model_len=512,
                                                gpu_memory_utilization=0.5, enforce_eager=not gpu), seed=0, gpu=gpu)
    engine_start_s = time.perf_counter() - start

    def run_vllm(seed: int) -> tuple[float, int]:
        start = time.perf_counter()
        r = engine.sample_groups(tokenizer, texts, args.group, seed=seed, **common)
        return time.perf_counter() - start, int(r.completion_mask.sum())

    warm = run_vllm(0)
    vl = [run_vllm(1 + i) for i in range(args.repeats)]
    print(f"vllm: engine start {engine_start_s:.1f}s, warm-up {warm[0]:.1f}s, timed {[f'{t:.1f}s/{n} tok' for t, n in vl]}")
    syncs = [engine.load_weights(model) for _ in range(args.repeats)]

    hf_tps = statistics.median(n / t for t, n in hf)
    vl_tps = statistics.median(n / t for t, n in vl)
    rollout_s = statistics.median(t for t, _ in vl)
    sync_s = statistics.median(syncs)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_avg_1_5_15": load,
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "device": args.device, "parameters_M": round(params / 1e6), "layers": args.layers,
        "prompts": args.prompts, "group": args.group, "new_tokens": args.new_tokens,
        "hf_tokens_per_s": round(hf_tps, 1), "hf_runs_s": [round(t, 2) for t, _ in hf],
        "vllm_tokens_per_s": round(vl_tps, 1), "vllm_runs_s": [round(t, 2) for t, _ in vl],
        "vllm_engine_start_s": round(engine_start_s, 1), "vllm_warmup_s": round(warm[0], 1),
        "speedup_vllm_over_hf": round(vl_tps / hf_tps, 2),
        "weight_sync_s": round(sync_s, 3), "weight_sync_runs_s": [round(s, 3) for s in syncs],
        "sync_fraction_of_vllm_rollout": round(sync_s / rollout_s, 4),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
