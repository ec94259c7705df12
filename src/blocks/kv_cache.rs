//! The keys and values attention has already computed, kept between calls so that decoding
//! one more token costs one position's work instead of the whole prefix's.
//!
//! A stack's [`KvCache`] holds, for each depth, the self-attention's keys and values of every
//! position seen so far and, in a decoder, the cross-attention's keys and values of the
//! encoder's states, which do not change while decoding.

use burn::prelude::*;

/// Keys and values of one attention, split into heads: `[batch, heads, len, head_size]`.
#[derive(Debug, Clone)]
pub struct KeysValues {
    pub(crate) keys: Tensor<4>,
    pub(crate) values: Tensor<4>,
}

impl KeysValues {
    /// These positions followed by `later` ones.
    pub(crate) fn append(self, later: KeysValues) -> Self {
        Self {
            keys: Tensor::cat(vec![self.keys, later.keys], 2),
            values: Tensor::cat(vec![self.values, later.values], 2),
        }
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.keys.dims()[2]
    }

    /// Whether no position is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The keys and values of every layer of a stack, filled by its `forward_cached`, and the
/// positions of the keys held (which a bias over distances needs).
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    own: Vec<Option<KeysValues>>,
    memory: Vec<Option<KeysValues>>,
    positions: Option<Tensor<2, Int>>,
}

impl KvCache {
    /// An empty cache: the first call fills it (prefill).
    pub fn new() -> Self {
        Self::default()
    }

    /// Positions cached so far.
    pub fn len(&self) -> usize {
        self.own
            .first()
            .and_then(Option::as_ref)
            .map_or(0, KeysValues::len)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The positions of every key held once the rows at `new` `[batch, new]` join, earlier
    /// ones first, where `block` reads them (kept here between calls); `new` itself otherwise.
    pub(crate) fn key_positions(
        &mut self,
        block: &super::BlockConfig,
        new: Tensor<2, Int>,
    ) -> Tensor<2, Int> {
        if !block.reads_key_positions() {
            return new;
        }
        let all = match self.positions.take() {
            Some(old) => Tensor::cat(vec![old, new], 1),
            None => new,
        };
        self.positions = Some(all.clone());
        all
    }

    /// The self-attention cache of the layer at `depth`.
    pub(crate) fn own(&mut self, depth: usize) -> &mut Option<KeysValues> {
        slot(&mut self.own, depth)
    }

    /// The self-attention and cross-attention caches of the decoder layer at `depth`.
    pub(crate) fn layer(
        &mut self,
        depth: usize,
    ) -> (&mut Option<KeysValues>, &mut Option<KeysValues>) {
        (slot(&mut self.own, depth), slot(&mut self.memory, depth))
    }
}

fn slot(slots: &mut Vec<Option<KeysValues>>, depth: usize) -> &mut Option<KeysValues> {
    if slots.len() <= depth {
        slots.resize(depth + 1, None);
    }
    &mut slots[depth]
}
