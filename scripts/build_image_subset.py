#!/usr/bin/env python3
"""Writes the Fashion-MNIST subset bundled in data/fashion-mnist/ from the full set that
scripts/fetch_fashion_mnist.sh unpacks: the first 100 images of each class in the training
split (1,000) and the first 20 of each class in the test split (200), in their original order,
as uncompressed IDX files (0.94 MB in all).

    python3 scripts/build_image_subset.py [FULL_DIR] [OUT_DIR]
"""
import pathlib
import struct
import sys

full = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                    pathlib.Path.home() / ".cache/pretext/data/fashion-mnist")
out = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "data/fashion-mnist")
out.mkdir(parents=True, exist_ok=True)

for split, per_class in [("train", 100), ("t10k", 20)]:
    images = (full / f"{split}-images-idx3-ubyte").read_bytes()
    labels = (full / f"{split}-labels-idx1-ubyte").read_bytes()
    n, h, w = struct.unpack(">III", images[4:16])
    size = h * w
    taken, counts = [], [0] * 10
    for i, label in enumerate(labels[8:8 + n]):
        if counts[label] < per_class:
            counts[label] += 1
            taken.append(i)
    pixels = b"".join(images[16 + i * size:16 + (i + 1) * size] for i in taken)
    (out / f"{split}-images-idx3-ubyte").write_bytes(
        struct.pack(">BBBBIII", 0, 0, 8, 3, len(taken), h, w) + pixels)
    (out / f"{split}-labels-idx1-ubyte").write_bytes(
        struct.pack(">BBBBI", 0, 0, 8, 1, len(taken)) + bytes(labels[8 + i] for i in taken))
    print(f"{split}: {len(taken)} images of {h} x {w}")
