//! Masked language modelling (BERT, RoBERTa): predict masked tokens from both sides.
//!
//! Data: segments of whole sentences framed as `[CLS] … [SEP]`, masked dynamically (a new mask
//! every epoch) by [`MlmMasker`]. Model: the backbone under a padding mask, then the tied
//! [`LmHead`] at the masked positions only.

use burn::prelude::*;

use super::{
    EncoderHead, Objective, ObjectiveOutput, TARGETS, forward_encoder_head, predict_tokens,
};
use crate::blocks::{Activation, EncoderBackbone, LmHead, LmHeadConfig};
use crate::data::{
    Segments, TokenBatch, TokenExample, TokenSource, TokenTaskOf, body_len, pack_segments,
};
use crate::dataset::Documents;
use crate::error::Result;
use crate::noise::{MlmMasker, MlmMasking};
use crate::tokenize::{SpecialTokens, Tokenizer};
use crate::util::rng::ExampleRng;

/// Configuration of the [`Mlm`] head.
#[derive(Config, Debug)]
pub struct MlmConfig {
    /// LayerNorm epsilon of the head. Default none: the backbone's norm epsilon, as every
    /// Hugging Face family has it (1e-12 for a backbone without a block's settings).
    #[config(default = "None")]
    pub layer_norm_eps: Option<f64>,
    /// The GELU of the head's transform. Default exact; ALBERT's is the tanh approximation.
    #[config(default = "Activation::Gelu")]
    pub activation: Activation,
    /// Biases on the transform's dense map and LayerNorm, where the backbone's norms have
    /// shifts (a ModernBERT-like backbone without them gets a head without them, as its
    /// family has). Default true.
    #[config(default = true)]
    pub transform_biases: bool,
}

/// The masked-LM objective: an LM head tied to the backbone's token embedding.
#[derive(Module, Debug)]
pub struct Mlm {
    head: LmHead,
}

impl MlmConfig {
    /// Builds the head for `backbone`.
    pub fn init<M: EncoderBackbone>(&self, backbone: &M, device: &Device) -> Mlm {
        let biases = self.transform_biases && backbone.block().is_none_or(|b| b.norm_bias);
        let eps =
            (self.layer_norm_eps).unwrap_or_else(|| backbone.block().map_or(1e-12, |b| b.norm_eps));
        Mlm {
            head: LmHeadConfig::for_backbone(backbone)
                .with_layer_norm_eps(eps)
                .with_activation(self.activation)
                .with_dense_bias(biases)
                .with_norm_bias(biases)
                .init(device),
        }
    }
}

impl Mlm {
    /// The LM head.
    pub fn head(&self) -> &LmHead {
        &self.head
    }
}

impl<M: EncoderBackbone> Objective<M> for Mlm {
    type Batch = TokenBatch;

    fn forward(&self, backbone: &M, batch: TokenBatch) -> ObjectiveOutput {
        forward_encoder_head(self, backbone, batch)
    }
}

impl<M: EncoderBackbone> EncoderHead<M> for Mlm {
    fn score(&self, backbone: &M, hidden: Tensor<3>, batch: &TokenBatch) -> ObjectiveOutput {
        let p = predict_tokens(backbone, &self.head, hidden, batch);
        ObjectiveOutput {
            metrics: vec![p.accuracy("mlm_acc"), p.perplexity("mlm_ppl")],
            loss: p.loss(TARGETS),
        }
    }
}

/// The data side of [`Mlm`]: masked segments.
pub type MlmTask = TokenTaskOf<MaskedSegments>;

/// Segments masked by an [`MlmMasker`]: the examples of an [`MlmTask`].
#[derive(Debug, Clone)]
pub struct MaskedSegments {
    segments: Segments,
    masker: MlmMasker,
    special: SpecialTokens,
}

impl MlmTask {
    /// Segments of at most `seq_len` tokens (specials included) from `documents`, masked with
    /// `masking` over `tokenizer`'s vocabulary.
    pub fn new(
        documents: &Documents,
        tokenizer: &Tokenizer,
        masking: MlmMasking,
        seq_len: usize,
    ) -> Result<Self> {
        let special = tokenizer.special();
        let source = MaskedSegments {
            segments: pack_segments(documents, body_len(seq_len)?)?,
            masker: MlmMasker::for_tokenizer(masking, tokenizer)?,
            special,
        };
        Ok(Self::of(source, special.pad))
    }
}

impl TokenSource for MaskedSegments {
    fn num_examples(&self) -> usize {
        self.segments.len()
    }

    fn token_example(&self, index: usize, rng: &mut ExampleRng) -> Result<TokenExample> {
        let (ids, starts) = self
            .segments
            .segment(index)
            .framed(self.special.cls, self.special.sep);
        let masked = self.masker.mask(&ids, &starts, rng)?;
        Ok(TokenExample::plain(masked.input, masked.targets))
    }
}

/// The settings of `mlm`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlmSettings {
    /// What is masked and how.
    pub masking: MlmMasking,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{BlockConfig, TransformerEncoderConfig};

    #[test]
    fn the_head_takes_its_backbones_norm_epsilon() {
        let device = Device::flex();
        let backbone = |eps: f64| {
            let block = BlockConfig::new(2, 32).with_norm_eps(eps);
            TransformerEncoderConfig::new(40, 16, 1, block)
                .init(&device)
                .unwrap()
        };
        // ModernBERT's 1e-5 and BERT's 1e-12, as a Hugging Face export of either reads back.
        for eps in [1e-5, 1e-12] {
            let head = MlmConfig::new().init(&backbone(eps), &device);
            assert_eq!(head.head().norm_epsilon(), Some(eps));
        }
        let set = MlmConfig::new().with_layer_norm_eps(Some(1e-6));
        assert_eq!(
            set.init(&backbone(1e-5), &device).head().norm_epsilon(),
            Some(1e-6)
        );
    }
}
