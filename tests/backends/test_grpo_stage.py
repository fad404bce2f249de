"""The grpo stage end to end on a micro model: outputs, exact resume, variants of the knobs, DDP under torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import EVAL_SAMPLING, MICRO_INIT, generated, load, stage_config, write_config

from backends.run_stage import main as run_stage
from backends.stages import STAGES
from r1dsl.ir import GRPO

REPO = Path(__file__).resolve().parents[2]
GRPO_SETTINGS = dict(num_generations_per_prompt=4, num_prompts_per_step=4, micro_batch_size=6, steps=4, kl_penalty=0.01,
                     max_completion_tokens=8, checkpoint_every=2, seed=3)  # the rest: ir.GRPO's defaults
STEP_METRICS = {"reward", "reward/accuracy", "reward/format", "accuracy", "format", "completion_length", "truncated",
                "kl", "clip_fraction", "entropy", "loss", "grad_norm", "lr", "step_time_s", "tokens_per_s",
                "time_generation_s", "time_rewards_s", "time_reference_s", "time_backward_s", "time_optimizer_s"}


def grpo_config(run_dir: Path, devices: int = 1, eval_rows: int = 4, **grpo):
    cfg = stage_config(run_dir, "zero", "grpo", train=[generated("arith", "arithmetic", 64, seed=1)],
                       eval=[generated("arith_test", "arithmetic", eval_rows, seed=99)] if eval_rows else [],
                       lr=1e-3, checkpoint_every=2, devices=devices, sampling=EVAL_SAMPLING,
                       grpo=GRPO(**{**GRPO_SETTINGS, **grpo}))
    cfg["model"]["optim"]["lr_schedule"] = "constant"
    return cfg


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run_dir / "zero" / "model" / "model.safetensors")


def test_grpo_stage_logs_every_step_metric_saves_the_model_and_evaluates(run_dir):
    assert run_stage([str(write_config(grpo_config(run_dir)))]) == 0
    stage = run_dir / "zero"
    for name in ("model/config.json", "model/tokenizer.json", "metrics.csv", "eval.json", "DONE", "checkpoints/step_000002"):
        assert (stage / name).exists(), name
    assert list((stage / "tb").iterdir())
    lines = (stage / "metrics.csv").read_text().splitlines()
    assert STEP_METRICS <= set(lines[0].split(",")) and len(lines) == 1 + 4
    results = json.loads((run_dir / "results.json").read_text())["zero"]
    assert {"pass@1", "greedy_accuracy", "format_rate", "train_reward"} <= set(results)


def test_a_rerun_resumes_from_the_last_checkpoint_and_ends_with_the_same_weights(run_dir):
    config = write_config(grpo_config(run_dir, eval_rows=0))
    assert run_stage([str(config)]) == 0
    straight = weights(run_dir)
    # as if killed after the step-2 checkpoint: no DONE, no final model
    (run_dir / "zero" / "DONE").unlink()
    shutil.rmtree(run_dir / "zero" / "model")
    assert run_stage([str(config)]) == 0
    resumed = weights(run_dir)
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], msg=name)
    logged = [int(line.split(",")[0]) for line in (run_dir / "zero" / "metrics.csv").read_text().splitlines()[1:]]
    assert logged == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "knobs",
    [
        {"inner_epochs": 2, "loss_aggregation": "token", "truncated": "mask", "reference_refresh_steps": 1},
        {"loss_aggregation": "constant", "advantage_scaling": "none", "truncated": "penalize", "kl_penalty": 0.0},
    ],
    ids=["dapo-like", "dr-grpo-like"],
)
def test_grpo_knob_variants_train(run_dir, knobs):
    metrics = STAGES["grpo"](load(grpo_config(run_dir, eval_rows=0, steps=2, **knobs)))
    assert metrics["train_reward"] == metrics["train_reward"]  # not NaN
    rows = (run_dir / "zero" / "metrics.csv").read_text().splitlines()
    header, last = rows[0].split(","), dict(zip(rows[0].split(","), rows[-1].split(",")))
    assert "clip_fraction" in header and float(last["grad_norm"]) >= 0


def test_sampled_tokens_get_the_same_log_probs_in_the_padded_training_pass():
    """Left padding, position ids and the shared prompt pass: the batched pass scores each completion as it
    would alone, and sharing a group's prompt pass changes neither the values nor the gradients."""
    from backends.grpo.rollout import sample_groups, token_logprobs
    from backends.models import load_policy

    torch.manual_seed(0)
    model, tok = load_policy(MICRO_INIT)
    model.eval()
    prompts = ["What is 3 + 4? Answer:", "Hi."]  # different lengths: the second is left-padded
    r = sample_groups(model, tok, prompts, 3, max_prompt_tokens=64, max_completion_tokens=6,
                      generator=torch.Generator().manual_seed(0))
    assert r.completion_ids.shape[0] == 6 and (r.prompt_ids[0] == r.prompt_ids[2]).all()
    batch = (r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask)
    logp, _ = token_logprobs(model, *batch)
    for i in range(6):
        p = r.prompt_ids[i][r.prompt_mask[i].bool()]
        c = r.completion_ids[i][r.completion_mask[i].bool()]
        with torch.no_grad():
            alone = torch.log_softmax(model(input_ids=torch.cat([p, c])[None]).logits[0, len(p) - 1 : -1], -1)
        torch.testing.assert_close(logp[i, : len(c)], alone.gather(-1, c[:, None]).squeeze(-1), atol=1e-5, rtol=0)

    grads = []
    for rows_per_prompt in (1, 3):
        model.zero_grad()
        logp, _ = token_logprobs(model, *batch, rows_per_prompt=rows_per_prompt)
        ((logp * r.completion_mask).sum() / 7).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        if rows_per_prompt == 1:
            per_row = logp.detach()
    torch.testing.assert_close(logp.detach() * r.completion_mask, per_row * r.completion_mask, atol=1e-5, rtol=0)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_grpo_under_torchrun_two_cpu_processes(tmp_path):
    config = write_config(grpo_config(tmp_path, devices=2, eval_rows=0, steps=2))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
         "backends.run_stage", str(config)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "zero" / "DONE").exists() and (tmp_path / "zero" / "model" / "model.safetensors").exists()
    assert len((tmp_path / "zero" / "metrics.csv").read_text().splitlines()) == 1 + 2


def test_rollout_rewards_count_generated_tokens():
    """The grpo rollout scores `overlong` on the rollout's token counts (not the completion's word count)."""
    from backends.grpo.step import rollout_and_score
    from backends.models import load_policy
    from r1dsl.config import RewardConfig

    torch.manual_seed(0)
    model, tok = load_policy(MICRO_INIT)
    model.eval()
    grpo = GRPO(num_generations_per_prompt=3, num_prompts_per_step=2, max_completion_tokens=8, max_prompt_tokens=32)
    rewards = [RewardConfig(name="long", rule="overlong", params={"max_tokens": 8, "buffer": 8})]
    scored = rollout_and_score(model, tok, [{"prompt": "1 + 1"}, {"prompt": "2 + 2"}], grpo, rewards, None,
                               generator=torch.Generator().manual_seed(0))
    tokens = scored.rollout.lengths.tolist()
    assert scored.per_rule["long"] == [(0 - n) / 8 for n in tokens]
    words = [len(t.split()) for t in scored.rollout.texts]
    assert words != tokens  # random tiny-model text: the word count would have given other values


def test_steps_count_optimizer_steps_with_a_split_rollout_and_a_rerun_resumes_at_a_rollout_boundary(run_dir):
    """16 outputs per rollout in mini-batches of 8: 2 optimizer steps per rollout; steps = 4 is 2 rollouts, logged
    at optimizer steps 2 and 4, checkpointed at 2; the linear schedule moves once per optimizer step."""
    cfg = grpo_config(run_dir, eval_rows=0, train_global_batch_size=8, micro_batch_size=4, steps=4, kl_penalty=0.01)
    cfg["model"]["optim"]["lr_schedule"] = "linear"
    config = write_config(cfg)
    assert run_stage([str(config)]) == 0
    lines = (run_dir / "zero" / "metrics.csv").read_text().splitlines()
    header, rows = lines[0].split(","), [dict(zip(lines[0].split(","), line.split(","))) for line in lines[1:]]
    assert [int(line.split(",")[0]) for line in lines[1:]] == [2, 4]
    assert (run_dir / "zero" / "checkpoints" / "step_000002").exists()
    from backends.trainer.schedule import lr_factor

    o = cfg["model"]["optim"]  # the schedule over 4 optimizer steps, after 2 of them (not 1: the rollout count)
    expected = o["lr"] * lr_factor(2, 4, o["warmup_steps"], "linear", o["min_lr_ratio"])
    assert float(rows[0]["lr"]) == pytest.approx(expected) != o["lr"] * lr_factor(1, 4, o["warmup_steps"], "linear", o["min_lr_ratio"])
    straight = weights(run_dir)
    (run_dir / "zero" / "DONE").unlink()
    shutil.rmtree(run_dir / "zero" / "model")
    assert run_stage([str(config)]) == 0
    resumed = weights(run_dir)
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], msg=name)
