//! Fine-tuned classifiers of the BERT-shaped families, both directions, with their label names
//! (`id2label`):
//!
//! - `…ForSequenceClassification`: BERT's and ALBERT's pooler on `[CLS]` and a linear layer
//!   are pretext's [`SequenceClassifier`]; RoBERTa's `classifier.dense` + tanh +
//!   `classifier.out_proj` on `<s>` is the same computation under other names, and ELECTRA's
//!   the same names with GELU in place of tanh (the head's
//!   [`PoolerActivation::Gelu`]). A head with a GELU pooler exports as ELECTRA's.
//! - `…ForTokenClassification` (BERT, RoBERTa, ALBERT, ELECTRA): a linear layer on every
//!   token, pretext's [`TokenClassifier`].

use std::path::Path;

use burn::module::{Module, ModuleDisplay};
use burn::prelude::Device;
use serde_json::json;

use super::bert::{POOLER, encoder_out, exported_family, hf_fields};
use super::convert::{Converted, Weights, refuse, round_trip};
use super::keys::{KeyTable, outward, prefixed, table};
use super::loader::{LoadReport, Loader};
use super::{HfConfig, albert, model_error};
use crate::blocks::{PoolerActivation, TransformerEncoder};
use crate::error::Result;
use crate::objectives::{
    SequenceClassifier, SequenceClassifierConfig, TokenClassifier, TokenClassifierConfig,
};

/// The linear layer of every classifier class (HF name, pretext path).
const CLASSIFIER: &[(&str, &str)] = &[("classifier.", "classifier.")];

/// RoBERTa's and ELECTRA's sequence head: a dense map with tanh (ELECTRA: GELU) and a linear
/// layer, pretext's pooler and classifier.
const DENSE_SEQUENCE_HEAD: &[(&str, &str)] = &[
    ("classifier.dense.", "pooler.dense."),
    ("classifier.out_proj.", "classifier."),
];

/// A classifier's head: one class a sequence, or one a token.
#[derive(Debug)]
pub enum ClassifierHead {
    /// `…ForSequenceClassification`.
    Sequence(SequenceClassifier),
    /// `…ForTokenClassification`.
    Token(TokenClassifier),
}

impl ClassifierHead {
    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        match self {
            Self::Sequence(head) => head.num_classes(),
            Self::Token(head) => head.num_classes(),
        }
    }
}

/// A fine-tuned BERT, RoBERTa, ALBERT or ELECTRA classifier in pretext's modules.
#[derive(Debug)]
pub struct HfClassifier {
    /// Its `config.json`.
    pub config: HfConfig,
    /// The encoder.
    pub encoder: TransformerEncoder,
    /// The head.
    pub head: ClassifierHead,
    /// The label names, by class id.
    pub labels: Vec<String>,
    /// What came from the file.
    pub report: LoadReport,
}

/// Where a family's sequence head keeps its parts: the pooler (under the model's prefix) and
/// the rest, or why pretext cannot hold it.
fn sequence_head(model_type: &str) -> std::result::Result<KeyTable, &'static str> {
    match model_type {
        "bert" => Ok([prefixed("bert", POOLER), table(CLASSIFIER)].concat()),
        "albert" => Ok([prefixed("albert", albert::POOLER), table(CLASSIFIER)].concat()),
        "roberta" | "electra" => Ok(table(DENSE_SEQUENCE_HEAD)),
        _ => Err("a sequence head of another family"),
    }
}

/// Loads the fine-tuned classifier in `dir` (`config.json` naming a
/// `…ForSequenceClassification` or `…ForTokenClassification` class, `model.safetensors`) onto
/// `device`.
pub fn load_classifier(dir: &Path, device: &Device) -> Result<HfClassifier> {
    let config = HfConfig::read(dir)?;
    let class = config.architectures.first().cloned().unwrap_or_default();
    let model_type = config.model_type.as_str();
    let encoder_keys = match model_type {
        "bert" | "roberta" | "electra" => super::bert::encoder_table(model_type),
        "albert" => albert::encoder_table(),
        other => {
            let reason = format!("a {other} model is not a BERT-shaped classifier");
            return Err(model_error(dir, &reason));
        }
    };
    let labels = config.labels.clone();
    if labels.len() < 2 {
        let reason = format!("{class} with {} labels in id2label", labels.len());
        return Err(model_error(dir, &reason));
    }
    let mut encoder = config.encoder(dir)?.init(device)?;
    let mut loader = Loader::new(dir, device)?;
    loader.part("encoder", &mut encoder, &encoder_keys, true)?;
    let dropout = config.hidden_dropout_prob;
    let head = if class.ends_with("ForSequenceClassification") {
        let keys = sequence_head(model_type).map_err(|what| refuse(dir, &class, what))?;
        let activation = match model_type {
            "electra" => PoolerActivation::Gelu,
            _ => PoolerActivation::Tanh,
        };
        let config = SequenceClassifierConfig::new(labels.len(), "classifier".into())
            .with_pooler_activation(activation);
        let mut head = config.with_dropout(dropout).init(&encoder, device)?;
        loader.part("sequence classifier", &mut head, &keys, true)?;
        ClassifierHead::Sequence(head)
    } else if class.ends_with("ForTokenClassification") {
        let config = TokenClassifierConfig::new(labels.len(), "classifier".into());
        let mut head = config.with_dropout(dropout).init(&encoder, device)?;
        loader.part("token classifier", &mut head, &table(CLASSIFIER), true)?;
        ClassifierHead::Token(head)
    } else {
        let reason =
            format!("{class:?} is not a …ForSequenceClassification or …ForTokenClassification");
        return Err(model_error(dir, &reason));
    };
    Ok(HfClassifier {
        config,
        encoder,
        head,
        labels,
        report: loader.finish(),
    })
}

/// The parts of a classifier export, under the module paths its key tables read.
#[derive(Module, Debug)]
struct Parts<H: Module> {
    backbone: TransformerEncoder,
    head: H,
}

/// The pooler a sequence classifier on an encoder of shape `config` needs to be exported: GELU
/// (ELECTRA's head) on an unshared encoder with an embedding projection, which only ALBERT and
/// ELECTRA have; `tanh` otherwise.
pub fn exportable_pooler(config: &crate::blocks::TransformerEncoderConfig) -> PoolerActivation {
    match config.embedding_size.is_some() && !config.share_layers {
        true => PoolerActivation::Gelu,
        false => PoolerActivation::Tanh,
    }
}

/// The family a classifier exports as: ELECTRA's for a GELU pooler (`gelu`) or an unshared
/// encoder with an embedding projection ([`exportable_pooler`]), else BERT's, RoBERTa's or
/// ALBERT's ([`exported_family`]). `sequence`: a sequence head, which has a pooler.
fn classifier_family(
    config: &crate::blocks::TransformerEncoderConfig,
    gelu: bool,
    sequence: bool,
    pad: u32,
    dir: &Path,
) -> Result<(&'static str, &'static str)> {
    let projected = exportable_pooler(config) == PoolerActivation::Gelu;
    if !(gelu || projected) {
        return exported_family(config, pad, dir);
    }
    let misfit = round_trip("ELECTRA", config, &hf_fields(config, "electra")).or_else(|| {
        (sequence && !gelu).then(|| "a tanh pooler where ELECTRA's head applies GELU".into())
    });
    match misfit {
        Some(what) => Err(refuse(dir, "ELECTRA", &what)),
        None => Ok(("electra", "ELECTRA")),
    }
}

/// Refuses, before fine-tuning spends its time, the export to `dir` that a classifier on an
/// encoder of shape `config` (its pooler the one [`exportable_pooler`] picks, `pad` the
/// tokenizer's padding id) would fail at the end: the error the export would give.
pub fn check_classifier_export(
    config: &crate::blocks::TransformerEncoderConfig,
    pad: u32,
    dir: &Path,
) -> Result<()> {
    let gelu = exportable_pooler(config) == PoolerActivation::Gelu;
    classifier_family(config, gelu, true, pad, dir).map(|_| ())
}

/// An encoder (of shape `config`) with a classifier `head` of `labels.len()` classes, as BERT,
/// RoBERTa, ALBERT or ELECTRA's `…ForSequenceClassification` or `…ForTokenClassification`,
/// `id2label` and `label2id` written from `labels`.
pub(super) fn export(
    config: &crate::blocks::TransformerEncoderConfig,
    encoder: &TransformerEncoder,
    head: &ClassifierHead,
    labels: &[String],
    pad: u32,
    dir: &Path,
) -> Result<Converted> {
    let gelu = matches!(head, ClassifierHead::Sequence(h)
        if h.pooler_activation() == PoolerActivation::Gelu);
    let sequence = matches!(head, ClassifierHead::Sequence(_));
    let (model_type, name) = classifier_family(config, gelu, sequence, pad, dir)?;
    if head.num_classes() != labels.len() {
        let what = format!(
            "{} classes but {} label names",
            head.num_classes(),
            labels.len()
        );
        return Err(refuse(dir, name, &what));
    }
    let prefix = format!("{model_type}.");
    let mut keys = encoder_out(config, "backbone.", &prefix, model_type);
    let sequence = matches!(head, ClassifierHead::Sequence(_));
    let class = match (model_type, sequence) {
        ("albert", true) => "AlbertForSequenceClassification",
        ("roberta", true) => "RobertaForSequenceClassification",
        ("electra", true) => "ElectraForSequenceClassification",
        (_, true) => "BertForSequenceClassification",
        ("albert", false) => "AlbertForTokenClassification",
        ("roberta", false) => "RobertaForTokenClassification",
        ("electra", false) => "ElectraForTokenClassification",
        (_, false) => "BertForTokenClassification",
    };
    match (model_type, sequence) {
        ("roberta" | "electra", true) => keys.extend(outward("head.", "", DENSE_SEQUENCE_HEAD)),
        ("albert", true) => keys.extend(outward("head.", &prefix, albert::POOLER)),
        (_, true) => keys.extend(outward("head.", &prefix, POOLER)),
        _ => {}
    }
    keys.extend(outward("head.", "", CLASSIFIER));
    let weights = match head {
        ClassifierHead::Sequence(head) => weights(encoder, head, keys)?,
        ClassifierHead::Token(head) => weights(encoder, head, keys)?,
    };
    let mut fields = hf_fields(config, model_type);
    fields["id2label"] = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), json!(l)))
        .collect();
    fields["label2id"] = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), json!(i)))
        .collect();
    Ok(Converted {
        class,
        config: fields,
        weights,
    })
}

/// The tensors of `encoder` and `head` under the names `keys` gives them.
fn weights<H: Module + ModuleDisplay>(
    encoder: &TransformerEncoder,
    head: &H,
    keys: KeyTable,
) -> Result<Weights> {
    let parts = Parts {
        backbone: encoder.clone(),
        head: head.clone(),
    };
    Weights::of(&parts, keys, &[])
}
