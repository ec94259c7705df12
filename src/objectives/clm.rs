//! Causal language modelling (GPT): predict each token from the ones before it.
//!
//! Data: segments framed as `[CLS] … [SEP]`; the input drops the last token and the targets drop
//! the first, so `[SEP]` (end of text) is predicted and kept in the loss. Padding is excluded by
//! length, never by token id, so an end-of-text token can never be mistaken for padding. Model:
//! the backbone under a causal + padding mask, then the tied [`LmHead`].

use burn::prelude::*;

use super::{Objective, ObjectiveOutput, TARGETS, encode, predict_tokens};
use crate::blocks::{AttentionMask, EncoderBackbone, LmHead, LmHeadConfig};
use crate::data::body_len;
use crate::data::{Segments, TokenBatch, TokenExample, TokenSource, TokenTaskOf, pack_segments};
use crate::dataset::Documents;
use crate::error::Result;
use crate::tokenize::{SpecialTokens, Tokenizer};
use crate::util::rng::ExampleRng;

/// Configuration of the [`Clm`] head.
#[derive(Config, Debug)]
pub struct ClmConfig {
    /// LayerNorm epsilon of the head. Default 1e-12.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
    /// BERT's dense + GELU + LayerNorm before the tied projection. Default true; GPT-2's head
    /// has none.
    #[config(default = true)]
    pub transform: bool,
    /// A learned output bias. Default true; GPT-2's head has none.
    #[config(default = true)]
    pub bias: bool,
    /// The projection tied to the token table. Default true; Llama's is untied.
    #[config(default = true)]
    pub tied: bool,
}

/// The causal-LM objective: an LM head, tied to the backbone's token embedding or not.
#[derive(Module, Debug)]
pub struct Clm {
    head: LmHead,
}

impl ClmConfig {
    /// Builds the head for `backbone`.
    pub fn init<M: EncoderBackbone>(&self, backbone: &M, device: &Device) -> Clm {
        Clm {
            head: LmHeadConfig::for_backbone(backbone)
                .with_layer_norm_eps(self.layer_norm_eps)
                .with_transform(self.transform)
                .with_bias(self.bias)
                .with_tied(self.tied)
                .init(device),
        }
    }
}

impl Clm {
    /// The LM head.
    pub fn head(&self) -> &LmHead {
        &self.head
    }
}

impl<M: EncoderBackbone> Objective<M> for Clm {
    type Batch = TokenBatch;

    fn forward(&self, backbone: &M, batch: TokenBatch) -> ObjectiveOutput {
        let len = batch.input_ids.dims()[1];
        let mask = AttentionMask::causal(len, &batch.input_ids.device())
            .or(AttentionMask::padding(batch.padding.clone()));
        let hidden = encode(backbone, &batch, &mask);
        let p = predict_tokens(backbone, &self.head, hidden, &batch);
        ObjectiveOutput {
            metrics: vec![p.perplexity("ppl"), p.accuracy("clm_acc")],
            loss: p.loss(TARGETS),
        }
    }
}

/// The data side of [`Clm`]: shifted segments.
pub type ClmTask = TokenTaskOf<ShiftedSegments>;

/// Segments whose inputs drop the last token and targets the first: the examples of a
/// [`ClmTask`].
#[derive(Debug, Clone)]
pub struct ShiftedSegments {
    segments: Segments,
    special: SpecialTokens,
}

impl ClmTask {
    /// Segments whose framed length is at most `seq_len + 1`, so that inputs and targets are
    /// `seq_len` long.
    pub fn new(documents: &Documents, tokenizer: &Tokenizer, seq_len: usize) -> Result<Self> {
        let special = tokenizer.special();
        let source = ShiftedSegments {
            segments: pack_segments(documents, body_len(seq_len + 1)?)?,
            special,
        };
        Ok(Self::of(source, special.pad))
    }
}

impl TokenSource for ShiftedSegments {
    fn num_examples(&self) -> usize {
        self.segments.len()
    }

    fn token_example(&self, index: usize, _rng: &mut ExampleRng) -> Result<TokenExample> {
        let (ids, _) = self
            .segments
            .segment(index)
            .framed(self.special.cls, self.special.sep);
        let targets = ids[1..].iter().map(|&t| i64::from(t)).collect();
        Ok(TokenExample::plain(ids[..ids.len() - 1].to_vec(), targets))
    }
}

/// The settings of `clm`: the shape of its LM head.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClmSettings {
    /// GPT-2's head: the tied projection alone, without BERT's transform and without a bias
    /// (what a GPT-2 export needs). Default false; continuing a Hugging Face GPT-2, Llama or
    /// Qwen2 sets it, as their heads are that.
    #[serde(default)]
    pub gpt2_head: bool,
    /// An output table of its own, not tied to the token table: continuing a Llama whose
    /// `lm_head` is its own sets it, and the run starts from that table. Default false.
    #[serde(default)]
    pub untied_head: bool,
}
