"""all-MiniLM-L6-v2's last hidden states from transformers on 20 bundled sentences, held against
pretext's (tests/hf.rs, `minilm_hidden_states_match_transformers`, an ignored test this runs).

The model comes from scripts/fetch_minilm.sh (~/.cache/pretext/models/all-MiniLM-L6-v2).

    /tmp/hfvenv/bin/python scripts/minilm_parity.py
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import torch
from transformers import AutoTokenizer, BertModel

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from hf_fixtures import sentences  # noqa: E402

MODEL = pathlib.Path.home() / ".cache/pretext/models/all-MiniLM-L6-v2"


def main():
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = BertModel.from_pretrained(MODEL).eval()
    cases = []
    for text in sentences(20):
        ids = tokenizer(text)["input_ids"]
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        cases.append(
            {"text": text, "input_ids": ids, "hidden": [float(x) for x in hidden.flatten()]}
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "hidden.json"
        path.write_text(json.dumps({"sentences": cases}))
        env = dict(os.environ, PRETEXT_MINILM=str(MODEL), PRETEXT_MINILM_HIDDEN=str(path))
        subprocess.run(
            ["cargo", "test", "--release", "--test", "hf", "minilm_hidden_states", "--",
             "--ignored", "--nocapture"],
            cwd=ROOT, env=env, check=True,
        )


if __name__ == "__main__":
    main()
