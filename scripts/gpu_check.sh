#!/usr/bin/env bash
# One-shot check of a GPU machine that has no network, with a binary built elsewhere:
# forward parity of the GPU against the CPU (1e-3), the reference MLM step's tokens/s on the
# GPU in f32 and bf16, and data parallelism over two GPUs where the machine has them.
#
#     bash scripts/llvm_for_cuda.sh                                 # here, once (LLVM for cubecl)
#     cargo build --release --features cuda --example gpu_check
#     mkdir -p gpu && strip -o gpu/gpu_check target/release/examples/gpu_check && xz -T0 gpu/gpu_check
#     bash scripts/gpu_check.sh gpu/gpu_check.xz                    # there, from the repo root
#     bash scripts/gpu_check.sh --cpu                               # the CPU half (CI runs it)
#
# The CUDA binary links LLVM statically: ~125 MB stripped, ~24 MB as .xz, which this script
# unpacks (a device machine takes 64 MiB of carried files).
# The binary reads the bundled tokenizer and text from this tree's data/ (PRETEXT_DATA_DIR).
# DEVICE (default cuda) and STEPS (default 10) override the device kind and timed steps.
set -euo pipefail
cd "$(dirname "$0")/.."
export PRETEXT_DATA_DIR="$PWD/data"

if [ "${1:-}" = "--cpu" ]; then
  # The CPU half: the fused CPU kernels against burn's composed ops, and the step's speed on
  # the CPU, through the same program.
  cargo build --release --locked --example gpu_check
  binary="${CARGO_TARGET_DIR:-target}/release/examples/gpu_check"
  # On the CPU the two paths differ by rounding alone: 4e-7 on the hosts measured, so the
  # bound is 2e-6 here, not the 1e-3 a GPU's other arithmetic needs.
  "$binary" --device flex --steps "${STEPS:-2}" --tolerance 2e-6
  "$binary" --device flex --steps "${STEPS:-2}" --float bf16
  exit
fi

binary="${1:-target/release/examples/gpu_check}"
device="${DEVICE:-cuda}"
if [ "${binary%.xz}" != "$binary" ]; then
  xz -dkf "$binary" 2> /dev/null || python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[1][:-3], 'wb'))" "$binary"
  binary="${binary%.xz}"
  chmod +x "$binary"
fi
test -x "$binary" || { echo "error: no gpu_check binary at $binary (build it first)" >&2; exit 2; }

gpus=1
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  gpus="$(nvidia-smi -L | grep -c '^GPU')"
elif command -v rocm-smi > /dev/null; then
  gpus="$(rocm-smi --showid | grep -c 'GPU\[')"
fi
echo "$gpus GPU(s)"

# A device's float type is set once per process: f32 (parity, speed, two devices), then bf16.
"$binary" --device "$device" --steps "${STEPS:-10}" --devices "$([ "$gpus" -ge 2 ] && echo 2 || echo 1)"
"$binary" --device "$device" --steps "${STEPS:-10}" --float bf16
