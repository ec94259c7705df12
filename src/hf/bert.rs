//! BERT (`BertModel`, `BertForMaskedLM`, `BertForPreTraining`) and RoBERTa (`RobertaModel`,
//! `RobertaForMaskedLM`): the encoder, the MLM head and (BERT) the NSP head, each through its
//! table of Hugging Face key patterns. RoBERTa is BERT with its positions offset past the
//! padding id and its MLM head named `lm_head`.
//!
//! HF's blocks are pretext's: post-LN layers, exact GELU, the LM head's dense + GELU + LayerNorm
//! transform with its output tied to the token table (`save_pretrained` keeps
//! `cls.predictions.bias` and drops the tied decoder), the tanh pooler on `[CLS]`.

use std::path::Path;

use burn::prelude::Device;

use super::{HfConfig, LoadReport, Loader, encoder_table, prefixed, table};
use crate::blocks::TransformerEncoder;
use crate::error::Result;
use crate::noise::PairKind;
use crate::objectives::{Mlm, MlmConfig, PairHead, PairHeadConfig};

/// RoBERTa's MLM head (`RobertaForMaskedLM`).
const ROBERTA_MLM_HEAD: &[(&str, &str)] = &[
    ("lm_head.dense.", "head.dense."),
    ("lm_head.layer_norm.", "head.norm."),
    ("lm_head.bias", "head.bias"),
];

/// The MLM head (`BertForMaskedLM`, `BertForPreTraining`); export writes it back the same way.
pub(crate) const MLM_HEAD: &[(&str, &str)] = &[
    ("cls.predictions.transform.dense.", "head.dense."),
    ("cls.predictions.transform.LayerNorm.", "head.norm."),
    ("cls.predictions.bias", "head.bias"),
];

/// The pooler of the NSP head (`BertModel`, `BertForPreTraining`, `RobertaModel`), under the
/// model's prefix.
const POOLER: &[(&str, &str)] = &[("pooler.dense.", "pooler.dense.")];

/// The two-way classifier of the NSP head (`BertForPreTraining`).
const NSP_CLASSIFIER: &[(&str, &str)] = &[("cls.seq_relationship.", "classifier.")];

/// A BERT or RoBERTa checkpoint in pretext's modules.
#[derive(Debug)]
pub struct HfBert {
    /// Its `config.json`.
    pub config: HfConfig,
    /// The encoder.
    pub encoder: TransformerEncoder,
    /// The MLM head (afresh if the file has none).
    pub mlm: Mlm,
    /// The NSP head (afresh if the file has none; RoBERTa has none).
    pub nsp: PairHead,
    /// What came from the file.
    pub report: LoadReport,
}

/// Loads the BERT or RoBERTa model directory `dir` (`config.json`, `model.safetensors`) onto
/// `device`.
pub fn load_bert(dir: &Path, device: &Device) -> Result<HfBert> {
    let config = HfConfig::read(dir)?;
    let roberta = config.model_type == "roberta";
    if !roberta {
        super::check_family(&config, "bert", dir)?;
    }
    let (prefix, mlm_head) = match roberta {
        true => ("roberta", ROBERTA_MLM_HEAD),
        false => ("bert", MLM_HEAD),
    };
    let mut encoder = config.encoder(dir)?.init(device)?;
    let mut mlm = MlmConfig::new()
        .with_layer_norm_eps(config.layer_norm_eps)
        .init(&encoder, device);
    let mut nsp = PairHeadConfig::new(PairKind::NextSentence).init(&encoder, device);
    let mut loader = Loader::new(dir, device)?;
    let encoder_table = encoder_table(prefix).expect("bert and roberta load");
    loader.part("encoder", &mut encoder, &encoder_table, true)?;
    loader.part("MLM head", &mut mlm, &table(mlm_head), false)?;
    loader.part("pooler", &mut nsp, &prefixed(prefix, POOLER), false)?;
    loader.part("NSP classifier", &mut nsp, &table(NSP_CLASSIFIER), false)?;
    Ok(HfBert {
        config,
        encoder,
        mlm,
        nsp,
        report: loader.finish(),
    })
}
