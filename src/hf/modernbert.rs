//! ModernBERT (`ModernBertModel`, `ModernBertForMaskedLM`), both directions: pre-norm layers
//! with LayerNorms (no shifts by default), none before the first layer's attention, a norm on
//! the token embeddings and a final one; rotary positions, layers 0, n, 2n… global (θ 160 000)
//! and the others local (a window of half `local_attention` either side, θ 10 000); GeGLU; no
//! biases. Its attention's query, key and value are one `Wqkv` and its GLU's two input maps
//! one `Wi` (the activated half first), stacked along their output rows: the loader splits
//! them as they are read, and the export stacks them again. The MLM head is BERT's transform
//! without biases, tied to the token table, with an output bias.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::Device;
use burn::tensor::TensorData;
use serde_json::{Value, json};

use super::HfConfig;
use super::convert::{Converted, Weights, head_misfit, refuse, round_trip};
use super::keys::{KeyTable, model_stack, model_stack_out, table};
use super::loader::{LoadReport, Loader};
use super::model_error;
use crate::blocks::{Activation, PositionEncoding, TransformerEncoder, TransformerEncoderConfig};
use crate::error::Result;
use crate::objectives::{Mlm, MlmConfig};
use crate::pretrainer::Pretrainer;
use crate::tokenize::SpecialTokens;

/// One layer: HF name after `layers.N.` (`Wqkv` and `Wi` after they are split), pretext path.
const LAYER: &[(&str, &str)] = &[
    ("attn_norm.", "attention_norm."),
    ("attn.Wqkv.query.", "attention.query."),
    ("attn.Wqkv.key.", "attention.key."),
    ("attn.Wqkv.value.", "attention.value."),
    ("attn.Wo.", "attention.output."),
    ("mlp_norm.", "ffn_norm."),
    ("mlp.Wi.gate.", "ffn.gate."),
    ("mlp.Wi.up.", "ffn.up."),
    ("mlp.Wo.", "ffn.down."),
];

/// The token table, its norm and the final norm, under `model.`.
const EMBEDDINGS: &[(&str, &str)] = &[
    ("embeddings.tok_embeddings.", "embeddings.tokens."),
    ("embeddings.norm.", "embeddings.input.norm."),
    ("final_norm.", "final_norm."),
];

/// The MLM head: its transform and the tied decoder's bias.
const MLM_HEAD: &[(&str, &str)] = &[
    ("head.dense.", "head.dense."),
    ("head.norm.", "head.norm."),
    ("decoder.bias", "head.bias"),
];

/// The fused tensors and their parts, in their row order.
const FUSED: [(&str, &[&str]); 2] = [
    ("attn.Wqkv", &["query", "key", "value"]),
    ("mlp.Wi", &["gate", "up"]),
];

/// The stack: embeddings, layers, final norm.
pub(crate) fn encoder_table() -> KeyTable {
    model_stack(EMBEDDINGS, LAYER)
}

/// A ModernBERT checkpoint in pretext's modules.
#[derive(Debug)]
pub struct HfModernBert {
    /// Its `config.json`.
    pub config: HfConfig,
    /// The encoder.
    pub encoder: TransformerEncoder,
    /// The MLM head (afresh if the file has none).
    pub mlm: Mlm,
    /// What came from the file.
    pub report: LoadReport,
}

/// `data` cut into `parts` equal pieces along its first dimension (rows).
fn split_rows(data: &TensorData, parts: usize) -> Vec<TensorData> {
    let shape = data.shape().to_vec();
    let values: Vec<f32> = data.try_to_vec().expect("rewrites see f32 data");
    let mut piece_shape = shape.clone();
    piece_shape[0] /= parts;
    values
        .chunks(values.len() / parts)
        .map(|piece| TensorData::new(piece.to_vec(), piece_shape.clone()))
        .collect()
}

/// Splits the file's fused `Wqkv` and `Wi` into their parts, named as the key tables read
/// them.
pub(super) fn rewrite(loader: &mut Loader) -> Result<()> {
    loader.rewrite(
        |name| {
            FUSED
                .iter()
                .any(|(fused, _)| name.contains(&format!("{fused}.")))
        },
        |name, data| {
            let (module, kind) = name.rsplit_once('.').expect("a tensor name has a module");
            let parts = FUSED
                .iter()
                .find(|(fused, _)| module.ends_with(fused))
                .map_or(&[][..], |(_, parts)| parts);
            split_rows(&data, parts.len())
                .into_iter()
                .zip(parts)
                .map(|(piece, part)| (format!("{module}.{part}.{kind}"), piece))
                .collect()
        },
    )
}

/// Loads the ModernBERT model directory `dir` onto `device`.
pub fn load_modernbert(dir: &Path, device: &Device) -> Result<HfModernBert> {
    let config = HfConfig::read(dir)?;
    config.expect("modernbert", dir)?;
    let mut encoder = config.encoder(dir)?.init(device)?;
    let act = config.head_act.as_deref().unwrap_or("gelu");
    let activation = Activation::from_hf(act)
        .ok_or_else(|| model_error(dir, &format!("classifier_activation {act:?}")))?;
    if config.head_bias != config.norm_bias {
        let what = "a head whose dense map and norm differ in having biases";
        return Err(model_error(dir, &what));
    }
    let mut mlm = MlmConfig::new()
        .with_layer_norm_eps(Some(config.layer_norm_eps))
        .with_activation(activation)
        .with_transform_biases(config.head_bias)
        .init(&encoder, device);
    let mut loader = Loader::new(dir, device)?;
    rewrite(&mut loader)?;
    loader.part("encoder", &mut encoder, &encoder_table(), true)?;
    loader.part("MLM head", &mut mlm, &table(MLM_HEAD), false)?;
    Ok(HfModernBert {
        config,
        encoder,
        mlm,
        report: loader.finish(),
    })
}

/// The `config.json` fields of an encoder of shape `config`.
fn hf_fields(config: &TransformerEncoderConfig) -> Value {
    let block = &config.block;
    let theta = match block.positions {
        PositionEncoding::Rotary { theta } => theta,
        _ => 0.0,
    };
    let local = block.local_theta.unwrap_or(theta);
    let kinds: Vec<&str> = (0..config.num_layers)
        .map(|depth| match block.is_local(depth) {
            true => "sliding_attention",
            false => "full_attention",
        })
        .collect();
    json!({
        "model_type": "modernbert",
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": block.num_heads,
        "intermediate_size": block.ffn_size,
        "hidden_activation": block.activation.hf_name(),
        "max_position_embeddings": config.max_positions,
        "norm_eps": block.norm_eps,
        "norm_bias": block.norm_bias,
        "attention_bias": block.qkv_bias,
        "mlp_bias": block.ffn_bias,
        "classifier_bias": block.norm_bias,
        "decoder_bias": true,
        "attention_dropout": config.dropout,
        "local_attention": 2 * block.window.unwrap_or(config.max_positions),
        // No window: every layer global.
        "global_attn_every_n_layers": match block.window {
            Some(_) => block.global_every,
            None => 1,
        },
        "layer_types": kinds,
        // transformers 5 reads rope_parameters by layer type, 4 the two thetas.
        "rope_parameters": {
            "full_attention": {"rope_type": "default", "rope_theta": theta},
            "sliding_attention": {"rope_type": "default", "rope_theta": local},
        },
        "global_rope_theta": theta,
        "local_rope_theta": local,
    })
}

/// What an encoder of shape `config` has that ModernBERT cannot express, if anything.
pub fn modernbert_misfit(config: &TransformerEncoderConfig) -> Option<String> {
    round_trip("ModernBERT", config, &hf_fields(config))
}

/// An encoder (of shape `config`) with its MLM head as `ModernBertForMaskedLM`, its texts
/// framed by `special.cls` and `special.sep`.
pub(super) fn export(
    config: &TransformerEncoderConfig,
    encoder: &TransformerEncoder,
    mlm: &Mlm,
    special: &SpecialTokens,
    dir: &Path,
) -> Result<Converted> {
    let misfit = modernbert_misfit(config)
        .or_else(|| head_misfit(mlm.head(), Some(config.block.activation), true))
        .or_else(|| {
            let biases = mlm.head().transform_biases();
            let want = Some((config.block.norm_bias, config.block.norm_bias));
            (biases != want).then(|| "an MLM head whose biases are not the encoder's".into())
        });
    if let Some(what) = misfit {
        return Err(refuse(dir, "ModernBERT", &what));
    }
    let names = model_stack_out(EMBEDDINGS, LAYER, MLM_HEAD);
    let model = Pretrainer {
        backbone: encoder.clone(),
        objective: mlm.clone(),
    };
    let mut weights = Weights::of(&model, names, &[])?;
    fuse(&mut weights.tensors);
    let mut fields = hf_fields(config);
    for (field, id) in [
        ("cls", special.cls),
        ("bos", special.cls),
        ("sep", special.sep),
    ] {
        fields[format!("{field}_token_id")] = json!(id);
    }
    fields["eos_token_id"] = json!(special.sep);
    Ok(Converted {
        class: "ModernBertForMaskedLM",
        config: fields,
        weights,
    })
}

/// The export's split `Wqkv` and `Wi` parts stacked again along their rows.
fn fuse(tensors: &mut Vec<(String, TensorData)>) {
    let mut fused: BTreeMap<String, Vec<Option<TensorData>>> = BTreeMap::new();
    let mut out = Vec::with_capacity(tensors.len());
    for (name, data) in tensors.drain(..) {
        let (module, kind) = name.rsplit_once('.').expect("a tensor name has a module");
        let part = module.rsplit_once('.').and_then(|(parent, part)| {
            let (_, parts) = FUSED.iter().find(|(f, _)| parent.ends_with(f))?;
            Some((parent, parts.len(), parts.iter().position(|p| *p == part)?))
        });
        match part {
            Some((parent, count, index)) => {
                let slots = fused
                    .entry(format!("{parent}.{kind}"))
                    .or_insert_with(|| vec![None; count]);
                slots[index] = Some(data);
            }
            None => out.push((name, data)),
        }
    }
    for (name, parts) in fused {
        let parts: Vec<TensorData> = parts.into_iter().map(|p| p.expect("every part")).collect();
        let mut shape = parts[0].shape().to_vec();
        shape[0] *= parts.len();
        let values: Vec<f32> = parts
            .iter()
            .flat_map(|p| {
                p.clone()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .expect("f32 data")
            })
            .collect();
        out.push((name, TensorData::new(values, shape)));
    }
    *tensors = out;
}
