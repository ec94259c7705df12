//! Llama (`LlamaForCausalLM`) and Qwen2 (`Qwen2ForCausalLM`), both directions: a decoder-only
//! stack of pre-RMSNorm layers with rotary positions (Hugging Face's layout, θ from
//! `rope_theta` or `rope_parameters`), grouped-query attention (`num_key_value_heads`, a
//! `head_dim` that need not be the width over the heads), SwiGLU (`gate_proj`, `up_proj`,
//! `down_proj`), a final RMSNorm and no embedding norm; no biases (Llama's `attention_bias`
//! and `mlp_bias` add them; Qwen2 has them on the query, key and value only). The LM head is
//! `lm_head`, untied in Llama by default and tied (absent from the file) in Qwen2.

use std::path::Path;

use burn::prelude::Device;
use serde_json::{Value, json};

use super::HfConfig;
use super::convert::{Converted, Weights, head_misfit, refuse, round_trip};
use super::keys::{KeyTable, model_stack, model_stack_out, table};
use super::loader::{LoadReport, Loader};
use crate::blocks::{NormKind, PositionEncoding, TransformerEncoder, TransformerEncoderConfig};
use crate::error::Result;
use crate::objectives::{Clm, ClmConfig};
use crate::pretrainer::Pretrainer;
use crate::tokenize::SpecialTokens;

/// One layer: HF name after `layers.N.`, pretext path after `layers.N.`.
const LAYER: &[(&str, &str)] = &[
    ("input_layernorm.", "attention_norm."),
    ("self_attn.q_proj.", "attention.query."),
    ("self_attn.k_proj.", "attention.key."),
    ("self_attn.v_proj.", "attention.value."),
    ("self_attn.o_proj.", "attention.output."),
    ("post_attention_layernorm.", "ffn_norm."),
    ("mlp.gate_proj.", "ffn.gate."),
    ("mlp.up_proj.", "ffn.up."),
    ("mlp.down_proj.", "ffn.down."),
];

/// The token table and the final norm, under `model.`.
const EMBEDDINGS: &[(&str, &str)] = &[
    ("embed_tokens.", "embeddings.tokens."),
    ("norm.", "final_norm."),
];

/// The untied LM head's table.
const LM_HEAD: &[(&str, &str)] = &[("lm_head.weight", "head.output")];

/// The stack: token table, layers, final norm.
pub(crate) fn encoder_table() -> KeyTable {
    model_stack(EMBEDDINGS, LAYER)
}

/// A Llama or Qwen2 checkpoint in pretext's modules.
#[derive(Debug)]
pub struct HfLlama {
    /// Its `config.json`.
    pub config: HfConfig,
    /// The decoder-only stack, run under a causal mask.
    pub encoder: TransformerEncoder,
    /// The LM head: no transform, no bias, its own table unless tied.
    pub clm: Clm,
    /// What came from the file.
    pub report: LoadReport,
}

/// Loads the Llama or Qwen2 model directory `dir` onto `device`.
pub fn load_llama(dir: &Path, device: &Device) -> Result<HfLlama> {
    let config = HfConfig::read(dir)?;
    if !super::config::ROTARY_DECODERS.contains(&config.model_type.as_str()) {
        config.expect("llama", dir)?;
    }
    let mut encoder = config.encoder(dir)?.init(device)?;
    let tied = config.tie_word_embeddings;
    let mut clm = ClmConfig::new()
        .with_transform(false)
        .with_bias(false)
        .with_tied(tied)
        .init(&encoder, device);
    let mut loader = Loader::new(dir, device)?;
    loader.part("decoder", &mut encoder, &encoder_table(), true)?;
    if !tied {
        loader.part("LM head", &mut clm, &table(LM_HEAD), true)?;
    }
    Ok(HfLlama {
        config,
        encoder,
        clm,
        report: loader.finish(),
    })
}

/// The family a causal stack of shape `config` exports as: Qwen2 when only its query, key
/// and value have biases, Llama otherwise.
fn family(config: &TransformerEncoderConfig) -> (&'static str, &'static str, &'static str) {
    let block = &config.block;
    match block.qkv_bias && !block.output_bias {
        true => ("qwen2", "Qwen2", "Qwen2ForCausalLM"),
        false => ("llama", "Llama", "LlamaForCausalLM"),
    }
}

/// The `config.json` fields of a stack of shape `config` with an LM head `tied` or not.
fn hf_fields(config: &TransformerEncoderConfig, tied: bool) -> Value {
    let (model_type, ..) = family(config);
    let block = &config.block;
    let attention = block.attention(config.hidden_size, 0.0);
    let theta = match block.positions {
        PositionEncoding::Rotary { theta } => theta,
        _ => 0.0,
    };
    let mut fields = json!({
        "model_type": model_type,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": block.num_heads,
        "num_key_value_heads": attention.kv_head_count(),
        "head_dim": attention.head_width(),
        "intermediate_size": block.ffn_size,
        "hidden_act": block.activation.hf_name(),
        "max_position_embeddings": config.max_positions,
        "rms_norm_eps": block.norm_eps,
        "attention_dropout": config.dropout,
        // transformers 5 reads rope_parameters, 4 rope_theta.
        "rope_theta": theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": theta},
        "tie_word_embeddings": tied,
    });
    if model_type == "llama" {
        fields["attention_bias"] = json!(block.qkv_bias);
        fields["mlp_bias"] = json!(block.ffn_bias);
    } else {
        fields["use_sliding_window"] = json!(false);
    }
    fields
}

/// What a causal stack of shape `config` has that Llama or Qwen2 cannot express, if anything.
pub fn llama_misfit(config: &TransformerEncoderConfig) -> Option<String> {
    let (_, name, _) = family(config);
    let block = &config.block;
    if !matches!(block.positions, PositionEncoding::Rotary { .. }) || !block.glu {
        return Some("no rotary positions or no gated feed-forward network".into());
    }
    if block.norm != NormKind::RmsNorm {
        return Some("LayerNorms where Llama's are RMSNorms".into());
    }
    round_trip(name, config, &hf_fields(config, true))
}

/// A causal LM (of shape `config`) as `LlamaForCausalLM` or `Qwen2ForCausalLM`: its head must
/// have neither transform nor bias; its texts start with `special.cls` and end with
/// `special.sep`.
pub(super) fn export(
    config: &TransformerEncoderConfig,
    encoder: &TransformerEncoder,
    clm: &Clm,
    special: &SpecialTokens,
    dir: &Path,
) -> Result<Converted> {
    let (_, name, class) = family(config);
    let head = clm.head();
    if let Some(what) = llama_misfit(config).or_else(|| head_misfit(head, None, false)) {
        return Err(refuse(dir, name, &what));
    }
    let tied = head.tied();
    let mut fields = hf_fields(config, tied);
    fields["bos_token_id"] = json!(special.cls);
    fields["eos_token_id"] = json!(special.sep);
    let names = model_stack_out(EMBEDDINGS, LAYER, LM_HEAD);
    let model = Pretrainer {
        backbone: encoder.clone(),
        objective: clm.clone(),
    };
    Ok(Converted {
        class,
        config: fields,
        weights: Weights::of(&model, names, &[])?,
    })
}
