"""A real two-node SLURM cluster on this machine: the tiny recipe's GRPO stage across both nodes.

Each node is a network namespace with its own host name (UTS namespace) and /etc/hosts (mount
namespace); the two are joined by a veth pair with private addresses (10.213.0.1 and .2), so every
packet of the test stays between namespaces the test created. node1 runs slurmctld and one slurmd,
node2 the other slurmd (auth/none, as tests/conftest.py's single-node cluster: no munge). The run's
submit.sh is run on node1; the `zero` stage's job runs torchrun on both nodes (one gloo process per
node, c10d rendezvous on node1), and its weights and metrics must equal a single-node two-process run's.
Everything the test creates (namespaces, veths, daemons, folders) is removed after it, also on failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from test_slurm import compile_tiny

pytestmark = pytest.mark.slurm

SUBNET = "10.213.0"
NODES = {"node1": f"{SUBNET}.1", "node2": f"{SUBNET}.2"}
CONF = """\
ClusterName=twonodes
SlurmctldHost=node1({node1})
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool-%n
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd-%n.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd-%n.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
NodeName=node1 NodeAddr={node1} CPUs=1 RealMemory=4000 State=UNKNOWN
NodeName=node2 NodeAddr={node2} CPUs=1 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=node1,node2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""
# in-node NODE COMMAND...: COMMAND in NODE's network namespace, under NODE's host name and /etc/hosts
IN_NODE = """#!/bin/bash
set -euo pipefail
node=$1
shift
# nsenter, not `ip netns exec`: that remounts /sys, which hides the cgroup file system slurmd needs
exec nsenter --net="/run/netns/$R1DSL_NETNS_PREFIX$node" unshare --uts --mount \\
  bash -c 'mount --bind "$1" /etc/hosts && hostname "$2" && shift 2 && exec "$@"' in-node "$R1DSL_NODES_DIR/hosts" "$node" "$@"
"""


@dataclass(frozen=True)
class TwoNodes:
    dir: Path
    env: dict[str, str]

    def on(self, node: str, *command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.dir / "in-node"), node, *command], env=self.env, check=check,
                              capture_output=True, text=True, timeout=timeout)

    def job(self, job_id: str) -> dict[str, str]:
        out = self.on("node1", "scontrol", "show", "job", job_id, check=False).stdout
        return dict(w.split("=", 1) for w in out.split() if "=" in w)

    def wait(self, job_ids: list[str], timeout_s: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        while True:
            states = {j: self.job(j).get("JobState", "UNKNOWN") for j in job_ids}
            if all(s not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED") for s in states.values()):
                return states
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still active after {timeout_s}s: {states}")
            time.sleep(1)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.dir.glob("*.log")))


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)


def _stop(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


@pytest.fixture(scope="module")
def two_nodes():
    for tool in ("slurmctld", "slurmd", "sbatch", "ip", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not installed (SLURM: .ci/install-slurm.sh; ip: iproute2; unshare, nsenter: util-linux)")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")
    prefix = f"r1dsl{os.getpid()}-"  # names of this run only: never touches anything else on the machine
    veth = (f"r1v{os.getpid()}a", f"r1v{os.getpid()}b")
    folder = Path(tempfile.mkdtemp(prefix="r1dsl-two-nodes-"))
    created: list[str] = []
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # a killed run still cleans up
    try:
        try:
            for node in NODES:
                _run("ip", "netns", "add", prefix + node)
                created.append(prefix + node)
        except subprocess.CalledProcessError as e:
            pytest.skip(f"cannot create network namespaces here: {e.stderr.strip()}")
        _run("ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        for (node, address), end in zip(NODES.items(), veth):
            _run("ip", "link", "set", end, "netns", prefix + node)
            _run("ip", "-n", prefix + node, "addr", "add", f"{address}/24", "dev", end)
            _run("ip", "-n", prefix + node, "link", "set", end, "up")
            _run("ip", "-n", prefix + node, "link", "set", "lo", "up")
        (folder / "hosts").write_text("127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in NODES.items()))
        (folder / "in-node").write_text(IN_NODE)
        (folder / "in-node").chmod(0o755)
        for sub in ("state", *(f"spool-{n}" for n in NODES)):
            (folder / sub).mkdir()
        conf = folder / "slurm.conf"
        conf.write_text(CONF.format(dir=folder, **NODES))
        env = {**os.environ, "SLURM_CONF": str(conf), "R1DSL_NETNS_PREFIX": prefix, "R1DSL_NODES_DIR": str(folder),
               "OMP_NUM_THREADS": "1"}
        env.pop("R1DSL_PYTHON", None)  # the jobs use `python` from their environment
        cluster = TwoNodes(folder, env)
        cluster.on("node1", "slurmctld", "-c", "-f", str(conf))
        for node in NODES:
            cluster.on(node, "slurmd", "-f", str(conf), "-N", node)
        deadline = time.monotonic() + 90
        while True:
            states = cluster.on("node1", "sinfo", "-h", "-N", "-o", "%N %t", check=False).stdout.split()
            if states == ["node1", "idle", "node2", "idle"]:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the two nodes did not become idle in 90 s ({states}):\n{cluster.logs()}")
            time.sleep(0.5)
        yield cluster
    finally:
        signal.signal(signal.SIGTERM, previous)
        if (folder / "in-node").exists() and len(created) == len(NODES):
            subprocess.run([str(folder / "in-node"), "node1", "scancel", "--full", "--user", "root"],
                           env={**os.environ, "SLURM_CONF": str(folder / "slurm.conf"), "R1DSL_NETNS_PREFIX": prefix,
                                "R1DSL_NODES_DIR": str(folder)}, capture_output=True, timeout=30)
        for node in NODES:
            _stop(folder / f"slurmd-{node}.pid")
        _stop(folder / "slurmctld.pid")
        for namespace in created:
            # anything still running in a namespace of ours was started by this test
            pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)  # its veth end goes with it
        shutil.rmtree(folder, ignore_errors=True)


def weights(stage: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(stage / "model" / "model.safetensors")


def metrics(stage: Path) -> list[dict[str, str]]:
    """metrics.csv rows without the timing columns (`*_s`, `tokens_per_s`: they differ from run to run)."""
    header, *rows = [line.split(",") for line in (stage / "metrics.csv").read_text().splitlines()]
    keep = [i for i, name in enumerate(header) if not (name.endswith("_s") or name == "tokens_per_s")]
    return [{header[i]: row[i] for i in keep} for row in rows]


def test_a_job_spans_both_nodes_and_each_task_sees_its_own_host(two_nodes):
    out = two_nodes.on("node1", "srun", "--nodes=2", "--ntasks-per-node=1", "--label", "bash", "-c",
                       'echo "$(hostname) $SLURMD_NODENAME $(ip -4 -o addr show scope global | grep -o "10\\.213\\.0\\.[0-9]*")"',
                       timeout=120).stdout
    assert sorted(out.splitlines()) == ["0: node1 node1 10.213.0.1", "1: node2 node2 10.213.0.2"]


@pytest.mark.slow
def test_grpo_across_two_nodes_equals_one_node_with_two_processes(two_nodes, tmp_path):
    shorter = ["base.train.steps=6", "zero.grpo.steps=2", "zero.grpo.num_prompts_per_step=4",
               "zero.grpo.num_generations_per_prompt=4", "zero.grpo.micro_batch_size=8", "arith_test.size=8",
               # a base this short never answers in format: a length reward gives the groups' completions
               # different rewards, so GRPO has advantages and gradients to compare
               'format.rule="length"', "format.max_tokens=64", "format.mode=linear"]
    across, single = tmp_path / "two nodes", tmp_path / "one node"  # a space in the path, as a user might have
    compile_tiny(across, *shorter, "zero.resources.nodes=2", "zero.resources.cpu_processes=1")
    compile_tiny(single, *shorter, "zero.resources.nodes=1", "zero.resources.cpu_processes=2")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    # `base` once, here; both runs start their GRPO stage from it
    subprocess.run([sys.executable, "-m", "backends.run_stage", str(across / "base" / "config.yaml")], cwd=root,
                   env=env, check=True, capture_output=True, timeout=900)
    shutil.copytree(across / "base", single / "base", dirs_exist_ok=True)
    reference = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "backends.run_stage",
         str(single / "zero" / "config.yaml")], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert reference.returncode == 0, reference.stdout[-3000:] + reference.stderr[-3000:]

    script = (across / "zero" / "job.sbatch").read_text()
    assert "#SBATCH --nodes=2\n" in script and "--nproc-per-node=1" in script
    out = two_nodes.on("node1", "bash", str(across / "submit.sh")).stdout
    ids = dict(re.findall(r"r1dsl: submitted stage (.+?) as job (\d+)", out))
    assert list(ids) == ["zero"], out  # base is DONE: not submitted
    job_id = ids["zero"]
    states = two_nodes.wait([job_id], timeout_s=900)
    log = "\n".join(p.read_text() for p in (across / "zero").glob("slurm-*.out"))
    assert states[job_id] == "COMPLETED", f"{states}\n{log[-4000:]}\n{two_nodes.logs()}"
    job = two_nodes.job(job_id)
    assert (job["NumNodes"], job["NodeList"]) == ("2", "node[1-2]")
    assert "2 process(es)" in log

    trained = metrics(across / "zero")
    assert all(float(row["grad_norm"]) > 1e-3 for row in trained), trained  # a real update, not a no-op
    assert trained == metrics(single / "zero")
    a, b, base = weights(across / "zero"), weights(single / "zero"), weights(across / "base")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert any(not torch.equal(a[name], base[name]) for name in a)
