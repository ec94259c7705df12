//! The language-model head: BERT's transform (dense, GELU, LayerNorm) then a projection tied to
//! the token embedding, evaluated only at the positions that carry a target.
//!
//! Projecting only the ~15 % of positions MLM predicts is what makes the head cheap: the vocab
//! projection is the largest matmul of a small model.

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::gelu;

use super::encoder::EncoderBackbone;
use super::normal_linear;

/// Configuration of [`LmHead`].
#[derive(Config, Debug)]
pub struct LmHeadConfig {
    /// Width of the backbone's hidden states.
    pub hidden_size: usize,
    /// Width of the token embedding the output is tied to.
    pub embedding_size: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// LayerNorm epsilon. Default 1e-12.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
}

/// Transform + tied output projection + output bias.
#[derive(Module, Debug)]
pub struct LmHead {
    dense: Linear,
    norm: LayerNorm,
    bias: Param<Tensor<1>>,
}

impl LmHeadConfig {
    /// The head that fits `backbone`: its width, its token table's width and its vocabulary.
    pub fn for_backbone<M: EncoderBackbone>(backbone: &M) -> Self {
        let embedding = backbone.token_embedding().dims()[1];
        Self::new(backbone.hidden_size(), embedding, backbone.vocab_size())
    }

    /// Builds the head.
    pub fn init(&self, device: &Device) -> LmHead {
        LmHead {
            dense: normal_linear(self.hidden_size, self.embedding_size, 0.02, device),
            norm: LayerNormConfig::new(self.embedding_size)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            bias: Param::from_tensor(Tensor::zeros([self.vocab_size], device)),
        }
    }
}

impl LmHead {
    /// Logits `[n, vocab]` for the hidden states at `positions`, given as flat indices into
    /// `hidden` `[batch, len, width]` (`b * len + t`); `embedding` is the tied table
    /// `[vocab, embedding_size]`.
    pub fn forward_at(
        &self,
        hidden: Tensor<3>,
        positions: Tensor<1, Int>,
        embedding: Tensor<2>,
    ) -> Tensor<2> {
        let picked = states_at(hidden, positions);
        let h = self.norm.forward(gelu(self.dense.forward(picked)));
        h.matmul(embedding.transpose()) + self.bias.val().unsqueeze_dim(0)
    }
}

/// The states `[n, width]` of `hidden` `[batch, len, width]` at flat `positions` (`row · len +
/// column`, as [`TokenBatch`](crate::data::TokenBatch) gives its targets).
pub fn states_at(hidden: Tensor<3>, positions: Tensor<1, Int>) -> Tensor<2> {
    let [batch, len, width] = hidden.dims();
    hidden.reshape([batch * len, width]).select(0, positions)
}
