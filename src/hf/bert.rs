//! BERT (`BertModel`, `BertForMaskedLM`, `BertForPreTraining`): the encoder, the MLM head and
//! the NSP head, each through its table of Hugging Face key patterns.
//!
//! HF's blocks are pretext's: post-LN layers, exact GELU, the LM head's dense + GELU + LayerNorm
//! transform with its output tied to the token table (`save_pretrained` keeps
//! `cls.predictions.bias` and drops the tied decoder), the tanh pooler on `[CLS]`.

use std::path::Path;

use burn::prelude::Device;

use super::{HfConfig, LoadReport, Loader};
use crate::blocks::TransformerEncoder;
use crate::error::Result;
use crate::noise::PairKind;
use crate::objectives::{Mlm, MlmConfig, PairHead, PairHeadConfig};

/// The encoder: HF key (with or without the `bert.` prefix a head class adds) → pretext path.
const ENCODER: &[(&str, &str)] = &[
    (
        r"^(?:bert\.)?embeddings\.word_embeddings\.",
        "embeddings.tokens.",
    ),
    (
        r"^(?:bert\.)?embeddings\.position_embeddings\.",
        "embeddings.input.positions.",
    ),
    (
        r"^(?:bert\.)?embeddings\.token_type_embeddings\.",
        "embeddings.input.segments.",
    ),
    (
        r"^(?:bert\.)?embeddings\.LayerNorm\.",
        "embeddings.input.norm.",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.([0-9]+)\.attention\.self\.(query|key|value)\.",
        "layers.$1.attention.$2.",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.([0-9]+)\.attention\.output\.dense\.",
        "layers.$1.attention.output.",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.([0-9]+)\.attention\.output\.LayerNorm\.",
        "layers.$1.attention_norm.",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.([0-9]+)\.intermediate\.dense\.",
        "layers.$1.ffn.up.",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.([0-9]+)\.output\.dense\.",
        "layers.$1.ffn.down.",
    ),
    (
        r"^(?:bert\.)?encoder\.layer\.([0-9]+)\.output\.LayerNorm\.",
        "layers.$1.ffn_norm.",
    ),
];

/// The MLM head (`BertForMaskedLM`, `BertForPreTraining`).
const MLM_HEAD: &[(&str, &str)] = &[
    (r"^cls\.predictions\.transform\.dense\.", "head.dense."),
    (r"^cls\.predictions\.transform\.LayerNorm\.", "head.norm."),
    (r"^cls\.predictions\.bias$", "head.bias"),
];

/// The pooler of the NSP head (`BertModel`, `BertForPreTraining`).
const POOLER: &[(&str, &str)] = &[(r"^(?:bert\.)?pooler\.dense\.", "pooler.dense.")];

/// The two-way classifier of the NSP head (`BertForPreTraining`).
const NSP_CLASSIFIER: &[(&str, &str)] = &[(r"^cls\.seq_relationship\.", "classifier.")];

/// A BERT checkpoint in pretext's modules.
#[derive(Debug)]
pub struct HfBert {
    /// Its `config.json`.
    pub config: HfConfig,
    /// The encoder.
    pub encoder: TransformerEncoder,
    /// The MLM head (afresh if the file has none).
    pub mlm: Mlm,
    /// The NSP head (afresh if the file has none).
    pub nsp: PairHead,
    /// What came from the file.
    pub report: LoadReport,
}

/// Loads the encoder weights of the BERT model directory `dir` into `encoder`, which must have
/// the checkpoint's shape ([`HfConfig::encoder`]).
pub fn load_bert_encoder(
    dir: &Path,
    encoder: &mut TransformerEncoder,
    device: &Device,
) -> Result<LoadReport> {
    let mut loader = Loader::new(dir, device)?;
    loader.part("encoder", encoder, ENCODER, true)?;
    Ok(loader.finish())
}

/// Loads the BERT model directory `dir` (`config.json`, `model.safetensors`) onto `device`.
pub fn load_bert(dir: &Path, device: &Device) -> Result<HfBert> {
    let config = HfConfig::read(dir)?;
    let mut encoder = config.encoder(dir)?.init(device)?;
    let mut mlm = MlmConfig::new()
        .with_layer_norm_eps(config.layer_norm_eps)
        .init(&encoder, device);
    let mut nsp = PairHeadConfig::new(PairKind::NextSentence).init(&encoder, device);
    let mut loader = Loader::new(dir, device)?;
    loader.part("encoder", &mut encoder, ENCODER, true)?;
    loader.part("MLM head", &mut mlm, MLM_HEAD, false)?;
    loader.part("pooler", &mut nsp, POOLER, false)?;
    loader.part("NSP classifier", &mut nsp, NSP_CLASSIFIER, false)?;
    Ok(HfBert {
        config,
        encoder,
        mlm,
        nsp,
        report: loader.finish(),
    })
}
