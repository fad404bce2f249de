"""`reward_model`: train a preference model (Bradley-Terry) on (prompt, chosen, rejected) pairs.

The stage starts from a causal LM (a tiny config, a stage's `model/`, or a local checkpoint), puts a
one-logit sequence-classification head on its backbone and minimises -log sigmoid(r_chosen - r_rejected).
Its `model/` folder is what the `preference_model` reward loads in a later GRPO stage.
Metrics: loss and pair accuracy (r_chosen > r_rejected) per step, pair accuracy on the eval sets.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from backends.data.loading import DataError, load_rows
from backends.rewards.model_based import preference_batch
from backends.stages.lm import batch_indices, total_steps
from backends.trainer import StageRun, build_optimizer, build_scheduler
from backends.trainer.fabric import setup_trainable


def load_classifier(init_cfg, work_dir):
    """A one-logit AutoModelForSequenceClassification on the backbone of the stage's starting model."""
    from transformers import AutoModelForSequenceClassification

    from backends.models import load_policy, save_policy

    path = init_cfg.path
    if init_cfg.source == "tiny" or not path:
        lm, tokenizer = load_policy(init_cfg, "cpu")  # a fresh tiny LM: save it so from_pretrained can read it
        path = str(work_dir / "init")
        save_policy(lm, tokenizer, path)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, local_files_only=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def rewards_of(model, tokenizer, prompts, responses, max_tokens: int, device) -> torch.Tensor:
    """(B,) scores of prompt + response, in the layout the `preference_model` reward scores (`preference_ids`)."""
    enc = preference_batch(tokenizer, prompts, responses, max_tokens, device)
    return model(**enc).logits[:, 0].float()


@torch.no_grad()
def pair_accuracy(model, tokenizer, rows, max_tokens: int, device, batch: int = 64) -> float:
    model.eval()
    wins = 0
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        prompts = [r["prompt"] for r in chunk]
        good = rewards_of(model, tokenizer, prompts, [r["chosen"] for r in chunk], max_tokens, device)
        bad = rewards_of(model, tokenizer, prompts, [r["rejected"] for r in chunk], max_tokens, device)
        wins += int((good > bad).sum())
    model.train()
    return wins / max(1, len(rows))


def run(cfg) -> dict[str, float]:
    run = StageRun(cfg)
    train = cfg.model.train
    rows = [row for dataset in cfg.model.data.train for row in load_rows(dataset)]
    rows = [row for row in rows if {"prompt", "chosen", "rejected"} <= row.keys()]
    if not rows:
        raise DataError(f"{cfg.name}: reward_model needs rows with `prompt`, `chosen` and `rejected` fields")
    model, tokenizer = load_classifier(cfg.model.init, run.exp_dir)
    steps = total_steps(train, len(rows))
    max_tokens = train.max_seq_len
    per_rank = max(1, train.batch_size // run.world_size)

    model, optimizer, raw_optimizer = setup_trainable(run.fabric, model, lambda params: build_optimizer(params, cfg.model.optim))
    scheduler = build_scheduler(raw_optimizer, cfg.model.optim, steps)
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    start = run.resume(state)
    metrics: dict[str, float] = {}
    with run.progress(steps, start, f"{run.name} (reward_model)") as bar:
        for step in range(start, steps):
            t0 = time.time()
            idx = batch_indices(step, per_rank * run.world_size, len(rows), train.seed)[run.rank :: run.world_size]
            batch = [rows[i] for i in idx]
            prompts = [r["prompt"] for r in batch]
            chosen = rewards_of(model, tokenizer, prompts, [r["chosen"] for r in batch], max_tokens, run.device)
            rejected = rewards_of(model, tokenizer, prompts, [r["rejected"] for r in batch], max_tokens, run.device)
            loss = -F.logsigmoid(chosen - rejected).mean()  # Bradley-Terry
            run.fabric.backward(loss)
            run.fabric.clip_gradients(model, optimizer, max_norm=cfg.model.optim.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            metrics = {
                "loss": loss.item(),
                "pair_accuracy": float((chosen > rejected).float().mean()),
                "margin": float((chosen - rejected).mean()),
                "lr": scheduler.get_last_lr()[0],
                "step_time_s": time.time() - t0,
            }
            run.log(step + 1, metrics)
            run.maybe_checkpoint(step + 1, steps, state)
            bar.update(step + 1, loss=metrics["loss"], acc=metrics["pair_accuracy"])

    run.save_model(model, tokenizer)
    result = {"train_loss": metrics["loss"]} if metrics else {}
    if run.is_main:
        for dataset in cfg.model.data.eval:
            held_out = load_rows(dataset)
            key = "pair_accuracy" if len(cfg.model.data.eval) == 1 else f"{dataset.name}/pair_accuracy"
            result[key] = pair_accuracy(model, tokenizer, held_out, max_tokens, run.device)
            run.print(f"[{run.name}] eval {dataset.name}: pair_accuracy={result[key]:.3f}")
    run.finish(result)
    return result
