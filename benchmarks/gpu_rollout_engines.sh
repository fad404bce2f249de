#!/usr/bin/env bash
# The colocated vLLM rollout path on one CUDA GPU with the `vllm` package (extra `vllm`), on the
# Qwen2.5-0.5B-shaped model of benchmarks/rollout_engines.py: prints tokens/s of vLLM and of our HF sampler
# for one GRPO group batch (16 prompts x G=8, 256 new tokens) and the weight-sync time per step.
# NOT RUN in this repository's measurements: no GPU was available (benchmarks/README.md says so).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import vllm" 2>/dev/null || pip install -e '.[vllm]'
python benchmarks/rollout_engines.py --device cuda --prompts 16 --group 8 --new-tokens 256 \
  --repeats 3 --hf-repeats 2 --json rollout_engines_gpu.json
