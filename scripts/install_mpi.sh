#!/usr/bin/env bash
# Installs what the `mpi` feature builds and runs with, from Debian's (or Ubuntu's) packages:
# Open MPI's library and headers (libopenmpi-dev), its launcher mpirun (openmpi-bin), and
# libclang (libclang-dev), which the bindings' generator loads at build time. As root, or
# through sudo. About 55 MB of downloads.
set -euo pipefail
packages=(libopenmpi-dev openmpi-bin libclang-dev)
if dpkg -s "${packages[@]}" > /dev/null 2>&1; then
  echo "MPI is installed: $(mpirun --version 2>&1 | head -n 1)"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
export DEBIAN_FRONTEND=noninteractive
install() { $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"; }
# A fresh machine's package lists may be missing or stale: refresh them only when needed.
install || { $sudo apt-get update -qq && install; }
echo "MPI installed: $(mpirun --version 2>&1 | head -n 1)"
