#!/usr/bin/env bash
# A pretext training step against PyTorch eager on this host, measured in one run.
#
# STEP is `mlm` (default) or `mae`:
# - mlm: the criterion bench `mlm_reference_tokens_2_shards` (one shard per core) against
#   `scripts/torch_baseline.py` (HF BertForMaskedLM at the same shapes), in tokens/s;
# - mae: the bench `mae_vision_images_N_shards` (one shard per core, as the `vision` example
#   trains) against `scripts/torch_mae.py` (the same ViT and decoder), in images/s.
#
# Alternates the two ROUNDS times, torch on as many threads as there are cores, so that both
# see the same machine, drift included. Prints each round's rates and their ratio, the
# median ratio, and the host CPU.
#
#     PYTHON=/path/to/venv/bin/python bash scripts/torch_ratio.sh [ROUNDS] [STEP]
#
# PYTHON must have torch, and transformers for mlm (a throwaway venv: `pip install torch
# transformers`; they are not dependencies of the crate). ROUNDS defaults to 5.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-5}"
step="${2:-mlm}"
python="${PYTHON:-python3}"
cores="$(nproc)"
case "$step" in
  mlm) id=mlm_reference_tokens_2_shards unit=tokens script=scripts/torch_baseline.py
    modules="torch, transformers" ;;
  mae) id="mae_vision_images_${cores}_shards" unit=images script=scripts/torch_mae.py modules=torch ;;
  *) echo "error: STEP is mlm or mae, not $step" >&2; exit 2 ;;
esac
"$python" -c "import $modules" 2>/dev/null || {
  echo "error: $python cannot import $modules (set PYTHON to a venv that has them)" >&2
  exit 2
}

bench="$(cargo bench --bench train_step --no-run 2>&1 |
  sed -n 's/.*Executable .*(\(.*train_step-[0-9a-f]*\)).*/\1/p' | tail -n 1)"
test -x "$bench" || { echo "error: could not build the train_step bench" >&2; exit 1; }

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
flags="$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_bf16|amx_tile' | tr '\n' ' ')"
echo "host: ${cpu:-unknown CPU}, $cores cores; $flags"
echo "torch: $("$python" -c 'import torch; print(torch.__version__, torch.backends.cpu.get_cpu_capability())')"

ratios=()
for round in $(seq 1 "$rounds"); do
  ours="$("$bench" --bench "$id" 2>&1 |
    sed -n "s/^$id: median .* \([0-9]*\) $unit\/s.*/\1/p")"
  theirs="$("$python" "$script" --threads "$cores" --steps 20 |
    sed -n "s/.* \([0-9]*\) $unit\/s .*/\1/p")"
  if [ -z "$ours" ] || [ -z "$theirs" ]; then
    echo "error: round $round gave no figure (pretext: '$ours', PyTorch: '$theirs')" >&2
    exit 1
  fi
  ratio="$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }')"
  ratios+=("$ratio")
  echo "round $round: pretext $ours $unit/s, PyTorch $theirs $unit/s, ratio $ratio"
done
median="$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END { print (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }')"
echo "median ratio pretext / PyTorch: $median over $rounds rounds (${cpu:-unknown CPU}, $cores cores)"
