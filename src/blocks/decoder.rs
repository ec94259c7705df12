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
use super::encoder::{TransformerEncoderConfig, default_positions};
use super::feed_forward::FeedForward;
use super::kv_cache::{KeysValues, KvCache};
use super::layer::residual;
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
    /// `memory_mask`. With a `cache` (this layer's self- and cross-attention slots) the rows
    /// are new positions that also attend to the cached ones (`self_mask` none: to every
    /// cached position and themselves); their keys and values join it, and `memory`'s are
    /// kept after the first call.
    pub fn forward(
        &self,
        x: Tensor<3>,
        memory: Tensor<3>,
        self_mask: Option<&AttentionMask>,
        memory_mask: &AttentionMask,
        positions: &Positions,
        cache: Option<(&mut Option<KeysValues>, &mut Option<KeysValues>)>,
    ) -> Tensor<3> {
        let none = Positions::none();
        let (own, cross) = cache.unzip();
        self.sublayers(
            x,
            |h| match own {
                Some(own) => (self.self_attention).forward_cached(h, own, self_mask, positions),
                None => (self.self_attention).forward(h.clone(), h, self_mask, positions),
            },
            |h| match cross {
                Some(cross) => {
                    (self.cross_attention).forward_memory(h, memory, cross, Some(memory_mask))
                }
                None => (self.cross_attention).forward(h, memory, Some(memory_mask), &none),
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
    /// (default `0..len`, after the cached ones with a cache), each position seeing itself and
    /// those before it, and `memory` under `memory_mask`. With a `cache` the rows are new
    /// positions that follow the cached ones, whose keys and values they join: step by step
    /// it gives what the whole prefix gives, for one position's work per step.
    pub fn forward(
        &self,
        tokens: Tensor<3>,
        positions: Option<Tensor<2, Int>>,
        memory: Tensor<3>,
        memory_mask: &AttentionMask,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let [batch, new, _] = tokens.dims();
        let device = tokens.device();
        let cached = cache.as_ref().map_or(0, |c| c.len());
        let at = positions
            .clone()
            .unwrap_or_else(|| default_positions(batch, new, &device).add_scalar(cached as i64));
        // Each new position sees what is cached, itself and the new ones before it; one alone
        // needs no mask.
        let mask = match &cache {
            None => Some(AttentionMask::causal(new, &device)),
            Some(_) if new > 1 => Some(AttentionMask::cached_causal(
                &vec![0; batch],
                cached,
                new,
                &device,
            )),
            Some(_) => None,
        };
        let keys = match cache.as_deref_mut() {
            Some(cache) => cache.key_positions(&self.config.block, at.clone()),
            None => at.clone(),
        };
        let own = self.positions(&at, &keys);
        let x = match cache {
            Some(_) => self.input.forward(tokens, Some(at), None),
            None => self.input.forward(tokens, positions, None),
        };
        self.stack_with(x, |depth, layer, x| {
            let slots = cache.as_deref_mut().map(|c| c.layer(depth));
            layer.forward(x, memory.clone(), mask.as_ref(), memory_mask, &own, slots)
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
