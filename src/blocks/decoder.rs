//! The Transformer decoder: a layer (causal self-attention, cross-attention to the encoder's
//! states, feed-forward; pre- or post-LN) and a stack of them.
//!
//! The stack takes token *vectors*, not ids: an encoder-decoder looks them up in the encoder's
//! table, so that the two sides and the output head share one embedding (BART, T5). Positions
//! are the decoder's own.

use burn::nn::LayerNorm;
use burn::prelude::*;

use super::attention::MultiHeadAttention;
use super::dropout::Dropout;
use super::embedding::InputEncoding;
use super::encoder::{TransformerEncoderConfig, residual};
use super::feed_forward::FeedForward;
use super::mask::AttentionMask;

/// One decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    self_attention: MultiHeadAttention,
    self_attention_norm: LayerNorm,
    cross_attention: MultiHeadAttention,
    cross_attention_norm: LayerNorm,
    ffn: FeedForward,
    ffn_norm: LayerNorm,
    dropout: Dropout,
    norm_first: bool,
}

impl DecoderLayer {
    /// Builds a layer of the shape `config` describes (width, heads, feed-forward, dropout,
    /// LayerNorm placement).
    pub fn new(config: &TransformerEncoderConfig, device: &Device) -> crate::Result<Self> {
        Ok(Self {
            self_attention: config.attention().init(device)?,
            self_attention_norm: config.layer_norm(device),
            cross_attention: config.attention().init(device)?,
            cross_attention_norm: config.layer_norm(device),
            ffn: config.ffn(device),
            ffn_norm: config.layer_norm(device),
            dropout: Dropout::new(config.dropout),
            norm_first: config.norm_first,
        })
    }

    /// Applies the layer to `x` `[batch, len, hidden]`, attending to itself under `self_mask`
    /// and to `memory` `[batch, source_len, hidden]` under `memory_mask`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        memory: Tensor<3>,
        self_mask: &AttentionMask,
        memory_mask: &AttentionMask,
    ) -> Tensor<3> {
        let (dropout, first) = (&self.dropout, self.norm_first);
        let x = residual(x, &self.self_attention_norm, dropout, first, |h| {
            self.self_attention.forward(h.clone(), h, Some(self_mask))
        });
        let x = residual(x, &self.cross_attention_norm, dropout, first, |h| {
            self.cross_attention.forward(h, memory, Some(memory_mask))
        });
        residual(x, &self.ffn_norm, dropout, first, |h| self.ffn.forward(h))
    }
}

/// Position embeddings, a stack of decoder layers under a causal mask, and a final LayerNorm
/// with pre-LN layers.
#[derive(Module, Debug)]
pub struct TransformerDecoder {
    input: InputEncoding,
    layers: Vec<DecoderLayer>,
    final_norm: Option<LayerNorm>,
}

impl TransformerDecoder {
    /// A decoder of `num_layers` layers of the shape `config` describes, with position
    /// embeddings of its own and no segment embeddings.
    pub fn new(
        config: &TransformerEncoderConfig,
        num_layers: usize,
        device: &Device,
    ) -> crate::Result<Self> {
        Ok(Self {
            input: config
                .embeddings(config.hidden_size)
                .with_num_segments(0)
                .init_input(device),
            layers: (0..num_layers)
                .map(|_| DecoderLayer::new(config, device))
                .collect::<crate::Result<_>>()?,
            final_norm: config.norm_first.then(|| config.layer_norm(device)),
        })
    }

    /// Hidden states `[batch, len, hidden]` for the token vectors `tokens` at `positions`
    /// (default `0..len`), each position seeing itself and those before it, and `memory`
    /// under `memory_mask`.
    pub fn forward(
        &self,
        tokens: Tensor<3>,
        positions: Option<Tensor<2, Int>>,
        memory: Tensor<3>,
        memory_mask: &AttentionMask,
    ) -> Tensor<3> {
        let len = tokens.dims()[1];
        let causal = AttentionMask::causal(len, &tokens.device());
        let mut x = self.input.forward(tokens, positions, None);
        for layer in &self.layers {
            x = layer.forward(x, memory.clone(), &causal, memory_mask);
        }
        match &self.final_norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }
}
