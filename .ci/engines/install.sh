#!/usr/bin/env bash
# Installs the engines the cluster tests run against (Debian 12 packages): OpenSSH, Slurm with
# munge, OpenMPI. Idempotent: does nothing when every tool is already there. Needs root.
set -euo pipefail
packages=(openssh-server openssh-client slurm-wlm munge openmpi-bin)
tools=(/usr/sbin/sshd ssh ssh-keygen slurmctld slurmd srun sinfo munged mpirun)
missing=()
for tool in "${tools[@]}"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]} == 0)); then
    echo "install.sh: engines already installed"
    exit 0
fi
echo "install.sh: missing ${missing[*]}; installing ${packages[*]}"
[[ $(id -u) == 0 ]] || { echo "install.sh: ERROR: needs root to apt-get install" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { timeout 300 apt-get update -qq &&
       timeout 600 apt-get install -y -qq "${packages[@]}"; } >"$log" 2>&1; then
    tail -20 "$log" >&2
    rm -f "$log"
    echo "install.sh: ERROR: apt-get failed" >&2
    exit 1
fi
rm -f "$log"
echo "install.sh: installed ${packages[*]}"
