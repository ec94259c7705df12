"""Builds a large synthetic corpus from the bundled text, for checks of memory and speed at scale.

The output is generated: write it somewhere outside the repository (e.g. /tmp) and never commit it.

    python3 scripts/synthetic_corpus.py --out DIR --mb 300 [--seed 0] [--format txt|jsonl] [--gzip]

Documents are the 542 files of data/brown/*.txt and data/shakespeare/*.txt (one document per
file), re-sampled uniformly with replacement, in random order, until the text written reaches
--mb MB (10^6 bytes of UTF-8 text; the last document may overshoot). Each document is written
verbatim, so that paragraph and sentence splitting behave exactly as on the bundled files.

  --format txt    one file per document, 1000 to a folder: DIR/00000/d0000000.txt,
                  DIR/00000/d0000001.txt, ..., DIR/00001/d0001000.txt, ... (read it with
                  `Corpus::from_dir`, which walks DIR recursively in sorted order).
  --format jsonl  DIR/part-00000.jsonl, DIR/part-00001.jsonl, ... of about 256 MB each, one
                  {"text": ...} object per line (the form of Hugging Face `datasets`' to_json);
                  with --gzip, .jsonl.gz instead (gzip level 1, for speed).

The same --seed gives the same documents in the same order under the same names. The script
streams: it holds the bundled text (~11 MB) and one document at a time, never a whole output
file. Standard library only. DIR must be absent or empty.
"""

import argparse
import gzip
import json
import os
import pathlib
import random
import sys
import time

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"
PER_FOLDER = 1000
PART_BYTES = 256 * 10**6


def load_documents():
    paths = sorted(DATA.glob("brown/*.txt")) + sorted(DATA.glob("shakespeare/*.txt"))
    if not paths:
        sys.exit(f"no bundled documents under {DATA}/brown or {DATA}/shakespeare")
    docs = [p.read_bytes() for p in paths]
    for p, d in zip(paths, docs):
        d.decode("utf-8")  # fail early on a file that is not UTF-8
    return paths, docs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=pathlib.Path, help="output directory (absent or empty)")
    ap.add_argument("--mb", required=True, type=float, help="MB (10^6 bytes) of document text to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", choices=("txt", "jsonl"), default="txt")
    ap.add_argument("--gzip", action="store_true", help="jsonl only: write .jsonl.gz parts")
    args = ap.parse_args()
    if args.gzip and args.format != "jsonl":
        ap.error("--gzip applies to --format jsonl only")
    if args.mb <= 0:
        ap.error("--mb must be positive")
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out} is not empty; remove it or choose another --out")
    args.out.mkdir(parents=True, exist_ok=True)

    paths, docs = load_documents()
    if args.format == "jsonl":
        # Encoded once per source document; a line is re-used every time its document is drawn.
        docs = [
            (json.dumps({"text": d.decode("utf-8")}, ensure_ascii=False) + "\n").encode("utf-8")
            for d in docs
        ]
    text_sizes = [p.stat().st_size for p in paths]
    target = int(args.mb * 10**6)
    rng = random.Random(args.seed)
    n_src = len(docs)
    print(
        f"{n_src} bundled documents ({sum(text_sizes) / 1e6:.1f} MB); writing {target / 1e6:.0f} MB "
        f"as {args.format}{'.gz' if args.gzip else ''} to {args.out} (seed {args.seed})",
        file=sys.stderr,
    )

    start = time.monotonic()
    n_docs = 0
    text_bytes = 0  # bytes of document text (what --mb counts)
    out_bytes = 0  # bytes written to disk (uncompressed for gzip)
    next_report = 0.0
    step = max(target / 20, 1)

    def progress(final=False):
        nonlocal next_report
        if final or text_bytes >= next_report:
            dt = time.monotonic() - start
            print(
                f"  {n_docs:>9,} documents  {text_bytes / 1e6:>9.1f} MB  "
                f"{100 * min(text_bytes / target, 1):5.1f} %  {dt:6.1f} s",
                file=sys.stderr,
                flush=True,
            )
            next_report = text_bytes + step

    if args.format == "txt":
        folder = None
        while text_bytes < target:
            i = rng.randrange(n_src)
            if n_docs % PER_FOLDER == 0:
                folder = args.out / f"{n_docs // PER_FOLDER:05d}"
                folder.mkdir()
            data = docs[i]
            with open(folder / f"d{n_docs:07d}.txt", "wb") as f:
                f.write(data)
            n_docs += 1
            text_bytes += len(data)
            out_bytes += len(data)
            progress()
    else:
        part = 0
        while text_bytes < target:
            suffix = ".jsonl.gz" if args.gzip else ".jsonl"
            path = args.out / f"part-{part:05d}{suffix}"
            raw = open(path, "wb")
            f = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) if args.gzip else raw
            part_bytes = 0
            while text_bytes < target and part_bytes < PART_BYTES:
                i = rng.randrange(n_src)
                line = docs[i]
                f.write(line)
                n_docs += 1
                text_bytes += text_sizes[i]
                part_bytes += len(line)
                progress()
            if f is not raw:
                f.close()
            raw.close()
            out_bytes += part_bytes
            part += 1

    progress(final=True)
    dt = time.monotonic() - start
    on_disk = out_bytes
    if args.gzip:
        on_disk = sum(p.stat().st_size for p in args.out.glob("part-*.jsonl.gz"))
    print(
        f"wrote {n_docs} documents, {text_bytes} bytes of text ({text_bytes / 1e6:.1f} MB), "
        f"{on_disk} bytes on disk, to {args.out} in {dt:.1f} s"
    )


if __name__ == "__main__":
    main()
