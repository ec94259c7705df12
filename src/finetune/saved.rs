//! A fine-tuned classifier on disk, so that a finished fine-tuning run can be exported, scored
//! or tuned further later without training again. Its directory holds `classifier.json` (the
//! encoder's shape, the head's configuration, the label names, the sequence length),
//! `encoder.bpk` and `head.bpk` (the weights) and the tokenizer (`tokenizer.json` with
//! `tokenizer_config.json`).
//!
//! ```no_run
//! # fn main() -> pretext::Result<()> {
//! use pretext::finetune::FineTuned;
//! let device = burn::prelude::Device::flex();
//! let tuned = FineTuned::load("runs/finetune-topics".as_ref(), &device)?;
//! println!("{} classes: {}", tuned.card.labels.len(), tuned.card.labels.join(", "));
//! tuned.export_hf("runs/topics-hf".as_ref(), false)?;
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::blocks::{TransformerEncoder, TransformerEncoderConfig};
use crate::error::{Error, Result};
use crate::hf::{ClassifierHead, Exportable};
use crate::objectives::{SequenceClassifierConfig, TokenClassifierConfig};
use crate::recipe::run_dir::ENCODER_FILE;
use crate::tokenize::Tokenizer;
use crate::train::checkpoint::{load_weights, save_weights};

/// The description of a fine-tuned classifier, written last so that its presence means the
/// weights beside it are whole.
pub const CLASSIFIER_FILE: &str = "classifier.json";
/// The head's weights.
const HEAD_FILE: &str = "head.bpk";

/// A classifier head's configuration: one class a sequence, or one a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadConfig {
    /// A [`SequenceClassifier`](crate::objectives::SequenceClassifier).
    Sequence(SequenceClassifierConfig),
    /// A [`TokenClassifier`](crate::objectives::TokenClassifier).
    Token(TokenClassifierConfig),
}

impl HeadConfig {
    /// A fresh head of this configuration on `encoder`.
    pub fn init(&self, encoder: &TransformerEncoder, device: &Device) -> Result<ClassifierHead> {
        Ok(match self {
            Self::Sequence(config) => ClassifierHead::Sequence(config.init(encoder, device)?),
            Self::Token(config) => ClassifierHead::Token(config.init(encoder, device)?),
        })
    }
}

/// What a fine-tuned classifier is, as `classifier.json` holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierCard {
    /// The encoder's shape.
    pub encoder: TransformerEncoderConfig,
    /// The head's configuration.
    pub head: HeadConfig,
    /// The label names, by class id.
    pub labels: Vec<String>,
    /// Tokens per example it was tuned on, `[CLS]` and `[SEP]` included.
    pub seq_len: usize,
}

/// A fine-tuned encoder with its classifier head, its labels and its tokenizer.
#[derive(Debug)]
pub struct FineTuned {
    /// What it is.
    pub card: ClassifierCard,
    /// The tuned encoder.
    pub encoder: TransformerEncoder,
    /// The tuned head.
    pub head: ClassifierHead,
    /// The tokenizer its inputs are made with.
    pub tokenizer: Tokenizer,
}

impl FineTuned {
    /// Whether `dir` holds a saved fine-tuned classifier.
    pub fn is_saved(dir: &Path) -> bool {
        dir.join(CLASSIFIER_FILE).is_file()
    }

    /// Writes the classifier into `dir` (created if need be), its description last.
    pub fn save(&self, dir: &Path) -> Result<()> {
        if self.head.num_classes() != self.card.labels.len() {
            return Err(Error::InvalidConfig(format!(
                "a head of {} classes with {} label names",
                self.head.num_classes(),
                self.card.labels.len()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        save_weights(&self.encoder, &dir.join(ENCODER_FILE))?;
        match &self.head {
            ClassifierHead::Sequence(head) => save_weights(head, &dir.join(HEAD_FILE))?,
            ClassifierHead::Token(head) => save_weights(head, &dir.join(HEAD_FILE))?,
        }
        self.tokenizer.save_to_dir(dir)?;
        let card = serde_json::to_string_pretty(&self.card).expect("a card serializes");
        crate::util::atomic_file::write(&dir.join(CLASSIFIER_FILE), card)
    }

    /// The classifier saved in `dir`, onto `device`: each file checked against the
    /// description (the weights' shapes, the tokenizer's vocabulary).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let path = dir.join(CLASSIFIER_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let card: ClassifierCard = serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: format!("not a fine-tuned classifier's description: {e}"),
        })?;
        let tokenizer = Tokenizer::from_model_dir(dir)?;
        if tokenizer.vocab_size() != card.encoder.vocab_size {
            return Err(Error::Checkpoint {
                path: dir.to_path_buf(),
                reason: format!(
                    "its tokenizer has {} tokens where the encoder has {}",
                    tokenizer.vocab_size(),
                    card.encoder.vocab_size
                ),
            });
        }
        let encoder = load_weights(&dir.join(ENCODER_FILE), card.encoder.init(device)?)?;
        let head = match card.head.init(&encoder, device)? {
            ClassifierHead::Sequence(head) => {
                ClassifierHead::Sequence(load_weights(&dir.join(HEAD_FILE), head)?)
            }
            ClassifierHead::Token(head) => {
                ClassifierHead::Token(load_weights(&dir.join(HEAD_FILE), head)?)
            }
        };
        if head.num_classes() != card.labels.len() {
            return Err(Error::Checkpoint {
                path,
                reason: format!(
                    "{} label names for a head of {} classes",
                    card.labels.len(),
                    head.num_classes()
                ),
            });
        }
        Ok(Self {
            card,
            encoder,
            head,
            tokenizer,
        })
    }

    /// Writes the classifier as a Hugging Face directory `dir` (BERT, RoBERTa, ALBERT or
    /// ELECTRA's `…ForSequenceClassification` or `…ForTokenClassification`, the labels as
    /// `id2label`); `dir` must be absent or empty unless `force`. Returns the class written.
    pub fn export_hf(&self, dir: &Path, force: bool) -> Result<&'static str> {
        let model = Exportable::Classifier {
            config: &self.card.encoder,
            encoder: &self.encoder,
            head: &self.head,
            labels: &self.card.labels,
        };
        crate::hf::export(model, &self.tokenizer, dir, force)
    }
}
