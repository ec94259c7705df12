//! Pretext models out, as Hugging Face directories `transformers` loads with no missing or
//! unexpected keys: `config.json` (`model_type`, `architectures`, every field its blocks
//! read), `model.safetensors` (HF key names and layouts, tied weights left out as
//! `save_pretrained` leaves them, metadata `format: pt`) and the tokenizer.
//!
//! An encoder exports as BERT, or as ALBERT when its layers are shared, or as RoBERTa when its
//! positions are offset; ELECTRA's discriminator as `ElectraForPreTraining`; a causal LM as
//! GPT-2 and an encoder-decoder as BART. Each family's file converts its models (fields,
//! names, layouts); this file dispatches and writes the directory. What a family cannot
//! express is found by [`round_trip`]: the fields it writes, read back as an import reads
//! them, must give the model's own configuration.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, bridge};
use burn::tensor::TensorData;
use serde_json::{Value, json};

use super::keys::KeyTable;
use super::{HfConfig, bart, bert, electra, gpt2, model_error};
use crate::blocks::{
    Activation, EncoderDecoder, EncoderDecoderConfig, LmHead, TransformerEncoder,
    TransformerEncoderConfig,
};
use crate::error::{Error, Result};
use crate::objectives::{Clm, Electra, Mlm, PairHead, Seq2Seq};
use crate::tokenize::Tokenizer;

/// A model to export, with the configuration it was built from.
#[derive(Debug, Clone, Copy)]
pub enum Exportable<'a> {
    /// An encoder, with its MLM head if given: BERT, or ALBERT when factorized and shared.
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
    /// A causal LM (`GPT2LMHeadModel`).
    Gpt2 {
        /// Its configuration.
        config: &'a TransformerEncoderConfig,
        /// The stack.
        encoder: &'a TransformerEncoder,
        /// The LM head: without transform and without bias, as GPT-2's.
        clm: &'a Clm,
    },
    /// An encoder-decoder (`BartForConditionalGeneration`).
    Bart {
        /// Its configuration.
        config: &'a EncoderDecoderConfig,
        /// The encoder-decoder.
        model: &'a EncoderDecoder,
        /// The LM head: without transform, as BART's; its bias is `final_logits_bias`.
        seq2seq: &'a Seq2Seq,
    },
}

/// What a family makes of a model: its class, the shape fields of its `config.json` and
/// its tensors under the family's names.
pub(super) struct Converted {
    /// The class written, e.g. `BertForMaskedLM`.
    pub(super) class: &'static str,
    /// `config.json`'s fields but for the vocabulary and the special tokens.
    pub(super) config: Value,
    /// The tensors.
    pub(super) weights: Weights,
}

/// What of `ours` the family `family` (its display name) cannot express, found by reading
/// the `config.json` fields the family writes for it (`fields`) back as pretext reads a
/// checkpoint of that family, and naming each field that does not come back the same; `None`
/// when everything does.
pub(super) fn round_trip(
    family: &str,
    ours: &TransformerEncoderConfig,
    fields: &Value,
) -> Option<String> {
    let mut file = fields.clone();
    file["vocab_size"] = json!(ours.vocab_size);
    let here = Path::new(family);
    let theirs = match HfConfig::from_json(file, here).and_then(|c| c.encoder(here)) {
        Ok(theirs) => theirs,
        Err(Error::HfModel { reason, .. }) => return Some(reason),
        Err(other) => return Some(other.to_string()),
    };
    let (ours, theirs) = (
        serde_json::to_value(ours).expect("a config serializes"),
        serde_json::to_value(theirs).expect("a config serializes"),
    );
    let (ours, theirs) = (ours.as_object()?, theirs.as_object()?);
    let (have, has): (Vec<String>, Vec<String>) = ours
        .iter()
        .filter(|(field, value)| theirs.get(*field) != Some(value))
        .map(|(field, value)| {
            let other = theirs.get(field).unwrap_or(&Value::Null);
            (describe(field, value), describe(field, other))
        })
        .unzip();
    (!have.is_empty()).then(|| {
        format!(
            "{} where {family} has {}",
            have.join(" and "),
            has.join(" and ")
        )
    })
}

/// The reason `head` does not fit a family that has BERT's transform with `activation`
/// (`Some`) or none (`None`), and a bias if `bias_allowed`.
pub(super) fn head_misfit(
    head: &LmHead,
    want: Option<Activation>,
    bias_allowed: bool,
) -> Option<String> {
    let have = head.transform();
    if have != want {
        return Some(match want {
            Some(a) => format!("an LM head whose transform is {have:?}, not {a:?}"),
            None => "an LM head with BERT's transform".into(),
        });
    }
    (!bias_allowed && head.bias().is_some()).then(|| "an LM head with a bias".into())
}

/// The error refusing to export a model as `family` because it has `what`.
pub(super) fn refuse(dir: &Path, family: &str, what: &str) -> Error {
    model_error(
        dir,
        &format!("the model has {what}: it cannot be exported as {family}"),
    )
}

/// One field of an encoder's configuration, in words.
fn describe(field: &str, value: &Value) -> String {
    let on = value.as_bool() == Some(true);
    let pick = |yes: &str, no: &str| if on { yes } else { no }.to_string();
    match field {
        "norm_first" => pick("pre-LN layers", "post-LN layers"),
        "share_layers" => pick("one layer shared across depth", "a layer per depth"),
        "embedding_norm" => pick("an embedding LayerNorm", "no embedding LayerNorm"),
        "num_segments" if value == 0 => "no segment embeddings".into(),
        "num_segments" => format!("{value} segment embeddings"),
        "embedding_size" if value.is_null() => "embeddings as wide as the layers".into(),
        "embedding_size" => format!("a factorized embedding {value} wide"),
        "positions" => format!("{} positions", value.as_str().unwrap_or("?").to_lowercase()),
        "position_offset" => format!("positions offset by {value} rows"),
        "embedding_scale" => format!("token embeddings scaled by {value}"),
        "layer_norm_eps" => format!("a LayerNorm epsilon of {value}"),
        "activation" => format!("the {} activation", value.as_str().unwrap_or("?")),
        other => format!("{other} {value}"),
    }
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
        | Exportable::Gpt2 { config, .. } => (config.vocab_size, config),
        Exportable::Bart { config, .. } => (config.encoder.vocab_size, &config.encoder),
    };
    let special = tokenizer.special();
    let converted = match model {
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
        Exportable::Gpt2 {
            config,
            encoder,
            clm,
        } => gpt2::export(config, encoder, clm, &special, dir)?,
        Exportable::Bart {
            config,
            model,
            seq2seq,
        } => bart::export(config, model, seq2seq, &special, dir)?,
    };
    let Converted {
        class,
        config: fields,
        weights,
    } = converted;
    let mut hf = json!({
        "vocab_size": vocab,
        "pad_token_id": special.pad,
        "tie_word_embeddings": true,
    });
    merge(&mut hf, fields);
    if tokenizer.vocab_size() != vocab {
        return Err(Error::VocabMismatch {
            tokenizer: tokenizer.vocab_size(),
            model: vocab,
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
    weights.write(&dir.join(super::WEIGHTS_FILE))?;
    hf["architectures"] = json!([class]);
    // The special tokens by role, under the names this tokenizer gives them.
    let name = |id| tokenizer.id_to_token(id).unwrap_or_default();
    let tokenizer_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": config.max_positions - config.position_offset,
        "pad_token": name(special.pad),
        "unk_token": name(special.unk),
        "cls_token": name(special.cls),
        "sep_token": name(special.sep),
        "bos_token": name(special.cls),
        "eos_token": name(special.sep),
        "mask_token": name(special.mask),
    });
    for (name, value) in [
        ("config.json", hf),
        ("tokenizer_config.json", tokenizer_config),
    ] {
        let text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
        crate::util::atomic_file::write(&dir.join(name), text)?;
    }
    // A causal LM's texts are prompts to continue: no end token after them.
    tokenizer.save_framed(dir.join("tokenizer.json"), class == "GPT2LMHeadModel")?;
    Ok(class)
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

/// Adds the fields of `more` to `hf`.
pub(super) fn merge(hf: &mut Value, more: Value) {
    if let (Some(hf), Value::Object(more)) = (hf.as_object_mut(), more) {
        hf.extend(more);
    }
}

/// A model's tensors under their Hugging Face names, in PyTorch's layouts, as f32.
pub(crate) struct Weights {
    /// Name → values.
    pub(crate) tensors: Vec<(String, TensorData)>,
}

impl Weights {
    /// `module`'s tensors renamed by `table` (pretext path regex → HF name); a tensor no
    /// pattern names must sit under one of `omitted` (parts the class does not hold).
    pub(super) fn of<M: Module>(module: &M, table: KeyTable, omitted: &[&str]) -> Result<Self> {
        let collected = module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true);
        let remapper = KeyRemapper::from_patterns(table).expect("export tables are valid regexes");
        let regexes = remapper.to_regex_pairs();
        let (kept, left): (Vec<PackTensor>, Vec<PackTensor>) = collected
            .into_iter()
            .partition(|t| regexes.iter().any(|(r, _)| r.is_match(&t.name)));
        if let Some(stray) = left
            .iter()
            .find(|t| !omitted.iter().any(|o| t.name.starts_with(o)))
        {
            return Err(Error::InvalidConfig(format!(
                "no Hugging Face name for the tensor {}",
                stray.name
            )));
        }
        let (renamed, _) = remapper.remap(kept);
        let tensors = renamed
            .into_iter()
            .map(|t| {
                let name = t.name.clone();
                bridge::into_data(t)
                    .map(|data| (name.clone(), data.convert::<f32>()))
                    .map_err(|e| Error::InvalidConfig(format!("{name}: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Self { tensors })
    }

    /// Writes the tensors as a safetensors file with metadata `format: pt`, atomically.
    fn write(&self, path: &Path) -> Result<()> {
        let views = self
            .tensors
            .iter()
            .map(|(name, data)| {
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    data.shape().to_vec(),
                    data.as_bytes(),
                )
                .map_err(|e| Error::InvalidConfig(format!("{name}: {e}")))?;
                Ok((name.clone(), view))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        let bytes =
            safetensors::serialize(views, Some(metadata)).map_err(|e| model_error(path, &e))?;
        crate::util::atomic_file::write(path, bytes)
    }
}
