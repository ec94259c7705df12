"""Builds the Hugging Face parity fixtures under tests/fixtures/hf/: tiny random models saved with
`save_pretrained` (config.json + model.safetensors), their inputs, and `transformers`' outputs
as JSON, so that the Rust tests hold pretext's import against the reference without Python.

Widths are odd, a row is padded, several token types appear, and the weights are drawn wider
than the default initialisation so that LayerNorms, biases and the attention pattern matter.

Needs torch and transformers in a throwaway venv (they are not crate dependencies):

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors
    /tmp/hfvenv/bin/python scripts/hf_fixtures.py
"""

import json
import pathlib

import torch
import transformers
from transformers import (
    BertConfig,
    BertForPreTraining,
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
    RobertaConfig,
    RobertaForMaskedLM,
)

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hf"


def widen(model, seed):
    """Redraws every parameter: weights N(0, 0.3), biases N(0, 0.2), LayerNorm gains 1 + N(0, 0.2)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.2 * noise)
            else:
                p.copy_(0.3 * noise)


def build(model_class, config, seed):
    """A model of `config`, its weights redrawn wide with `seed`, the output tied again."""
    torch.manual_seed(0)
    model = model_class(config).eval()
    widen(model, seed)
    model.tie_weights()
    return model


def inputs(vocab, types, seed, pad=0):
    """Two rows of 11 tokens, the second padded (with `pad`) after 7; token types drawn from
    all of them."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (2, 11), generator=g)
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 7:] = 0
    ids[1, 7:] = pad
    token_types = torch.randint(0, types, (2, 11), generator=g)
    token_types[1, 7:] = 0
    return ids, token_types, mask


def rounded(t):
    return [round(float(x), 6) for x in t.flatten()]


def write_expected(directory, ids, types, mask, **outputs):
    """The inputs, the flat indices of the real (unpadded) tokens, and each output at them
    (an output of shape [batch, len, ...] is taken at those tokens)."""
    kept = mask.flatten().nonzero().flatten()
    expected = {
        "transformers": transformers.__version__,
        "input_ids": ids.tolist(),
        "token_type_ids": types.tolist(),
        "attention_mask": mask.tolist(),
        "positions": kept.tolist(),
    }
    for name, value in outputs.items():
        if value.dim() >= 2 and value.shape[:2] == ids.shape:
            value = value.reshape(ids.numel(), -1)[kept]
        expected[name] = rounded(value)
    (directory / "expected.json").write_text(json.dumps(expected))


def bert():
    config = BertConfig(
        vocab_size=101,
        hidden_size=36,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=52,
        hidden_act="gelu",
        max_position_embeddings=40,
        type_vocab_size=3,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        attn_implementation="eager",
    )
    model = build(BertForPreTraining, config, 1)
    ids, types, mask = inputs(config.vocab_size, config.type_vocab_size, 2)
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    directory = OUT / "bert"
    model.save_pretrained(directory)
    write_expected(
        directory,
        ids,
        types,
        mask,
        mlm_logits=out.prediction_logits,
        nsp_logits=out.seq_relationship_logits,
    )
    # The same encoder as a bare BertModel: keys without the `bert.` prefix, no heads.
    model.bert.save_pretrained(OUT / "bert-model")


def roberta():
    """RoBERTa: BERT with positions numbered from the padding id + 1 (a 40-row table, 38
    positions), one token type, LayerNorm epsilon 1e-5 and its MLM head named lm_head."""
    config = RobertaConfig(
        vocab_size=99,
        hidden_size=30,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=46,
        max_position_embeddings=40,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        attn_implementation="eager",
    )
    model = build(RobertaForMaskedLM, config, 7)
    ids, types, mask = inputs(config.vocab_size, 1, 8, pad=config.pad_token_id)
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    directory = OUT / "roberta"
    model.save_pretrained(directory)
    write_expected(directory, ids, types, mask, mlm_logits=out.logits)


def electra():
    """ELECTRA's discriminator (factorized: embeddings 14 wide, projected to 30) and a generator
    a third as wide whose embeddings are the discriminator's, as ELECTRA shares them."""
    shape = dict(
        vocab_size=97,
        embedding_size=14,
        num_hidden_layers=2,
        max_position_embeddings=40,
        type_vocab_size=2,
        attn_implementation="eager",
    )
    disc_config = ElectraConfig(
        hidden_size=30, num_attention_heads=3, intermediate_size=40, **shape
    )
    gen_config = ElectraConfig(
        hidden_size=10, num_attention_heads=1, intermediate_size=40, **shape
    )
    torch.manual_seed(0)
    disc = ElectraForPreTraining(disc_config).eval()
    gen = ElectraForMaskedLM(gen_config).eval()
    widen(disc, 4)
    widen(gen, 5)
    gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
    gen.tie_weights()
    ids, types, mask = inputs(disc_config.vocab_size, disc_config.type_vocab_size, 6)
    with torch.no_grad():
        disc_logits = disc(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
        gen_logits = gen(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    directory = OUT / "electra"
    disc.save_pretrained(directory / "discriminator")
    gen.save_pretrained(directory / "generator")
    write_expected(
        directory,
        ids,
        types,
        mask,
        discriminator_logits=disc_logits,
        generator_logits=gen_logits,
    )


def bert_bundled_vocab():
    """A BertForMaskedLM over pretext's bundled vocabulary, with its tokenizer.json: what
    continued pretraining starts from in the tests."""
    tokenizer = OUT.parent.parent.parent / "data" / "tokenizer.json"
    vocab = len(json.loads(tokenizer.read_text())["model"]["vocab"])
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=128,
        attn_implementation="eager",
    )
    torch.manual_seed(3)
    model = transformers.BertForMaskedLM(config).eval()
    directory = OUT / "bert-bundled-vocab"
    model.save_pretrained(directory)
    (directory / "tokenizer.json").write_text(tokenizer.read_text())


if __name__ == "__main__":
    bert()
    roberta()
    electra()
    bert_bundled_vocab()
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(OUT)}: {path.stat().st_size} bytes")
