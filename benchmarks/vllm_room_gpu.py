"""GPU check of r1dsl.plan.vllm_room (issue 23 item 2): does vLLM start exactly where the arithmetic says it can?

For one model on one GPU, starts vLLM at gpu_memory_utilization values around the smallest that vllm_room
says fits (weights + overhead + one max_model_len sequence of KV), and prints per value: predicted fit,
whether vLLM started, and the KV-cache tokens it reports. Needs a GPU, vllm, and the model in the HF cache:

    python benchmarks/vllm_room_gpu.py --model Qwen/Qwen2.5-Math-1.5B --max-model-len 4096

The claim holds when every value predicted to fit starts (the estimate is safe); values predicted not to
fit may still start (the 2 GiB overhead is an upper estimate), and the report says by how much.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from r1dsl.plan import GiB, VLLM_UTILIZATION_STEP, known_arch, vllm_room

PROBE = r"""
import json, sys
from vllm import LLM
model, util, max_len = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
llm = LLM(model=model, dtype="bfloat16", gpu_memory_utilization=util, max_model_len=max_len, enforce_eager=True)
cfg = llm.llm_engine.cache_config if hasattr(llm.llm_engine, "cache_config") else None
blocks = getattr(cfg, "num_gpu_blocks", None)
print("R1DSL " + json.dumps({"blocks": blocks, "block_size": getattr(cfg, "block_size", None)}))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="Qwen/Qwen2.5-Math-1.5B")
    ap.add_argument("--max-model-len", type=int, default=4096)
    args = ap.parse_args()
    import torch

    capacity = torch.cuda.get_device_properties(0).total_memory / GiB
    arch = known_arch(args.model)
    if arch is None:
        sys.exit(f"{args.model}: not in r1dsl.plan's table of architectures")
    room = vllm_room(arch, tp=1, pp=1, max_len=args.max_model_len, utilization=0.0, capacity_gib=capacity)
    smallest = room.smallest_fitting() or 0.95
    rows = []
    for util in sorted({round(smallest + k * VLLM_UTILIZATION_STEP, 2) for k in (-2, -1, 0, 1)}):
        if not 0 < util < 1:
            continue
        predicted = vllm_room(arch, tp=1, pp=1, max_len=args.max_model_len, utilization=util,
                              capacity_gib=capacity).fits
        run = subprocess.run([sys.executable, "-c", PROBE, args.model, str(util), str(args.max_model_len)],
                             capture_output=True, text=True, timeout=900)
        line = next((x for x in run.stdout.splitlines() if x.startswith("R1DSL ")), None)
        rows.append({"utilization": util, "predicted_fit": predicted, "started": run.returncode == 0 and bool(line),
                     **(json.loads(line[6:]) if line else {"error": run.stderr.strip().splitlines()[-1:]})})
        print(json.dumps(rows[-1]), flush=True)
    unsafe = [r for r in rows if r["predicted_fit"] and not r["started"]]
    print(f"capacity {capacity:.1f} GiB; smallest predicted {smallest}; predicted to fit but failed: {len(unsafe)}")
    return 1 if unsafe else 0


if __name__ == "__main__":
    raise SystemExit(main())
