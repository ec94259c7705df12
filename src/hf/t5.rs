//! T5 (`T5ForConditionalGeneration`), both directions: pretext's encoder-decoder over one
//! shared token table (`shared`) with T5's block — pre-RMSNorm layers without biases, no
//! position table but a relative bias table per stack (stored in each stack's block 0),
//! unscaled attention, a ReLU (`relu`) or gated tanh-GELU (`gated-gelu`, T5 v1.1) feed-forward
//! network — and its LM head: the shared table with the decoder's output scaled by
//! `d_model^-0.5` (`scale_decoder_outputs`), or a table of its own (`lm_head`), unscaled in
//! v1.1 files.

use std::path::Path;

use burn::prelude::Device;
use serde_json::{Value, json};

use super::convert::{Converted, Weights, head_misfit, refuse, round_trip};
use super::keys::{KeyTable, layers, outward, outward_layers, table};
use super::loader::Loader;
use super::{HfConfig, HfSeq2Seq};
use crate::blocks::{Activation, EncoderDecoder, EncoderDecoderConfig, NormKind, PositionEncoding};
use crate::error::Result;
use crate::objectives::{Seq2Seq, Seq2SeqConfig};
use crate::pretrainer::Pretrainer;
use crate::tokenize::SpecialTokens;

/// The shared table, each stack's relative bias (held by its block 0) and final norm.
const TOP: &[(&str, &str)] = &[
    ("shared.", "encoder.embeddings.tokens."),
    (
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.",
        "encoder.relative_bias.table.",
    ),
    (
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.",
        "decoder.relative_bias.table.",
    ),
    ("encoder.final_layer_norm.", "encoder.final_norm."),
    ("decoder.final_layer_norm.", "decoder.final_norm."),
];

/// An encoder block: HF name after `encoder.block.N.`, pretext path after `layers.N.`.
const ENCODER_LAYER: &[(&str, &str)] = &[
    ("layer.0.SelfAttention.q.", "attention.query."),
    ("layer.0.SelfAttention.k.", "attention.key."),
    ("layer.0.SelfAttention.v.", "attention.value."),
    ("layer.0.SelfAttention.o.", "attention.output."),
    ("layer.0.layer_norm.", "attention_norm."),
    ("layer.1.DenseReluDense.wi.", "ffn.up."),
    ("layer.1.DenseReluDense.wi_0.", "ffn.gate."),
    ("layer.1.DenseReluDense.wi_1.", "ffn.up."),
    ("layer.1.DenseReluDense.wo.", "ffn.down."),
    ("layer.1.layer_norm.", "ffn_norm."),
];

/// A decoder block: HF name after `decoder.block.N.`, pretext path after `layers.N.`.
const DECODER_LAYER: &[(&str, &str)] = &[
    ("layer.0.SelfAttention.q.", "self_attention.query."),
    ("layer.0.SelfAttention.k.", "self_attention.key."),
    ("layer.0.SelfAttention.v.", "self_attention.value."),
    ("layer.0.SelfAttention.o.", "self_attention.output."),
    ("layer.0.layer_norm.", "self_attention_norm."),
    ("layer.1.EncDecAttention.q.", "cross_attention.query."),
    ("layer.1.EncDecAttention.k.", "cross_attention.key."),
    ("layer.1.EncDecAttention.v.", "cross_attention.value."),
    ("layer.1.EncDecAttention.o.", "cross_attention.output."),
    ("layer.1.layer_norm.", "cross_attention_norm."),
    ("layer.2.DenseReluDense.wi.", "ffn.up."),
    ("layer.2.DenseReluDense.wi_0.", "ffn.gate."),
    ("layer.2.DenseReluDense.wi_1.", "ffn.up."),
    ("layer.2.DenseReluDense.wo.", "ffn.down."),
    ("layer.2.layer_norm.", "ffn_norm."),
];

/// The untied LM head's table.
const LM_HEAD: &[(&str, &str)] = &[("lm_head.weight", "head.output")];

/// Tensors older files hold that are the shared table again, and the decoder's cross-attention
/// bias `transformers` creates but never reads: skipped.
fn skipped(name: &str) -> bool {
    name.ends_with("embed_tokens.weight")
        || name.contains("EncDecAttention.relative_attention_bias")
}

/// Names: a Hugging Face name and the pretext path it becomes.
type Pairs = [(&'static str, &'static str)];

/// The rows of `pairs` a block has: `wi` without a gated network (`glu`), `wi_0` and `wi_1`
/// with one.
fn ffn_of(pairs: &Pairs, glu: bool) -> Vec<(&'static str, &'static str)> {
    let kept = |hf: &str| match (hf.contains("wi_"), hf.ends_with("wi.")) {
        (true, _) => glu,
        (_, true) => !glu,
        _ => true,
    };
    pairs.iter().filter(|(hf, _)| kept(hf)).copied().collect()
}

/// The encoder-decoder's import names, for a gated network or not.
fn model_table(glu: bool) -> KeyTable {
    let mut names = table(TOP);
    for (side, pairs) in [("encoder", ENCODER_LAYER), ("decoder", DECODER_LAYER)] {
        let stack = format!("{side}.block");
        let to = format!("{side}.layers.");
        names.extend(layers("", &stack, &ffn_of(pairs, glu), &to));
    }
    names
}

/// The export's names: pretext path (the model under `backbone.`, the head under
/// `objective.`) → HF name.
fn export_table(glu: bool) -> KeyTable {
    let mut names = outward("backbone.", "", TOP);
    for (side, pairs) in [("encoder", ENCODER_LAYER), ("decoder", DECODER_LAYER)] {
        let ours = format!("{side}.layers");
        let theirs = format!("{side}.block");
        let pairs = ffn_of(pairs, glu);
        names.extend(outward_layers("backbone.", &ours, "", &theirs, &pairs));
    }
    names.extend(outward("objective.", "", LM_HEAD));
    names
}

/// Loads the T5 model directory `dir` onto `device`: the LM head has no transform and no
/// bias; it is the shared table with the decoder's output scaled by `d_model^-0.5`, or a table
/// of its own.
pub fn load_t5(dir: &Path, device: &Device) -> Result<HfSeq2Seq> {
    let config = HfConfig::read(dir)?;
    config.expect("t5", dir)?;
    let decoder_layers = config.decoder_layers.unwrap_or(config.num_hidden_layers);
    let shape = EncoderDecoderConfig::new(config.encoder(dir)?, decoder_layers);
    let mut model = shape.init(device)?;
    let mut loader = Loader::new(dir, device)?;
    loader.rewrite(skipped, |_, _| Vec::new())?;
    // The head is the file's `lm_head` where it has one (transformers 5 unties a table that
    // differs from the shared one, whatever `tie_word_embeddings` says).
    let tied = !loader.has("lm_head.weight");
    let mut seq2seq = Seq2SeqConfig::new()
        .with_transform(false)
        .with_bias(false)
        .with_tied(tied)
        .with_scale(match config.scale_decoder_outputs {
            true => (config.hidden_size as f64).powf(-0.5),
            false => 1.0,
        })
        .init(&model, device);
    let glu = shape.encoder.block.glu;
    loader.part("encoder-decoder", &mut model, &model_table(glu), true)?;
    if !tied {
        loader.part("LM head", &mut seq2seq, &table(LM_HEAD), true)?;
    }
    Ok(HfSeq2Seq {
        config,
        shape,
        model,
        seq2seq,
        report: loader.finish(),
    })
}

/// T5's `feed_forward_proj` for a block's network: `relu` and the like, or `gated-gelu`
/// (tanh GELU, T5 v1.1) and `gated-silu` for a gated one.
fn feed_forward_proj(activation: Activation, glu: bool) -> String {
    match (glu, activation) {
        (true, Activation::GeluTanh) => "gated-gelu".into(),
        (true, other) => format!("gated-{}", other.hf_name()),
        (false, other) => other.hf_name().into(),
    }
}

/// The shape fields of T5's `config.json` for an encoder-decoder of shape `config`.
fn hf_fields(config: &EncoderDecoderConfig) -> Value {
    let e = &config.encoder;
    let block = &e.block;
    let (buckets, distance) = match block.positions {
        PositionEncoding::Relative {
            buckets,
            max_distance,
        } => (buckets, max_distance),
        _ => (0, 0),
    };
    json!({
        "model_type": "t5",
        "d_model": e.hidden_size,
        "d_kv": block.attention(e.hidden_size, 0.0).head_width(),
        "d_ff": block.ffn_size,
        "num_layers": e.num_layers,
        "num_decoder_layers": config.decoder_layers,
        "num_heads": block.num_heads,
        "relative_attention_num_buckets": buckets,
        "relative_attention_max_distance": distance,
        "layer_norm_epsilon": block.norm_eps,
        "feed_forward_proj": feed_forward_proj(block.activation, block.glu),
        "dropout_rate": e.dropout,
        "n_positions": e.max_positions,
        "is_encoder_decoder": true,
    })
}

/// What an encoder-decoder of shape `config` has that T5 cannot express, if anything.
pub fn t5_misfit(config: &EncoderDecoderConfig) -> Option<String> {
    let block = &config.encoder.block;
    if !matches!(block.positions, PositionEncoding::Relative { .. }) {
        return Some("no relative position bias".into());
    }
    if block.norm != NormKind::RmsNorm || !block.norm_first {
        return Some("norms other than T5's pre-layer RMSNorms".into());
    }
    round_trip("T5", &config.encoder, &hf_fields(config))
}

/// An encoder-decoder (of shape `config`) and its LM head as `T5ForConditionalGeneration`:
/// the head must have neither transform nor bias, and scale the decoder's output by
/// `d_model^-0.5` or not at all.
pub(super) fn export(
    config: &EncoderDecoderConfig,
    model: &EncoderDecoder,
    seq2seq: &Seq2Seq,
    special: &SpecialTokens,
    dir: &Path,
) -> Result<Converted> {
    let head = seq2seq.head();
    let scaled = head.scale() != 1.0;
    let t5_scale = (config.encoder.hidden_size as f64).powf(-0.5);
    let scale_misfit = (scaled && (head.scale() - t5_scale).abs() > 1e-12)
        .then(|| format!("an LM head scaling by {}", head.scale()));
    let misfit = head_misfit(head, None, false).or(scale_misfit);
    if let Some(what) = t5_misfit(config).or(misfit) {
        return Err(refuse(dir, "T5", &what));
    }
    let mut fields = hf_fields(config);
    fields["scale_decoder_outputs"] = json!(scaled);
    fields["tie_word_embeddings"] = json!(head.tied());
    fields["eos_token_id"] = json!(special.sep);
    // T5's decoder starts from the padding token, as pretext's T5 task does.
    fields["decoder_start_token_id"] = json!(special.pad);
    let module = Pretrainer {
        backbone: model.clone(),
        objective: seq2seq.clone(),
    };
    let glu = config.encoder.block.glu;
    Ok(Converted {
        class: "T5ForConditionalGeneration",
        config: fields,
        weights: Weights::of(&module, export_table(glu), &[])?,
    })
}
