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

use burn::prelude::Device;

use super::keys::{EMBEDDINGS, KeyTable, layers, prefixed, table};
use super::loader::{LoadReport, Loader};
use super::{HfConfig, albert, model_error};
use crate::blocks::{Activation, TransformerEncoder};
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

/// The encoder of a BERT, a RoBERTa or ELECTRA's discriminator under the family's prefix, with
/// ELECTRA's projection up from narrower embeddings.
pub(crate) fn encoder_table(model_type: &str) -> KeyTable {
    let mut table = prefixed(model_type, EMBEDDINGS);
    if model_type == "electra" {
        table.extend(prefixed(
            model_type,
            &[("embeddings_project.", "projection.")],
        ));
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

/// Where one family keeps its encoder and heads.
struct Layout {
    encoder: KeyTable,
    mlm_head: KeyTable,
    /// The activation of the MLM head's transform.
    mlm_activation: Activation,
    pooler: KeyTable,
    pair_kind: PairKind,
    pair_classifier: KeyTable,
}

impl Layout {
    fn of(config: &HfConfig, dir: &Path) -> Result<Self> {
        let activation = config.activation(dir)?;
        Ok(match config.model_type.as_str() {
            "bert" => Self {
                encoder: encoder_table("bert"),
                mlm_head: table(MLM_HEAD),
                mlm_activation: activation,
                pooler: prefixed("bert", POOLER),
                pair_kind: PairKind::NextSentence,
                pair_classifier: table(NSP_CLASSIFIER),
            },
            // RoBERTa's LM head computes the exact GELU whatever hidden_act says.
            "roberta" => Self {
                encoder: encoder_table("roberta"),
                mlm_head: table(ROBERTA_MLM_HEAD),
                mlm_activation: Activation::Gelu,
                pooler: prefixed("roberta", POOLER),
                pair_kind: PairKind::NextSentence,
                pair_classifier: table(NSP_CLASSIFIER),
            },
            "albert" => Self {
                encoder: albert::encoder_table(),
                mlm_head: table(albert::MLM_HEAD),
                mlm_activation: activation,
                pooler: prefixed("albert", albert::POOLER),
                pair_kind: PairKind::SentenceOrder,
                pair_classifier: table(albert::SOP_CLASSIFIER),
            },
            other => {
                return Err(model_error(
                    dir,
                    &format!("model_type {other:?} where bert, roberta or albert was expected"),
                ));
            }
        })
    }
}

/// Loads the BERT, RoBERTa or ALBERT model directory `dir` (`config.json`,
/// `model.safetensors`) onto `device`.
pub fn load_bert(dir: &Path, device: &Device) -> Result<HfBert> {
    let config = HfConfig::read(dir)?;
    let layout = Layout::of(&config, dir)?;
    let mut encoder = config.encoder(dir)?.init(device)?;
    let mut mlm = MlmConfig::new()
        .with_layer_norm_eps(config.layer_norm_eps)
        .with_activation(layout.mlm_activation)
        .init(&encoder, device);
    let mut pair = PairHeadConfig::new(layout.pair_kind).init(&encoder, device);
    let mut loader = Loader::new(dir, device)?;
    loader.part("encoder", &mut encoder, &layout.encoder, true)?;
    loader.part("MLM head", &mut mlm, &layout.mlm_head, false)?;
    loader.part("pooler", &mut pair, &layout.pooler, false)?;
    let classifier = match layout.pair_kind {
        PairKind::SentenceOrder => "SOP classifier",
        _ => "NSP classifier",
    };
    loader.part(classifier, &mut pair, &layout.pair_classifier, false)?;
    Ok(HfBert {
        config,
        encoder,
        mlm,
        pair,
        report: loader.finish(),
    })
}
