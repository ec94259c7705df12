//! GPT-2 (`GPT2Model`, `GPT2LMHeadModel`): pre-LN layers with a final LayerNorm, no LayerNorm
//! on the embeddings, and the LM head tied to the token table with neither transform nor bias.
//!
//! Its linear maps are `Conv1D`s, stored `[in, out]` (burn's own layout, the transpose of
//! `nn.Linear`'s), and its attention's query, key and value are one fused `c_attn`: the loader
//! first rewrites them into three `nn.Linear`-shaped tensors, so that one key table and one
//! adapter serve every family.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::Device;
use burn::tensor::TensorData;
use serde_json::{Value, json};

use super::HfConfig;
use super::convert::{Converted, Weights, head_misfit, refuse, round_trip};
use super::keys::{KeyTable, layers, outward, outward_layers, prefixed};
use super::loader::{LoadReport, Loader, concat_last, split_last, transposed};
use crate::blocks::{TransformerEncoder, TransformerEncoderConfig};
use crate::error::Result;
use crate::objectives::{Clm, ClmConfig};
use crate::tokenize::SpecialTokens;

/// One block: HF name after `h.N.`, pretext path after `layers.N.` (`c_attn` after it is split).
const LAYER: &[(&str, &str)] = &[
    ("ln_1.", "attention_norm."),
    ("attn.c_attn.query.", "attention.query."),
    ("attn.c_attn.key.", "attention.key."),
    ("attn.c_attn.value.", "attention.value."),
    ("attn.c_proj.", "attention.output."),
    ("ln_2.", "ffn_norm."),
    ("mlp.c_fc.", "ffn.up."),
    ("mlp.c_proj.", "ffn.down."),
];

/// The tables and the final LayerNorm, under `transformer.` in `GPT2LMHeadModel`.
const EMBEDDINGS: &[(&str, &str)] = &[
    ("wte.", "embeddings.tokens."),
    ("wpe.", "embeddings.input.positions."),
    ("ln_f.", "final_norm."),
];

/// The encoder: embeddings, blocks, final LayerNorm.
pub(crate) fn encoder_table() -> KeyTable {
    let mut table = prefixed("transformer", EMBEDDINGS);
    table.extend(layers("transformer", "h", LAYER, "layers."));
    table
}

/// The Conv1D modules of a block.
const CONV1D: [&str; 4] = ["attn.c_attn.", "attn.c_proj.", "mlp.c_fc.", "mlp.c_proj."];

/// The parts of `c_attn`, in its column order.
const QKV: [&str; 3] = ["query", "key", "value"];

/// Rewrites the Conv1D tensors as `nn.Linear` ones: every weight transposed to `[out, in]`,
/// and `c_attn`'s q|k|v (concatenated along its output columns) split into three.
pub(super) fn rewrite(loader: &mut Loader) -> Result<()> {
    let conv = |name: &str| CONV1D.iter().any(|part| name.contains(part));
    loader.rewrite(conv, |name, data| {
        let (module, kind) = name.rsplit_once('.').expect("a tensor name has a module");
        let linear = |data| match kind {
            "weight" => transposed(&data),
            _ => data,
        };
        if !module.ends_with("c_attn") {
            return vec![(name.to_string(), linear(data))];
        }
        split_last(&data, 3)
            .into_iter()
            .zip(QKV)
            .map(|(piece, part)| (format!("{module}.{part}.{kind}"), linear(piece)))
            .collect()
    })
}

/// The export's names: pretext path → HF name, `c_attn`'s three parts still apart.
fn export_table() -> KeyTable {
    let mut table = outward("", "transformer.", EMBEDDINGS);
    table.extend(outward_layers("", "layers", "transformer.", "h", LAYER));
    table
}

/// The export's tensors in GPT-2's layout: every Conv1D weight `[in, out]`, and `c_attn`'s
/// query, key and value joined along their output columns.
fn fuse(tensors: &mut Vec<(String, TensorData)>) {
    let mut fused: BTreeMap<String, [Option<TensorData>; 3]> = BTreeMap::new();
    let mut out = Vec::with_capacity(tensors.len());
    for (name, data) in tensors.drain(..) {
        let (module, kind) = name.rsplit_once('.').expect("a tensor name has a module");
        let data = match kind {
            "weight" if CONV1D.iter().any(|c| name.contains(c)) => transposed(&data),
            _ => data,
        };
        let part = module
            .rsplit_once('.')
            .filter(|(parent, _)| parent.ends_with("c_attn"))
            .and_then(|(parent, part)| Some((parent, QKV.iter().position(|p| *p == part)?)));
        match part {
            Some((parent, index)) => {
                fused.entry(format!("{parent}.{kind}")).or_default()[index] = Some(data)
            }
            None => out.push((name, data)),
        }
    }
    for (name, parts) in fused {
        let parts: Vec<TensorData> = parts.into_iter().map(|p| p.expect("q, k and v")).collect();
        out.push((name, concat_last(&parts)));
    }
    *tensors = out;
}

/// A GPT-2 checkpoint in pretext's modules.
#[derive(Debug)]
pub struct HfGpt2 {
    /// Its `config.json`.
    pub config: HfConfig,
    /// The decoder-only stack: pretext's encoder with pre-LN layers, run under a causal mask.
    pub encoder: TransformerEncoder,
    /// The causal-LM head: the token table itself, no transform, a zero bias.
    pub clm: Clm,
    /// What came from the file.
    pub report: LoadReport,
}

/// Loads the GPT-2 model directory `dir` onto `device`.
pub fn load_gpt2(dir: &Path, device: &Device) -> Result<HfGpt2> {
    let config = HfConfig::read(dir)?;
    config.expect("gpt2", dir)?;
    let mut encoder = config.encoder(dir)?.init(device)?;
    let clm = ClmConfig::new()
        .with_transform(false)
        .with_bias(false)
        .init(&encoder, device);
    let mut loader = Loader::new(dir, device)?;
    rewrite(&mut loader)?;
    loader.part("decoder", &mut encoder, &encoder_table(), true)?;
    Ok(HfGpt2 {
        config,
        encoder,
        clm,
        report: loader.finish(),
    })
}

/// The shape fields of GPT-2's `config.json` for a stack of shape `config`.
fn hf_fields(config: &TransformerEncoderConfig) -> Value {
    json!({
        "model_type": "gpt2",
        "n_embd": config.hidden_size,
        "n_layer": config.num_layers,
        "n_head": config.block.num_heads,
        "n_inner": config.block.ffn_size,
        "n_positions": config.max_positions,
        "activation_function": config.block.activation.hf_name(),
        "layer_norm_epsilon": config.block.norm_eps,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
    })
}

/// What a causal LM of shape `config` has that GPT-2 cannot express, if anything.
pub fn gpt2_misfit(config: &TransformerEncoderConfig) -> Option<String> {
    round_trip("GPT-2", config, &hf_fields(config))
}

/// A causal LM (of shape `config`) as `GPT2LMHeadModel`: its head must have neither
/// transform nor bias, as GPT-2's; its texts start with `special.cls` and end with
/// `special.sep`.
pub(super) fn export(
    config: &TransformerEncoderConfig,
    encoder: &TransformerEncoder,
    clm: &Clm,
    special: &SpecialTokens,
    dir: &Path,
) -> Result<Converted> {
    if let Some(what) = gpt2_misfit(config).or_else(|| head_misfit(clm.head(), None, false)) {
        return Err(refuse(dir, "GPT-2", &what));
    }
    let mut fields = hf_fields(config);
    fields["bos_token_id"] = json!(special.cls);
    fields["eos_token_id"] = json!(special.sep);
    let mut weights = Weights::of(encoder, export_table(), &[])?;
    fuse(&mut weights.tensors);
    Ok(Converted {
        class: "GPT2LMHeadModel",
        config: fields,
        weights,
    })
}
