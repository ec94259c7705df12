//! Hugging Face model directories in: a `config.json` and a `model.safetensors` written by
//! `transformers`' `save_pretrained`, loaded into pretext's own backbone and the heads the file
//! carries, through burn's store with one table of key patterns per part of a model family.
//!
//! Families so far: BERT (`BertModel`, `BertForMaskedLM`, `BertForPreTraining`): the encoder,
//! the MLM head and the NSP head; RoBERTa (`RobertaModel`, `RobertaForMaskedLM`): the encoder,
//! its positions offset past the padding id, and the MLM head; ELECTRA (`ElectraForPreTraining` and `ElectraForMaskedLM`):
//! the discriminator, its head, and the generator over the discriminator's embeddings. A head
//! the file does not hold is initialised afresh, and the [`LoadReport`] says so.
//!
//! ```no_run
//! use pretext::burn::prelude::*;
//! # fn main() -> pretext::Result<()> {
//! let bert = pretext::hf::load_bert("models/bert-base-uncased".as_ref(), &Device::flex())?;
//! println!("{}", bert.report);
//! # Ok(()) }
//! ```

mod bert;
mod electra;
mod export;

pub use bert::{HfBert, load_bert};
pub use electra::{HfElectra, load_electra};
pub use export::{bert_misfit, export_bert};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::Device;
use burn::store::{
    FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::DType;
use serde::Deserialize;

use crate::blocks::{TransformerEncoder, TransformerEncoderConfig};
use crate::error::{Error, Result};

/// The weights file of a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The fields of a Hugging Face `config.json` that pretext reads (the file holds many more,
/// which are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    /// The family: `bert`, `roberta` or `electra`.
    pub model_type: String,
    /// The classes the checkpoint was saved from, e.g. `BertForPreTraining`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the embedding tables (ELECTRA), projected up to `hidden_size` when it differs.
    #[serde(default)]
    pub embedding_size: Option<usize>,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// The activation: `gelu` (exact) is what pretext's blocks compute.
    #[serde(default = "gelu")]
    pub hidden_act: String,
    /// Positions.
    pub max_position_embeddings: usize,
    /// Token types (segments).
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "bert_eps")]
    pub layer_norm_eps: f64,
    /// Dropout of the hidden states.
    #[serde(default = "tenth")]
    pub hidden_dropout_prob: f64,
    /// `absolute` positions are the only kind pretext has.
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// The padding id: RoBERTa's positions start just after it.
    #[serde(default)]
    pub pad_token_id: Option<usize>,
}

fn gelu() -> String {
    "gelu".into()
}

fn two() -> usize {
    2
}

fn bert_eps() -> f64 {
    1e-12
}

fn tenth() -> f64 {
    0.1
}

impl HfConfig {
    /// Reads `dir/config.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| model_error(dir, &format!("config.json: {e}")))?;
        serde_json::from_str(&text).map_err(|e| Error::ConfigFile {
            path,
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })
    }

    /// The pretext encoder of this shape, or an error naming what pretext's blocks cannot
    /// compute.
    pub fn encoder(&self, dir: &Path) -> Result<TransformerEncoderConfig> {
        if encoder_table(&self.model_type).is_none() {
            return Err(model_error(
                dir,
                &format!(
                    "model_type {:?} is not one pretext loads (bert, roberta, electra)",
                    self.model_type
                ),
            ));
        }
        // RoBERTa numbers positions from the padding id + 1 (fairseq's make_positions).
        let position_offset = match self.model_type.as_str() {
            "roberta" => self.pad_token_id.unwrap_or(1) + 1,
            _ => 0,
        };
        if self.hidden_act != "gelu" {
            return Err(model_error(
                dir,
                &format!(
                    "hidden_act {:?}: pretext's blocks compute the exact GELU (\"gelu\") only",
                    self.hidden_act
                ),
            ));
        }
        if let Some(kind) = self.position_embedding_type.as_deref()
            && kind != "absolute"
        {
            return Err(model_error(
                dir,
                &format!("position_embedding_type {kind:?}: only absolute positions load"),
            ));
        }
        let encoder = TransformerEncoderConfig::new(
            self.vocab_size,
            self.hidden_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.intermediate_size,
        )
        .with_embedding_size(self.embedding_size.filter(|&e| e != self.hidden_size))
        .with_max_positions(self.max_position_embeddings)
        .with_position_offset(position_offset)
        .with_num_segments(self.type_vocab_size)
        .with_layer_norm_eps(self.layer_norm_eps)
        .with_dropout(self.hidden_dropout_prob);
        encoder.validate().map_err(|e| model_error(dir, &e))?;
        Ok(encoder)
    }
}

/// Checks that `config` is of the family `family`.
pub(crate) fn check_family(config: &HfConfig, family: &str, dir: &Path) -> Result<()> {
    if config.model_type == family {
        return Ok(());
    }
    Err(model_error(
        dir,
        &format!(
            "model_type {:?} where {family} was expected",
            config.model_type
        ),
    ))
}

/// Loads the encoder weights of the model directory `dir` (a BERT, a RoBERTa or ELECTRA's
/// discriminator) into `encoder`, which must have the checkpoint's shape
/// ([`HfConfig::encoder`]): what continued pretraining starts from.
pub fn load_encoder(
    dir: &Path,
    encoder: &mut TransformerEncoder,
    device: &Device,
) -> Result<LoadReport> {
    let config = HfConfig::read(dir)?;
    config.encoder(dir)?;
    let table = encoder_table(&config.model_type).expect("a family HfConfig::encoder accepts");
    let mut loader = Loader::new(dir, device)?;
    loader.part("encoder", encoder, &table, true)?;
    Ok(loader.finish())
}

/// A fresh encoder of the shape of the model directory `dir` (a BERT, a RoBERTa or ELECTRA's
/// discriminator) on `device`, with its weights: what fine-tuning a checkpoint starts from.
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

/// What a load took from the file, what it initialised afresh and what it left unread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// The parts read from the file (`encoder`, `mlm head`, …).
    pub loaded: Vec<String>,
    /// The parts the file does not hold, initialised afresh.
    pub initialised: Vec<String>,
    /// Tensors of the file that no part read.
    pub unused: Vec<String>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loaded: {}", self.loaded.join(", "))?;
        if !self.initialised.is_empty() {
            write!(f, "; initialised afresh: {}", self.initialised.join(", "))?;
        }
        if !self.unused.is_empty() {
            write!(f, "; unused tensors: {}", self.unused.join(", "))?;
        }
        Ok(())
    }
}

/// Loads the parts of one model from a weights file, each through its own key table, and keeps
/// the report.
pub(crate) struct Loader {
    dir: PathBuf,
    file: PathBuf,
    dtype: DType,
    report: LoadReport,
    /// The file's tensors that no part has read yet.
    unread: BTreeSet<String>,
}

impl Loader {
    /// A loader of `dir/model.safetensors` into modules on `device` (weights cast to its float
    /// type).
    pub(crate) fn new(dir: &Path, device: &Device) -> Result<Self> {
        let file = dir.join(WEIGHTS_FILE);
        if !file.is_file() {
            return Err(model_error(dir, &format!("no {WEIGHTS_FILE}")));
        }
        let unread = SafetensorsStore::from_file(&file)
            .keys()
            .map_err(|e| model_error(dir, &format!("{WEIGHTS_FILE}: {e}")))?
            .into_iter()
            .collect();
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            dtype: DType::from(device.settings().float_dtype),
            report: LoadReport::default(),
            unread,
        })
    }

    /// Fills the part called `part` of `module` from the file, its keys renamed by `patterns`
    /// (HF key regex → pretext path; the part is the module paths these write to). A part none
    /// of whose tensors the file holds keeps its fresh weights unless `required`; one the file
    /// holds only some of is an error naming the missing tensors.
    pub(crate) fn part<M: Module>(
        &mut self,
        part: &str,
        module: &mut M,
        patterns: &KeyTable,
        required: bool,
    ) -> Result<()> {
        let remapper = KeyRemapper::from_patterns(patterns.to_vec())
            .expect("the key tables are valid regexes");
        let regexes = remapper.to_regex_pairs();
        let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(self.dtype));
        let mut store = SafetensorsStore::from_file(&self.file)
            .with_from_adapter(adapter)
            .remap(remapper)
            .allow_partial(true);
        let result = module
            .load_from(&mut store)
            .map_err(|e| model_error(&self.dir, &format!("{part}: {e}")))?;
        // The part is the module paths its table writes to; the module's others are not its.
        let prefixes: Vec<&str> = patterns
            .iter()
            .map(|(_, to)| to.split('$').next().unwrap_or_default())
            .collect();
        let mine = |path: &&str| prefixes.iter().any(|p| path.starts_with(p));
        if !result.applied.iter().map(String::as_str).any(|p| mine(&p)) && !required {
            self.report.initialised.push(part.to_string());
            return Ok(());
        }
        let missing: Vec<&str> = result
            .missing
            .iter()
            .map(|(path, _)| path.as_str())
            .filter(mine)
            .collect();
        if !missing.is_empty() {
            return Err(model_error(
                &self.dir,
                &format!("{part}: {WEIGHTS_FILE} lacks {}", missing.join(", ")),
            ));
        }
        self.unread
            .retain(|key| !regexes.iter().any(|(regex, _)| regex.is_match(key)));
        self.report.loaded.push(part.to_string());
        Ok(())
    }

    /// The report of every part loaded.
    pub(crate) fn finish(mut self) -> LoadReport {
        self.report.unused = std::mem::take(&mut self.unread).into_iter().collect();
        self.report
    }
}

/// A key table: a regex over a file's keys, and the pretext path a matching key becomes.
pub(crate) type KeyTable = Vec<(String, String)>;

/// The embeddings of a BERT-shaped model: HF name (under the model's prefix), pretext path.
/// Import and export both read this one list.
pub(crate) const EMBEDDINGS: &[(&str, &str)] = &[
    ("embeddings.word_embeddings.", "embeddings.tokens."),
    (
        "embeddings.position_embeddings.",
        "embeddings.input.positions.",
    ),
    (
        "embeddings.token_type_embeddings.",
        "embeddings.input.segments.",
    ),
    ("embeddings.LayerNorm.", "embeddings.input.norm."),
];

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

/// A regex matching `name` literally: as a prefix when it ends in a dot (a module), to its
/// end otherwise (one tensor).
pub(crate) fn literal(name: &str) -> String {
    let escaped = name.replace('.', r"\.");
    if name.ends_with('.') {
        escaped
    } else {
        format!("{escaped}$")
    }
}

/// HF names → pretext paths, each HF name at the start of a key.
pub(crate) fn table(pairs: &[(&str, &str)]) -> KeyTable {
    pairs
        .iter()
        .map(|(hf, ours)| (format!("^{}", literal(hf)), ours.to_string()))
        .collect()
}

/// HF names → pretext paths, each HF name after an optional `prefix.` (a head class stores its
/// base model under it; a base-model file has none).
pub(crate) fn prefixed(prefix: &str, pairs: &[(&str, &str)]) -> KeyTable {
    pairs
        .iter()
        .map(|(hf, ours)| {
            let from = format!(r"^(?:{prefix}\.)?{}", literal(hf));
            (from, ours.to_string())
        })
        .collect()
}

/// The layers of a BERT-shaped encoder under an optional `prefix.`, into the module's layers at
/// `to` (`layers.`, `generator.layers.`).
pub(crate) fn layers_table(prefix: &str, to: &str) -> KeyTable {
    LAYER
        .iter()
        .map(|(hf, ours)| {
            let from = format!(r"^(?:{prefix}\.)?encoder\.layer\.([0-9]+)\.{}", literal(hf));
            (from, format!("{to}$1.{ours}"))
        })
        .collect()
}

/// The encoder of the family `model_type`: BERT-shaped embeddings and layers under the
/// family's prefix, and ELECTRA's projection up from narrower embeddings; `None` for a family
/// pretext does not load.
pub(crate) fn encoder_table(model_type: &str) -> Option<KeyTable> {
    if !["bert", "roberta", "electra"].contains(&model_type) {
        return None;
    }
    let mut table = prefixed(model_type, EMBEDDINGS);
    if model_type == "electra" {
        table.extend(prefixed(
            model_type,
            &[("embeddings_project.", "projection.")],
        ));
    }
    table.extend(layers_table(model_type, "layers."));
    Some(table)
}
