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
    AlbertConfig,
    AlbertForPreTraining,
    BartConfig,
    BartForConditionalGeneration,
    BertConfig,
    BertForPreTraining,
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
    GPT2Config,
    GPT2LMHeadModel,
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
            norm = ("LayerNorm", "layer_norm", "layernorm", "ln_")
            if any(n in name for n in norm) and name.endswith("weight"):
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
        if value.dtype == torch.long:
            expected[name] = value.tolist()
            continue
        if value.dim() >= 2 and value.shape[:2] == ids.shape:
            value = value.reshape(ids.numel(), -1)[kept]
        expected[name] = rounded(value)
    (directory / "expected.json").write_text(json.dumps(expected))


def save(name, model, ids, types, mask, outputs, **model_inputs):
    """Runs `model` on the inputs (and `model_inputs`), saves it as the fixture `name` with its
    inputs and the outputs `outputs` picks (expected name → function of the model's output)."""
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, **model_inputs)
    model.save_pretrained(OUT / name)
    picked = {key: pick(out) for key, pick in outputs.items()}
    write_expected(OUT / name, ids, types, mask, **picked)


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
    outputs = dict(
        mlm_logits=lambda o: o.prediction_logits,
        nsp_logits=lambda o: o.seq_relationship_logits,
    )
    save("bert", model, ids, types, mask, outputs, token_type_ids=types)
    # The same encoder as a bare BertModel: keys without the `bert.` prefix, no heads.
    model.bert.save_pretrained(OUT / "bert-model")
    # The same model as an older directory: PyTorch's pickled state dict, no safetensors.
    (OUT / "bert-bin").mkdir(exist_ok=True)
    (OUT / "bert-bin" / "config.json").write_text((OUT / "bert" / "config.json").read_text())
    torch.save(model.state_dict(), OUT / "bert-bin" / "pytorch_model.bin")


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
    outputs = dict(mlm_logits=lambda o: o.logits)
    save("roberta", model, ids, types, mask, outputs, token_type_ids=types)


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


def albert():
    """ALBERT: a factorized embedding (14 wide, projected to 30), one layer shared by three
    depths, the tanh GELU (gelu_new) in the layers and the MLM head, and the SOP head."""
    config = AlbertConfig(
        vocab_size=103,
        embedding_size=14,
        hidden_size=30,
        num_hidden_layers=3,
        num_attention_heads=3,
        intermediate_size=44,
        hidden_act="gelu_new",
        max_position_embeddings=40,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        attn_implementation="eager",
    )
    model = build(AlbertForPreTraining, config, 9)
    ids, types, mask = inputs(config.vocab_size, config.type_vocab_size, 10)
    outputs = dict(
        mlm_logits=lambda o: o.prediction_logits,
        sop_logits=lambda o: o.sop_logits,
    )
    save("albert", model, ids, types, mask, outputs, token_type_ids=types)


def gpt2():
    """GPT-2: pre-LN layers with a final LayerNorm, no embedding LayerNorm, Conv1D weights
    stored [in, out], q|k|v fused in c_attn, the tanh GELU, epsilon 1e-5, the LM head tied to
    the token table with no transform and no bias; right padding, no token types."""
    config = GPT2Config(
        vocab_size=97,
        n_embd=30,
        n_layer=2,
        n_head=3,
        n_inner=50,
        n_positions=40,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        attn_implementation="eager",
    )
    model = build(GPT2LMHeadModel, config, 11)
    ids, types, mask = inputs(config.vocab_size, 1, 12)
    save("gpt2", model, ids, types, mask, dict(lm_logits=lambda o: o.logits))


def bart():
    """BART: encoder and decoder over one shared table, positions offset by 2, a LayerNorm on
    the embeddings, post-LN layers, epsilon 1e-5, the LM head tied with no transform and a
    final_logits_bias; the source padded with BART's pad id 1."""
    config = BartConfig(
        vocab_size=95,
        d_model=30,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=3,
        decoder_attention_heads=3,
        encoder_ffn_dim=44,
        decoder_ffn_dim=44,
        max_position_embeddings=40,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        attn_implementation="eager",
    )
    model = build(BartForConditionalGeneration, config, 13)
    g = torch.Generator().manual_seed(15)
    with torch.no_grad():
        model.final_logits_bias.copy_(0.2 * torch.randn(model.final_logits_bias.shape, generator=g))
    ids, types, mask = inputs(config.vocab_size, 1, 14, pad=config.pad_token_id)
    decoder_ids = torch.randint(4, config.vocab_size, (2, 6), generator=g)
    decoder_ids[:, 0] = config.decoder_start_token_id
    outputs = dict(
        decoder_input_ids=lambda o: decoder_ids,
        seq2seq_logits=lambda o: o.logits,
    )
    save("bart", model, ids, types, mask, outputs, decoder_input_ids=decoder_ids)


def t5(name="t5", feed_forward_proj="relu", tie=True, seed=31):
    """T5: pre-RMSNorm layers without biases, no position table but a relative bias table per
    stack (8 buckets up to a distance of 12, so that the 11-token source and the 9-token target
    reach the logarithmic buckets), unscaled attention, 3 heads of 10 features (30 is not the
    width, 24), more decoder layers than encoder ones; `relu` or `gated-gelu` feed-forward
    networks; the LM head tied to the shared table (and its input scaled by 24^-0.5) or its own
    (unscaled). The source padded with T5's pad id 0; greedy generation of 8 tokens (without the cache: transformers 5.25 sizes it by the encoder's layers)."""
    from transformers import T5Config, T5ForConditionalGeneration
    config = T5Config(vocab_size=95, d_model=24, d_kv=10, d_ff=40, num_layers=2,
                      num_decoder_layers=3, num_heads=3, relative_attention_num_buckets=8,
                      relative_attention_max_distance=12, feed_forward_proj=feed_forward_proj,
                      tie_word_embeddings=tie, dropout_rate=0.1, layer_norm_epsilon=1e-6,
                      pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                      attn_implementation="eager")
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config).eval()
    widen(model, seed)
    # T5 leaves its scores unscaled and folds 1/sqrt(d_kv) into the queries' initialisation;
    # without it the wide weights make every softmax one-hot.
    with torch.no_grad():
        for module_name, p in model.named_parameters():
            if module_name.endswith(".q.weight"):
                p.mul_(config.d_kv ** -0.5)
    g = torch.Generator().manual_seed(seed + 1)
    if tie:
        model.tie_weights()
    else:
        # T5Config 5.25 ties whatever it is given (and only stops scaling): a head of its own,
        # and a config that says so, make the file an untied one (the two tensors differ).
        head = 0.3 * torch.randn(model.lm_head.weight.shape, generator=g)
        model.lm_head.weight = torch.nn.Parameter(head)
        model.config.tie_word_embeddings = False
    ids, types, mask = inputs(config.vocab_size, 1, seed + 2, pad=config.pad_token_id)
    decoder_ids = torch.randint(4, config.vocab_size, (2, 9), generator=g)
    decoder_ids[:, 0] = config.decoder_start_token_id
    with torch.no_grad():
        greedy = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8,
                                do_sample=False, min_new_tokens=8, use_cache=False)
    outputs = dict(
        decoder_input_ids=lambda o: decoder_ids,
        seq2seq_logits=lambda o: o.logits,
        greedy=lambda o: greedy[:, 1:],
    )
    save(name, model, ids, types, mask, outputs, decoder_input_ids=decoder_ids)
    # The saved directory loads back to the same logits.
    again = T5ForConditionalGeneration.from_pretrained(OUT / name, attn_implementation="eager").eval()
    with torch.no_grad():
        reloaded = again(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
        original = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    assert (reloaded - original).abs().max() < 1e-5, (reloaded - original).abs().max()


def t5_gated():
    """T5 v1.1's block: a gated tanh-GELU feed-forward network, the LM head untied."""
    t5("t5-gated", "gated-gelu", False, 33)


def causal_decoder(name, model_class, config, seed):
    """A decoder-only fixture over the small WordPiece (its tokenizer beside the weights): the
    logits of two rows, the second right-padded, and the greedy continuation of two prompts
    (16 new tokens, with the cache and without: the same ids)."""
    directory = OUT / name
    model = build(model_class, config, seed)
    ids, types, mask = inputs(config.vocab_size, 1, seed + 1)
    save(name, model, ids, types, mask, dict(lm_logits=lambda o: o.logits))
    small_wordpiece(directory)
    prompts = [[2, 17, 45, 99, 120], [2, 200, 13]]
    greedy = []
    for prompt in prompts:
        runs = []
        for cache in (True, False):
            with torch.no_grad():
                out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                     max_new_tokens=16, do_sample=False, use_cache=cache,
                                     pad_token_id=0, eos_token_id=3)
            runs.append(out[0, len(prompt):].tolist())
        assert runs[0] == runs[1], runs
        greedy.append(runs[0])
    expected = json.loads((directory / "expected.json").read_text())
    expected["prompts"] = prompts
    expected["greedy"] = greedy
    (directory / "expected.json").write_text(json.dumps(expected))


def llama():
    """Llama: pre-RMSNorm, rotary positions (theta 500), grouped-query attention (6 query heads
    of 8 features sharing 2 key/value heads; 6 × 8 = 48 is not the width, 36), SwiGLU, no
    biases, a final RMSNorm and an untied LM head."""
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(vocab_size=300, hidden_size=36, intermediate_size=40,
                         num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                         head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-6,
                         rope_theta=500.0, tie_word_embeddings=False, bos_token_id=2,
                         eos_token_id=3, pad_token_id=0, attn_implementation="eager")
    causal_decoder("llama", LlamaForCausalLM, config, 21)


def qwen2():
    """Qwen2: Llama's block with biases on the query, key and value projections (not the
    output), 6 heads of 6 features sharing 3 key/value heads, and the LM head tied to the
    token table."""
    from transformers import Qwen2Config, Qwen2ForCausalLM
    config = Qwen2Config(vocab_size=300, hidden_size=36, intermediate_size=40,
                         num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=3,
                         max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
                         tie_word_embeddings=True, bos_token_id=2, eos_token_id=3,
                         pad_token_id=0, use_sliding_window=False, attn_implementation="eager")
    causal_decoder("qwen2", Qwen2ForCausalLM, config, 23)


def modernbert():
    """ModernBERT: pre-norm with bias-free LayerNorms (a norm on the embeddings, none before
    the first layer's attention, a final one), fused Wqkv and GeGLU Wi, rotary positions with
    two bases (global 160 000 on layers 0 and 3, local 10 000 on the others, which see 2 keys
    either side), no biases; the MLM head's dense map and norm without biases, the decoder
    tied to the token table with a bias; two rows, the second right-padded."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM
    config = ModernBertConfig(vocab_size=300, hidden_size=36, intermediate_size=40,
                              num_hidden_layers=4, num_attention_heads=6,
                              max_position_embeddings=64, norm_eps=1e-5, local_attention=4,
                              global_attn_every_n_layers=3, global_rope_theta=160000.0,
                              local_rope_theta=10000.0, pad_token_id=0, bos_token_id=2,
                              eos_token_id=3, cls_token_id=2, sep_token_id=3,
                              attn_implementation="eager")
    model = build(ModernBertForMaskedLM, config, 25)
    ids, types, mask = inputs(config.vocab_size, 1, 26)
    save("modernbert", model, ids, types, mask, dict(mlm_logits=lambda o: o.logits))
    small_wordpiece(OUT / "modernbert")
    fill_mask_expected(model, OUT / "modernbert")


def electra_generator():
    """ELECTRA's generator on its own (`ElectraForMaskedLM`, as a generator directory is
    published): embeddings 8 wide projected up to 16, the MLM head back down to 8 and tied to
    the token table, over the small WordPiece; the fill-mask pipeline's top five."""
    directory = OUT / "electra-generator"
    vocab = small_wordpiece(directory)
    config = ElectraConfig(vocab_size=vocab, embedding_size=8, hidden_size=16,
                           num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                           max_position_embeddings=64, attn_implementation="eager")
    model = build(ElectraForMaskedLM, config, 41)
    model.save_pretrained(directory)
    fill_mask_expected(model, directory)


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
    fill_mask_expected(model, directory)



def gpt2_bundled_vocab():
    """A tiny GPT2LMHeadModel over a 400-token byte-level BPE trained on the bundled corpus,
    whose only special token is <|endoftext|> (no pad, no mask), as GPT-2's: what continued
    causal pretraining starts from in the tests."""
    from tokenizers import ByteLevelBPETokenizer

    directory = OUT / "gpt2-bundled-vocab"
    directory.mkdir(parents=True, exist_ok=True)
    end = "<|endoftext|>"
    bpe = ByteLevelBPETokenizer()
    brown = sorted(str(p) for p in (OUT.parent.parent.parent / "data" / "brown").glob("*.txt"))
    bpe.train(brown, vocab_size=400, min_frequency=2, special_tokens=[end])
    bpe.save(str(directory / "tokenizer.json"))
    roles = {"bos_token": end, "eos_token": end, "unk_token": end}
    (directory / "tokenizer_config.json").write_text(json.dumps(roles))
    config = GPT2Config(
        vocab_size=bpe.get_vocab_size(),
        n_embd=16,
        n_layer=2,
        n_head=2,
        n_positions=128,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    torch.manual_seed(4)
    GPT2LMHeadModel(config).eval().save_pretrained(directory)

def fill_mask_expected(model, directory):
    """The fill-mask pipeline's top 5 at each mask of three sentences, computed as it does
    (the text framed by [CLS] and [SEP], one segment, a softmax over the vocabulary): the
    bundled tokenizer.json has no post-processor for the pipeline to frame texts with."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    cls, sep, mask = (tokenizer.token_to_id(t) for t in ["[CLS]", "[SEP]", "[MASK]"])
    texts = [
        "the [MASK] of the city was full of people.",
        "it was the [MASK] day of the [MASK] year.",
        "[MASK] said nothing.",
    ]
    out = []
    for text in texts:
        ids = [cls] + tokenizer.encode(text, add_special_tokens=False).ids + [sep]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        masks = []
        for position in [i for i, t in enumerate(ids) if t == mask]:
            probabilities = logits[position].softmax(-1)
            top = probabilities.topk(5)
            masks.append(
                [
                    {"token": tokenizer.id_to_token(int(i)), "id": int(i), "score": float(p)}
                    for p, i in zip(top.values, top.indices)
                ]
            )
        out.append({"text": text, "masks": masks})
    (directory / "fill_mask.json").write_text(json.dumps(out, indent=1))


def half_precision():
    """The ALBERT fixture's weights saved as float16 and as bfloat16 (config and weights only):
    pretext casts them to the run's float type as it loads them."""
    model = AlbertForPreTraining.from_pretrained(OUT / "albert")
    for name, dtype in [("albert-f16", torch.float16), ("albert-bf16", torch.bfloat16)]:
        model.to(dtype).save_pretrained(OUT / name)


def sentences(count=300):
    """The first `count` lines of 30 to 300 characters of the bundled Brown corpus, in file
    order: plain English with quotes, hyphens, numbers and punctuation."""
    found = []
    for path in sorted((OUT.parent.parent.parent / "data" / "brown").glob("*.txt")):
        for line in path.read_text().splitlines():
            line = line.strip()
            if 30 <= len(line) <= 300:
                found.append(line)
                if len(found) == count:
                    return found
    return found


def word_starts(encoding):
    """Which tokens begin a word, from a fast tokenizer's word ids."""
    starts, previous = [], object()
    for word in encoding.word_ids():
        starts.append(word is None or word != previous)
        previous = word
    return starts


def tokenizers_():
    """Tokenizer fixtures under tokenizers/, each with the ids (and word starts) that
    `transformers` gives the bundled sentences, special tokens left out:

    - bert-vocab: the bundled WordPiece vocabulary as a BERT `vocab.txt`, against the slow,
      pure-Python `BertTokenizer`;
    - roberta-bpe: a byte-level BPE of 1,000 tokens trained here with RoBERTa's special tokens,
      as `tokenizer.json`, against the slow `RobertaTokenizer` over its vocab.json/merges.txt;
    - minilm: all-MiniLM-L6-v2's `vocab.txt` (Apache-2.0), against its own fast tokenizer, when
      scripts/fetch_minilm.sh has fetched the model."""
    import tempfile

    from tokenizers import ByteLevelBPETokenizer
    from transformers import BertTokenizer, PreTrainedTokenizerFast, RobertaTokenizer

    root = OUT / "tokenizers"
    texts = sentences()

    def write(directory, slow, fast=None):
        expected = {
            "transformers": transformers.__version__,
            "sentences": texts,
            "ids": [slow.encode(t, add_special_tokens=False) for t in texts],
        }
        if fast is not None:
            expected["word_starts"] = [
                word_starts(fast(t, add_special_tokens=False)) for t in texts
            ]
        (directory / "expected.json").write_text(json.dumps(expected))

    bert_dir = root / "bert-vocab"
    bert_dir.mkdir(parents=True, exist_ok=True)
    bundled = json.loads((OUT.parent.parent.parent / "data" / "tokenizer.json").read_text())
    vocab = sorted(bundled["model"]["vocab"].items(), key=lambda kv: kv[1])
    (bert_dir / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab))
    (bert_dir / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True})
    )
    write(bert_dir, BertTokenizer(str(bert_dir / "vocab.txt"), do_lower_case=True))

    bpe_dir = root / "roberta-bpe"
    bpe_dir.mkdir(parents=True, exist_ok=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe = ByteLevelBPETokenizer()
    brown = sorted(str(p) for p in (OUT.parent.parent.parent / "data" / "brown").glob("*.txt"))
    bpe.train(brown, vocab_size=1000, min_frequency=2, special_tokens=specials)
    bpe.save(str(bpe_dir / "tokenizer.json"))
    (bpe_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "RobertaTokenizer",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "cls_token": "<s>",
                "sep_token": "</s>",
                "pad_token": "<pad>",
                "unk_token": "<unk>",
                "mask_token": {"content": "<mask>", "lstrip": True},
            }
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        bpe.save_model(tmp)
        slow = RobertaTokenizer(f"{tmp}/vocab.json", f"{tmp}/merges.txt")
        fast = PreTrainedTokenizerFast(tokenizer_file=str(bpe_dir / "tokenizer.json"))
        write(bpe_dir, slow, fast)

    minilm = pathlib.Path.home() / ".cache/pretext/models/all-MiniLM-L6-v2"
    if minilm.is_dir():
        minilm_dir = root / "minilm"
        minilm_dir.mkdir(parents=True, exist_ok=True)
        for name in ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]:
            (minilm_dir / name).write_bytes((minilm / name).read_bytes())
        fast = PreTrainedTokenizerFast(tokenizer_file=str(minilm / "tokenizer.json"))
        write(minilm_dir, BertTokenizer(str(minilm / "vocab.txt"), do_lower_case=True), fast)


def small_wordpiece(directory):
    """A 300-token WordPiece trained on the bundled Brown texts, pretext's special tokens as ids
    0 to 4, BERT's framing as its post-processor, and the tokenizer_config.json pretext's
    exports write (so transformers builds a plain fast tokenizer over it)."""
    from tokenizers import BertWordPieceTokenizer, processors

    directory.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    brown = sorted(str(p) for p in (OUT.parent.parent.parent / "data" / "brown").glob("*.txt"))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wordpiece.train(brown, vocab_size=300, min_frequency=2, special_tokens=specials)
    wordpiece.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    wordpiece.save(str(directory / "tokenizer.json"))
    roles = {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "[PAD]",
             "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
             "mask_token": "[MASK]",
             # transformers 5's fast tokenizer drops token_type_ids unless told: a pair's second
             # text would read as segment 0.
             "model_input_names": ["input_ids", "token_type_ids", "attention_mask"]}
    (directory / "tokenizer_config.json").write_text(json.dumps(roles, indent=1))
    return wordpiece.get_vocab_size()


CLASSIFIED = [
    "The dog chased the cat across the field.",
    "She baked fresh bread with honey for the guests.",
    "Heavy rain is expected tonight, followed by wind.",
]
PAIRS = [
    ["A man plays a guitar.", "Someone is making music."],
    ["The market was closed on Sunday.", "Nobody could buy bread that day."],
]
TAGGED = ["Alice moved to Paris last year.", "In Lima, Omar opened a bakery."]


def classifiers(only=None):
    """Fine-tuned classifiers as transformers saves them (BERT, RoBERTa, ALBERT and ELECTRA
    for sequences, BERT and ELECTRA for tokens), with id2label, over a small WordPiece, and what
    transformers' text-classification and token-classification pipelines give on a few texts
    and pairs (every label's score; every token's best tag and its score). With `only`, just
    the fixture of that name."""
    from transformers import (AlbertForSequenceClassification, BertForTokenClassification,
                              ElectraConfig, ElectraForSequenceClassification,
                              ElectraForTokenClassification, RobertaForSequenceClassification,
                              pipeline)

    shape = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=24, hidden_act="gelu", type_vocab_size=2,
                 attn_implementation="eager")
    topics = ["animals", "food", "weather"]
    cases = [
        ("classify-bert", transformers.BertForSequenceClassification, BertConfig,
         dict(max_position_embeddings=64), topics, 11),
        ("classify-roberta", RobertaForSequenceClassification, RobertaConfig,
         dict(max_position_embeddings=65, pad_token_id=0, bos_token_id=2, eos_token_id=3),
         ["negative", "positive"], 12),
        ("classify-albert", AlbertForSequenceClassification, AlbertConfig,
         dict(max_position_embeddings=64, embedding_size=8, pad_token_id=0, bos_token_id=2,
              eos_token_id=3), topics, 13),
        ("classify-electra", ElectraForSequenceClassification, ElectraConfig,
         dict(max_position_embeddings=64, embedding_size=8), topics, 16),
        ("tag-bert", BertForTokenClassification, BertConfig,
         dict(max_position_embeddings=64), ["O", "B-PER", "B-LOC"], 14),
        ("tag-electra", ElectraForTokenClassification, ElectraConfig,
         dict(max_position_embeddings=64, embedding_size=16), ["O", "B-PER", "B-LOC"], 15),
    ]
    for name, model_class, config_class, extra, labels, seed in cases:
        if only and name != only:
            continue
        directory = OUT / name
        vocab = small_wordpiece(directory)
        config = config_class(vocab_size=vocab, **shape, **extra,
                              id2label=dict(enumerate(labels)),
                              label2id={l: i for i, l in enumerate(labels)})
        torch.manual_seed(0)
        model = model_class(config).eval()
        widen(model, seed)
        model.save_pretrained(directory)
        if name.startswith("classify"):
            classify = pipeline("text-classification", model=str(directory), top_k=None)
            texts = CLASSIFIED + [{"text": a, "text_pair": b} for a, b in PAIRS]
            outputs = [classify(text) for text in texts]
            expected = {"texts": CLASSIFIED, "pairs": PAIRS, "outputs": outputs}
        else:
            tag = pipeline("token-classification", model=str(directory), ignore_labels=[])
            outputs = [[{"index": t["index"], "entity": t["entity"], "score": float(t["score"])}
                        for t in tag(text)] for text in TAGGED]
            expected = {"texts": TAGGED, "outputs": outputs}
        expected["transformers"] = transformers.__version__
        (directory / "pipeline.json").write_text(json.dumps(expected, indent=1))


if __name__ == "__main__":
    bert()
    roberta()
    electra()
    albert()
    gpt2()
    bart()
    t5()
    t5_gated()
    electra_generator()
    bert_bundled_vocab()
    gpt2_bundled_vocab()
    half_precision()
    tokenizers_()
    classifiers()
    # save_pretrained writes a generation config for generative models; nothing reads it.
    for path in OUT.rglob("generation_config.json"):
        path.unlink()
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(OUT)}: {path.stat().st_size} bytes")
