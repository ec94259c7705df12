//! The language-model head: BERT's transform (dense, GELU, LayerNorm; GPT-2 and BART have none)
//! then a projection tied to the token embedding plus a bias (GPT-2 has none), evaluated only
//! at the positions that carry a target.
//!
//! Projecting only the ~15 % of positions MLM predicts is what makes the head cheap: the vocab
//! projection is the largest matmul of a small model.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;

use super::encoder::EncoderBackbone;
use super::feed_forward::Activation;
use super::norm::{LayerNorm, NormKind};
use super::normal_linear_with_bias;

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
    /// The GELU of the transform. Default exact.
    #[config(default = "Activation::Gelu")]
    pub activation: Activation,
    /// BERT's transform before the projection; GPT-2 and BART project the hidden states
    /// directly. Default true.
    #[config(default = true)]
    pub transform: bool,
    /// A learned output bias; GPT-2 has none. Default true.
    #[config(default = true)]
    pub bias: bool,
    /// A bias on the transform's dense map; ModernBERT's has none. Default true.
    #[config(default = true)]
    pub dense_bias: bool,
    /// A shift in the transform's LayerNorm; ModernBERT's has none. Default true.
    #[config(default = true)]
    pub norm_bias: bool,
    /// The output projection is the token table itself (BERT, GPT-2, Qwen2); untied, the
    /// head has a table of its own (Llama's `lm_head`). Default true.
    #[config(default = true)]
    pub tied: bool,
    /// A factor on the hidden states before the projection (T5 with a tied head:
    /// `width^-0.5`). Default 1.
    #[config(default = 1.0)]
    pub scale: f64,
}

/// Transform (if any) + tied output projection + output bias.
#[derive(Module, Debug)]
pub struct LmHead {
    /// The transform's dense map and LayerNorm: both or neither.
    dense: Option<Linear>,
    #[module(skip)]
    activation: Activation,
    norm: Option<LayerNorm>,
    bias: Option<Param<Tensor<1>>>,
    /// An output table of its own `[vocab, embedding_size]`, when not tied.
    output: Option<Param<Tensor<2>>>,
    /// The factor on the hidden states.
    #[module(skip)]
    scale: f64,
}

impl LmHeadConfig {
    /// The head that fits `backbone`: its width, its token table's width and its vocabulary.
    pub fn for_backbone<M: EncoderBackbone>(backbone: &M) -> Self {
        let embedding = backbone.embedding_size();
        Self::new(backbone.hidden_size(), embedding, backbone.vocab_size())
    }

    /// Builds the head.
    pub fn init(&self, device: &Device) -> LmHead {
        LmHead {
            dense: self.transform.then(|| {
                let (d_in, d_out) = (self.hidden_size, self.embedding_size);
                normal_linear_with_bias(d_in, d_out, 0.02, self.dense_bias, device)
            }),
            activation: self.activation,
            norm: self.transform.then(|| {
                let (width, eps) = (self.embedding_size, self.layer_norm_eps);
                LayerNorm::new(NormKind::LayerNorm, width, eps, self.norm_bias, device)
            }),
            bias: self
                .bias
                .then(|| Param::from_tensor(Tensor::zeros([self.vocab_size], device))),
            // Lazy, as burn's own modules are: drawn when first read (or never, when a loader
            // overwrites it), not now, from under whoever holds the stream.
            output: (!self.tied).then(|| {
                let shape = [self.vocab_size, self.embedding_size];
                let normal = burn::nn::Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                };
                normal.init(shape, device)
            }),
            scale: self.scale,
        }
    }
}

impl LmHead {
    /// The epsilon of the transform's LayerNorm (none without a transform).
    pub fn norm_epsilon(&self) -> Option<f64> {
        self.norm.as_ref().map(LayerNorm::epsilon)
    }

    /// Logits `[n, vocab]` for the hidden states at `positions`, given as flat indices into
    /// `hidden` `[batch, len, width]` (`b * len + t`); `embedding` is the tied table
    /// `[vocab, embedding_size]`, which an untied head passes over for its own.
    pub fn forward_at(
        &self,
        hidden: Tensor<3>,
        positions: Tensor<1, Int>,
        embedding: Tensor<2>,
    ) -> Tensor<2> {
        let mut h = states_at(hidden, positions);
        if self.scale != 1.0 {
            h = h.mul_scalar(self.scale);
        }
        if let (Some(dense), Some(norm)) = (&self.dense, &self.norm) {
            h = norm.forward(self.activation.forward(dense.forward(h)));
        }
        let table = match &self.output {
            Some(own) => own.val(),
            None => embedding,
        };
        let logits = h.matmul(table.transpose());
        match &self.bias {
            Some(bias) => logits + bias.val().unsqueeze_dim(0),
            None => logits,
        }
    }

    /// The activation of BERT's transform, or `None` for a head without one (GPT-2, BART).
    pub fn transform(&self) -> Option<Activation> {
        self.dense.as_ref().map(|_| self.activation)
    }

    /// Whether the transform's dense map and LayerNorm have biases, where it has them.
    pub fn transform_biases(&self) -> Option<(bool, bool)> {
        let dense = self.dense.as_ref()?;
        let norm = self.norm.as_ref()?;
        Some((dense.bias.is_some(), norm.beta.is_some()))
    }

    /// Whether the output projection is the token table (false: the head has its own).
    pub fn tied(&self) -> bool {
        self.output.is_none()
    }

    /// The factor on the hidden states before the projection.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The output bias `[vocab]`, if the head has one.
    pub fn bias(&self) -> Option<Tensor<1>> {
        self.bias.as_ref().map(Param::val)
    }
}

/// The states `[n, width]` of `hidden` `[batch, len, width]` at flat `positions` (`row · len +
/// column`, as [`TokenBatch`](crate::data::TokenBatch) gives its targets).
pub fn states_at(hidden: Tensor<3>, positions: Tensor<1, Int>) -> Tensor<2> {
    let [batch, len, width] = hidden.dims();
    hidden.reshape([batch * len, width]).select(0, positions)
}
