"""One GRPO update on a fixed rollout, as one process or as a rank of `torchrun` (used by test_fsdp.py).

    python tests/backends/fsdp_worker.py OUT auto 1                                     # the single-process step
    python -m torch.distributed.run --nproc_per_node 2 tests/backends/fsdp_worker.py OUT fsdp 2   # FSDP2 on gloo
    ... OUT auto 1 8                                    # with train_global_batch_size = 8: 2 optimizer steps

Each rank takes its prompts `[rank::world]` (whole groups), as the grpo stage does. Rank 0 writes to OUT:
the step's loss and KL (averaged over ranks, as the stage logs them), the number of parameter elements
each rank holds, and the full updated state dict (gathered from the shards under FSDP).
"""

from __future__ import annotations

import copy
import sys
from dataclasses import replace

import torch
from conftest import MICRO_TINY

from backends.grpo.rollout import Rollout
from backends.grpo.step import Scored, update
from backends.models import build_tiny_model, build_tiny_tokenizer, disable_dropout
from backends.trainer import build_optimizer
from backends.trainer.fabric import full_state_dict, is_sharded, setup_fabric, setup_frozen, setup_trainable, unwrap
from r1dsl import ir
from r1dsl.config import TrainerConfig

GRPO = ir.GRPO(num_generations_per_prompt=4, num_prompts_per_step=4, micro_batch_size=4, kl_penalty=0.05, temperature=0.7,
               max_completion_tokens=6)  # the rest: the recipe defaults
OPTIM = ir.Optim(lr=1e-2)


def fixed_rollout(vocab: int, prompts: int = 4, group: int = 4, prompt_len: int = 7, completion_len: int = 6) -> Scored:
    """A rollout of random tokens with ragged left-padded prompts and ragged completions, and random rewards."""
    g = torch.Generator().manual_seed(1)
    B = prompts * group
    prompt_ids = torch.randint(2, vocab, (prompts, prompt_len), generator=g)
    prompt_mask = torch.ones_like(prompt_ids)
    for i in range(prompts):
        prompt_mask[i, : i % 3] = 0  # left padding of 0, 1 or 2 tokens
    prompt_ids = prompt_ids.masked_fill(prompt_mask == 0, 1)
    lengths = torch.randint(1, completion_len + 1, (B,), generator=g)
    completion_mask = (torch.arange(completion_len)[None, :] < lengths[:, None]).long()
    completion_ids = torch.randint(2, vocab, (B, completion_len), generator=g).masked_fill(completion_mask == 0, 1)
    rollout = Rollout(
        prompt_ids=prompt_ids.repeat_interleave(group, 0), prompt_mask=prompt_mask.repeat_interleave(group, 0),
        completion_ids=completion_ids, completion_mask=completion_mask, truncated=lengths == completion_len,
        texts=[""] * B, vocab_size=vocab,
    )
    return Scored(rollout, group, torch.rand(B, generator=g), {})


def rank_share(scored: Scored, rank: int, world: int) -> Scored:
    """This rank's prompts [rank::world], each with its whole group."""
    G = scored.num_generations_per_prompt
    rows = [p * G + j for p in range(rank, len(scored.rollout.texts) // G, world) for j in range(G)]
    r = scored.rollout
    local = Rollout(r.prompt_ids[rows], r.prompt_mask[rows], r.completion_ids[rows], r.completion_mask[rows],
                    r.truncated[rows], [r.texts[i] for i in rows], vocab_size=r.vocab_size)
    return Scored(local, G, scored.rewards[rows], {})


def main(out: str, strategy: str, devices: int, train_global_batch_size: int | None = None) -> None:
    fabric = setup_fabric(TrainerConfig(accelerator="cpu", devices=devices, strategy=strategy, precision="32-true"))
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(MICRO_TINY.vocab_size)
    model = build_tiny_model(MICRO_TINY, tokenizer)
    disable_dropout(model)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    reference = setup_frozen(fabric, copy.deepcopy(model))
    policy, optimizer, _ = setup_trainable(fabric, model, lambda params: build_optimizer(params, OPTIM))
    scored = rank_share(fixed_rollout(len(tokenizer)), fabric.global_rank, fabric.world_size)

    grpo = GRPO if train_global_batch_size is None else replace(GRPO, train_global_batch_size=train_global_batch_size)
    stats = update(fabric, policy, reference, optimizer, scored, grpo, max_grad_norm=1.0)

    params = list(unwrap(policy).parameters())
    local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in params)
    total = sum(p.numel() for p in params)  # a DTensor's numel is the whole parameter's
    held = fabric.all_gather(torch.tensor(local)).flatten().tolist()
    averaged = fabric.all_reduce(torch.tensor([stats["loss"], stats["kl"]], dtype=torch.float64), reduce_op="mean")
    state = full_state_dict(unwrap(policy)) if is_sharded(fabric) else unwrap(policy).state_dict()
    if fabric.global_rank == 0:
        torch.save({"loss": float(averaged[0]), "kl": float(averaged[1]), "held": held, "total": total, "initial": initial,
                    "state": {k: v.detach().clone() for k, v in state.items()}}, out)
    fabric.barrier()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
