//! Pretext models out, as Hugging Face directories `transformers` loads with no missing or
//! unexpected keys: `config.json` (`model_type`, `architectures`, every field its blocks
//! read), `model.safetensors` (HF key names and layouts, tied weights left out as
//! `save_pretrained` leaves them, metadata `format: pt`) and the tokenizer.
//!
//! An encoder exports as BERT, or as ALBERT when its embeddings are factorized and its layers
//! shared; ELECTRA's discriminator as `ElectraForPreTraining`; a causal LM as GPT-2 and an
//! encoder-decoder as BART where their blocks are those families'. What has no counterpart is
//! an error naming what does not fit. The key tables are the import's, read backwards.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, bridge};
use burn::tensor::TensorData;
use serde_json::{Value, json};

use super::bert::{LAYER, MLM_HEAD, NSP_CLASSIFIER, POOLER, ROBERTA_MLM_HEAD};
use super::keys::{EMBEDDINGS, KeyTable, literal, outward, outward_layers};
use super::{albert, bart, electra, gpt2, model_error};
use crate::blocks::{
    Activation, EncoderDecoder, EncoderDecoderConfig, LmHead, PositionEncoding, TransformerEncoder,
    TransformerEncoderConfig,
};
use crate::error::{Error, Result};
use crate::objectives::{Clm, Electra, Mlm, PairHead, Seq2Seq};
use crate::pretrainer::Pretrainer;
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

/// The parts of a BERT-shaped export, under the module paths its key tables read.
#[derive(Module, Debug)]
struct Parts {
    backbone: TransformerEncoder,
    mlm: Option<Mlm>,
    pair: Option<PairHead>,
}

/// Where a BERT-shaped family keeps its heads, and its classes: with both heads, with the MLM
/// head, with the pooler, bare.
struct BertHeads {
    mlm: &'static [(&'static str, &'static str)],
    pooler: &'static [(&'static str, &'static str)],
    classifier: &'static [(&'static str, &'static str)],
    classes: [&'static str; 4],
}

impl BertHeads {
    fn of(family: &str) -> Self {
        match family {
            "albert" => Self {
                mlm: albert::MLM_HEAD,
                pooler: albert::POOLER,
                classifier: albert::SOP_CLASSIFIER,
                classes: [
                    "AlbertForPreTraining",
                    "AlbertForMaskedLM",
                    "AlbertModel",
                    "AlbertModel",
                ],
            },
            "roberta" => Self {
                mlm: ROBERTA_MLM_HEAD,
                pooler: POOLER,
                classifier: &[],
                classes: ["", "RobertaForMaskedLM", "RobertaModel", "RobertaModel"],
            },
            _ => Self {
                mlm: MLM_HEAD,
                pooler: POOLER,
                classifier: NSP_CLASSIFIER,
                classes: [
                    "BertForPreTraining",
                    "BertForMaskedLM",
                    "BertModel",
                    "BertModel",
                ],
            },
        }
    }
}

/// What an encoder of shape `config` has that BERT (or, factorized and shared, ALBERT; with
/// positions offset past the padding id, RoBERTa) has not, if anything.
pub fn bert_misfit(config: &TransformerEncoderConfig) -> Option<&'static str> {
    let factorized = config.embedding_size.is_some();
    let offset = config.position_offset != 0;
    [
        (
            factorized && !config.share_layers,
            "a factorized embedding without shared layers",
        ),
        (
            config.share_layers && !factorized,
            "shared layers without a factorized embedding",
        ),
        (
            offset && factorized,
            "offset positions beside a factorized embedding",
        ),
    ]
    .into_iter()
    .find_map(|(misfit, what)| misfit.then_some(what))
    .or_else(|| encoder_misfit(config))
}

/// What an encoder of shape `config` has that no BERT-shaped family (BERT, ALBERT, ELECTRA)
/// has, if anything.
fn encoder_misfit(config: &TransformerEncoderConfig) -> Option<&'static str> {
    [
        (config.norm_first, "pre-LN layers"),
        (
            config.positions != PositionEncoding::Learned,
            "sinusoidal positions",
        ),
        (
            config.num_segments == 0,
            "an encoder without segment embeddings",
        ),
        (!config.embedding_norm, "embeddings without a LayerNorm"),
        (config.embedding_scale != 1.0, "scaled token embeddings"),
    ]
    .into_iter()
    .find_map(|(misfit, what)| misfit.then_some(what))
}

/// What a discriminator of shape `config` has that ELECTRA's has not, if anything.
pub fn electra_misfit(config: &TransformerEncoderConfig) -> Option<&'static str> {
    let tanh = config.activation != Activation::Gelu;
    let own = [
        (config.share_layers, "shared layers"),
        (config.position_offset != 0, "offset positions"),
        (tanh, "the tanh GELU where its head computes the exact one"),
    ];
    own.into_iter()
        .find_map(|(misfit, what)| misfit.then_some(what))
        .or_else(|| encoder_misfit(config))
}

/// What a causal LM of shape `config` has that GPT-2 has not, if anything.
pub fn gpt2_misfit(config: &TransformerEncoderConfig) -> Option<&'static str> {
    [
        (!config.norm_first, "post-LN layers"),
        (config.embedding_size.is_some(), "a factorized embedding"),
        (config.share_layers, "shared layers"),
        (
            config.positions != PositionEncoding::Learned,
            "sinusoidal positions",
        ),
        (config.position_offset != 0, "offset positions"),
        (config.num_segments != 0, "segment embeddings"),
        (config.embedding_norm, "an embedding LayerNorm"),
        (config.embedding_scale != 1.0, "scaled token embeddings"),
    ]
    .into_iter()
    .find_map(|(misfit, what)| misfit.then_some(what))
}

/// What an encoder-decoder of shape `config` has that BART has not, if anything.
pub fn bart_misfit(config: &EncoderDecoderConfig) -> Option<&'static str> {
    let e = &config.encoder;
    [
        (e.norm_first, "pre-LN layers"),
        (
            e.positions != PositionEncoding::Learned,
            "sinusoidal positions",
        ),
        (e.position_offset != 2, "positions not offset by 2"),
        (e.num_segments != 0, "segment embeddings"),
        (!e.embedding_norm, "embeddings without a LayerNorm"),
        (
            e.layer_norm_eps != 1e-5,
            "a LayerNorm epsilon other than 1e-5",
        ),
        (
            e.embedding_scale != 1.0 && e.embedding_scale != (e.hidden_size as f64).sqrt(),
            "a token scale other than 1 or √width",
        ),
    ]
    .into_iter()
    .find_map(|(misfit, what)| misfit.then_some(what))
}

/// The reason `head` does not fit a family that has BERT's transform with `activation`
/// (`Some`) or none (`None`), and a bias if `bias_allowed`.
fn head_misfit(head: &LmHead, want: Option<Activation>, bias_allowed: bool) -> Option<String> {
    let have = head.transform();
    if have != want {
        return Some(match want {
            Some(a) => format!("an LM head whose transform is {have:?}, not {a:?}"),
            None => "an LM head with BERT's transform".into(),
        });
    }
    (!bias_allowed && head.bias().is_some()).then(|| "an LM head with a bias".into())
}

/// The encoder of a BERT-shaped export (BERT, ALBERT, ELECTRA's discriminator) at module path
/// `root`, its keys under `prefix`.
fn encoder_out(
    config: &TransformerEncoderConfig,
    root: &str,
    prefix: &str,
    family: &str,
) -> KeyTable {
    let mut table = outward(root, prefix, EMBEDDINGS);
    match family {
        "albert" => {
            table.extend(outward(
                root,
                prefix,
                &[("encoder.embedding_hidden_mapping_in.", "projection.")],
            ));
            let shared = format!("{prefix}{}", albert::SHARED_LAYER);
            table.extend(albert::LAYER.iter().map(|(hf, ours)| {
                let from = format!("^{}", literal(&format!("{root}layers.0.{ours}")));
                (from, format!("{shared}{hf}"))
            }));
        }
        _ => {
            if config.embedding_size.is_some() {
                table.extend(outward(
                    root,
                    prefix,
                    &[("embeddings_project.", "projection.")],
                ));
            }
            table.extend(outward_layers(
                root,
                "layers",
                prefix,
                "encoder.layer",
                LAYER,
            ));
        }
    }
    table
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
    let refuse = |family: &str, what: &str| {
        Err(model_error(
            dir,
            &format!(
                "the model has {what}, which {family} has not: it cannot be exported as {family}"
            ),
        ))
    };
    let special = tokenizer.special();
    let mut hf = json!({
        "vocab_size": vocab,
        "pad_token_id": special.pad,
        "tie_word_embeddings": true,
    });
    let (class, weights): (&'static str, Weights) = match model {
        Exportable::Encoder {
            config,
            encoder,
            mlm,
            pair,
        } => {
            if let Some(what) = bert_misfit(config) {
                return refuse("BERT", what);
            }
            let family = match (config.share_layers, config.position_offset) {
                (true, _) => "albert",
                (false, 0) => "bert",
                (false, _) => "roberta",
            };
            let first = special.pad as usize + 1;
            if family == "roberta" && config.position_offset != first {
                let what = format!(
                    "positions offset by {} rows where RoBERTa's start after the padding id, at {first}",
                    config.position_offset
                );
                return refuse("RoBERTa", &what);
            }
            // RoBERTa's LM head computes the exact GELU whatever hidden_act says.
            let activation = match family {
                "roberta" => Activation::Gelu,
                _ => config.activation,
            };
            if let Some(what) = mlm.and_then(|m| head_misfit(m.head(), Some(activation), true)) {
                return refuse(family, &what);
            }
            if pair.is_some() && family == "roberta" {
                return refuse("RoBERTa", "a sentence-pair head");
            }
            bert_config(&mut hf, config, family);
            let heads = BertHeads::of(family);
            // The classes with a prefix on the encoder's keys, and the bare model without.
            let class = match (mlm.is_some(), pair.is_some()) {
                (true, true) => heads.classes[0],
                (true, false) => heads.classes[1],
                (false, true) => heads.classes[2],
                (false, false) => heads.classes[3],
            };
            let prefix = match (mlm, pair) {
                (None, None) => String::new(),
                _ => format!("{family}."),
            };
            let mut table = encoder_out(config, "backbone.", &prefix, family);
            table.extend(outward("mlm.", "", heads.mlm));
            table.extend(outward("pair.", &prefix, heads.pooler));
            // The sentence-pair classifier goes with the pre-training class; alone, the
            // encoder's class keeps the pooler.
            if mlm.is_some() {
                table.extend(outward("pair.", "", heads.classifier));
            }
            let parts = Parts {
                backbone: encoder.clone(),
                mlm: mlm.cloned(),
                pair: pair.cloned(),
            };
            (class, Weights::of(&parts, table, &["pair.classifier."])?)
        }
        Exportable::Electra {
            config,
            encoder,
            electra,
        } => {
            if let Some(what) = electra_misfit(config) {
                return refuse("ELECTRA", what);
            }
            bert_config(&mut hf, config, "electra");
            hf["embedding_size"] = json!(config.embedding_width());
            let mut table = encoder_out(config, "backbone.", "electra.", "electra");
            table.extend(outward("objective.", "", electra::DISCRIMINATOR_HEAD));
            let module = Pretrainer {
                backbone: encoder.clone(),
                objective: electra.clone(),
            };
            let weights = Weights::of(&module, table, &["objective.generator."])?;
            ("ElectraForPreTraining", weights)
        }
        Exportable::Gpt2 {
            config,
            encoder,
            clm,
        } => {
            if let Some(what) = gpt2_misfit(config) {
                return refuse("GPT-2", what);
            }
            if let Some(what) = head_misfit(clm.head(), None, false) {
                return refuse("GPT-2", &what);
            }
            let fields = json!({
                "model_type": "gpt2",
                "n_embd": config.hidden_size,
                "n_layer": config.num_layers,
                "n_head": config.num_heads,
                "n_inner": config.ffn_size,
                "n_positions": config.max_positions,
                "activation_function": config.activation.hf_name(),
                "layer_norm_epsilon": config.layer_norm_eps,
                "resid_pdrop": config.dropout,
                "embd_pdrop": config.dropout,
                "attn_pdrop": config.dropout,
                "bos_token_id": special.cls,
                "eos_token_id": special.sep,
            });
            merge(&mut hf, fields);
            let mut weights = Weights::of(encoder, gpt2::export_table(), &[])?;
            gpt2::fuse(&mut weights.tensors);
            ("GPT2LMHeadModel", weights)
        }
        Exportable::Bart {
            config,
            model,
            seq2seq,
        } => {
            if let Some(what) = bart_misfit(config) {
                return refuse("BART", what);
            }
            if let Some(what) = head_misfit(seq2seq.head(), None, true) {
                return refuse("BART", &what);
            }
            let e = &config.encoder;
            let fields = json!({
                "model_type": "bart",
                "d_model": e.hidden_size,
                "encoder_layers": e.num_layers,
                "decoder_layers": config.decoder_layers,
                "encoder_attention_heads": e.num_heads,
                "decoder_attention_heads": e.num_heads,
                "encoder_ffn_dim": e.ffn_size,
                "decoder_ffn_dim": e.ffn_size,
                "activation_function": e.activation.hf_name(),
                "max_position_embeddings": e.max_positions - 2,
                "scale_embedding": e.embedding_scale != 1.0,
                "dropout": e.dropout,
                "attention_dropout": e.dropout,
                "activation_dropout": 0.0,
                "bos_token_id": special.cls,
                "eos_token_id": special.sep,
                "decoder_start_token_id": special.sep,
                "forced_eos_token_id": special.sep,
                "is_encoder_decoder": true,
            });
            merge(&mut hf, fields);
            let module = Pretrainer {
                backbone: model.clone(),
                objective: seq2seq.clone(),
            };
            let mut weights = Weights::of(&module, bart::export_table(), &[])?;
            bart::bias_as_buffer(&mut weights.tensors);
            ("BartForConditionalGeneration", weights)
        }
    };
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
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(&value).expect("JSON values serialize");
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
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

/// The fields of a BERT-shaped `config.json` (BERT, ALBERT, ELECTRA).
fn bert_config(hf: &mut Value, config: &TransformerEncoderConfig, family: &str) {
    let mut fields = json!({
        "model_type": family,
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
        "position_embedding_type": "absolute",
    });
    if family == "albert" {
        fields["embedding_size"] = json!(config.embedding_width());
        fields["num_hidden_groups"] = json!(1);
        fields["inner_group_num"] = json!(1);
    }
    merge(hf, fields);
}

/// Adds the fields of `more` to `hf`.
fn merge(hf: &mut Value, more: Value) {
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
    fn of<M: Module>(module: &M, table: KeyTable, omitted: &[&str]) -> Result<Self> {
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
