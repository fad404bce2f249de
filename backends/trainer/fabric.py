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
    backend = "gloo" if accelerator == "cpu" else "nccl"
    precision = trainer.precision
    if strategy == "fsdp":
        from functools import partial

        from lightning.fabric.strategies import ModelParallelStrategy

        # data-parallel over every process, no tensor parallel: FSDP2 as the data-parallel strategy
        strategy = ModelParallelStrategy(
            parallelize_fn=partial(shard_decoder_layers, reduce_in_fp32=precision == "bf16-true"),
            data_parallel_size=devices * num_nodes, tensor_parallel_size=1, process_group_backend=backend,
        )
    elif devices * num_nodes > 1 and strategy in ("auto", "ddp"):
        strategy = DDPStrategy(process_group_backend=backend)
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
        precision=precision,
    )
    fabric.launch()
    return fabric


def shard_decoder_layers(model, device_mesh, reduce_in_fp32: bool = False):
    """FSDP2 over the data-parallel mesh: one `fully_shard` unit per decoder layer, then the root.

    Each rank keeps 1/world of every parameter (and so of its gradient and optimizer state); a layer's
    parameters are all-gathered just before it runs and freed after. The root unit holds the embeddings,
    the final norm and the LM head (tied to the embeddings in most small models), kept gathered between
    forward and backward, so scoring can run the LM head over the hidden states in chunks.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = device_mesh["data_parallel"]
    kwargs: dict[str, Any] = {"mesh": mesh}
    if reduce_in_fp32:  # bf16-true: bf16 parameters, but gradients summed across ranks in fp32
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for layer in decoder_layers(model):
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)
    return model


def decoder_layers(model) -> list[torch.nn.Module]:
    """The repeated transformer blocks of a Hugging Face causal LM (`model.model.layers` and its kin)."""
    base = getattr(model, model.base_model_prefix, model) if hasattr(model, "base_model_prefix") else model
    for name in ("layers", "h", "blocks"):
        layers = getattr(base, name, None)
        if isinstance(layers, torch.nn.ModuleList):
            return list(layers)
    raise ValueError(f"{type(model).__name__}: no decoder layers found to shard (looked for layers, h, blocks)")


def unwrap(model):
    """The Hugging Face module itself behind Fabric's wrapper and DDP (under FSDP2 the module is sharded in
    place, so this is the sharded module: its forward still gathers each layer's parameters)."""
    from lightning.fabric.wrappers import _FabricModule
    from torch.nn.parallel import DistributedDataParallel

    while True:
        if isinstance(model, _FabricModule):
            model = model.module
        elif isinstance(model, DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        else:
            return model


def is_sharded(fabric) -> bool:
    """Whether the strategy shards parameters (FSDP2 through ModelParallelStrategy)."""
    from lightning.fabric.strategies import ModelParallelStrategy

    return isinstance(fabric.strategy, ModelParallelStrategy)


def setup_trainable(fabric, model, make_optimizer):
    """(model, optimizer, raw optimizer): the model set up first (FSDP shards it in place), then an optimizer
    over its parameters as they now are (sharded under FSDP), then the optimizer. The raw optimizer is what
    a learning-rate scheduler wraps."""
    model = fabric.setup_module(model)
    raw = make_optimizer(model.parameters())
    return model, fabric.setup_optimizers(raw), raw


def setup_frozen(fabric, module):
    """A module that is never trained (the GRPO reference) under the policy's precision and wrapping.

    Under FSDP it is sharded like the policy (same per-layer units, same numerics, 1/world of its memory);
    otherwise it gets the precision's dtype conversion and the device, without DDP (it has no gradients
    to synchronise). Returns the plain module: run it under `fabric.autocast()`.
    """
    module.requires_grad_(False).eval()
    if is_sharded(fabric):
        return unwrap(fabric.setup_module(module))
    module = fabric.strategy.precision.convert_module(module)
    return module.to(fabric.device)


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch RNGs (every process gets the same seed: DDP ranks start identical)."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def full_state_dict(module) -> dict[str, torch.Tensor]:
    """The whole (unsharded) state dict of an FSDP2 module, on CPU; every rank must call it (it all-gathers)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
