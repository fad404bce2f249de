"""The SLURM target: one sbatch script per stage and a submit script that chains them with afterok.

Layout written into the run folder (next to the compiler's config.yaml and manifest.json):

    <run_dir>/submit.sh             submits every stage not DONE; `submit.sh --dry-run` prints the sbatch lines
    <run_dir>/<stage>/job.sbatch    srun + torchrun of `python -m backends.run_stage <stage>/config.yaml`
    <run_dir>/<stage>/slurm-<id>.out

    <run_dir>/<stage>/slurm_job_id  the job id submit.sh got for the stage (a rerun does not resubmit it while queued or running)

Every sbatch option is computed here and passed on the sbatch command line in submit.sh, where the
`q` filter quotes it. `#SBATCH` lines are comments that sbatch parses with its own rules (and a
newline in a value would end the comment and start a shell command), so the stage script repeats
only the options whose values are plain words. Torch-free: the compiler imports this module.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from r1dsl.ir import Pipeline, StageJob
from r1dsl.render import render

PROJECT_DIR = Path(__file__).resolve().parents[2]
SUBMIT_SCRIPT = "submit.sh"
STAGE_SCRIPT = "job.sbatch"
JOB_ID_FILE = "slurm_job_id"
# SLURM checks time limits every 30 s: the time-limit signal comes at the check that precedes the lead time
# (up to 30 s early), and the job is ended at the first check at or after the limit. So the lead must be at
# least 30 s, and the stage has at least the lead from the signal to the end (the wait below keeps a margin).
SLURM_CHECK_INTERVAL_S = 30
REQUEUE_MARGIN_S = 10  # kept between the end of the wait for the checkpoint and the earliest end of the job

_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.,:/@%+=-]+")


def plain(value: str) -> bool:
    """True when `value` can sit unquoted in an `#SBATCH` line: no blanks, quotes, `$`, `#` or newlines (`%` is a SLURM filename pattern)."""
    return bool(_PLAIN_WORD.fullmatch(value))


def label(text: str) -> str:
    """A rendering of a name safe in a comment or a job name (never used for paths or arguments)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64] or "_"


def slurm_path(path: str | Path) -> str:
    """A path as sbatch --output reads it: `%` starts a SLURM filename pattern, so double it."""
    return str(path).replace("%", "%%")


@dataclass(frozen=True)
class Submission:
    """One sbatch call of submit.sh: what submit.sh.j2 renders for a stage."""

    index: int
    name: str
    label: str
    done: str  # the stage's DONE file
    after: tuple[int, ...]  # indices of the stages it waits for (afterok)
    args: tuple[str, ...]  # sbatch options and the script (and its arguments)
    prefix: tuple[str, ...] = ()  # words before `sbatch`, e.g. ("env", "COMMAND=...") for ray.sub

    def as_template_values(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "label": self.label,
            "done": self.done,
            "job_file": str(Path(self.done).parent / JOB_ID_FILE),
            "after": list(self.after),
            "args": list(self.args),
            "prefix": list(self.prefix),
        }


def job_index(pipeline: Pipeline) -> dict[str, int]:
    """Stage name -> 1-based position in run order."""
    return {job.stage.name: i for i, job in enumerate(pipeline.jobs, start=1)}


def after_indices(job: StageJob, pipeline: Pipeline) -> tuple[int, ...]:
    """Positions of the stages `job` reads from (its init stage and stage-sourced data)."""
    index = job_index(pipeline)
    return tuple(sorted({index[name] for name in job.stage.after if name in index}))


def stage_dir(job: StageJob) -> Path:
    return Path(job.dir)


def common_options(job: StageJob, pipeline: Pipeline, *, gpus_per_node: int | None = None) -> list[str]:
    """sbatch options every stage job gets: name, nodes, time, partition, account, logs, requeue."""
    res = job.stage.resources
    gpus = res.gpus_per_node if gpus_per_node is None else gpus_per_node
    options = [
        f"--job-name={label(pipeline.recipe.name)}.{label(job.stage.name)}",
        f"--nodes={res.nodes}",
        f"--ntasks={res.nodes}",
        "--ntasks-per-node=1",
        f"--time={res.time_limit_min}",
        f"--output={slurm_path(stage_dir(job))}/slurm-%j.out",
        "--open-mode=append",
        "--requeue",
        "--kill-on-invalid-dep=yes",
    ]
    if gpus > 0:
        options.append(f"--gres=gpu:{gpus}")
    else:
        options.append(f"--cpus-per-task={res.cpu_processes}")
    if partition(job):
        options.append(f"--partition={partition(job)}")
    if account(job):
        options.append(f"--account={account(job)}")
    return options


def account(job: StageJob) -> str | None:
    """resources.account, else sbatch's own SBATCH_ACCOUNT of the compile environment (written into the script,
    so the job runs where the compiling user meant even when submit.sh runs in another shell)."""
    return job.stage.resources.account or os.environ.get("SBATCH_ACCOUNT") or None


def partition(job: StageJob) -> str | None:
    """resources.partition, else SBATCH_PARTITION of the compile environment."""
    return job.stage.resources.partition or os.environ.get("SBATCH_PARTITION") or None


def checkpoint_lead_s(job: StageJob) -> int:
    """Seconds before the time limit at which SLURM signals the job: checkpoint_before_limit_s, at most half the
    limit, at least SLURM's 30 s check interval."""
    res = job.stage.resources
    return max(SLURM_CHECK_INTERVAL_S, min(res.checkpoint_before_limit_s, res.time_limit_min * 60 // 2))


def checkpoint_wait_s(job: StageJob) -> int:
    """How long the trap waits for the stage to checkpoint and exit before it requeues the job anyway."""
    lead = checkpoint_lead_s(job)
    return max(SLURM_CHECK_INTERVAL_S, lead - SLURM_CHECK_INTERVAL_S) - REQUEUE_MARGIN_S


def stage_options(job: StageJob, pipeline: Pipeline) -> list[str]:
    """sbatch options of a stage on our own backend: the common ones, whole nodes for GPU jobs, the time-limit signal."""
    options = common_options(job, pipeline)
    if job.stage.resources.gpus_per_node > 0:
        # every CPU and all the memory of its nodes: without them a GPU job gets one CPU per task and the
        # cluster's default memory, which starves data loading and tokenization of the 8 trainer processes
        options += ["--exclusive", "--mem=0"]
    # B: the batch shell only; its trap makes the stage checkpoint, then requeues the job (job.sbatch)
    options.append(f"--signal=B:USR1@{checkpoint_lead_s(job)}")
    return options


def container_mounts(pipeline: Pipeline) -> list[str]:
    """Folders a container must see at the same path: the run folder and this checkout."""
    return sorted({str(Path(pipeline.run_dir)), str(PROJECT_DIR)})


def launch_words(job: StageJob, pipeline: Pipeline) -> tuple[list[str], list[str]]:
    """(srun options, words before the stage command) that run it in `container_image` with `container_runtime`."""
    res = job.stage.resources
    if not res.container_image:
        return [], []
    mounts = container_mounts(pipeline)
    if res.container_runtime == "apptainer":
        words = ["apptainer", "exec"] + (["--nv"] if res.gpus_per_node > 0 else [])
        words += ["--bind", ",".join(mounts), "--pwd", str(PROJECT_DIR), res.container_image]
        return [], words
    return [
        f"--container-image={res.container_image}",
        f"--container-mounts={','.join(f'{m}:{m}' for m in mounts)}",
        f"--container-workdir={PROJECT_DIR}",
    ], []


def stage_script_values(job: StageJob, pipeline: Pipeline) -> dict[str, Any]:
    """Everything templates/slurm/stage.sbatch.j2 renders, computed here (templates hold no logic)."""
    res = job.stage.resources
    srun_args, wrapper = launch_words(job, pipeline)
    lead = checkpoint_lead_s(job)
    return {
        "directives": [o for o in stage_options(job, pipeline) if plain(o)],
        "stage_dir": str(stage_dir(job)),
        "config": str(stage_dir(job) / "config.yaml"),
        "workdir": str(PROJECT_DIR),
        "project": str(PROJECT_DIR),
        "srun_args": srun_args,
        "wrapper": wrapper,
        "nproc_per_node": res.processes_per_node,
        "torchrun": res.world_size > 1,
        "checkpoint_wait_s": checkpoint_wait_s(job),
        "lead_s": lead,
    }


def write_stage_config(job: StageJob) -> Path:
    """Write <stage>/config.yaml from the job unless the compiler already did."""
    from r1dsl.compiler import config_yaml

    path = stage_dir(job) / "config.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config_yaml(_plain_data(job.config)))
    return path


def _plain_data(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_data(v) for v in value]
    return value


def write_script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def emit_stage(job: StageJob, pipeline: Pipeline) -> tuple[list[Path], Submission]:
    """Write one stage's config.yaml and job.sbatch; return them and its line of submit.sh."""
    config = write_stage_config(job)
    script = write_script(stage_dir(job) / STAGE_SCRIPT, render("slurm/stage.sbatch.j2", **stage_script_values(job, pipeline)))
    submission = Submission(
        index=job_index(pipeline)[job.stage.name],
        name=job.stage.name,
        label=f"{label(job.stage.name)} ({label(job.stage.kind)})",
        done=str(stage_dir(job) / "DONE"),
        after=after_indices(job, pipeline),
        args=(*stage_options(job, pipeline), str(script)),
    )
    return [config, script], submission


def write_submit_script(pipeline: Pipeline, submissions: Sequence[Submission]) -> Path:
    text = render(
        "slurm/submit.sh.j2",
        target_label=label(pipeline.target),
        run_dir=pipeline.run_dir,
        job_id_file=JOB_ID_FILE,
        stages=[s.as_template_values() for s in submissions],
    )
    return write_script(Path(pipeline.run_dir) / SUBMIT_SCRIPT, text)


def emit(pipeline: Pipeline) -> list[Path]:
    """Write every stage's job.sbatch (and config.yaml if missing) and the run's submit.sh."""
    written: list[Path] = []
    submissions: list[Submission] = []
    for job in pipeline.jobs:
        paths, submission = emit_stage(job, pipeline)
        written += paths
        submissions.append(submission)
    written.append(write_submit_script(pipeline, submissions))
    return written


def run_submit(pipeline: Pipeline, emit_fn: Callable[[Pipeline], list[Path]], dry_run: bool) -> int:
    """Emit with `emit_fn`, then run the run's submit.sh (`--dry-run`: print the sbatch lines)."""
    emit_fn(pipeline)
    command = ["bash", str(Path(pipeline.run_dir) / SUBMIT_SCRIPT)] + (["--dry-run"] if dry_run else [])
    return subprocess.call(command)


def run(pipeline: Pipeline, dry_run: bool = False) -> int:
    """Emit, then run submit.sh (which submits each stage after its inputs); return its exit status."""
    return run_submit(pipeline, emit, dry_run)


def unsupported(pipeline: Pipeline) -> list[str]:
    """What this target cannot honour (every stage runs through our own backend): nothing beyond `refusals`."""
    return []


@dataclass(frozen=True)
class MountRefusal:
    """A folder a container must see that its mount list cannot name (printed by the CLI; nothing is written)."""

    path: str

    def __str__(self) -> str:
        return (f"error: `{self.path}` holds `,` or `:`: pyxis (--container-mounts) and apptainer (--bind) split "
                "their mount lists there, so the container would not see it\n"
                "  help: choose a run folder (-o) and an r1dsl checkout whose paths hold neither `,` nor `:`")


def refusals(pipeline: Pipeline, jobs: Sequence[StageJob] | None = None) -> list[MountRefusal]:
    """Folders that stages in a container (of `jobs`, default all) need mounted but a mount list cannot express."""
    jobs = pipeline.jobs if jobs is None else jobs
    if not any(job.stage.resources.container_image for job in jobs):
        return []
    return [MountRefusal(path) for path in container_mounts(pipeline) if "," in path or ":" in path]
