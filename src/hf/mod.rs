//! Hugging Face model directories in and out. In: a `config.json` and a `model.safetensors`
//! written by `transformers`' `save_pretrained`, loaded into pretext's own blocks and the heads
//! the file carries, through burn's store with one table of key patterns per part of a model
//! family. Out: pretext encoders as directories `transformers` loads.
//!
//! Families: BERT (`BertModel`, `BertForMaskedLM`, `BertForPreTraining`: the encoder, the MLM
//! and NSP heads), RoBERTa (positions offset past the padding id, the MLM head), ALBERT (a
//! factorized embedding, one layer shared across depth, the MLM and SOP heads), ELECTRA (the
//! discriminator and its head, the generator over the discriminator's embeddings), GPT-2
//! (pre-LN layers, fused Conv1D attention, the tied LM head without bias), Llama and Qwen2
//! (rotary positions, grouped-query attention, SwiGLU), ModernBERT (alternating local and
//! global attention), BART (the encoder-decoder and its tied LM head with
//! `final_logits_bias`) and T5 (relative position bias, RMSNorm, no biases). A head the file does not hold is initialised
//! afresh, and the [`LoadReport`] says so.
//!
//! ```no_run
//! use pretext::burn::prelude::*;
//! # fn main() -> pretext::Result<()> {
//! let bert = pretext::hf::load_bert("models/bert-base-uncased".as_ref(), &Device::flex())?;
//! println!("{}", bert.report);
//! # Ok(()) }
//! ```

mod albert;
mod bart;
mod bert;
mod classifier;
mod config;
mod convert;
mod electra;
mod export;
mod gpt2;
mod keys;
mod llama;
mod loader;
mod modernbert;
mod peft;
mod t5;

pub use bart::{bart_misfit, load_bart};
pub use bert::{HfBert, bert_misfit, load_bert};
pub use classifier::{
    ClassifierHead, HfClassifier, check_classifier_export, exportable_pooler, load_classifier,
};
pub use config::{FAMILIES, HfConfig};
pub use electra::{
    HfElectra, HfElectraGenerator, electra_misfit, load_electra, load_electra_generator,
};
pub use export::{Exportable, check_export_dir, export, export_bert};
pub use gpt2::{HfGpt2, gpt2_misfit, load_gpt2};
pub use llama::{HfLlama, llama_misfit, load_llama};
pub use loader::LoadReport;
pub use modernbert::{HfModernBert, load_modernbert, modernbert_misfit};
pub use peft::{ADAPTER_CONFIG, ADAPTER_WEIGHTS, export_peft, load_peft};
pub use t5::{load_t5, t5_misfit};

/// An encoder-decoder checkpoint (BART, T5) in pretext's modules.
#[derive(Debug)]
pub struct HfSeq2Seq {
    /// Its `config.json`.
    pub config: HfConfig,
    /// The encoder-decoder's shape.
    pub shape: crate::blocks::EncoderDecoderConfig,
    /// The encoder-decoder.
    pub model: crate::blocks::EncoderDecoder,
    /// The LM head over the decoder, as the family has it.
    pub seq2seq: crate::objectives::Seq2Seq,
    /// What came from the file.
    pub report: LoadReport,
}

/// What a causal stack of shape `config` has that its Hugging Face family cannot express, if
/// anything: Llama's or Qwen2's for rotary positions, GPT-2's otherwise.
pub fn causal_misfit(config: &crate::blocks::TransformerEncoderConfig) -> Option<String> {
    match config.block.positions {
        crate::blocks::PositionEncoding::Rotary { .. } => llama_misfit(config),
        _ => gpt2_misfit(config),
    }
}

/// What an encoder of shape `config` has that its Hugging Face family cannot express, if
/// anything: ModernBERT's for rotary positions, BERT's, RoBERTa's or ALBERT's otherwise.
pub fn encoder_misfit(config: &crate::blocks::TransformerEncoderConfig) -> Option<String> {
    match config.block.positions {
        crate::blocks::PositionEncoding::Rotary { .. } => modernbert_misfit(config),
        _ => bert_misfit(config),
    }
}

use std::path::Path;

use burn::prelude::Device;

use crate::blocks::TransformerEncoder;
use crate::error::{Error, Result};
use keys::KeyTable;
use loader::Loader;

/// The weights file of a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The weights file of an older model directory, read when it has no [`WEIGHTS_FILE`].
pub const PYTORCH_WEIGHTS_FILE: &str = "pytorch_model.bin";

/// Whether `dir` holds a Hugging Face model's weights (rather than, say, a pretext run).
pub fn is_model_dir(dir: &Path) -> bool {
    dir.join(WEIGHTS_FILE).is_file() || dir.join(PYTORCH_WEIGHTS_FILE).is_file()
}

/// The encoder of the family `model_type`, with the rewrites its file needs first; `None` for
/// an encoder-decoder (BART, T5), whose encoder is not a [`TransformerEncoder`] on its own.
fn encoder_table(model_type: &str) -> Option<KeyTable> {
    match model_type {
        "bert" | "roberta" | "electra" => Some(bert::encoder_table(model_type)),
        "albert" => Some(albert::encoder_table()),
        "gpt2" => Some(gpt2::encoder_table()),
        "llama" | "qwen2" => Some(llama::encoder_table()),
        "modernbert" => Some(modernbert::encoder_table()),
        _ => None,
    }
}

/// Loads the encoder weights of the model directory `dir` (a BERT, RoBERTa, ALBERT, GPT-2 or
/// ELECTRA's discriminator) into `encoder`, which must have the checkpoint's shape
/// ([`HfConfig::encoder`]): what continued pretraining starts from.
pub fn load_encoder(
    dir: &Path,
    encoder: &mut TransformerEncoder,
    device: &Device,
) -> Result<LoadReport> {
    let config = HfConfig::read(dir)?;
    let table = encoder_table(&config.model_type).ok_or_else(|| {
        model_error(
            dir,
            &format!(
                "a {} checkpoint is an encoder-decoder, not an encoder",
                config.model_type
            ),
        )
    })?;
    let mut loader = Loader::new(dir, device)?;
    match config.model_type.as_str() {
        "gpt2" => gpt2::rewrite(&mut loader)?,
        "modernbert" => modernbert::rewrite(&mut loader)?,
        _ => {}
    }
    loader.part("encoder", encoder, &table, true)?;
    Ok(loader.finish())
}

/// A fresh encoder of the shape of the model directory `dir` (as [`load_encoder`] reads) on `device`, with its weights: what fine-tuning a checkpoint starts from.
pub fn load_encoder_from(dir: &Path, device: &Device) -> Result<(TransformerEncoder, LoadReport)> {
    let mut encoder = HfConfig::read(dir)?.encoder(dir)?.init(device)?;
    let report = load_encoder(dir, &mut encoder, device)?;
    Ok((encoder, report))
}

/// An error about the model directory `dir`.
fn model_error(dir: &Path, reason: &dyn std::fmt::Display) -> Error {
    Error::HfModel {
        path: dir.to_path_buf(),
        reason: reason.to_string(),
    }
}
