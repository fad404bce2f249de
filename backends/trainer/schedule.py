"""Learning-rate schedules: linear warm-up, then cosine, linear or constant (`model.optim` of a stage config)."""

from __future__ import annotations

import math

import torch

from r1dsl.ir import Optim


def lr_factor(step: int, total_steps: int, warmup_steps: int = 0, schedule: str = "cosine", min_lr_ratio: float = 0.1) -> float:
    """Multiplier of the peak lr at optimizer step `step` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "linear":
        decay = 1.0 - progress
    elif schedule == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        raise ValueError(f"unknown lr_schedule {schedule!r} (cosine, constant, linear)")
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay


def build_optimizer(params, optim: Optim) -> torch.optim.Optimizer:
    """AdamW with the stage's lr and weight decay (betas as in most LLM recipes)."""
    return torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay, betas=(0.9, 0.95))


def build_scheduler(optimizer: torch.optim.Optimizer, optim: Optim, total_steps: int):
    """A LambdaLR stepping once per optimizer step; its state resumes with the checkpoint."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, optim.warmup_steps, optim.lr_schedule, optim.min_lr_ratio)
    )
