#!/usr/bin/env bash
# pretext's MLM reference step against PyTorch eager on this host, measured in one run.
#
# Alternates, ROUNDS times, the criterion bench `mlm_reference_tokens_2_shards` (pretext,
# release, one shard per core) and `scripts/torch_baseline.py` (HF BertForMaskedLM, the same
# shapes, torch on the same number of threads), so that both see the same machine, drift
# included. Prints each round's tokens/s and their ratio, the median ratio, and the host CPU.
#
#     PYTHON=/path/to/venv/bin/python bash scripts/torch_ratio.sh [ROUNDS]
#
# PYTHON must have torch and transformers (a throwaway venv: `pip install torch transformers`;
# they are not dependencies of the crate). ROUNDS defaults to 5.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-5}"
python="${PYTHON:-python3}"
cores="$(nproc)"
"$python" -c "import torch, transformers" 2>/dev/null || {
  echo "error: $python cannot import torch and transformers (set PYTHON to a venv that has them)" >&2
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
  ours="$("$bench" --bench mlm_reference_tokens_2_shards 2>&1 |
    sed -n 's/^mlm_reference_tokens_2_shards: median .* \([0-9]*\) tokens\/s.*/\1/p')"
  theirs="$("$python" scripts/torch_baseline.py --threads "$cores" --steps 20 |
    sed -n 's/.* \([0-9]*\) tokens\/s .*/\1/p')"
  if [ -z "$ours" ] || [ -z "$theirs" ]; then
    echo "error: round $round gave no figure (pretext: '$ours', PyTorch: '$theirs')" >&2
    exit 1
  fi
  ratio="$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }')"
  ratios+=("$ratio")
  echo "round $round: pretext $ours tokens/s, PyTorch $theirs tokens/s, ratio $ratio"
done
median="$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END { print (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }')"
echo "median ratio pretext / PyTorch: $median over $rounds rounds (${cpu:-unknown CPU}, $cores cores)"
