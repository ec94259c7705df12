#!/usr/bin/env bash
# Fetches Fashion-MNIST (70,000 grayscale 28 × 28 images of clothes in 10 classes; Zalando SE,
# MIT licence) from Debian's package dataset-fashion-mnist and unpacks its four IDX files,
# decompressed, into DIR (default ~/.cache/pretext/data/fashion-mnist). Nothing is committed;
# run it once:
#
#   bash scripts/fetch_fashion_mnist.sh
#
# The decompressed files are checked against the MD5 sums of the upstream release (Debian
# recompresses the .gz files, so their own sums differ from upstream's).
set -euo pipefail
dir="${1:-$HOME/.cache/pretext/data/fashion-mnist}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod a+rwx "$work"  # apt downloads as the _apt user where it can
(cd "$work" && apt-get download dataset-fashion-mnist > /dev/null)
dpkg -x "$work"/dataset-fashion-mnist_*.deb "$work/pkg"
mkdir -p "$dir"
for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
  t10k-labels-idx1-ubyte; do
  gunzip -c "$work/pkg/usr/share/datasets/fashion-mnist/$name.gz" > "$dir/$name.tmp"
  mv "$dir/$name.tmp" "$dir/$name"
done
(cd "$dir" && md5sum -c --quiet) <<'SUMS'
f4a8712d7a061bf5bd6d2ca38dc4d50a  train-images-idx3-ubyte
9018921c3c673c538a1fc5bad174d6f9  train-labels-idx1-ubyte
8181f5470baa50b63fa0f6fddb340f0a  t10k-images-idx3-ubyte
15d484375f8d13e6eb1aabb0c3f46965  t10k-labels-idx1-ubyte
SUMS
echo "Fashion-MNIST in $dir"
