#!/usr/bin/env python3
"""Build data/instructions.jsonl: instruction/answer pairs made from the bundled texts, whose
answers a program can check, for supervised fine-tuning (SFT) of a causal model.

Stdlib only, deterministic (a fixed seed):

    python3 scripts/build_instructions.py --data data --out data/instructions.jsonl

Each line is {"task", "split", "prompt", "completion"} and, for `count`, a "rationale" (the
working, trained between prompt and completion: a chain of thought). Tasks:

- `copy`:    "Repeat the words: <3-6 words>"                  -> the same words
- `reverse`: "Reverse the order of the words: <3-6 words>"    -> them in reverse order
- `last`:    "What is the last word of: <4-8 words>"          -> the last word
- `count`:   "How many words are in: <3-7 words>"             -> "1 w1 2 w2 ... so N" then N
- `genre`:   "Which genre is this passage? <24 words of Brown>" -> the document's Brown genre
- `verse`:   "Continue in the style of Shakespeare: <line>"   -> the next line of the speech

Words are the lowercase alphabetic words of a Brown sentence, in order, cut to the length drawn.
Every prompt ends with " Answer:". Splits: the Brown tasks take the genre task's split of the
document (data/brown_genres; within a genre, by file id, rank % 10 of 0 or 5 is test, 3 is
validation, the rest train), so that test prompts come from documents held out of pretraining;
`verse` takes the plays (sorted by name) of rank % 5 of 0 for test, 4 for validation.
Per task: PER_SPLIT train, validation and test pairs, drawn without repeats.
"""

import argparse
import json
import os
import random
import re

PER_SPLIT = {"train": 600, "valid": 40, "test": 100}
SEED = 20261202
WORD = re.compile(r"^[a-z]+$")


def genre_splits(data):
    """(document name -> (genre, split)) by the genre task's rule."""
    rows = []
    with open(os.path.join(data, "brown_genres")) as f:
        for line in f:
            if line.strip():
                doc, genre = line.split()
                rows.append((doc, genre))
    rows.sort()
    rank, out = {}, {}
    for doc, genre in rows:
        r = rank.get(genre, 0)
        rank[genre] = r + 1
        split = "test" if r % 10 in (0, 5) else "valid" if r % 10 == 3 else "train"
        out[doc] = (genre, split)
    return out


def brown_sentences(data, splits):
    """split -> [(genre, [lowercase alphabetic words])], one entry per paragraph line."""
    out = {"train": [], "valid": [], "test": []}
    for doc in sorted(splits):
        genre, split = splits[doc]
        with open(os.path.join(data, "brown", doc + ".txt")) as f:
            for line in f:
                words = [w.strip(".,;:!?\"'()`").lower() for w in line.split()]
                words = [w for w in words if WORD.match(w)]
                if len(words) >= 8:
                    out[split].append((genre, words))
    return out


def verse_pairs(data):
    """split -> [(line, next line)] of consecutive lines of one speech, 4-10 words each."""
    plays = sorted(os.listdir(os.path.join(data, "shakespeare")))
    out = {"train": [], "valid": [], "test": []}
    for i, play in enumerate(plays):
        split = "test" if i % 5 == 0 else "valid" if i % 5 == 4 else "train"
        with open(os.path.join(data, "shakespeare", play)) as f:
            blocks = f.read().split("\n\n")
        for block in blocks:
            lines = [l.strip() for l in block.split("\n") if l.strip()]
            # A speech: a speaker's name, then its lines; stage directions are bracketed.
            verse = [l for l in lines[1:] if not l.startswith("[")]
            for a, b in zip(verse, verse[1:]):
                if 4 <= len(a.split()) <= 10 and 4 <= len(b.split()) <= 10:
                    out[split].append((a, b))
    return out


def make(task, split, rng, sentences, verses):
    """One (prompt, completion, rationale) of `task` from the `split` sources."""
    genre, words = rng.choice(sentences[split])
    if task == "copy":
        w = words[: rng.randint(3, 6)]
        return f"Repeat the words: {' '.join(w)}", " ".join(w), None
    if task == "reverse":
        w = words[: rng.randint(3, 6)]
        return f"Reverse the order of the words: {' '.join(w)}", " ".join(reversed(w)), None
    if task == "last":
        w = words[: rng.randint(4, 8)]
        return f"What is the last word of: {' '.join(w)}", w[-1], None
    if task == "count":
        w = words[: rng.randint(3, 7)]
        working = " ".join(f"{i + 1} {x}" for i, x in enumerate(w)) + " so"
        return f"How many words are in: {' '.join(w)}", str(len(w)), working
    if task == "genre":
        start = rng.randint(0, max(0, len(words) - 24))
        passage = " ".join(words[start : start + 24])
        return f"Which genre is this passage? {passage}", genre, None
    if task == "verse":
        line, following = rng.choice(verses[split])
        return f"Continue in the style of Shakespeare: {line}", following, None
    raise ValueError(task)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data")
    parser.add_argument("--out", default="data/instructions.jsonl")
    args = parser.parse_args()
    splits = genre_splits(args.data)
    sentences = brown_sentences(args.data, splits)
    verses = verse_pairs(args.data)
    rng = random.Random(SEED)
    rows = []
    for task in ["copy", "reverse", "last", "count", "genre", "verse"]:
        for split, n in PER_SPLIT.items():
            seen = set()
            while len(seen) < n:
                prompt, completion, rationale = make(task, split, rng, sentences, verses)
                prompt += " Answer:"
                if prompt in seen:
                    continue
                seen.add(prompt)
                row = {"task": task, "split": split, "prompt": prompt, "completion": completion}
                if rationale is not None:
                    row["rationale"] = rationale
                rows.append(row)
    with open(args.out, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"{len(rows)} pairs written to {args.out}")


if __name__ == "__main__":
    main()
