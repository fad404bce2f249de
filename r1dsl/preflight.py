"""Before `--run` starts anything on this machine: does each stage fit here?

For every stage that would run, its needs (nodes x GPUs, GPU memory by `r1dsl plan`, the torchrun
world, data files, hub models in the local Hugging Face cache) are set against what this machine
has. Each misfit is one Problem naming the stage, what it needs, what is here and the ways forward;
the CLI prints them and exits with PREFLIGHT_FAILED before any process starts. Torch-free: GPUs are
found from the NVIDIA driver's /proc entries (or nvidia-smi when it is installed) and
CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from r1dsl import ir
from r1dsl.hub import datasets_cache, has_snapshot, hub_cache, stage_models
from r1dsl.compiler import model_parallel_misfits


@dataclass(frozen=True)
class Machine:
    """What this machine offers a local run."""

    gpus: int
    gpu_memory_gb: float | None  # per GPU; None when unknown
    cpus: int
    how: str  # how the GPUs were found, for the message
    hub_cache: Path = field(default_factory=lambda: hub_cache())
    datasets_cache: Path = field(default_factory=lambda: datasets_cache())


def this_machine() -> Machine:
    """GPUs visible to a process started here, without importing torch."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    driver = Path("/proc/driver/nvidia/gpus")
    found = sorted(driver.iterdir()) if driver.is_dir() else []
    memory: float | None = None
    how = f"{len(found)} in /proc/driver/nvidia/gpus" if found else "no NVIDIA driver found"
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=10).stdout.split()
            sizes = [float(x) / 1024 for x in out if x.replace(".", "", 1).isdigit()]
            if sizes:
                found = found if len(found) >= len(sizes) else list(range(len(sizes)))
                memory = min(sizes)
                how = f"{len(sizes)} by nvidia-smi"
        except (OSError, subprocess.SubprocessError):
            pass
    gpus = len(found)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [x for x in visible.split(",") if x.strip()]
        if not ids or ids[0].strip() == "-1":
            gpus, how = 0, how + "; CUDA_VISIBLE_DEVICES hides them all" if gpus else how
        elif gpus:
            gpus, how = min(gpus, len(ids)), how + f"; CUDA_VISIBLE_DEVICES={visible}"
    return Machine(gpus=gpus, gpu_memory_gb=memory, cpus=cpus, how=how)


@dataclass(frozen=True)
class Problem:
    stage: str
    kind: str
    need: str
    here: str
    ways: tuple[str, ...]
    also: tuple[str, ...] = ()  # later stages with the same missing input

    def __str__(self) -> str:
        also = f" (nor can {', '.join(f'`{s}`' for s in self.also)}, which need{'s' if len(self.also) == 1 else ''} it too)" if self.also else ""
        lines = [f"stage `{self.stage}` ({self.kind}) cannot run on this machine{also}",
                 f"  needs: {self.need}", f"  here:  {self.here}", "  ways forward:"]
        lines += [f"    {w}" for w in self.ways]
        return "\n".join(lines)


def _gpu_ways(stage: ir.Stage, small: bool) -> tuple[str, ...]:
    name = stage.name
    ways = ["--target slurm   submit the pipeline to a SLURM cluster with these GPUs",
            "--target nemo-rl write NeMo-RL configs for a GPU cluster",
            "--smoke          run the same stage graph here on tiny stand-ins (checks shapes and data flow)"]
    if stage.resources.nodes > 1:
        ways.append(f"--set {name}.resources.nodes=1   run on one machine")
    if small:
        ways.append(f"--set {name}.resources.gpus_per_node=0   run this stage on the CPU (slow)")
    return tuple(ways)


def check(pipeline: ir.Pipeline, stages: list[str], machine: Machine | None = None) -> list[Problem]:
    """The problems of running `stages` (names, in run order) of `pipeline` on `machine` (default: this one)."""
    machine = machine or this_machine()
    recipe = pipeline.recipe
    jobs = [job for job in pipeline.jobs if job.stage.name in stages]
    problems: list[Problem] = []
    plans = None
    for job in jobs:
        stage = job.stage
        res = stage.resources
        small = _small(recipe, stage)
        for _, key, size in model_parallel_misfits([stage], "local"):
            problems.append(Problem(
                stage.name, stage.kind, f"{key} = {size} (model parallel)",
                "r1dsl's trainer: data parallel only (DDP, or FSDP2 with resources.sharding = \"fsdp\")",
                ("--target nemo-rl write NeMo-RL configs (DTensor/Megatron model parallel)",
                 f"--set {stage.name}.resources.{key}=1 --set {stage.name}.resources.sharding=fsdp   shard over the "
                 "data-parallel ranks instead",
                 "--smoke          run the same stage graph here on tiny stand-ins (checks shapes and data flow)")))
        if res.gpus_per_node > 0:
            need = f"{res.nodes} node{'s' if res.nodes > 1 else ''} x {res.gpus_per_node} GPUs"
            if res.nodes > 1 or res.gpus_per_node > machine.gpus:
                here = f"1 node with {machine.gpus} GPU{'s' if machine.gpus != 1 else ''} ({machine.how})"
                problems.append(Problem(stage.name, stage.kind, f"{need} (torchrun world of {res.nodes * res.gpus_per_node})",
                                        here, _gpu_ways(stage, small)))
            elif machine.gpu_memory_gb:
                if plans is None:
                    from r1dsl.plan import plan

                    plans = {p.stage: p for p in plan(recipe, gpu_memory_gb=machine.gpu_memory_gb)}
                p = plans.get(stage.name)
                if p is not None and p.peak_gb > machine.gpu_memory_gb:
                    problems.append(Problem(
                        stage.name, stage.kind, f"{p.peak_gb:.1f} GiB per GPU ({p.model}, layout {p.layout}; `r1dsl plan`)",
                        f"{machine.gpu_memory_gb:.1f} GiB per GPU",
                        (f"--set {stage.name}.resources.sharding=fsdp   shard parameters, gradients and optimizer states",
                         "--target nemo-rl write NeMo-RL configs (tensor/pipeline parallel over more GPUs)",
                         "--target slurm   run it on GPUs with more memory",
                         "--smoke          run the same stage graph here on tiny stand-ins")))
        elif res.cpu_processes > machine.cpus:
            problems.append(Problem(stage.name, stage.kind, f"{res.cpu_processes} CPU processes (torchrun world)",
                                    f"{machine.cpus} CPU core{'s' if machine.cpus != 1 else ''}",
                                    (f"--set {stage.name}.resources.cpu_processes={machine.cpus}",
                                     "--target slurm   run it on a cluster")))
        for problem in _inputs(recipe, stage, machine):  # a missing model or file is one problem, however many read it
            first = next((i for i, p in enumerate(problems) if p.need == problem.need and p.here == problem.here), None)
            if first is None:
                problems.append(problem)
            else:
                problems[first] = replace(problems[first], also=problems[first].also + (stage.name,))
    return problems


def _small(recipe: ir.Recipe, stage: ir.Stage) -> bool:
    """A model a CPU could train: a tiny config, or a stage reading one."""
    model = recipe.models.get(stage.init)
    return model is not None and model.source == "tiny"


def _inputs(recipe: ir.Recipe, stage: ir.Stage, machine: Machine) -> list[Problem]:
    out = []
    for name in stage_models(stage):  # the first stage that needs a model reports it
        model = recipe.models.get(name)
        if model is None:
            continue
        if model.source == "hf" and not has_snapshot(machine.hub_cache, "model", model.path):
            out.append(Problem(stage.name, stage.kind, f"model `{name}` = hub `{model.path}`",
                               f"not in the local Hugging Face cache ({machine.hub_cache})",
                               (f"r1dsl fetch {shlex.quote(recipe.file)}   (on a machine with network; HF_HUB_CACHE or HF_HOME choose the cache)",
                                "--smoke          run the same stage graph here on tiny stand-ins",
                                "--target slurm   run it where the model is")))
        elif model.source == "local" and not (Path(model.path) / "config.json").is_file():
            out.append(Problem(stage.name, stage.kind, f"model `{name}` in {model.path}",
                               "no config.json there", ("point `path` at a save_pretrained folder",
                                                        "--smoke          run the same stage graph on tiny stand-ins")))
    if any(r.rule == "code_accuracy" for r in stage.rewards) and shutil.which("bwrap") is None:
        out.append(Problem(stage.name, stage.kind, "bubblewrap (`bwrap`): code_accuracy runs each solution in its sandbox",
                           "bwrap not found on PATH (code rewards refuse to run without it; docs/rewards.md)",
                           ("apt-get install -y bubblewrap   (Debian/Ubuntu)",
                            "--target slurm   run it where bubblewrap is installed")))
    for name in dict.fromkeys(stage.data + stage.eval_data):
        ds = recipe.datasets.get(name)
        if ds is None:
            continue
        if ds.source in ("jsonl", "parquet") and not Path(ds.path).is_file():
            out.append(Problem(stage.name, stage.kind, f"data `{name}` from {ds.path}", "no such file",
                               ("correct the path (relative paths are relative to the recipe file)",
                                "--smoke          run the same stage graph on generated stand-in data")))
        elif (ds.source == "hf" and _offline() and not has_snapshot(machine.hub_cache, "dataset", ds.path)
              and not (machine.datasets_cache / ds.path.replace("/", "___")).exists()):
            out.append(Problem(stage.name, stage.kind, f"data `{name}` = hub dataset `{ds.path}`",
                               "not in the local cache, and HF_HUB_OFFLINE / HF_DATASETS_OFFLINE forbid downloading it",
                               (f"r1dsl fetch {shlex.quote(recipe.file)}   (on a machine with network)",
                                "--smoke          run the same stage graph on generated stand-in data")))
    return out


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def report(problems: list[Problem]) -> str:
    head = f"r1dsl: preflight: {len(problems)} problem{'s' if len(problems) != 1 else ''}; nothing was started"
    return "\n".join([head] + [str(p) for p in problems])
