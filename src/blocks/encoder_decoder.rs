//! The encoder-decoder (BART, MASS, T5): a [`TransformerEncoder`] and a [`TransformerDecoder`]
//! that share one token table, which a tied output head reuses as well; and the
//! [`Seq2SeqBackbone`] capability that sequence-to-sequence objectives ask of it.
//!
//! It is also an [`EncoderBackbone`] (its encoder), so encoder heads and fine-tuning take it as
//! they take a plain encoder.

use burn::prelude::*;

use super::decoder::TransformerDecoder;
use super::encoder::{EncoderBackbone, TransformerEncoder, TransformerEncoderConfig};
use super::kv_cache::KvCache;
use super::mask::AttentionMask;
use crate::error::{Error, Result};

/// Configuration of an [`EncoderDecoder`].
#[derive(Config, Debug)]
pub struct EncoderDecoderConfig {
    /// The encoder; the decoder layers take its width, heads, feed-forward size, dropout,
    /// LayerNorm placement and position encoding. Factorized embeddings and shared layers are
    /// not supported here.
    pub encoder: TransformerEncoderConfig,
    /// Number of decoder layers.
    pub decoder_layers: usize,
}

/// An encoder and a decoder over one shared token table.
#[derive(Module, Debug)]
pub struct EncoderDecoder {
    /// The encoder, which owns the shared token table.
    pub encoder: TransformerEncoder,
    /// The decoder.
    pub decoder: TransformerDecoder,
}

/// What a sequence-to-sequence objective needs of its backbone: the encoder's states for a
/// source, and the decoder's states for a target prefix reading them.
pub trait Seq2SeqBackbone: EncoderBackbone {
    /// Decoder states `[batch, len, hidden]` for `ids` `[batch, len]` at `positions` (default
    /// `0..len`), each seeing itself and the ids before it, and `memory` (the encoder's states)
    /// under `memory_mask`.
    fn decode(
        &self,
        ids: Tensor<2, Int>,
        positions: Option<Tensor<2, Int>>,
        memory: Tensor<3>,
        memory_mask: &AttentionMask,
    ) -> Tensor<3>;

    /// Decoder states `[batch, new, hidden]` for `ids` `[batch, new]` at `positions`, which
    /// follow the positions already in `cache`; their keys and values (and, on the first call,
    /// `memory`'s) join the cache. Step by step it gives what [`decode`](Self::decode) gives on
    /// the whole prefix, for one position's work per step.
    fn decode_cached(
        &self,
        ids: Tensor<2, Int>,
        positions: Tensor<2, Int>,
        memory: Tensor<3>,
        memory_mask: &AttentionMask,
        cache: &mut KvCache,
    ) -> Tensor<3>;
}

impl EncoderDecoderConfig {
    /// Checks sizes and what the encoder-decoder does not support.
    pub fn validate(&self) -> Result<()> {
        self.encoder.validate()?;
        if self.decoder_layers == 0 {
            return Err(Error::InvalidConfig(
                "decoder_layers must be positive".into(),
            ));
        }
        if self.encoder.embedding_width() != self.encoder.hidden_size {
            return Err(Error::InvalidConfig(
                "an encoder-decoder needs embeddings as wide as the model (no embedding_size)"
                    .into(),
            ));
        }
        if self.encoder.share_layers {
            return Err(Error::InvalidConfig(
                "an encoder-decoder does not share layers across depth (share_layers)".into(),
            ));
        }
        Ok(())
    }

    /// Builds the model.
    pub fn init(&self, device: &Device) -> Result<EncoderDecoder> {
        self.validate()?;
        Ok(EncoderDecoder {
            encoder: self.encoder.init(device)?,
            decoder: TransformerDecoder::new(&self.encoder, self.decoder_layers, device)?,
        })
    }

    /// Parameters by the arithmetic of the shapes (no output head).
    pub fn num_params(&self) -> usize {
        let e = &self.encoder;
        // A decoder layer is an encoder layer plus cross-attention and its norm.
        let layer = e.layer_params() + e.attention_params() + e.block.norm_params(e.hidden_size);
        e.num_params()
            + e.input_params(e.hidden_size)
            + self.decoder_layers * layer
            + e.final_norm_params()
            + e.block.relative_bias_params()
    }
}

impl EncoderBackbone for EncoderDecoder {
    fn embed(&self, ids: Tensor<2, Int>, segments: Option<Tensor<2, Int>>) -> Tensor<3> {
        self.encoder.embed(ids, segments)
    }

    fn encode(
        &self,
        ids: Tensor<2, Int>,
        segments: Option<Tensor<2, Int>>,
        mask: Option<&AttentionMask>,
    ) -> Tensor<3> {
        self.encoder.encode(ids, segments, mask)
    }

    fn token_embedding(&self) -> Tensor<2> {
        self.encoder.token_embedding()
    }

    fn embedding_size(&self) -> usize {
        self.encoder.embedding_size()
    }

    fn hidden_size(&self) -> usize {
        self.encoder.hidden_size()
    }

    fn num_segments(&self) -> usize {
        self.encoder.num_segments()
    }

    fn vocab_size(&self) -> usize {
        self.encoder.vocab_size()
    }

    fn max_positions(&self) -> usize {
        self.encoder.max_positions()
    }

    fn block(&self) -> Option<&super::BlockConfig> {
        self.encoder.block()
    }

    fn num_layers(&self) -> usize {
        self.encoder.num_layers()
    }
}

impl Seq2SeqBackbone for EncoderDecoder {
    fn decode(
        &self,
        ids: Tensor<2, Int>,
        positions: Option<Tensor<2, Int>>,
        memory: Tensor<3>,
        memory_mask: &AttentionMask,
    ) -> Tensor<3> {
        let tokens = self.encoder.embeddings.tokens.forward(ids);
        self.decoder
            .forward(tokens, positions, memory, memory_mask, None)
    }

    fn decode_cached(
        &self,
        ids: Tensor<2, Int>,
        positions: Tensor<2, Int>,
        memory: Tensor<3>,
        memory_mask: &AttentionMask,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        let tokens = self.encoder.embeddings.tokens.forward(ids);
        self.decoder
            .forward(tokens, Some(positions), memory, memory_mask, Some(cache))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockConfig;
    use crate::test_support::max_abs_diff;

    fn model(norm_first: bool) -> (Device, EncoderDecoder) {
        model_of(BlockConfig::new(4, 64).with_norm_first(norm_first))
    }

    fn model_of(block: BlockConfig) -> (Device, EncoderDecoder) {
        let device = Device::flex();
        let encoder = TransformerEncoderConfig::new(60, 32, 2, block)
            .with_dropout(0.0)
            .with_num_segments(0);
        let model = crate::util::random::init_seeded(&device, 5, || {
            EncoderDecoderConfig::new(encoder, 2).init(&device).unwrap()
        });
        (device, model)
    }

    /// Post-norm (BERT, BART), pre-norm, and T5's block with its relative bias: a few
    /// buckets, so that short texts reach the logarithmic ones.
    fn blocks() -> [BlockConfig; 3] {
        let block = BlockConfig::new(4, 64);
        let relative = crate::blocks::PositionEncoding::Relative {
            buckets: 8,
            max_distance: 6,
        };
        [
            block.clone(),
            block.clone().with_norm_first(true),
            block.t5_layout().with_positions(relative),
        ]
    }

    fn ids(device: &Device, rows: &[&[i64]]) -> Tensor<2, Int> {
        let len = rows[0].len();
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), len]), device)
    }

    /// Encoder states for a source whose last two tokens are padding, with their mask.
    fn memory(
        model: &EncoderDecoder,
        device: &Device,
        tail: [i64; 2],
    ) -> (Tensor<3>, AttentionMask) {
        let source = ids(device, &[&[2, 10, 11, 12, tail[0], tail[1]]]);
        let pad = Tensor::<2, Bool>::from_bool(
            TensorData::new(vec![false, false, false, false, true, true], [1, 6]),
            device,
        );
        let mask = AttentionMask::padding(pad);
        (model.encode(source, None, Some(&mask)), mask)
    }

    #[test]
    fn the_decoder_never_looks_ahead() {
        let _draws = crate::util::random::hold();
        for block in blocks() {
            let (device, model) = model_of(block);
            let (memory, mask) = memory(&model, &device, [0, 0]);
            let a = model.decode(
                ids(&device, &[&[3, 20, 21, 22, 23]]),
                None,
                memory.clone(),
                &mask,
            );
            let b = model.decode(ids(&device, &[&[3, 20, 21, 40, 41]]), None, memory, &mask);
            let part = |t: Tensor<3>, r: std::ops::Range<usize>| t.slice([0..1, r]);
            assert!(max_abs_diff(part(a.clone(), 0..3), part(b.clone(), 0..3)) < 1e-5);
            assert!(max_abs_diff(part(a, 3..5), part(b, 3..5)) > 1e-3);
        }
    }

    #[test]
    fn cross_attention_ignores_padded_source_positions_and_reads_the_rest() {
        let _draws = crate::util::random::hold();
        let (device, model) = model(false);
        let target = ids(&device, &[&[3, 20, 21]]);
        let (m1, mask) = memory(&model, &device, [0, 0]);
        let (m2, _) = memory(&model, &device, [50, 51]);
        // The padded encoder states themselves differ, but the decoder cannot see them.
        assert!(
            max_abs_diff(
                m1.clone().slice([0..1, 4..6]),
                m2.clone().slice([0..1, 4..6])
            ) > 1e-3
        );
        let a = model.decode(target.clone(), None, m1.clone(), &mask);
        let b = model.decode(target.clone(), None, m2, &mask);
        assert!(max_abs_diff(a.clone(), b) < 1e-5);
        // A change to a real source token does reach every decoder position.
        let source = ids(&device, &[&[2, 10, 30, 12, 0, 0]]);
        let m3 = model.encode(source, None, Some(&mask));
        let c = model.decode(target, None, m3, &mask);
        assert!(max_abs_diff(a.slice([0..1, 0..1]), c.slice([0..1, 0..1])) > 1e-3);
    }

    #[test]
    fn cached_decoding_equals_the_full_decoder_at_every_step() {
        let _draws = crate::util::random::hold();
        for block in blocks() {
            let (device, model) = model_of(block);
            let (memory, mask) = memory(&model, &device, [0, 0]);
            let target = ids(&device, &[&[3, 20, 21, 22, 23]]);
            let positions = ids(&device, &[&[4, 5, 6, 7, 8]]);
            let full = model.decode(
                target.clone(),
                Some(positions.clone()),
                memory.clone(),
                &mask,
            );
            let mut cache = KvCache::new();
            // Two positions at once, then one at a time.
            let mut steps = vec![model.decode_cached(
                target.clone().slice([0..1, 0..2]),
                positions.clone().slice([0..1, 0..2]),
                memory.clone(),
                &mask,
                &mut cache,
            )];
            for t in 2..5 {
                steps.push(model.decode_cached(
                    target.clone().slice([0..1, t..t + 1]),
                    positions.clone().slice([0..1, t..t + 1]),
                    memory.clone(),
                    &mask,
                    &mut cache,
                ));
            }
            assert_eq!(cache.len(), 5);
            assert!(max_abs_diff(full, Tensor::cat(steps, 1)) < 1e-5);
        }
    }

    #[test]
    fn explicit_positions_equal_the_default_ones_and_move_the_states() {
        let _draws = crate::util::random::hold();
        let (device, model) = model(false);
        let (memory, mask) = memory(&model, &device, [0, 0]);
        let target = ids(&device, &[&[3, 20, 21]]);
        let default = model.decode(target.clone(), None, memory.clone(), &mask);
        let same = model.decode(
            target.clone(),
            Some(ids(&device, &[&[0, 1, 2]])),
            memory.clone(),
            &mask,
        );
        let moved = model.decode(target, Some(ids(&device, &[&[4, 5, 6]])), memory, &mask);
        assert!(max_abs_diff(default.clone(), same) < 1e-6);
        assert!(max_abs_diff(default, moved) > 1e-3);
    }

    #[test]
    fn one_token_table_and_the_parameter_count_matches_the_arithmetic() {
        let _draws = crate::util::random::hold();
        for norm_first in [false, true] {
            let (_, model) = model(norm_first);
            let encoder = TransformerEncoderConfig::new(
                60,
                32,
                2,
                BlockConfig::new(4, 64).with_norm_first(norm_first),
            )
            .with_num_segments(0);
            let config = EncoderDecoderConfig::new(encoder, 2);
            assert_eq!(model.num_params(), config.num_params());
            // The decoder's own parameters, by hand: positions 512 * 32 + LayerNorm 2 * 32,
            // then per layer two attentions 2 * 4 * (32 * 32 + 32), the feed-forward
            // (32 * 64 + 64) + (64 * 32 + 32) and three LayerNorms 3 * 2 * 32 = 12,832; a final
            // LayerNorm with pre-LN. No token table: it is the encoder's.
            let own = 16_384 + 64 + 2 * 12_832 + if norm_first { 64 } else { 0 };
            assert_eq!(model.num_params() - model.encoder.num_params(), own);
        }
        // T5's block: RMSNorms of gains only, no biases, a relative bias table per stack.
        let [.., t5] = blocks();
        let (_, model) = model_of(t5.clone());
        let encoder = TransformerEncoderConfig::new(60, 32, 2, t5).with_num_segments(0);
        assert_eq!(
            model.num_params(),
            EncoderDecoderConfig::new(encoder, 2).num_params()
        );
        // Per decoder layer two attentions 2 * 4 * 32 * 32, the feed-forward 2 * 32 * 64 and
        // three norms 3 * 32 = 12,384; the embedding and final norms 2 * 32 and the table
        // 8 buckets * 4 heads.
        assert_eq!(
            model.num_params() - model.encoder.num_params(),
            2 * 12_384 + 2 * 32 + 32
        );
    }

    #[test]
    fn unsupported_or_empty_shapes_are_typed_errors() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let encoder = || TransformerEncoderConfig::new(60, 32, 2, BlockConfig::new(4, 64));
        for config in [
            EncoderDecoderConfig::new(encoder(), 0),
            EncoderDecoderConfig::new(encoder().with_embedding_size(Some(16)), 2),
            EncoderDecoderConfig::new(encoder().with_share_layers(true), 2),
        ] {
            assert!(matches!(config.init(&device), Err(Error::InvalidConfig(_))));
        }
    }
}
