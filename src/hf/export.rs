//! Pretext encoders out, as Hugging Face BERT directories `transformers` loads with no missing
//! or unexpected keys: `config.json`, `model.safetensors` (HF key names and layouts, the tied
//! decoder left out as `save_pretrained` leaves it, metadata `format: pt`) and the tokenizer.

use std::path::Path;

use burn::store::{BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, SafetensorsStore};
use serde_json::json;

use super::bert::{EMBEDDINGS, LAYER, MLM_HEAD};
use super::loader::{KeyTable, literal};
use super::model_error;
use crate::blocks::{PositionEncoding, TransformerEncoder, TransformerEncoderConfig};
use crate::error::{Error, Result};
use crate::objectives::Mlm;
use crate::pretrainer::Pretrainer;
use crate::tokenize::Tokenizer;

/// pretext path → HF key, the import tables read backwards: an encoder at the module path
/// `root` (`backbone.` beside an MLM head at `objective.`, or nothing) with its keys under
/// `prefix` (`bert.` beside a head, none for a bare `BertModel`).
fn export_table(root: &str, prefix: &str) -> KeyTable {
    let embeddings = EMBEDDINGS.iter().map(|(hf, ours)| {
        let from = format!("^{}", literal(&format!("{root}{ours}")));
        (from, format!("{prefix}{hf}"))
    });
    let layers = LAYER.iter().map(|(hf, ours)| {
        let root = root.replace('.', r"\.");
        let from = format!(r"^{root}layers\.([0-9]+)\.{}", literal(ours));
        (from, format!("{prefix}encoder.layer.$1.{hf}"))
    });
    let head = MLM_HEAD.iter().map(|(hf, ours)| {
        let from = format!("^{}", literal(&format!("objective.{ours}")));
        (from, hf.to_string())
    });
    embeddings.chain(layers).chain(head).collect()
}

/// What an encoder of shape `config` has that BERT has not (pre-LN layers, a factorized
/// embedding, shared layers, sinusoidal or offset positions, no segments), if anything.
pub fn bert_misfit(config: &TransformerEncoderConfig) -> Option<&'static str> {
    [
        (config.norm_first, "pre-LN layers"),
        (config.embedding_size.is_some(), "factorized embedding"),
        (config.share_layers, "shared layers"),
        (
            config.positions != PositionEncoding::Learned,
            "sinusoidal positions",
        ),
        (config.position_offset != 0, "offset positions"),
        (
            config.num_segments == 0,
            "encoder without segment embeddings",
        ),
        (!config.embedding_norm, "embeddings without a LayerNorm"),
        (config.embedding_scale != 1.0, "scaled token embeddings"),
    ]
    .into_iter()
    .find_map(|(misfit, what)| misfit.then_some(what))
}

/// Writes `encoder` (of shape `config`) and, if given, its MLM head as a Hugging Face
/// `BertForMaskedLM` (or `BertModel` without a head) directory `dir`, with `tokenizer`. An
/// existing `dir` that is not empty is refused unless `force`. An encoder BERT cannot express
/// (pre-LN layers, factorized or shared layers, sinusoidal or offset positions) is an error
/// naming what does not fit. Returns the class written (`BertForMaskedLM` or `BertModel`).
pub fn export_bert(
    config: &TransformerEncoderConfig,
    encoder: &TransformerEncoder,
    mlm: Option<&Mlm>,
    tokenizer: &Tokenizer,
    dir: &Path,
    force: bool,
) -> Result<&'static str> {
    if let Some(what) = bert_misfit(config) {
        return Err(model_error(
            dir,
            &format!("BERT has no {what}; this encoder cannot be exported as BERT"),
        ));
    }
    if tokenizer.vocab_size() != config.vocab_size {
        return Err(Error::VocabMismatch {
            tokenizer: tokenizer.vocab_size(),
            model: config.vocab_size,
        });
    }
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !force {
        return Err(model_error(
            dir,
            &"the directory is not empty; export over it with force (--force)",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let weights = dir.join(super::WEIGHTS_FILE);
    if weights.exists() {
        std::fs::remove_file(&weights).map_err(|e| Error::io(&weights, e))?;
    }
    let (root, prefix) = match mlm {
        Some(_) => ("backbone.", "bert."),
        None => ("", ""),
    };
    let remapper = KeyRemapper::from_patterns(export_table(root, prefix))
        .expect("the export table holds valid regexes");
    let mut store = SafetensorsStore::from_file(&weights)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remapper)
        .clear_metadata()
        .metadata("format", "pt");
    let saved = match mlm {
        Some(mlm) => Pretrainer {
            backbone: encoder.clone(),
            objective: mlm.clone(),
        }
        .save_into(&mut store),
        None => encoder.save_into(&mut store),
    };
    saved.map_err(|e| model_error(dir, &format!("{}: {e}", super::WEIGHTS_FILE)))?;
    let special = tokenizer.special();
    let architecture = if mlm.is_some() {
        "BertForMaskedLM"
    } else {
        "BertModel"
    };
    let hf_config = json!({
        "model_type": "bert",
        "architectures": [architecture],
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.ffn_size,
        "hidden_act": config.activation.hf_name(),
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.dropout,
        "max_position_embeddings": config.max_positions,
        "type_vocab_size": config.num_segments,
        "layer_norm_eps": config.layer_norm_eps,
        "pad_token_id": special.pad,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": true,
    });
    // The special tokens by role, under the names this tokenizer gives them.
    let name = |id| tokenizer.id_to_token(id).unwrap_or_default();
    let tokenizer_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": config.max_positions,
        "pad_token": name(special.pad),
        "unk_token": name(special.unk),
        "cls_token": name(special.cls),
        "sep_token": name(special.sep),
        "mask_token": name(special.mask),
    });
    for (name, value) in [
        ("config.json", hf_config),
        ("tokenizer_config.json", tokenizer_config),
    ] {
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    tokenizer.save_framed(dir.join("tokenizer.json"))?;
    Ok(architecture)
}
