"""Round trip of a pretext-trained masked LM through transformers: pretrains a `tiny` MLM on the
bundled corpus with `pretrain --export-hf`, then asks pretext's `fill_mask` (on the run and on
the export) and transformers' fill-mask pipeline (on the export) for the top 5 at each mask of
a few sentences, and prints both with the largest difference in probability.

Needs torch and transformers in a throwaway venv (see scripts/hf_fixtures.py):

    /tmp/hfvenv/bin/python scripts/fill_mask_parity.py [--steps 300]
"""

import argparse
import json
import pathlib
import subprocess
import tempfile

from transformers import pipeline

ROOT = pathlib.Path(__file__).resolve().parent.parent
SENTENCES = [
    "the [MASK] of the city was full of people.",
    "he said that the [MASK] would be ready by friday.",
    "she walked into the [MASK] and sat down.",
    "it was the [MASK] day of the [MASK] year.",
]


def cargo(*args):
    return subprocess.run(
        ["cargo", "run", "--release", "--quiet", "--example", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def ours(model):
    out = cargo("fill_mask", "--", "--model", str(model), "--json", *SENTENCES)
    return [json.loads(line) for line in out.splitlines()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run, export = pathlib.Path(tmp) / "run", pathlib.Path(tmp) / "hf"
        cargo(
            "pretrain", "--", "--preset", "tiny", "--steps", str(args.steps),
            "--out", str(run), "--export-hf", str(export),
        )
        from_run, from_export = ours(run), ours(export)
        assert from_run == from_export, "the run and its export disagree"
        fill = pipeline("fill-mask", model=str(export), top_k=5)
        worst = 0.0
        for sentence, mine in zip(SENTENCES, from_export):
            theirs = fill(sentence)
            if isinstance(theirs[0], dict):
                theirs = [theirs]
            print(sentence)
            for k, (a, b) in enumerate(zip(mine, theirs)):
                assert [p["id"] for p in a] == [p["token"] for p in b], (sentence, k)
                diff = max(abs(p["score"] - q["score"]) for p, q in zip(a, b))
                worst = max(worst, diff)
                row = ", ".join(f"{p['token']} {p['score']:.4f}" for p in a)
                print(f"  mask {k + 1}: {row}  (max diff {diff:.1e})")
        print(f"top-5 ids equal for every mask; largest probability difference {worst:.1e}")
        assert worst < 1e-4


if __name__ == "__main__":
    main()
