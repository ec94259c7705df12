//! The Transformer decoder: a layer (causal self-attention, cross-attention to the encoder's
//! states, feed-forward; pre- or post-LN) and a stack of them.
//!
//! The stack takes token *vectors*, not ids: an encoder-decoder looks them up in the encoder's
//! table, so that the two sides and the output head share one embedding (BART, T5). Positions
//! are the decoder's own.

use burn::prelude::*;

use super::attention::MultiHeadAttention;
use super::dropout::Dropout;
use super::embedding::InputEncoding;
use super::encoder::{TransformerEncoderConfig, default_positions, residual};
use super::feed_forward::FeedForward;
use super::kv_cache::{KeysValues, KvCache};
use super::mask::AttentionMask;
use super::norm::LayerNorm;
use super::positions::Positions;
use super::relative_bias::RelativeBias;
use crate::error::Result;

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
    /// Builds the layer at `depth` of the shape `config` describes (width, its block, dropout).
    pub fn new(config: &TransformerEncoderConfig, depth: usize, device: &Device) -> Result<Self> {
        let (block, hidden, dropout) = (&config.block, config.hidden_size, config.dropout);
        let local = block.is_local(depth);
        Ok(Self {
            self_attention: block
                .attention(hidden, dropout)
                .with_local(local)
                .init(device)?,
            self_attention_norm: block.norm(hidden, device),
            cross_attention: block.attention(hidden, dropout).init(device)?,
            cross_attention_norm: block.norm(hidden, device),
            ffn: block.ffn(hidden, device),
            ffn_norm: block.norm(hidden, device),
            dropout: Dropout::new(dropout),
            norm_first: block.norm_first,
        })
    }

    /// Applies the layer to `x` `[batch, len, hidden]`, attending to itself under `self_mask`
    /// with the decoder's `positions`, and to `memory` `[batch, source_len, hidden]` under
    /// `memory_mask`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        memory: Tensor<3>,
        self_mask: &AttentionMask,
        memory_mask: &AttentionMask,
        positions: &Positions,
    ) -> Tensor<3> {
        let none = Positions::none();
        self.sublayers(
            x,
            |h| {
                self.self_attention
                    .forward(h.clone(), h, Some(self_mask), positions)
            },
            |h| {
                self.cross_attention
                    .forward(h, memory, Some(memory_mask), &none)
            },
        )
    }

    /// Applies the layer to new positions `x` `[batch, new, hidden]` that attend to the
    /// positions in `cache` and to themselves under `self_mask` (none: every cached position
    /// and themselves), and to `memory` under `memory_mask`, whose keys and values the cache
    /// keeps after the first call.
    pub fn forward_cached(
        &self,
        x: Tensor<3>,
        memory: Tensor<3>,
        self_mask: Option<&AttentionMask>,
        memory_mask: &AttentionMask,
        cache: (&mut Option<KeysValues>, &mut Option<KeysValues>),
        positions: &Positions,
    ) -> Tensor<3> {
        let (own, cross) = cache;
        self.sublayers(
            x,
            |h| {
                self.self_attention
                    .forward_cached(h, own, self_mask, positions)
            },
            |h| {
                self.cross_attention
                    .forward_memory(h, memory, cross, Some(memory_mask))
            },
        )
    }

    /// Self-attention through `attend`, cross-attention through `cross`, then feed-forward.
    fn sublayers(
        &self,
        x: Tensor<3>,
        attend: impl FnOnce(Tensor<3>) -> Tensor<3>,
        cross: impl FnOnce(Tensor<3>) -> Tensor<3>,
    ) -> Tensor<3> {
        let (dropout, first) = (&self.dropout, self.norm_first);
        let x = residual(x, Some(&self.self_attention_norm), dropout, first, attend);
        let x = residual(x, Some(&self.cross_attention_norm), dropout, first, cross);
        residual(x, Some(&self.ffn_norm), dropout, first, |h| {
            self.ffn.forward(h)
        })
    }
}

/// Position embeddings, a stack of decoder layers under a causal mask, and a final norm with
/// pre-norm layers.
#[derive(Module, Debug)]
pub struct TransformerDecoder {
    input: InputEncoding,
    layers: Vec<DecoderLayer>,
    final_norm: Option<LayerNorm>,
    /// The decoder's own relative position bias (causal buckets), with relative positions.
    relative_bias: Option<RelativeBias>,
    /// The encoder's shape, whose block the layers have, for the positions each forward
    /// computes.
    #[module(skip)]
    config: TransformerEncoderConfig,
}

impl TransformerDecoder {
    /// A decoder of `num_layers` layers of the shape `config` describes, with position
    /// embeddings of its own and no segment embeddings.
    pub fn new(
        config: &TransformerEncoderConfig,
        num_layers: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            input: config
                .embeddings(config.hidden_size)
                .with_num_segments(0)
                .init_input(device),
            layers: (0..num_layers)
                .map(|depth| DecoderLayer::new(config, depth, device))
                .collect::<Result<_>>()?,
            final_norm: config.final_norm(device),
            relative_bias: config.block.relative_bias(true, device),
            config: config.clone(),
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
        let [batch, len, _] = tokens.dims();
        let device = tokens.device();
        let causal = AttentionMask::causal(len, &device);
        let at = positions
            .clone()
            .unwrap_or_else(|| default_positions(batch, len, &device));
        let own = self.positions(&at, &at);
        let x = self.input.forward(tokens, positions, None);
        self.stack_with(x, |_, layer, x| {
            layer.forward(x, memory.clone(), &causal, memory_mask, &own)
        })
    }

    /// Hidden states `[batch, new, hidden]` for the token vectors `tokens` `[batch, new]` at
    /// `positions`, which follow the positions already in `cache` (each new one sees those,
    /// itself and the new ones before it), and `memory` under `memory_mask`; their keys and
    /// values join the cache. Step by step it gives what [`forward`](Self::forward) gives on
    /// the whole prefix.
    pub fn forward_cached(
        &self,
        tokens: Tensor<3>,
        positions: Tensor<2, Int>,
        memory: Tensor<3>,
        memory_mask: &AttentionMask,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        let [batch, new, _] = tokens.dims();
        let device = tokens.device();
        // One new position sees everything cached and itself: no mask needed.
        let mask = (new > 1)
            .then(|| AttentionMask::cached_causal(&vec![0; batch], cache.len(), new, &device));
        let keys = cache.key_positions(&self.config.block, positions.clone());
        let own = self.positions(&positions, &keys);
        let x = self.input.forward(tokens, Some(positions), None);
        self.stack_with(x, |depth, layer, x| {
            let slots = cache.layer(depth);
            layer.forward_cached(x, memory.clone(), mask.as_ref(), memory_mask, slots, &own)
        })
    }

    /// What every layer's self-attention reads of the positions of rows at `queries`
    /// attending to keys at `keys`.
    fn positions(&self, queries: &Tensor<2, Int>, keys: &Tensor<2, Int>) -> Positions {
        let (block, hidden) = (&self.config.block, self.config.hidden_size);
        block.positions(hidden, queries, keys, self.relative_bias.as_ref())
    }

    /// `layer` applied at every depth, then the final norm of a pre-norm stack.
    fn stack_with(
        &self,
        mut x: Tensor<3>,
        mut layer: impl FnMut(usize, &DecoderLayer, Tensor<3>) -> Tensor<3>,
    ) -> Tensor<3> {
        for (depth, l) in self.layers.iter().enumerate() {
            x = layer(depth, l, x);
        }
        match &self.final_norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }
}
