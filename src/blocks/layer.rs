//! One encoder layer, self-attention then a feed-forward network, each a residual sub-layer
//! normalised before (pre-norm, GPT-2) or after (post-norm, BERT): what every stack repeats
//! (the encoder, ELECTRA's generator) and the decoder's sub-layers share.

use burn::prelude::*;

use super::attention::{MultiHeadAttention, Relations};
use super::dropout::Dropout;
use super::feed_forward::FeedForward;
use super::kv_cache::KeysValues;
use super::mask::AttentionMask;
use super::norm::LayerNorm;
use super::positions::Positions;

/// One encoder layer.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub(super) attention: MultiHeadAttention,
    /// The attention's norm (none in ModernBERT's first layer).
    pub(super) attention_norm: Option<LayerNorm>,
    pub(super) ffn: FeedForward,
    pub(super) ffn_norm: LayerNorm,
    pub(super) dropout: Dropout,
    pub(super) norm_first: bool,
}

impl EncoderLayer {
    /// The same layer without dropout, on its residual branches or its attention weights.
    pub(super) fn without_dropout(self) -> Self {
        Self {
            attention: self.attention.without_dropout(),
            dropout: Dropout::new(0.0),
            ..self
        }
    }

    /// Applies the layer to `[batch, len, hidden]` with the stack's `positions`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        mask: Option<&AttentionMask>,
        positions: &Positions,
    ) -> Tensor<3> {
        let len = x.dims()[1];
        self.forward_two_stream(x, len, mask, positions)
    }

    /// Applies the layer to `x` `[batch, len, hidden]` in which every position queries but
    /// only the first `keys` are attended to: two-stream attention (XLNet), with the content
    /// stream first and the query stream behind it. Both streams share every weight; the
    /// query stream reads the content stream and is never read, and `mask` is
    /// `[batch, 1, len, keys]`. With `keys == len` this is ordinary self-attention.
    pub fn forward_two_stream(
        &self,
        x: Tensor<3>,
        keys: usize,
        mask: Option<&AttentionMask>,
        positions: &Positions,
    ) -> Tensor<3> {
        self.sublayers(x, |h| {
            let [batch, len, width] = h.dims();
            let content = if keys < len {
                h.clone().slice([0..batch, 0..keys, 0..width])
            } else {
                h.clone()
            };
            self.attention.forward(h, content, mask, positions)
        })
    }

    /// Applies the layer to new positions `x` `[batch, new, hidden]` that attend to the
    /// positions in `cache` and to themselves under `mask`; their keys and values join the
    /// cache (see [`MultiHeadAttention::forward_cached`]).
    pub fn forward_cached(
        &self,
        x: Tensor<3>,
        cache: &mut Option<KeysValues>,
        mask: Option<&AttentionMask>,
        positions: &Positions,
    ) -> Tensor<3> {
        self.sublayers(x, |h| {
            self.attention.forward_cached(h, cache, mask, positions)
        })
    }

    /// Applies the layer as [`forward`](Self::forward) does, and returns the [`Relations`] of
    /// its self-attention in the same pass.
    pub fn forward_with_relations(
        &self,
        x: Tensor<3>,
        mask: Option<&AttentionMask>,
        positions: &Positions,
    ) -> (Tensor<3>, Relations) {
        let mut relations = None;
        let out = self.sublayers(x, |h| {
            let (out, read) = self.attention.forward_with_relations(h, mask, positions);
            relations = Some(read);
            out
        });
        (out, relations.expect("the attention sub-layer runs"))
    }

    /// The attention sub-layer with `attend` as its attention, then the feed-forward one.
    fn sublayers(&self, x: Tensor<3>, attend: impl FnOnce(Tensor<3>) -> Tensor<3>) -> Tensor<3> {
        let (dropout, first) = (&self.dropout, self.norm_first);
        let x = residual(x, self.attention_norm.as_ref(), dropout, first, attend);
        residual(x, Some(&self.ffn_norm), dropout, first, |h| {
            self.ffn.forward(h)
        })
    }
}

/// One residual sub-layer: `x + dropout(f(norm(x)))` when `norm_first` (pre-norm, GPT-2),
/// `norm(x + dropout(f(x)))` otherwise (post-norm, BERT and the original Transformer); without
/// a norm, `x + dropout(f(x))`.
pub(crate) fn residual(
    x: Tensor<3>,
    norm: Option<&LayerNorm>,
    dropout: &Dropout,
    norm_first: bool,
    f: impl FnOnce(Tensor<3>) -> Tensor<3>,
) -> Tensor<3> {
    let normed = |x: Tensor<3>| match norm {
        Some(norm) => norm.forward(x),
        None => x,
    };
    if norm_first {
        x.clone() + dropout.forward(f(normed(x)))
    } else {
        normed(x.clone() + dropout.forward(f(x)))
    }
}
