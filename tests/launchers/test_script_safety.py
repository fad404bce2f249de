"""Hostile stage names, paths and strings reach generated scripts as data, never as shell code.

Every payload would create the file named by $R1DSL_SENTINEL if a shell ever evaluated it; the
tests run the generated scripts (dry run, stage scripts with stubbed srun/scontrol/uv, and a real
SLURM submission) and check that the file never appears and the hostile paths arrive intact.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from backends.launchers import nemo_rl, slurm
from handmade import grpo_stage, make_pipeline, make_recipe
from r1dsl.ir import Dataset, Resources, Stage, Template, Train
from test_slurm import FAKE_PYTHON, STUB_APPTAINER, shellcheck

PAYLOADS = [
    "dollar$(touch $R1DSL_SENTINEL)",
    "tick`touch $R1DSL_SENTINEL`",
    "single'; touch $R1DSL_SENTINEL; '",
    'double"; touch "$R1DSL_SENTINEL"; "',
    "semi;touch $R1DSL_SENTINEL",
    "line\ntouch $R1DSL_SENTINEL\n",
    "brace${IFS}x*?[a]#~",
]
HOSTILE_DIR = "run $(touch $R1DSL_SENTINEL) `touch $R1DSL_SENTINEL` 'q\" ;& x"

STUB_SRUN = r"""#!/bin/bash
# srun stand-in: drop srun's own options, run the command once
while [ "$#" -gt 0 ] && [ "${1#--}" != "$1" ]; do shift; done
exec "$@"
"""
STUB_SCONTROL = "#!/bin/bash\necho localhost\n"
STUB_UV = r"""#!/bin/bash
# uv stand-in for the NeMo-RL run script: `uv run python SCRIPT ARGS...`
script=$3
shift 3
if [ "${script##*/}" = convert_dcp_to_hf.py ]; then
  while [ "$#" -gt 0 ]; do
    if [ "$1" = --hf-ckpt-path ]; then mkdir -p "$2"; printf '{}' > "$2/config.json"; fi
    shift
  done
else
  config=$2
  steps=$(sed -n 's/^  max_num_steps: //p' "$config" | head -n1)
  mkdir -p "${config%/*}/checkpoints/step_$steps"
fi
"""


def hostile_pipeline(root: Path, target: str, container: str | None = None, partition: str | None = None,
                     runtime: str = "pyxis", run_dir: Path | None = None):
    res = Resources(gpus_per_node=0, time_limit_min=5, partition=partition, account=partition,
                    container_image=container, container_runtime=runtime)
    stages = []
    previous = None
    for i, name in enumerate(PAYLOADS):
        if i % 2 == 0:
            stage = replace(grpo_stage(name, previous or "qwen_1_5b", previous is not None), resources=res)
        else:
            stage = Stage(name, "pretrain", previous, True, ("data",), train=Train(steps=2), resources=res,
                          after=(previous,))
        stages.append(stage)
        previous = name
    recipe = make_recipe(stages, name="r1$(touch $R1DSL_SENTINEL)")
    recipe = replace(
        recipe,
        templates={"r1_zero": Template("r1_zero", "Q: {prompt} $(touch $R1DSL_SENTINEL) `x` '\"\nA:")},
        datasets={**recipe.datasets, "data": Dataset("data", "jsonl", path=str(root / "d;$(touch $R1DSL_SENTINEL).jsonl"))},
    )
    return make_pipeline(recipe, run_dir or root / HOSTILE_DIR, target)


@pytest.fixture
def sentinel(tmp_path, monkeypatch):
    path = tmp_path / "SENTINEL"
    monkeypatch.setenv("R1DSL_SENTINEL", str(path))
    yield path
    assert not path.exists(), "a hostile recipe value was executed"


@pytest.fixture
def stubs(tmp_path, monkeypatch):
    folder = tmp_path / "stubs"
    folder.mkdir()
    for name, text in (("srun", STUB_SRUN), ("scontrol", STUB_SCONTROL), ("uv", STUB_UV), ("python-fake", FAKE_PYTHON),
                       ("apptainer", STUB_APPTAINER)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    return folder


@pytest.mark.parametrize("target,runtime", [("slurm", "pyxis"), ("slurm", "apptainer"), ("nemo-rl", "pyxis")])
def test_hostile_values_pass_shellcheck_and_the_dry_run_executes_none(target, runtime, tmp_path, sentinel, capfd):
    module = slurm if target == "slurm" else nemo_rl
    if target == "slurm":
        pipeline = hostile_pipeline(tmp_path, target, container="img$(touch $R1DSL_SENTINEL)",
                                    partition="p;touch $R1DSL_SENTINEL", runtime=runtime)
    else:  # ray.sub splits the run folder, container and partition unquoted: those are refused (below)
        pipeline = hostile_pipeline(tmp_path, target, partition="gpu", run_dir=tmp_path / "run")
    written = module.emit(pipeline)
    shellcheck(written)
    for path in written:
        if path.suffix in (".sh", ".sbatch"):
            subprocess.run(["bash", "-n", str(path)], check=True)
    assert module.run(pipeline, dry_run=True) == 0
    out = capfd.readouterr().out
    assert out.count("# -> JOB") == len(PAYLOADS)


@pytest.mark.parametrize("container", [None, "apptainer"])
def test_stage_scripts_run_with_hostile_paths_intact(container, tmp_path, sentinel, stubs):
    image = "/img dir/$(touch $R1DSL_SENTINEL) `touch $R1DSL_SENTINEL`;'\"\n.sif" if container else None
    pipeline = hostile_pipeline(tmp_path, "slurm", container=image, runtime=container or "pyxis")
    slurm.emit(pipeline)
    env = {**os.environ, "R1DSL_PYTHON": str(stubs / "python-fake"), "SLURM_JOB_NODELIST": "localhost",
           "SLURM_JOB_NUM_NODES": "1", "SLURM_JOB_ID": "42", "APPTAINER_ARGV": str(tmp_path / "apptainer_argv")}
    for job in pipeline.jobs:
        subprocess.run(["bash", str(Path(job.dir) / "job.sbatch")], env=env, check=True, capture_output=True)
        argv = (Path(job.dir) / "argv").read_text().split("\0")[:-1]
        assert argv[-1] == str(Path(job.dir) / "config.yaml")
        assert (Path(job.dir) / "DONE").exists()
        if container:
            apptainer = (tmp_path / "apptainer_argv").read_text().split("\0")[:-1]
            assert image in apptainer and pipeline.run_dir in apptainer[apptainer.index("--bind") + 1].split(",")


def test_nemo_rl_refuses_what_ray_sub_would_split(tmp_path, sentinel):
    pipeline = hostile_pipeline(tmp_path, "nemo-rl", container="img$(touch $R1DSL_SENTINEL)",
                                partition="p;touch $R1DSL_SENTINEL")
    with pytest.raises(nemo_rl.TargetError) as refused:
        nemo_rl.emit(pipeline)
    text = str(refused.value)
    for what in ("the run folder", "the partition", "the account", "the container image"):
        assert what in text, what
    assert not Path(pipeline.run_dir).exists()


def test_nemo_rl_run_scripts_run_with_hostile_paths_intact(tmp_path, sentinel, stubs, monkeypatch):
    fake_nemo = tmp_path / "nemo-rl"  # a host checkout is mounted: a plain path
    fake_nemo.mkdir()
    monkeypatch.setenv("NEMO_RL_DIR", str(fake_nemo))
    pipeline = hostile_pipeline(tmp_path, "nemo-rl", partition="gpu", run_dir=tmp_path / "run")
    nemo_rl.emit(pipeline)
    for job in pipeline.jobs:
        if nemo_rl.runs_on_nemo_rl(job):
            # what ray.sub does with COMMAND, taken from the env assignment submit.sh hands to sbatch
            command = "bash " + nemo_rl.shell_quote(Path(job.dir) / "nemo_rl_run.sh")
            subprocess.run(["bash", "-c", command], check=True, capture_output=True)
            assert (Path(job.dir) / "model" / "config.json").exists()
            assert (Path(job.dir) / "DONE").exists()


@pytest.mark.slurm
def test_hostile_pipeline_submitted_to_slurm_runs_and_executes_none(slurm_cluster, tmp_path, sentinel, stubs):
    """The slurm target on a real cluster (the NeMo-RL stages would ask for GPUs, which it lacks)."""
    pipeline = hostile_pipeline(tmp_path, "slurm")
    slurm.emit(pipeline)
    env = {**slurm_cluster.env, "R1DSL_SENTINEL": os.environ["R1DSL_SENTINEL"],
           "R1DSL_PYTHON": str(stubs / "python-fake")}
    out = subprocess.run(["bash", str(Path(pipeline.run_dir) / "submit.sh")], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ids = [line.rsplit(" ", 1)[1] for line in out.stdout.splitlines() if " as job " in line]
    assert len(ids) == len(PAYLOADS)
    states = slurm_cluster.wait(ids, timeout_s=180)
    assert set(states.values()) == {"COMPLETED"}, states
    for job in pipeline.jobs:
        assert (Path(job.dir) / "DONE").exists(), job.stage.name
        assert (Path(job.dir) / "argv").read_text().split("\0")[-2] == str(Path(job.dir) / "config.yaml")
