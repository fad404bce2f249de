#!/usr/bin/env bash
# Install what the SLURM tests need when missing: Debian's SLURM (slurmctld, slurmd, slurm-client) for the
# single-node and two-node clusters, and iproute2 (`ip netns`, veth) for the two-node cluster's namespaces
# (unshare and nsenter come with util-linux, which every Debian has).
set -euo pipefail
packages=()
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null; then
  packages+=(slurmctld slurmd slurm-client)
fi
if ! command -v ip >/dev/null; then
  packages+=(iproute2)
fi
if [ "${#packages[@]}" -eq 0 ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
