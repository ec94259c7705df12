//! BERT-shaped masked language models: BERT (`BertModel`, `BertForMaskedLM`,
//! `BertForPreTraining`), RoBERTa (`RobertaModel`, `RobertaForMaskedLM`) and ALBERT
//! (`AlbertModel`, `AlbertForMaskedLM`, `AlbertForPreTraining`): the encoder, the MLM head and
//! the sentence-pair head (BERT's NSP, ALBERT's SOP), each through its table of Hugging Face key
//! patterns.
//!
//! HF's blocks are pretext's: post-LN layers, the LM head's dense + GELU + LayerNorm transform
//! with its output tied to the token table (`save_pretrained` keeps the head's bias and drops
//! the tied decoder), the tanh pooler on `[CLS]`. RoBERTa is BERT with its positions offset past
//! the padding id and its head named `lm_head`; ALBERT is BERT with narrower embeddings
//! projected up, one layer shared across depth, and (by default) the tanh GELU.

use std::path::Path;

use burn::module::Module;
use burn::prelude::Device;
use serde_json::{Value, json};

use super::convert::{Converted, Weights, head_misfit, refuse, round_trip};
use super::keys::{
    EMBEDDINGS, KeyTable, layers, literal, outward, outward_layers, prefixed, table,
};
use super::loader::{LoadReport, Loader};
use super::{HfConfig, albert, model_error};
use crate::blocks::{Activation, TransformerEncoder, TransformerEncoderConfig};
use crate::data::PairKind;
use crate::error::Result;
use crate::objectives::{Mlm, MlmConfig, PairHead, PairHeadConfig};

/// One layer of a BERT-shaped encoder: HF name after `encoder.layer.N.`, pretext path after
/// `layers.N.`.
pub(crate) const LAYER: &[(&str, &str)] = &[
    ("attention.self.query.", "attention.query."),
    ("attention.self.key.", "attention.key."),
    ("attention.self.value.", "attention.value."),
    ("attention.output.dense.", "attention.output."),
    ("attention.output.LayerNorm.", "attention_norm."),
    ("intermediate.dense.", "ffn.up."),
    ("output.dense.", "ffn.down."),
    ("output.LayerNorm.", "ffn_norm."),
];

/// BERT's MLM head (`BertForMaskedLM`, `BertForPreTraining`); export writes it back the same
/// way.
pub(crate) const MLM_HEAD: &[(&str, &str)] = &[
    ("cls.predictions.transform.dense.", "head.dense."),
    ("cls.predictions.transform.LayerNorm.", "head.norm."),
    ("cls.predictions.bias", "head.bias"),
];

/// RoBERTa's MLM head (`RobertaForMaskedLM`).
pub(crate) const ROBERTA_MLM_HEAD: &[(&str, &str)] = &[
    ("lm_head.dense.", "head.dense."),
    ("lm_head.layer_norm.", "head.norm."),
    ("lm_head.bias", "head.bias"),
];

/// The pooler of BERT's NSP head, under the model's prefix.
pub(crate) const POOLER: &[(&str, &str)] = &[("pooler.dense.", "pooler.dense.")];

/// The two-way classifier of BERT's NSP head (`BertForPreTraining`).
pub(crate) const NSP_CLASSIFIER: &[(&str, &str)] = &[("cls.seq_relationship.", "classifier.")];

/// ELECTRA's projection of its narrower embeddings up to the layers' width.
const ELECTRA_PROJECTION: &[(&str, &str)] = &[("embeddings_project.", "projection.")];

/// The encoder of a BERT, a RoBERTa or ELECTRA's discriminator under the family's prefix, with
/// ELECTRA's projection up from narrower embeddings.
pub(crate) fn encoder_table(model_type: &str) -> KeyTable {
    let mut table = prefixed(model_type, EMBEDDINGS);
    if model_type == "electra" {
        table.extend(prefixed(model_type, ELECTRA_PROJECTION));
    }
    table.extend(layers(model_type, "encoder.layer", LAYER, "layers."));
    table
}

/// A BERT, RoBERTa or ALBERT checkpoint in pretext's modules.
#[derive(Debug)]
pub struct HfBert {
    /// Its `config.json`.
    pub config: HfConfig,
    /// The encoder.
    pub encoder: TransformerEncoder,
    /// The MLM head (afresh if the file has none).
    pub mlm: Mlm,
    /// The sentence-pair head: BERT's NSP, ALBERT's SOP (afresh if the file has none; RoBERTa
    /// has none).
    pub pair: PairHead,
    /// What came from the file.
    pub report: LoadReport,
}

/// Loads the BERT, RoBERTa or ALBERT model directory `dir` (`config.json`,
/// `model.safetensors`) onto `device`.
pub fn load_bert(dir: &Path, device: &Device) -> Result<HfBert> {
    let config = HfConfig::read(dir)?;
    let activation = config.activation(dir)?;
    let model_type = config.model_type.as_str();
    let (encoder_keys, pair_kind) = match model_type {
        "bert" | "roberta" => (encoder_table(model_type), PairKind::NextSentence),
        "albert" => (albert::encoder_table(), PairKind::SentenceOrder),
        other => {
            let reason = format!("model_type {other:?} where bert, roberta or albert was expected");
            return Err(model_error(dir, &reason));
        }
    };
    let heads = Heads::of(model_type);
    let mut encoder = config.encoder(dir)?.init(device)?;
    let mut mlm = MlmConfig::new()
        .with_layer_norm_eps(Some(config.layer_norm_eps))
        // RoBERTa's LM head computes the exact GELU whatever hidden_act says.
        .with_activation(match model_type {
            "roberta" => Activation::Gelu,
            _ => activation,
        })
        .init(&encoder, device);
    let mut pair = PairHeadConfig::new(pair_kind).init(&encoder, device);
    let pooler = prefixed(model_type, heads.pooler);
    let classifier = format!("{} classifier", pair_kind.name().to_uppercase());
    let mut loader = Loader::new(dir, device)?;
    loader.part("encoder", &mut encoder, &encoder_keys, true)?;
    loader.part("MLM head", &mut mlm, &table(heads.mlm), false)?;
    loader.part("pooler", &mut pair, &pooler, false)?;
    loader.part(&classifier, &mut pair, &table(heads.classifier), false)?;
    Ok(HfBert {
        config,
        encoder,
        mlm,
        pair,
        report: loader.finish(),
    })
}

/// The BERT-shaped family an encoder of shape `config` exports as: ALBERT when its layers are
/// shared, RoBERTa when its positions are offset, BERT otherwise.
fn family(config: &TransformerEncoderConfig) -> (&'static str, &'static str) {
    match (config.share_layers, config.position_offset) {
        (true, _) => ("albert", "ALBERT"),
        (false, 0) => ("bert", "BERT"),
        (false, _) => ("roberta", "RoBERTa"),
    }
}

/// The family (`model_type`, display name) an encoder of shape `config` exports as, refusing
/// what it cannot express: RoBERTa's positions must start after the tokenizer's padding id
/// `pad`.
pub(super) fn exported_family(
    config: &TransformerEncoderConfig,
    pad: u32,
    dir: &Path,
) -> Result<(&'static str, &'static str)> {
    let (model_type, name) = family(config);
    if let Some(what) = bert_misfit(config) {
        return Err(refuse(dir, name, &what));
    }
    let first = pad as usize + 1;
    if model_type == "roberta" && config.position_offset != first {
        let what = format!(
            "positions offset by {} rows where RoBERTa's start after the padding id, at {first}",
            config.position_offset
        );
        return Err(refuse(dir, name, &what));
    }
    Ok((model_type, name))
}

/// The shape fields of a BERT-shaped `config.json` (BERT, RoBERTa, ALBERT, ELECTRA) for an
/// encoder of shape `config`. The padding id is the tokenizer's, which the export writes.
pub(super) fn hf_fields(config: &TransformerEncoderConfig, model_type: &str) -> Value {
    let mut fields = json!({
        "model_type": model_type,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.block.num_heads,
        "intermediate_size": config.block.ffn_size,
        "hidden_act": config.block.activation.hf_name(),
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.dropout,
        "max_position_embeddings": config.max_positions,
        "type_vocab_size": config.num_segments,
        "layer_norm_eps": config.block.norm_eps,
        "position_embedding_type": "absolute",
    });
    match model_type {
        "albert" => {
            fields["embedding_size"] = json!(config.embedding_width());
            fields["num_hidden_groups"] = json!(1);
            fields["inner_group_num"] = json!(1);
        }
        "electra" => fields["embedding_size"] = json!(config.embedding_width()),
        _ => {}
    }
    fields
}

/// What an encoder of shape `config` has that its BERT-shaped family (ALBERT when its layers
/// are shared, RoBERTa when its positions are offset, BERT otherwise) cannot express, if
/// anything.
pub fn bert_misfit(config: &TransformerEncoderConfig) -> Option<String> {
    let (model_type, name) = family(config);
    let mut fields = hf_fields(config, model_type);
    // RoBERTa's positions start after the padding id: read back with the id this offset
    // implies (the export checks that the tokenizer's is that one).
    if model_type == "roberta" {
        fields["pad_token_id"] = json!(config.position_offset.saturating_sub(1));
    }
    round_trip(name, config, &fields)
}

/// Where a BERT-shaped family keeps its heads, and its classes: with both heads, with the MLM
/// head, with the pooler, bare.
struct Heads {
    mlm: &'static [(&'static str, &'static str)],
    pooler: &'static [(&'static str, &'static str)],
    classifier: &'static [(&'static str, &'static str)],
    classes: [&'static str; 4],
}

impl Heads {
    fn of(model_type: &str) -> Self {
        match model_type {
            "albert" => Self {
                mlm: albert::MLM_HEAD,
                pooler: albert::POOLER,
                classifier: albert::SOP_CLASSIFIER,
                classes: [
                    "AlbertForPreTraining",
                    "AlbertForMaskedLM",
                    "AlbertModel",
                    "AlbertModel",
                ],
            },
            "roberta" => Self {
                mlm: ROBERTA_MLM_HEAD,
                pooler: POOLER,
                classifier: NSP_CLASSIFIER,
                classes: ["", "RobertaForMaskedLM", "RobertaModel", "RobertaModel"],
            },
            _ => Self {
                mlm: MLM_HEAD,
                pooler: POOLER,
                classifier: NSP_CLASSIFIER,
                classes: [
                    "BertForPreTraining",
                    "BertForMaskedLM",
                    "BertModel",
                    "BertModel",
                ],
            },
        }
    }
}

/// The export's names of a BERT-shaped encoder (BERT, RoBERTa, ALBERT, ELECTRA's
/// discriminator) at module path `root`, its keys under `prefix`.
pub(super) fn encoder_out(
    config: &TransformerEncoderConfig,
    root: &str,
    prefix: &str,
    model_type: &str,
) -> KeyTable {
    let mut table = outward(root, prefix, EMBEDDINGS);
    if model_type == "albert" {
        table.extend(outward(root, prefix, albert::PROJECTION));
        let shared = format!("{prefix}{}", albert::SHARED_LAYER);
        table.extend(albert::LAYER.iter().map(|(hf, ours)| {
            let from = format!("^{}", literal(&format!("{root}layers.0.{ours}")));
            (from, format!("{shared}{hf}"))
        }));
        return table;
    }
    if config.embedding_size.is_some() {
        table.extend(outward(root, prefix, ELECTRA_PROJECTION));
    }
    let layers = outward_layers(root, "layers", prefix, "encoder.layer", LAYER);
    table.extend(layers);
    table
}

/// The parts of a BERT-shaped export, under the module paths its key tables read.
#[derive(Module, Debug)]
struct Parts {
    backbone: TransformerEncoder,
    mlm: Option<Mlm>,
    pair: Option<PairHead>,
}

/// An encoder (of shape `config`) with its MLM and sentence-pair heads if given, as BERT,
/// RoBERTa or ALBERT (see [`family`]): `…ForPreTraining` with both heads, `…ForMaskedLM`
/// with the MLM head, `…Model` (keeping the pair head's pooler) without. RoBERTa's positions
/// must start after the tokenizer's padding id `pad`.
pub(super) fn export(
    config: &TransformerEncoderConfig,
    encoder: &TransformerEncoder,
    mlm: Option<&Mlm>,
    pair: Option<&PairHead>,
    pad: u32,
    dir: &Path,
) -> Result<Converted> {
    let (model_type, name) = exported_family(config, pad, dir)?;
    // RoBERTa's LM head computes the exact GELU whatever hidden_act says.
    let activation = match model_type {
        "roberta" => Activation::Gelu,
        _ => config.block.activation,
    };
    if let Some(what) = mlm.and_then(|m| head_misfit(m.head(), Some(activation), true)) {
        return Err(refuse(dir, name, &what));
    }
    if pair.is_some() && model_type == "roberta" {
        return Err(refuse(dir, name, "a sentence-pair head"));
    }
    let heads = Heads::of(model_type);
    let class = match (mlm.is_some(), pair.is_some()) {
        (true, true) => heads.classes[0],
        (true, false) => heads.classes[1],
        (false, true) => heads.classes[2],
        (false, false) => heads.classes[3],
    };
    // The classes with a head put the encoder's keys under a prefix; the bare model does not.
    let prefix = match (mlm, pair) {
        (None, None) => String::new(),
        _ => format!("{model_type}."),
    };
    let mut table = encoder_out(config, "backbone.", &prefix, model_type);
    table.extend(outward("mlm.", "", heads.mlm));
    table.extend(outward("pair.", &prefix, heads.pooler));
    // The sentence-pair classifier goes with the pre-training class; alone, the encoder's
    // class keeps the pooler.
    if mlm.is_some() {
        table.extend(outward("pair.", "", heads.classifier));
    }
    let parts = Parts {
        backbone: encoder.clone(),
        mlm: mlm.cloned(),
        pair: pair.cloned(),
    };
    Ok(Converted {
        class,
        config: hf_fields(config, model_type),
        weights: Weights::of(&parts, table, &["pair.classifier."])?,
    })
}
