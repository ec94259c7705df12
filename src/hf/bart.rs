//! BART (`BartModel`, `BartForConditionalGeneration`): pretext's encoder-decoder over one shared
//! token table (`model.shared`), with positions offset by 2 rows, a LayerNorm on each side's
//! embeddings, post-LN layers, and the LM head tied to the table with no transform and
//! `final_logits_bias` as its bias.

use std::path::Path;

use burn::prelude::Device;
use burn::tensor::TensorData;
use serde_json::{Value, json};

use super::convert::{Converted, Weights, head_misfit, refuse, round_trip};
use super::keys::{KeyTable, layers, outward, outward_layers, prefixed, table};
use super::loader::Loader;
use super::{HfConfig, HfSeq2Seq, model_error};
use crate::blocks::{EncoderDecoder, EncoderDecoderConfig};
use crate::error::Result;
use crate::objectives::{Seq2Seq, Seq2SeqConfig};
use crate::pretrainer::Pretrainer;
use crate::tokenize::SpecialTokens;

/// The tables and embedding LayerNorms, under `model.` in `BartForConditionalGeneration`.
const EMBEDDINGS: &[(&str, &str)] = &[
    ("shared.", "encoder.embeddings.tokens."),
    (
        "encoder.embed_positions.",
        "encoder.embeddings.input.positions.",
    ),
    (
        "encoder.layernorm_embedding.",
        "encoder.embeddings.input.norm.",
    ),
    ("decoder.embed_positions.", "decoder.input.positions."),
    ("decoder.layernorm_embedding.", "decoder.input.norm."),
];

/// An encoder layer: HF name after `encoder.layers.N.`, pretext path after `layers.N.`.
const ENCODER_LAYER: &[(&str, &str)] = &[
    ("self_attn.q_proj.", "attention.query."),
    ("self_attn.k_proj.", "attention.key."),
    ("self_attn.v_proj.", "attention.value."),
    ("self_attn.out_proj.", "attention.output."),
    ("self_attn_layer_norm.", "attention_norm."),
    ("fc1.", "ffn.up."),
    ("fc2.", "ffn.down."),
    ("final_layer_norm.", "ffn_norm."),
];

/// A decoder layer: HF name after `decoder.layers.N.`, pretext path after `layers.N.`.
const DECODER_LAYER: &[(&str, &str)] = &[
    ("self_attn.q_proj.", "self_attention.query."),
    ("self_attn.k_proj.", "self_attention.key."),
    ("self_attn.v_proj.", "self_attention.value."),
    ("self_attn.out_proj.", "self_attention.output."),
    ("self_attn_layer_norm.", "self_attention_norm."),
    ("encoder_attn.q_proj.", "cross_attention.query."),
    ("encoder_attn.k_proj.", "cross_attention.key."),
    ("encoder_attn.v_proj.", "cross_attention.value."),
    ("encoder_attn.out_proj.", "cross_attention.output."),
    ("encoder_attn_layer_norm.", "cross_attention_norm."),
    ("fc1.", "ffn.up."),
    ("fc2.", "ffn.down."),
    ("final_layer_norm.", "ffn_norm."),
];

/// The encoder-decoder: tables, embedding LayerNorms, both stacks.
fn model_table() -> KeyTable {
    let mut table = prefixed("model", EMBEDDINGS);
    for (side, pairs) in [("encoder", ENCODER_LAYER), ("decoder", DECODER_LAYER)] {
        let stack = format!("{side}.layers");
        table.extend(layers("model", &stack, pairs, &format!("{stack}.")));
    }
    table
}

/// The export's names: pretext path (the model under `backbone.`, the head under
/// `objective.`) → HF name.
fn export_table() -> KeyTable {
    let mut table = outward("backbone.", "model.", EMBEDDINGS);
    for (side, pairs) in [("encoder", ENCODER_LAYER), ("decoder", DECODER_LAYER)] {
        let stack = format!("{side}.layers");
        table.extend(outward_layers("backbone.", &stack, "model.", &stack, pairs));
    }
    table.extend(outward("objective.", "", BIAS));
    table
}

/// The head's bias `[vocab]` as BART keeps it: the `[1, vocab]` buffer `final_logits_bias`.
fn bias_as_buffer(tensors: &mut [(String, TensorData)]) {
    for (name, data) in tensors.iter_mut() {
        if name == FINAL_LOGITS_BIAS {
            let values: Vec<f32> = data.clone().try_to_vec().expect("f32 data");
            let len = values.len();
            *data = TensorData::new(values, [1, len]);
        }
    }
}

/// BART's logits bias, a buffer `[1, vocab]`.
const FINAL_LOGITS_BIAS: &str = "final_logits_bias";

/// The LM head's bias, stored as `final_logits_bias`.
const BIAS: &[(&str, &str)] = &[(FINAL_LOGITS_BIAS, "head.bias")];

/// Loads the BART model directory `dir` onto `device`: the LM head is the shared table, no
/// transform, `final_logits_bias` (zero if the file has none).
pub fn load_bart(dir: &Path, device: &Device) -> Result<HfSeq2Seq> {
    let config = HfConfig::read(dir)?;
    config.expect("bart", dir)?;
    let decoder_layers = config
        .decoder_layers
        .ok_or_else(|| model_error(dir, &"config.json has no decoder_layers"))?;
    let shape = EncoderDecoderConfig::new(config.encoder(dir)?, decoder_layers);
    let mut model = shape.init(device)?;
    let mut seq2seq = Seq2SeqConfig::new()
        .with_transform(false)
        .init(&model, device);
    let mut loader = Loader::new(dir, device)?;
    // A [1, vocab] buffer in the file, a [vocab] bias here.
    loader.rewrite(
        |name| name == FINAL_LOGITS_BIAS,
        |name, data| {
            let len = data.num_elements();
            let values: Vec<f32> = data.try_to_vec().expect("rewrites see f32 data");
            vec![(name.to_string(), TensorData::new(values, [len]))]
        },
    )?;
    loader.part("encoder-decoder", &mut model, &model_table(), true)?;
    loader.part("LM head bias", &mut seq2seq, &table(BIAS), false)?;
    Ok(HfSeq2Seq {
        config,
        shape,
        model,
        seq2seq,
        report: loader.finish(),
    })
}

/// The shape fields of BART's `config.json` for an encoder-decoder of shape `config`.
fn hf_fields(config: &EncoderDecoderConfig) -> Value {
    let e = &config.encoder;
    json!({
        "model_type": "bart",
        "d_model": e.hidden_size,
        "encoder_layers": e.num_layers,
        "decoder_layers": config.decoder_layers,
        "encoder_attention_heads": e.block.num_heads,
        "decoder_attention_heads": e.block.num_heads,
        "encoder_ffn_dim": e.block.ffn_size,
        "decoder_ffn_dim": e.block.ffn_size,
        "activation_function": e.block.activation.hf_name(),
        "max_position_embeddings": e.max_positions.saturating_sub(2),
        "scale_embedding": e.embedding_scale != 1.0,
        "dropout": e.dropout,
        "attention_dropout": e.dropout,
        "activation_dropout": 0.0,
        "is_encoder_decoder": true,
    })
}

/// What an encoder-decoder of shape `config` has that BART cannot express, if anything.
pub fn bart_misfit(config: &EncoderDecoderConfig) -> Option<String> {
    round_trip("BART", &config.encoder, &hf_fields(config))
}

/// An encoder-decoder (of shape `config`) and its LM head as `BartForConditionalGeneration`:
/// the head must have no transform, as BART's; its bias becomes `final_logits_bias`.
pub(super) fn export(
    config: &EncoderDecoderConfig,
    model: &EncoderDecoder,
    seq2seq: &Seq2Seq,
    special: &SpecialTokens,
    dir: &Path,
) -> Result<Converted> {
    if let Some(what) = bart_misfit(config).or_else(|| head_misfit(seq2seq.head(), None, true)) {
        return Err(refuse(dir, "BART", &what));
    }
    let mut fields = hf_fields(config);
    for (field, id) in [
        ("bos_token_id", special.cls),
        ("eos_token_id", special.sep),
        ("decoder_start_token_id", special.sep),
        ("forced_eos_token_id", special.sep),
    ] {
        fields[field] = json!(id);
    }
    let module = Pretrainer {
        backbone: model.clone(),
        objective: seq2seq.clone(),
    };
    let mut weights = Weights::of(&module, export_table(), &[])?;
    bias_as_buffer(&mut weights.tensors);
    Ok(Converted {
        class: "BartForConditionalGeneration",
        config: fields,
        weights,
    })
}
