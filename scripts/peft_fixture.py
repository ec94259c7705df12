"""LoRA adapters against Hugging Face's `peft`, on the tiny `BertModel` fixture
(tests/fixtures/hf/bert-model).

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors
    /tmp/hfvenv/bin/pip install --no-deps peft accelerate psutil

    # builds tests/fixtures/peft/bert-lora/: a rank-4 adapter on query and value saved by
    # peft's save_pretrained (its B drawn non-zero, as after training), and the adapted
    # model's hidden states on the bert fixture's inputs (expected.json)
    /tmp/hfvenv/bin/python scripts/peft_fixture.py

    # loads an adapter directory pretext wrote (tests/lora.rs leaves its export in the
    # temporary directory it names when PRETEXT_KEEP_EXPORTS is set) onto the same base:
    # missing and unexpected keys, and its hidden states against expected.json
    /tmp/hfvenv/bin/python scripts/peft_fixture.py --check /tmp/pretext-peft-export-N
"""

import json
import pathlib
import sys

import peft
import torch
import transformers

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
BASE = ROOT / "hf" / "bert-model"
OUT = ROOT / "peft" / "bert-lora"


def base_model():
    return transformers.BertModel.from_pretrained(BASE, attn_implementation="eager").eval()


def bert_inputs():
    """The bert fixture's inputs: two rows, the second padded, several token types."""
    want = json.loads((ROOT / "hf" / "bert" / "expected.json").read_text())
    as_long = lambda key: torch.tensor(want[key], dtype=torch.long)
    return as_long("input_ids"), as_long("token_type_ids"), as_long("attention_mask")


def hidden_at_real_tokens(model):
    ids, types, mask = bert_inputs()
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    kept = mask.flatten().nonzero().flatten()
    return out.last_hidden_state.reshape(ids.numel(), -1)[kept]


def build():
    torch.manual_seed(5)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], lora_dropout=0.0)
    model = peft.get_peft_model(base_model(), config).eval()
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    OUT.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(OUT)
    # The model card is boilerplate, and the base's path is this machine's.
    (OUT / "README.md").unlink()
    settings = json.loads((OUT / "adapter_config.json").read_text())
    settings["base_model_name_or_path"] = "tests/fixtures/hf/bert-model"
    (OUT / "adapter_config.json").write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    hidden = hidden_at_real_tokens(model)
    merged = hidden_at_real_tokens(model.merge_and_unload())
    ids, types, mask = bert_inputs()
    expected = {
        "peft": peft.__version__,
        "transformers": transformers.__version__,
        "input_ids": ids.tolist(),
        "token_type_ids": types.tolist(),
        "attention_mask": mask.tolist(),
        "positions": mask.flatten().nonzero().flatten().tolist(),
        "hidden": [round(float(x), 6) for x in hidden.flatten()],
    }
    (OUT / "expected.json").write_text(json.dumps(expected))
    base = hidden_at_real_tokens(base_model())
    print(f"wrote {OUT}: the adapter moves the states by {(hidden - base).abs().max():.3f}; "
          f"merged against unmerged {(hidden - merged).abs().max():.2e}")


def check(directory):
    model = peft.PeftModel.from_pretrained(base_model(), directory).eval()
    # peft.PeftModel.from_pretrained warns of missing keys; load once more to read them.
    result = model.load_adapter(directory, adapter_name="check")
    missing = [k for k in result.missing_keys if "lora_" in k and ".check." in k]
    model.set_adapter("check")
    want = json.loads((OUT / "expected.json").read_text())
    diff = (hidden_at_real_tokens(model) - torch.tensor(want["hidden"]).reshape(-1, 36)).abs().max()
    print(f"{directory}: missing adapter keys {missing}, unexpected {result.unexpected_keys}; "
          f"hidden states against the fixture's: max |diff| {diff:.2e}")
    ok = not missing and not result.unexpected_keys and diff < 1e-4
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        build()
