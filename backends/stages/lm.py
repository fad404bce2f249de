"""The causal-LM training loop shared by pretrain and sft: token sequences in, a trained model out.

Each example is (input_ids, labels) with labels -100 where no loss is taken (prompt tokens, padding).
A step takes `batch_size` examples across all processes; each process runs its share in micro-batches
of `micro_batch_size` and accumulates gradients. Batches are a pure function of (seed, step), so a
resumed run sees exactly the batches the killed one would have.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from backends.models import prepare_for_training
from backends.trainer import StageRun, build_optimizer, build_scheduler
from backends.trainer.fabric import setup_trainable

Example = tuple[list[int], list[int]]  # (input_ids, labels)


def total_steps(train_cfg, num_examples: int) -> int:
    if train_cfg.epochs:
        return max(1, math.ceil(train_cfg.epochs * num_examples / train_cfg.batch_size))
    return train_cfg.steps


def batch_indices(step: int, batch_size: int, num_examples: int, seed: int) -> list[int]:
    """The `batch_size` example indices of optimizer step `step`: epochs of seeded permutations, concatenated."""
    start = step * batch_size
    out: list[int] = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), num_examples)
        perm = torch.randperm(num_examples, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        out += perm[offset : offset + batch_size - len(out)].tolist()
    return out


def collate(examples: list[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad to the longest example: (input_ids, attention_mask, labels), each (B, L)."""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return ids, mask, labels


def train_causal_lm(run: StageRun, model, tokenizer, examples: list[Example]):
    """Train `model` on `examples` as configured by `run.cfg.model.{optim,train}`.

    Returns the Fabric-wrapped model and the last step's metrics (empty when resumed at the end).
    """
    cfg = run.cfg.model
    steps = total_steps(cfg.train, len(examples))
    seed = cfg.train.seed
    per_rank = max(1, cfg.train.batch_size // run.world_size)
    micro = min(cfg.train.micro_batch_size, per_rank)

    prepare_for_training(model, run.cfg.resources)
    model, optimizer, raw_optimizer = setup_trainable(run.fabric, model, lambda params: build_optimizer(params, cfg.optim))
    scheduler = build_scheduler(raw_optimizer, cfg.optim, steps)
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    start = run.resume(state)
    max_grad_norm = cfg.optim.max_grad_norm

    model.train()
    metrics: dict[str, float] = {}
    with run.progress(steps, start, f"{run.name} ({run.cfg.kind})") as bar:
        for step in range(start, steps):
            t0 = time.time()
            batch = batch_indices(step, per_rank * run.world_size, len(examples), seed)[run.rank :: run.world_size]
            chunks = [batch[i : i + micro] for i in range(0, len(batch), micro)]
            target_tokens = sum(sum(1 for t in examples[j][1][1:] if t != -100) for j in batch)
            loss_sum, tokens = 0.0, 0
            for k, chunk in enumerate(chunks):
                ids, mask, labels = (t.to(run.device) for t in collate([examples[j] for j in chunk], tokenizer.pad_token_id))
                with run.fabric.no_backward_sync(model, enabled=k < len(chunks) - 1):
                    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
                    # sum over target tokens, divided by the step's target count: micro-batching does not change the loss
                    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")
                    run.fabric.backward(loss / max(1, target_tokens))
                loss_sum += loss.item()
                tokens += int(mask.sum())
            grad_norm = run.fabric.clip_gradients(model, optimizer, max_norm=max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()

            seconds = time.time() - t0
            metrics = {
                "loss": loss_sum / max(1, target_tokens),
                "lr": scheduler.get_last_lr()[0],
                "grad_norm": float(grad_norm),
                "step_time_s": seconds,
                "tokens_per_s": tokens * run.world_size / seconds,
            }
            run.log(step + 1, metrics)
            run.maybe_checkpoint(step + 1, steps, state)
            bar.update(step + 1, loss=metrics["loss"])
    return model, metrics


def train_save_evaluate(run: StageRun, model, tokenizer, examples: list[Example]) -> dict[str, float]:
    """The whole of a causal-LM stage after its data is built: train, save <stage>/model, evaluate, finish."""
    from backends.stages.eval import evaluate_stage

    model, last = train_causal_lm(run, model, tokenizer, examples)
    run.save_model(model, tokenizer)
    metrics = {"train_loss": last["loss"]} if last else {}
    metrics.update(evaluate_stage(run, model, tokenizer))
    run.finish(metrics)
    return metrics
