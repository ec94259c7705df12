#!/usr/bin/env python3
"""Build data/preferences.jsonl: preference pairs for a reward model (and DPO), made from the
instruction pairs of data/instructions.jsonl, whose answers a program can check.

Stdlib only, deterministic (a fixed seed); run after build_instructions.py:

    python3 scripts/build_preferences.py --instructions data/instructions.jsonl \
        --out data/preferences.jsonl

Each line is {"task", "split", "prompt", "chosen", "rejected"}: `chosen` is the pair's right
answer (its rationale, if any, then its completion), `rejected` the same answer spoiled the way
a weak model spoils it:

- `copy`, `reverse`: one word dropped, or two neighbours swapped;
- `last`:  another word of the prompt;
- `count`: the working stopped a word early or run a word long, with its count;
- `genre`: another of the 15 genres;
- `verse`: the next line of another speech.

Per task: PER_SPLIT of the instruction pairs of each split, in file order; `rejected` never
equals `chosen`.
"""

import argparse
import json
import random

PER_SPLIT = {"train": 300, "valid": 40, "test": 100}
SEED = 20261203
GENRES = [
    "adventure", "belles_lettres", "editorial", "fiction", "government", "hobbies", "humor",
    "learned", "lore", "mystery", "news", "religion", "reviews", "romance", "science_fiction",
]


def spoil_words(words, rng):
    """The words with one dropped or two neighbours swapped (never unchanged)."""
    words = list(words)
    if len(words) > 2 and rng.random() < 0.5:
        del words[rng.randrange(len(words))]
        return words
    for _ in range(10):
        i = rng.randrange(len(words) - 1)
        if words[i] != words[i + 1]:
            words[i], words[i + 1] = words[i + 1], words[i]
            return words
    return words[:-1]


def counted(words):
    return " ".join(f"{i + 1} {w}" for i, w in enumerate(words)) + " so"


def spoil(row, rng, verses):
    task, completion = row["task"], row["completion"]
    body = row["prompt"].removesuffix(" Answer:")
    prompt_words = body.split(":", 1)[-1].split()
    if task in ("copy", "reverse"):
        return " ".join(spoil_words(completion.split(), rng))
    if task == "last":
        others = [w for w in prompt_words if w != completion]
        return rng.choice(others) if others else completion + "s"
    if task == "count":
        words = prompt_words[: int(completion)]
        n = len(words) - 1 if rng.random() < 0.5 and len(words) > 1 else len(words) + 1
        wrong = words[:n] if n < len(words) else words + [words[-1]]
        return f"{counted(wrong)} {len(wrong)}"
    if task == "genre":
        return rng.choice([g for g in GENRES if g != completion])
    if task == "verse":
        return rng.choice([v for v in verses if v != completion])
    raise ValueError(task)


def answer(row):
    if row.get("rationale"):
        return f"{row['rationale']} {row['completion']}"
    return row["completion"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instructions", default="data/instructions.jsonl")
    parser.add_argument("--out", default="data/preferences.jsonl")
    args = parser.parse_args()
    with open(args.instructions) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    verses = sorted({r["completion"] for r in rows if r["task"] == "verse"})
    rng = random.Random(SEED)
    taken, out = {}, []
    for row in rows:
        key = (row["task"], row["split"])
        if taken.get(key, 0) >= PER_SPLIT[row["split"]]:
            continue
        chosen, rejected = answer(row), spoil(row, rng, verses)
        if rejected == chosen:
            continue
        taken[key] = taken.get(key, 0) + 1
        out.append({"task": row["task"], "split": row["split"], "prompt": row["prompt"],
                    "chosen": chosen, "rejected": rejected})
    with open(args.out, "w") as f:
        for row in out:
            f.write(json.dumps(row) + "\n")
    print(f"{len(out)} preference pairs written to {args.out}")


if __name__ == "__main__":
    main()
