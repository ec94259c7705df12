"""Loads pretext's exports of the parity fixtures in transformers and holds them against the
fixtures' own outputs: no missing or unexpected keys, the same logits.

The exports are what tests/hf.rs writes (`…_export_and_import_again_bit_for_bit` leaves them
in the temporary directory when PRETEXT_KEEP_EXPORTS is set); pass each with its fixture:

    PRETEXT_KEEP_EXPORTS=1 cargo test --release --test hf export_and_import_again
    /tmp/hfvenv/bin/python scripts/hf_export_check.py albert=/tmp/pretext-hf-export-albert-N \\
        bert=/tmp/pretext-hf-export-bertforpretraining-N roberta=… electra=… gpt2=… bart=…
    # ModernBERT, Llama, Qwen2, T5: the exports of their parity tests
    /tmp/hfvenv/bin/python scripts/hf_export_check.py modernbert=/tmp/pretext-hf-export-modernbert-N \
        llama=/tmp/pretext-hf-export-llama-N qwen2=/tmp/pretext-hf-export-qwen2-N \
        t5=/tmp/pretext-hf-export-t5-N t5-gated=/tmp/pretext-hf-export-t5-gated-N
"""

import json
import pathlib
import sys

import torch
import transformers

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hf"

# fixture → (class, expected.json of, output name there, logits of the model's output)
CASES = {
    "albert": ("AlbertForPreTraining", "albert", "sop_logits", lambda o: o.sop_logits),
    "bert": ("BertForPreTraining", "bert", "mlm_logits", lambda o: o.prediction_logits),
    "roberta": ("RobertaForMaskedLM", "roberta", "mlm_logits", lambda o: o.logits),
    "electra": ("ElectraForPreTraining", "electra", "discriminator_logits", lambda o: o.logits),
    "gpt2": ("GPT2LMHeadModel", "gpt2", "lm_logits", lambda o: o.logits),
    "bart": ("BartForConditionalGeneration", "bart", "seq2seq_logits", lambda o: o.logits),
    "modernbert": ("ModernBertForMaskedLM", "modernbert", "mlm_logits", lambda o: o.logits),
    "llama": ("LlamaForCausalLM", "llama", "lm_logits", lambda o: o.logits),
    "qwen2": ("Qwen2ForCausalLM", "qwen2", "lm_logits", lambda o: o.logits),
    "t5": ("T5ForConditionalGeneration", "t5", "seq2seq_logits", lambda o: o.logits),
    "t5-gated": ("T5ForConditionalGeneration", "t5-gated", "seq2seq_logits", lambda o: o.logits),
}


def check(name, directory):
    class_name, fixture, output, logits_of = CASES[name]
    model_class = getattr(transformers, class_name)
    model, info = model_class.from_pretrained(directory, output_loading_info=True)
    model.eval()
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys")}
    want = json.loads((FIXTURES / fixture / "expected.json").read_text())
    ids = torch.tensor(want["input_ids"])
    mask = torch.tensor(want["attention_mask"])
    kwargs = dict(input_ids=ids, attention_mask=mask)
    if name in ("albert", "bert", "roberta", "electra"):
        kwargs["token_type_ids"] = torch.tensor(want["token_type_ids"])
    if name in ("bart", "t5", "t5-gated"):
        kwargs["decoder_input_ids"] = torch.tensor(want["decoder_input_ids"])
    with torch.no_grad():
        logits = logits_of(model(**kwargs))
    if name not in ("bart", "albert", "t5", "t5-gated"):
        kept = torch.tensor(want["positions"])
        logits = logits.reshape(ids.numel(), -1)[kept]
    diff = (logits.flatten() - torch.tensor(want[output])).abs().max().item()
    print(f"{name}: {class_name}, loading problems {bad or 'none'}, max logit difference {diff:.1e}")
    return not bad and diff < 1e-4


if __name__ == "__main__":
    results = [check(*arg.split("=", 1)) for arg in sys.argv[1:]]
    sys.exit(0 if results and all(results) else 1)
