"""Lightning Fabric from a stage config's `trainer` block, and seeding."""

from __future__ import annotations

import os
import random
from typing import Any, Mapping

import numpy as np
import torch


def setup_fabric(trainer: Mapping[str, Any]):
    """A launched Fabric: cpu or gpu, devices x nodes processes, DDP (gloo on CPU) when more than one.

    Under `torchrun` the processes already exist and Fabric joins them; run directly with devices > 1,
    Fabric starts the other processes itself (re-running the same command).
    """
    from lightning.fabric import Fabric
    from lightning.fabric.strategies import DDPStrategy

    accelerator, devices, num_nodes = trainer.accelerator, trainer.devices, trainer.num_nodes
    strategy: Any = trainer.strategy
    if devices * num_nodes > 1 and strategy in ("auto", "ddp"):
        strategy = DDPStrategy(process_group_backend="gloo" if accelerator == "cpu" else "nccl")
    if accelerator == "cpu":
        # processes share the machine's cores; oversubscribing threads makes every process much slower.
        # OMP_NUM_THREADS, when set (torchrun sets it to 1), wins over the even split.
        local = int(os.environ.get("LOCAL_WORLD_SIZE", devices))
        threads = os.environ.get("OMP_NUM_THREADS") or (os.cpu_count() or 1) // max(1, local)
        torch.set_num_threads(max(1, int(threads)))
    fabric = Fabric(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=trainer.precision,
    )
    fabric.launch()
    return fabric


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch RNGs (every process gets the same seed: DDP ranks start identical)."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)
