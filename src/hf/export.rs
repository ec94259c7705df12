//! Pretext models out, as Hugging Face directories `transformers` loads with no missing or
//! unexpected keys: `config.json` (`model_type`, `architectures`, every field its blocks
//! read), `model.safetensors` (HF key names and layouts, tied weights left out as
//! `save_pretrained` leaves them, metadata `format: pt`) and the tokenizer.
//!
//! An encoder exports as BERT, or as ALBERT when its layers are shared, or as RoBERTa when its
//! positions are offset; ELECTRA's discriminator as `ElectraForPreTraining`; a causal LM as
//! GPT-2 (Llama or Qwen2 with rotary positions) and an encoder-decoder as BART (T5 with
//! relative positions). Each family's file converts its models (fields,
//! names, layouts); this file dispatches and writes the directory. What a family cannot
//! express is found by `convert::round_trip`: the fields it writes, read back as an import
//! reads them, must give the model's own configuration.

use std::path::Path;

use serde_json::json;

use super::classifier::{self, ClassifierHead};
use super::convert::Converted;
use super::{bart, bert, electra, gpt2, llama, model_error, modernbert, t5};
use crate::blocks::{
    EncoderDecoder, EncoderDecoderConfig, PositionEncoding, TransformerEncoder,
    TransformerEncoderConfig,
};
use crate::error::{Error, Result};
use crate::objectives::{Clm, Electra, Mlm, PairHead, Seq2Seq};
use crate::tokenize::Tokenizer;

/// A model to export, with the configuration it was built from.
#[derive(Debug, Clone, Copy)]
pub enum Exportable<'a> {
    /// An encoder, with its MLM head if given: BERT, or ALBERT when factorized and shared, or
    /// ModernBERT (`ModernBertForMaskedLM`, its MLM head required) with rotary positions.
    Encoder {
        /// Its configuration.
        config: &'a TransformerEncoderConfig,
        /// The encoder.
        encoder: &'a TransformerEncoder,
        /// The MLM head (`BertForMaskedLM`); without it, `BertModel`.
        mlm: Option<&'a Mlm>,
        /// The sentence-pair head (NSP, SOP): with the MLM head, `BertForPreTraining` or
        /// `AlbertForPreTraining`; alone, the model's pooler.
        pair: Option<&'a PairHead>,
    },
    /// ELECTRA's discriminator and its head (`ElectraForPreTraining`); the generator stays.
    Electra {
        /// The discriminator's configuration.
        config: &'a TransformerEncoderConfig,
        /// The discriminator.
        encoder: &'a TransformerEncoder,
        /// The objective holding the discriminator's head.
        electra: &'a Electra,
    },
    /// An encoder with a classifier head and its label names
    /// (`BertForSequenceClassification`, `BertForTokenClassification`, or RoBERTa's, ALBERT's).
    Classifier {
        /// Its configuration.
        config: &'a TransformerEncoderConfig,
        /// The encoder.
        encoder: &'a TransformerEncoder,
        /// The head: one class a sequence, or one a token.
        head: &'a ClassifierHead,
        /// The label names, by class id.
        labels: &'a [String],
    },
    /// A causal LM: `GPT2LMHeadModel`, or `LlamaForCausalLM` / `Qwen2ForCausalLM` for a stack
    /// with rotary positions.
    Causal {
        /// Its configuration.
        config: &'a TransformerEncoderConfig,
        /// The stack.
        encoder: &'a TransformerEncoder,
        /// The LM head: without transform and without bias, as theirs.
        clm: &'a Clm,
    },
    /// An encoder-decoder: `BartForConditionalGeneration`, or `T5ForConditionalGeneration`
    /// with relative positions.
    Seq2Seq {
        /// Its configuration.
        config: &'a EncoderDecoderConfig,
        /// The encoder-decoder.
        model: &'a EncoderDecoder,
        /// The LM head: without transform, as BART's (its bias is `final_logits_bias`) and
        /// T5's (no bias).
        seq2seq: &'a Seq2Seq,
    },
}

/// Writes `model` as a Hugging Face directory `dir` with `tokenizer`, refusing what its family
/// cannot express, a tokenizer of another vocabulary, and a directory that is not empty
/// unless `force`. Returns the class written (`BertForMaskedLM`, `AlbertModel`, …).
pub fn export(
    model: Exportable<'_>,
    tokenizer: &Tokenizer,
    dir: &Path,
    force: bool,
) -> Result<&'static str> {
    let (vocab, config) = match model {
        Exportable::Encoder { config, .. }
        | Exportable::Electra { config, .. }
        | Exportable::Classifier { config, .. }
        | Exportable::Causal { config, .. } => (config.vocab_size, config),
        Exportable::Seq2Seq { config, .. } => (config.encoder.vocab_size, &config.encoder),
    };
    let special = tokenizer.special();
    let converted = match model {
        Exportable::Encoder {
            config,
            encoder,
            mlm: Some(mlm),
            pair: None,
        } if matches!(config.block.positions, PositionEncoding::Rotary { .. }) => {
            modernbert::export(config, encoder, mlm, &special, dir)?
        }
        Exportable::Encoder {
            config,
            encoder,
            mlm,
            pair,
        } => bert::export(config, encoder, mlm, pair, special.pad, dir)?,
        Exportable::Electra {
            config,
            encoder,
            electra,
        } => electra::export(config, encoder, electra, dir)?,
        Exportable::Classifier {
            config,
            encoder,
            head,
            labels,
        } => classifier::export(config, encoder, head, labels, special.pad, dir)?,
        Exportable::Causal {
            config,
            encoder,
            clm,
        } => match config.block.positions {
            PositionEncoding::Rotary { .. } => llama::export(config, encoder, clm, &special, dir)?,
            _ => gpt2::export(config, encoder, clm, &special, dir)?,
        },
        Exportable::Seq2Seq {
            config,
            model,
            seq2seq,
        } => match config.encoder.block.positions {
            PositionEncoding::Relative { .. } => t5::export(config, model, seq2seq, &special, dir)?,
            _ => bart::export(config, model, seq2seq, &special, dir)?,
        },
    };
    let Converted {
        class,
        config: mut hf,
        weights,
    } = converted;
    hf["vocab_size"] = json!(vocab);
    hf["pad_token_id"] = json!(special.pad);
    if hf.get("tie_word_embeddings").is_none() {
        hf["tie_word_embeddings"] = json!(true);
    }
    if tokenizer.vocab_size() != vocab {
        return Err(Error::VocabMismatch {
            tokenizer: tokenizer.vocab_size(),
            model: vocab,
        });
    }
    check_export_dir(dir, force)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    weights.write(&dir.join(super::WEIGHTS_FILE))?;
    hf["architectures"] = json!([class]);
    // The special tokens by role, under the names this tokenizer gives them; the start and
    // end of a text are its [CLS] and [SEP].
    let mut tokenizer_config = tokenizer.role_names(true);
    tokenizer_config["bos_token"] = tokenizer_config["cls_token"].clone();
    tokenizer_config["eos_token"] = tokenizer_config["sep_token"].clone();
    tokenizer_config["tokenizer_class"] = json!("PreTrainedTokenizerFast");
    tokenizer_config["model_max_length"] = json!(config.max_positions - config.position_offset);
    // transformers 5's fast tokenizer returns token type ids only when told to: without them
    // a pair's second text would read as segment 0.
    tokenizer_config["model_input_names"] = match config.num_segments {
        0 => json!(["input_ids", "attention_mask"]),
        _ => json!(["input_ids", "token_type_ids", "attention_mask"]),
    };
    for (name, value) in [
        ("config.json", hf),
        ("tokenizer_config.json", tokenizer_config),
    ] {
        let text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
        crate::util::atomic_file::write(&dir.join(name), text)?;
    }
    // A causal LM's texts are prompts to continue: no end token after them.
    let causal = matches!(model, Exportable::Causal { .. });
    tokenizer.save_framed(dir.join("tokenizer.json"), causal)?;
    Ok(class)
}

/// Checks that an export can be written into `dir`: a directory that is absent or empty (or
/// holds something, with `force`), not a file. What a run that ends in an export calls before
/// it trains, so that a wrong directory fails before the work.
pub fn check_export_dir(dir: &Path, force: bool) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(model_error(
            dir,
            &"a file is there, not a directory to export into",
        ));
    }
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !force {
        return Err(model_error(
            dir,
            &"the directory is not empty; export over it with force (--force)",
        ));
    }
    Ok(())
}

/// Writes `encoder` (of shape `config`) and, if given, its MLM head as a `BertForMaskedLM` or
/// `AlbertForMaskedLM` (`BertModel`, `AlbertModel` without a head): [`export`] of an
/// [`Exportable::Encoder`].
pub fn export_bert(
    config: &TransformerEncoderConfig,
    encoder: &TransformerEncoder,
    mlm: Option<&Mlm>,
    tokenizer: &Tokenizer,
    dir: &Path,
    force: bool,
) -> Result<&'static str> {
    let model = Exportable::Encoder {
        config,
        encoder,
        mlm,
        pair: None,
    };
    export(model, tokenizer, dir, force)
}
