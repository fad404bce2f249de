"""Shared fixtures. `slurm_cluster`: a real single-node SLURM (Debian's slurmctld + slurmd) for the session."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.catalogue import build
from r1dsl.catalogue import install

install(build())  # the tests' edge: the front end checks against these backends' rules and generators

SLURM_REFERENCE_CONF = Path("/work/shared/reference/slurm-single-node.conf")
_FALLBACK_CONF = """\
ClusterName=local
SlurmctldHost=HOST
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=DIR/state
SlurmdSpoolDir=DIR/spool
SlurmctldPidFile=DIR/slurmctld.pid
SlurmdPidFile=DIR/slurmd.pid
SlurmctldLogFile=DIR/slurmctld.log
SlurmdLogFile=DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
NodeName=HOST CPUs=2 RealMemory=20000 State=UNKNOWN
PartitionName=debug Nodes=HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


@dataclass(frozen=True)
class SlurmCluster:
    conf: Path
    dir: Path
    env: dict[str, str]  # os.environ plus SLURM_CONF, for subprocesses

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=self.env, check=check, capture_output=True, text=True, timeout=60)

    def job_state(self, job_id: str) -> str:
        out = self.run("scontrol", "show", "job", job_id, check=False).stdout
        for word in out.split():
            if word.startswith("JobState="):
                return word.split("=", 1)[1]
        return "UNKNOWN"

    def wait(self, job_ids: list[str], timeout_s: float = 120) -> dict[str, str]:
        """Wait until no job is pending or running; return each job's final state."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = {j: self.job_state(j) for j in job_ids}
            if all(s not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED") for s in states.values()):
                return states
            if time.monotonic() > deadline:
                raise TimeoutError(f"SLURM jobs still active after {timeout_s}s: {states}")
            time.sleep(0.5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_conf(folder: Path) -> Path:
    template = SLURM_REFERENCE_CONF.read_text() if SLURM_REFERENCE_CONF.exists() else _FALLBACK_CONF
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    text = template.replace("HOST", host).replace("DIR", str(folder))
    # Ports of our own, so that this cluster never meets another one started on the same machine.
    text += f"SlurmctldPort={_free_port()}\nSlurmdPort={_free_port()}\n"
    # A requeued job may start again only after the credential lifetime (120 s by default): 10 s here,
    # so that the time-limit requeue test does not sit idle.
    text += "AuthInfo=cred_expire=10\n"
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    conf = folder / "slurm.conf"
    conf.write_text(text)
    return conf


def _stop(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start slurmctld + slurmd from a temp slurm.conf; SLURM_CONF points at it while the session runs."""
    if shutil.which("slurmctld") is None or shutil.which("slurmd") is None or shutil.which("sbatch") is None:
        pytest.skip("SLURM is not installed (slurmctld, slurmd, slurm-client): run .ci/install-slurm.sh")
    folder = Path(tempfile.mkdtemp(prefix="r1dsl-slurm-"))
    conf = _write_conf(folder)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = SlurmCluster(conf, folder, env)
    old_conf = os.environ.get("SLURM_CONF")
    try:
        subprocess.run(["slurmctld", "-c", "-f", str(conf)], env=env, check=True, timeout=60)
        subprocess.run(["slurmd", "-f", str(conf)], env=env, check=True, timeout=60)
        deadline = time.monotonic() + 60
        while cluster.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip() != "idle":
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in folder.glob("*.log"))
                pytest.fail(f"the SLURM node did not become idle in 60 s:\n{logs}")
            time.sleep(0.5)
        os.environ["SLURM_CONF"] = str(conf)
        # A killed test run (timeout, CI cancel) must still stop the daemons: SIGTERM unwinds like Ctrl-C.
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            yield cluster
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        if old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old_conf
        subprocess.run(["scancel", "--full", "--user", "root"], env=env, capture_output=True, timeout=30)
        _stop(folder / "slurmd.pid")
        _stop(folder / "slurmctld.pid")
        shutil.rmtree(folder, ignore_errors=True)
