//! Fill-mask: the most likely tokens at each mask of a text, as `transformers`' fill-mask
//! pipeline gives them (the text framed by the tokenizer's start and end tokens, one segment,
//! a softmax over the whole vocabulary), from a masked LM: a pretext run whose objective has an
//! MLM head, or a Hugging Face BERT, RoBERTa, ALBERT, ModernBERT or ELECTRA generator
//! (`ElectraForMaskedLM`) directory.
//!
//! ```no_run
//! use pretext::burn::prelude::*;
//! use pretext::fill_mask::MaskedLm;
//! # fn main() -> pretext::Result<()> {
//! let model = MaskedLm::load("runs/mlm".as_ref(), &Device::flex())?;
//! for prediction in &model.fill("the [MASK] sat on the mat.", 5)?[0] {
//!     println!("{} {:.3}", prediction.token, prediction.score);
//! }
//! # Ok(()) }
//! ```

use std::path::Path;

use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::Serialize;

use crate::blocks::{EncoderBackbone, TransformerEncoder};
use crate::error::{Error, Result};
use crate::objectives::Mlm;
use crate::recipe::RunDir;
use crate::tokenize::Tokenizer;

/// One candidate for a mask.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The token as the vocabulary writes it (`##ing`, `Ġcat`).
    pub token: String,
    /// Its id.
    pub id: u32,
    /// Its probability.
    pub score: f32,
}

/// A masked language model ready to fill masks.
#[derive(Debug)]
pub struct MaskedLm {
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The encoder.
    pub encoder: TransformerEncoder,
    /// The MLM head.
    pub mlm: Mlm,
}

impl MaskedLm {
    /// Loads `dir` onto `device`: a Hugging Face BERT, RoBERTa, ALBERT, ModernBERT or ELECTRA
    /// generator directory (it holds `model.safetensors`; its MLM head must be in the file),
    /// or a pretext run directory whose objective has an MLM head (`mlm`, `bert`, `albert`),
    /// read from its checkpoint.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        if crate::hf::is_model_dir(dir) {
            let (encoder, mlm, report) = match crate::hf::HfConfig::read(dir)?.model_type.as_str() {
                "modernbert" => {
                    let model = crate::hf::load_modernbert(dir, device)?;
                    (model.encoder, model.mlm, model.report)
                }
                "electra" => {
                    let model = crate::hf::load_electra_generator(dir, device)?;
                    (model.encoder, model.mlm, model.report)
                }
                _ => {
                    let bert = crate::hf::load_bert(dir, device)?;
                    (bert.encoder, bert.mlm, bert.report)
                }
            };
            if !report.loaded.iter().any(|part| part == "MLM head") {
                return Err(Error::HfModel {
                    path: dir.to_path_buf(),
                    reason: "the file holds no MLM head to fill masks with".into(),
                });
            }
            let tokenizer = Tokenizer::from_model_dir(dir)?;
            if !tokenizer.has_mask() {
                return Err(Error::MissingSpecialToken("mask".into()));
            }
            return Ok(Self {
                tokenizer,
                encoder,
                mlm,
            });
        }
        let recipe = RunDir::open(dir)?.recipe;
        let (encoder, head) = recipe.load_trained(dir, device)?;
        let mlm = head.mlm().cloned().ok_or_else(|| Error::Recipe {
            field: "objective".into(),
            reason: format!(
                "{} has no MLM head to fill masks with",
                recipe.objective.name()
            ),
        })?;
        Ok(Self {
            tokenizer: recipe.tokenizer.load()?,
            encoder,
            mlm,
        })
    }

    /// The model with its weights' matrices in int8 ([`crate::quantize::int8`]): about a
    /// quarter of the memory, the same speed on the CPU, predictions close to the float ones.
    pub fn int8(self) -> Self {
        Self {
            encoder: crate::quantize::int8(self.encoder),
            mlm: crate::quantize::int8(self.mlm),
            ..self
        }
    }

    /// The `top_k` most likely tokens at each mask token of `text`, in the order the masks
    /// come, each list most likely first.
    pub fn fill(&self, text: &str, top_k: usize) -> Result<Vec<Vec<Prediction>>> {
        let special = self.tokenizer.special();
        let mut ids = vec![special.cls];
        ids.extend(self.tokenizer.encode(text)?.ids);
        ids.push(special.sep);
        let max = self.encoder.max_positions();
        if ids.len() > max {
            return Err(Error::SequenceTooLong {
                len: ids.len(),
                max,
            });
        }
        let masks: Vec<i64> = (0..ids.len())
            .filter(|&i| ids[i] == special.mask)
            .map(|i| i as i64)
            .collect();
        if masks.is_empty() {
            return Err(Error::NothingToFill {
                text: text.into(),
                mask: self.tokenizer.id_to_token(special.mask).unwrap_or_default(),
            });
        }
        let device = self.encoder.token_embedding().device();
        let len = ids.len();
        let input: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
        let input = Tensor::<2, Int>::from_data(TensorData::new(input, [1, len]), &device);
        let segments = (self.encoder.num_segments() > 0).then(|| input.zeros_like());
        let hidden = self.encoder.encode(input, segments, None);
        let count = masks.len();
        let at = Tensor::<1, Int>::from_data(TensorData::new(masks, [count]), &device);
        let logits = self
            .mlm
            .head()
            .forward_at(hidden, at, self.encoder.token_embedding());
        let probabilities = softmax(logits, 1);
        let k = top_k.min(probabilities.dims()[1]);
        if k == 0 {
            return Ok(vec![Vec::new(); count]);
        }
        // Only the k best of each row leave the device, not the whole vocabulary.
        let (scores, ids) = probabilities.topk_with_indices(k, 1);
        let scores = crate::util::floats(scores);
        let ids: Vec<i64> = ids.into_data().convert::<i64>().try_to_vec().expect("ids");
        Ok(scores
            .chunks(k)
            .zip(ids.chunks(k))
            .map(|(scores, ids)| {
                scores
                    .iter()
                    .zip(ids)
                    .map(|(&score, &id)| Prediction {
                        token: self.tokenizer.id_to_token(id as u32).unwrap_or_default(),
                        id: id as u32,
                        score,
                    })
                    .collect()
            })
            .collect())
    }
}
