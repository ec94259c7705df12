"""Baseline for pretext's preparation throughput: Hugging Face `tokenizers`' own Python
`encode_batch` on the same text.

    python3 scripts/tokenizers_baseline.py INPUT_DIR [--tokenizer data/tokenizer.json] [--batch-mb 8]

Reads every .txt file under INPUT_DIR (recursively, in sorted order; e.g. the output of
scripts/synthetic_corpus.py --format txt) in batches of about --batch-mb MB of file bytes. To
compare fairly with pretext's preparation, which cuts documents into paragraphs and sentences
and encodes each sentence, every non-empty line, stripped of surrounding whitespace, is one
input of `encode_batch(lines, add_special_tokens=False)`. Only reading (with decoding and line
splitting) and encoding are timed; counting the tokens is not. Prints wall seconds, MB (10^6
bytes) of file bytes read, MB/s and the number of tokens.

Needs `tokenizers` (not a dependency of the crate): `pip install tokenizers`.

Threads: encode_batch runs on tokenizers' rayon pool, which has as many threads as CPUs this
process may use, or RAYON_NUM_THREADS if set. For the 1-core figure, pin it to one core:

    taskset -c 0 python3 scripts/tokenizers_baseline.py /tmp/synth
    RAYON_NUM_THREADS=2 python3 scripts/tokenizers_baseline.py /tmp/synth
"""

import argparse
import os
import pathlib
import sys
import time

DEFAULT_TOKENIZER = pathlib.Path(__file__).resolve().parent.parent / "data" / "tokenizer.json"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input_dir", type=pathlib.Path)
    ap.add_argument("--tokenizer", type=pathlib.Path, default=DEFAULT_TOKENIZER)
    ap.add_argument("--batch-mb", type=float, default=8.0, help="MB of file bytes per encode_batch call")
    args = ap.parse_args()

    try:
        from tokenizers import Tokenizer
    except ImportError:
        sys.exit("tokenizers is not installed: pip install tokenizers")
    import tokenizers

    # The same order as pretext's Corpus::from_dir: every *.txt under the directory, sorted.
    files = sorted(p for p in args.input_dir.rglob("*.txt") if p.is_file())
    if not files:
        sys.exit(f"no .txt files under {args.input_dir}")
    tok = Tokenizer.from_file(str(args.tokenizer))
    batch_bytes = max(int(args.batch_mb * 10**6), 1)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"tokenizers {tokenizers.__version__}, {args.tokenizer}; {len(files)} files; "
        f"{cpus} CPUs allowed, RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}, "
        f"TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', 'unset')}",
        file=sys.stderr,
    )

    total_bytes = 0
    n_lines = 0
    n_tokens = 0
    timed = 0.0
    n_batches = 0
    i = 0
    while i < len(files):
        t0 = time.perf_counter()
        lines = []
        got = 0
        while i < len(files) and got < batch_bytes:
            data = files[i].read_bytes()
            i += 1
            got += len(data)
            for line in data.decode("utf-8").splitlines():
                line = line.strip()
                if line:
                    lines.append(line)
        encodings = tok.encode_batch(lines, add_special_tokens=False)
        timed += time.perf_counter() - t0
        # Not timed: the count walks the Encoding objects in Python.
        n_tokens += sum(len(e) for e in encodings)
        n_lines += len(lines)
        total_bytes += got
        n_batches += 1
        del encodings, lines
        if n_batches % 10 == 0:
            print(f"  {total_bytes / 1e6:9.1f} MB  {timed:7.1f} s  {total_bytes / 1e6 / timed:7.2f} MB/s",
                  file=sys.stderr, flush=True)

    mb = total_bytes / 1e6
    print(f"files {len(files)}  lines {n_lines}  tokens {n_tokens}")
    print(f"read+encode {timed:.2f} s  {mb:.1f} MB  {mb / timed:.2f} MB/s  {n_tokens / timed:,.0f} tokens/s")


if __name__ == "__main__":
    main()
