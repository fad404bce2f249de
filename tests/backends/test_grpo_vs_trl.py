"""Our GRPO loss against TRL's own `GRPOTrainer._compute_loss`, fed the same log-probs, advantages and masks;
and benchmarks/grpo_vs_trl.py (with --ablate) runs end to end on a tiny model folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import MICRO_TINY  # at import time, when `conftest` is this folder's (inside a test it is the last one loaded)

from backends.grpo.loss import group_advantages, grpo_loss

trl = pytest.importorskip("trl", reason="trl (the peers extra) is not installed")
pytestmark = pytest.mark.peers

# TRL's name -> our aggregation
LOSS_TYPES = {"grpo": "sequence", "dapo": "token", "dr_grpo": "constant"}
G = 4


def fixed_batch(prompts: int = 3, T: int = 7):
    """Ragged masks, ratios on both sides of the clip range, a reference away from the policy."""
    g = torch.Generator().manual_seed(1)
    B = prompts * G
    logp = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    old_logp = logp + (torch.rand(B, T, generator=g, dtype=torch.float64) - 0.5) * 0.8
    ref_logp = logp + (torch.rand(B, T, generator=g, dtype=torch.float64) - 0.5)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(torch.float64)
    rewards = torch.randint(0, 3, (B,), generator=g).to(torch.float64)
    return logp, old_logp, ref_logp, mask, rewards


class _Accelerator:
    num_processes = 1

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def trl_loss(loss_type, logp, old_logp, ref_logp, adv, mask, beta, eps_low, eps_high, max_completion_length):
    """Run TRL's `_compute_loss` on a minimal trainer whose model 'returns' the given log-probs."""
    from trl.trainer.grpo_trainer import GRPOTrainer

    B, T = logp.shape
    fake = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None),
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        beta=beta,
        loss_type=loss_type,
        epsilon_low=eps_low,
        epsilon_high=eps_high,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        max_completion_length=max_completion_length,
        accelerator=_Accelerator(),
        _entropy_bonus_enabled=False,
        aux_loss_enabled=False,
        _metrics={"train": defaultdict(list)},
    )
    inputs = {
        "prompt_ids": torch.zeros(B, 1, dtype=torch.long),
        "prompt_mask": torch.ones(B, 1, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long),
        "completion_mask": mask,
        "advantages": adv,
        "old_per_token_logps": old_logp,
        "ref_per_token_logps": ref_logp,
        "num_items_in_batch": mask.sum(),
    }
    return GRPOTrainer._compute_loss(fake, None, inputs)


@pytest.mark.parametrize("loss_type", sorted(LOSS_TYPES))
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_loss_and_gradient_match_trl(loss_type, beta):
    logp, old_logp, ref_logp, mask, rewards = fixed_batch()
    adv = group_advantages(rewards, G)
    kw = dict(beta=beta, eps_low=0.2, eps_high=0.28, max_completion_length=9)

    theirs_logp = logp.clone().requires_grad_(True)
    theirs = trl_loss(loss_type, theirs_logp, old_logp, ref_logp, adv, mask, **kw)
    theirs.backward()

    ours_logp = logp.clone().requires_grad_(True)
    ours, _ = grpo_loss(ours_logp, old_logp, ref_logp, adv, mask, eps_low=0.2, eps_high=0.28, beta=beta,
                        kl_type="k3", aggregation=LOSS_TYPES[loss_type], max_completion_tokens=9)
    ours.backward()

    assert ours.item() == pytest.approx(theirs.item(), abs=1e-9)
    torch.testing.assert_close(ours_logp.grad, theirs_logp.grad, atol=1e-9, rtol=0)


@pytest.mark.slow  # a subprocess that imports TRL and trains four copies: ~30 s quiet, 2 min on a loaded box
@pytest.mark.parametrize("steps_per_generation", ["1", "2"])
def test_the_parity_benchmark_runs_with_its_ablation_rows(tmp_path, steps_per_generation):
    """Both sides train, both get the registry's rewards, and --ablate adds one timed row per speed-up."""
    from backends.models import build_tiny_model, build_tiny_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(MICRO_TINY.vocab_size)
    build_tiny_model(MICRO_TINY, tokenizer).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "benchmarks/grpo_vs_trl.py", "--model", str(tmp_path), "--steps", "2", "--seeds", "3",
         "--steps-per-generation", steps_per_generation,
         "--prompts-per-step", "2", "--num-generations-per-prompt", "2", "--max-completion-tokens", "4",
         "--eval-prompts", "2", "--ablate"],
        cwd=root, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "wall time per step, ours / TRL" in out.stdout
    for side in ("ours", "trl", "no_prefix_sharing", "no_prealloc_cache"):
        assert f"\n{side} " in out.stdout, side  # its row in the table and its phases
    assert "no_prefix_sharing: / TRL" in out.stdout and "no_prealloc_cache: / TRL" in out.stdout
