//! The Transformer encoder: a layer (self-attention + feed-forward, post-LN as BERT or pre-LN
//! as GPT-2), a stack of them over [`Embeddings`], and the [`EncoderBackbone`] capability that
//! objectives ask of it.
//!
//! A causal language model is this same encoder under a causal mask (x-transformers' `Decoder`
//! is its `Encoder` with `causal = True`), so one backbone serves MLM and CLM alike.

use burn::nn::Linear;
use burn::prelude::*;

use super::block::BlockConfig;
use super::dropout::Dropout;
use super::embedding::{Embeddings, EmbeddingsConfig};
use super::kv_cache::KvCache;
pub use super::layer::EncoderLayer;
use super::mask::AttentionMask;
use super::norm::LayerNorm;
use super::positions::{PositionEncoding, Positions};
use super::relative_bias::RelativeBias;
use super::{linear_3d, normal_linear};
use crate::error::{Error, Result};

mod layer_reads;
pub use layer_reads::LayerStates;

/// Configuration of a [`TransformerEncoder`] backbone: the stack's sizes and embeddings, and
/// the [`BlockConfig`] every layer has.
#[derive(Config, Debug)]
pub struct TransformerEncoderConfig {
    /// Vocabulary size; must equal the tokenizer's.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Number of layers.
    pub num_layers: usize,
    /// The shape of every layer: attention, feed-forward, norms, positions.
    pub block: BlockConfig,
    /// Longest sequence. Default 512.
    #[config(default = 512)]
    pub max_positions: usize,
    /// Table row of the first position (RoBERTa: 2, after its padding id); sequences may be
    /// `max_positions - position_offset` long. Default 0.
    #[config(default = 0)]
    pub position_offset: usize,
    /// Segment ids the embeddings know (0 for none). Default 2.
    #[config(default = 2)]
    pub num_segments: usize,
    /// Dropout everywhere (embeddings, attention weights, residual branches). Default 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Factorized embedding (ALBERT): embedding tables of this width, projected up to
    /// `hidden_size`. Default none (tables as wide as the model).
    #[config(default = "None")]
    pub embedding_size: Option<usize>,
    /// Cross-layer parameter sharing (ALBERT): one layer's weights applied `num_layers` times.
    /// Default false.
    #[config(default = false)]
    pub share_layers: bool,
    /// A norm (the block's kind) over the summed embeddings (BERT, BART, ModernBERT); GPT-2
    /// and Llama have none. Default true.
    #[config(default = true)]
    pub embedding_norm: bool,
    /// Factor on the token vectors before positions are added (BART with `scale_embedding`:
    /// √width). Default 1.
    #[config(default = 1.0)]
    pub embedding_scale: f64,
}

/// Embeddings followed by a stack of encoder layers.
#[derive(Module, Debug)]
pub struct TransformerEncoder {
    /// Token, position and segment embeddings.
    pub embeddings: Embeddings,
    /// Projection from a factorized embedding width up to the model width (ALBERT).
    projection: Option<Linear>,
    /// The layers: one per depth, or a single one applied `depth` times when shared.
    layers: Vec<EncoderLayer>,
    depth: usize,
    /// Final norm, present with pre-norm layers.
    final_norm: Option<LayerNorm>,
    /// The relative position bias every layer reads, with relative positions (T5).
    relative_bias: Option<RelativeBias>,
    hidden_size: usize,
    /// The block's shape, for the positions each forward computes.
    #[module(skip)]
    block: BlockConfig,
}

/// What an encoder objective needs of its backbone: hidden states for token ids under a mask,
/// and the token table a tied output head reuses.
pub trait EncoderBackbone {
    /// The input embeddings `[batch, len, embedding]` of `ids` (tokens, positions, segments,
    /// normalised): what a model sharing this backbone's embeddings reads (ELECTRA's generator).
    fn embed(&self, ids: Tensor<2, Int>, segments: Option<Tensor<2, Int>>) -> Tensor<3>;
    /// Hidden states `[batch, len, hidden]` for `ids` `[batch, len]`.
    fn encode(
        &self,
        ids: Tensor<2, Int>,
        segments: Option<Tensor<2, Int>>,
        mask: Option<&AttentionMask>,
    ) -> Tensor<3>;
    /// The token embedding table `[vocab, embedding]`, shared with a tied LM head.
    fn token_embedding(&self) -> Tensor<2>;
    /// Width of the token embedding table: what a head sized for it needs, read without
    /// drawing a lazy table's values (the stream another thread may hold).
    fn embedding_size(&self) -> usize;
    /// Width of the hidden states.
    fn hidden_size(&self) -> usize;
    /// Segment ids the embeddings know (0 for none).
    fn num_segments(&self) -> usize;
    /// Vocabulary size.
    fn vocab_size(&self) -> usize;
    /// Longest sequence accepted.
    fn max_positions(&self) -> usize;
    /// Depth: layers a token passes through (a shared layer counts at each depth).
    fn num_layers(&self) -> usize;
    /// The shape of its layers, where it is built from a [`BlockConfig`]: what a model that
    /// reads its embeddings (ELECTRA's generator) shares, since rotary or ALiBi positions are
    /// not in the embeddings. Default none.
    fn block(&self) -> Option<&BlockConfig> {
        None
    }
}

impl TransformerEncoderConfig {
    /// Checks sizes and rates.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("max_positions", self.max_positions),
            ("embedding_size", self.embedding_size.unwrap_or(1)),
        ] {
            if value == 0 {
                return Err(Error::InvalidConfig(format!("{name} must be positive")));
            }
        }
        if self.position_offset >= self.max_positions {
            return Err(Error::InvalidConfig(format!(
                "position_offset {} leaves no row of the {} positions",
                self.position_offset, self.max_positions
            )));
        }
        if !(self.embedding_scale.is_finite() && self.embedding_scale > 0.0) {
            return Err(Error::InvalidConfig(format!(
                "embedding_scale must be positive, not {}",
                self.embedding_scale
            )));
        }
        crate::error::check_rate("dropout", self.dropout)?;
        if self.share_layers && self.block.window.is_some() {
            return Err(Error::InvalidConfig(
                "a window with share_layers: one shared layer cannot be both local and global"
                    .into(),
            ));
        }
        self.block.validate(self.hidden_size)
    }

    /// The same stack with its block changed by `f`, as
    /// `config.map_block(|b| b.with_norm_first(true))`.
    pub fn map_block(mut self, f: impl FnOnce(BlockConfig) -> BlockConfig) -> Self {
        self.block = f(self.block);
        self
    }

    /// The encoder layer of this shape at `depth` (local or global, as the block says).
    pub fn layer(&self, depth: usize, device: &Device) -> Result<EncoderLayer> {
        let (block, hidden) = (&self.block, self.hidden_size);
        let attention = block
            .attention(hidden, self.dropout)
            .with_local(block.is_local(depth));
        Ok(EncoderLayer {
            attention: attention.init(device)?,
            attention_norm: block
                .attention_norm_at(depth)
                .then(|| block.norm(hidden, device)),
            ffn: block.ffn(hidden, device),
            ffn_norm: block.norm(hidden, device),
            dropout: Dropout::new(self.dropout),
            norm_first: block.norm_first,
        })
    }

    /// The embeddings' configuration at `width`.
    pub(crate) fn embeddings(&self, width: usize) -> EmbeddingsConfig {
        EmbeddingsConfig::new(self.vocab_size, width)
            .with_max_positions(self.max_positions)
            .with_position_offset(self.position_offset)
            .with_positions(self.block.positions)
            .with_num_segments(self.num_segments)
            .with_dropout(self.dropout)
            .with_layer_norm_eps(self.block.norm_eps)
            .with_norm_kind(self.block.norm)
            .with_norm_bias(self.block.norm_bias)
            .with_norm(self.embedding_norm)
            .with_token_scale(self.embedding_scale)
    }

    /// The final norm of a pre-norm stack.
    pub(crate) fn final_norm(&self, device: &Device) -> Option<LayerNorm> {
        self.block
            .norm_first
            .then(|| self.block.norm(self.hidden_size, device))
    }

    /// Builds the backbone.
    pub fn init(&self, device: &Device) -> Result<TransformerEncoder> {
        self.validate()?;
        let distinct = if self.share_layers {
            1
        } else {
            self.num_layers
        };
        let layers = (0..distinct)
            .map(|depth| self.layer(depth, device))
            .collect::<Result<Vec<_>>>()?;
        let width = self.embedding_width();
        Ok(TransformerEncoder {
            projection: self
                .embedding_size
                .map(|e| normal_linear(e, self.hidden_size, 0.02, device)),
            embeddings: self.embeddings(width).init(device),
            layers,
            depth: self.num_layers,
            final_norm: self.final_norm(device),
            relative_bias: self.block.relative_bias(false, device),
            hidden_size: self.hidden_size,
            block: self.block.clone(),
        })
    }

    /// Width of the embedding tables: `embedding_size`, or `hidden_size` when not factorized.
    pub fn embedding_width(&self) -> usize {
        self.embedding_size.unwrap_or(self.hidden_size)
    }

    /// Parameters of the backbone by the arithmetic of its shapes (no LM head).
    pub fn num_params(&self) -> usize {
        let (h, e) = (self.hidden_size, self.embedding_width());
        let embeddings = (self.vocab_size + self.num_segments) * e + self.input_params(e);
        let projection = self.embedding_size.map_or(0, |e| e * h + h);
        let distinct = if self.share_layers {
            1
        } else {
            self.num_layers
        };
        let unnormed = usize::from(!self.block.first_attention_norm);
        embeddings
            + projection
            + distinct * self.layer_params()
            + self.final_norm_params()
            + self.block.relative_bias_params()
            - unnormed * self.block.norm_params(h)
    }

    /// Parameters of the position table (if learned) and the embedding norm (if any) at
    /// `width`.
    pub(crate) fn input_params(&self, width: usize) -> usize {
        let positions = match self.block.positions {
            PositionEncoding::Learned => self.max_positions * width,
            PositionEncoding::ScaledSinusoidal => 1,
            _ => 0,
        };
        let norm = match self.embedding_norm {
            true => self.block.norm_params(width),
            false => 0,
        };
        positions + norm
    }

    /// Parameters of one attention.
    pub(crate) fn attention_params(&self) -> usize {
        self.block.attention_params(self.hidden_size)
    }

    /// Parameters of one encoder layer: attention, feed-forward, two norms.
    pub(crate) fn layer_params(&self) -> usize {
        let h = self.hidden_size;
        self.attention_params() + self.block.ffn_params(h) + 2 * self.block.norm_params(h)
    }

    /// Parameters of the final norm pre-norm stacks end with.
    pub(crate) fn final_norm_params(&self) -> usize {
        usize::from(self.block.norm_first) * self.block.norm_params(self.hidden_size)
    }
}

impl TransformerEncoder {
    /// The same encoder (the same weights) with every dropout off: what a policy and its
    /// frozen reference must be in PPO and DPO, or the policy differs from its reference
    /// before its first update (TRL's `disable_dropout`).
    pub fn without_dropout(self) -> Self {
        Self {
            embeddings: self.embeddings.without_dropout(),
            layers: self
                .layers
                .into_iter()
                .map(EncoderLayer::without_dropout)
                .collect(),
            ..self
        }
    }

    /// Everything after the embeddings: the projection (if factorized), every layer with the
    /// first `keys` rows as keys (see [`EncoderLayer::forward_two_stream`]) and the rows at
    /// `positions` `[batch, len]`, and the final norm of a pre-norm stack.
    pub(crate) fn stack(
        &self,
        x: Tensor<3>,
        keys: usize,
        mask: Option<&AttentionMask>,
        positions: &Tensor<2, Int>,
    ) -> Tensor<3> {
        let [batch, _] = positions.dims();
        let key_positions = positions.clone().slice([0..batch, 0..keys]);
        let positions = self.positions(positions, &key_positions);
        self.stack_with(x, |_, layer, x| {
            layer.forward_two_stream(x, keys, mask, &positions)
        })
    }

    /// Hidden states `[batch, len, hidden]` of one forward pass over `input`: its ids at its
    /// positions (several texts packed in one row, each from position 0; left-padded rows),
    /// with its segments, under its mask. With a cache the ids are new positions that follow
    /// the cached ones (segment 0 unless given), the mask is `[batch, _, new, cached + new]`,
    /// and their keys and values join the cache: called once on a prompt (prefill) and then
    /// once per token, it gives what the whole sequence gives under the same mask, for one
    /// position's work per token.
    pub fn forward(&self, input: StackInput<'_>) -> Tensor<3> {
        let StackInput {
            ids,
            positions,
            segments,
            mask,
            cache,
        } = input;
        let [batch, len] = ids.dims();
        let device = ids.device();
        let Some(cache) = cache else {
            let (x, positions) = match positions {
                Some(at) => (self.embeddings.forward_at(ids, at.clone(), segments), at),
                None => (
                    self.embeddings.forward(ids, segments),
                    default_positions(batch, len, &device),
                ),
            };
            return self.stack(x, len, mask, &positions);
        };
        let positions = positions.unwrap_or_else(|| {
            default_positions(batch, len, &device).add_scalar(cache.len() as i64)
        });
        let segments = segments.or_else(|| (self.num_segments() > 0).then(|| ids.zeros_like()));
        let x = self.embeddings.forward_at(ids, positions.clone(), segments);
        let keys = cache.key_positions(&self.block, positions.clone());
        let positions = self.positions(&positions, &keys);
        self.stack_with(x, |depth, layer, x| {
            layer.forward_cached(x, cache.own(depth), mask, &positions)
        })
    }

    /// Hidden states `[batch, len, hidden]` of vectors `x` `[batch, len, embedding]` that are
    /// embedded already (a Vision Transformer's patches): the stack alone, at positions
    /// `0..len`, under `mask`.
    pub fn encode_embedded(&self, x: Tensor<3>, mask: Option<&AttentionMask>) -> Tensor<3> {
        let [batch, len, _] = x.dims();
        let at = default_positions(batch, len, &x.device());
        self.stack(x, len, mask, &at)
    }

    /// What every layer reads of the positions of rows at `queries` attending to keys at
    /// `keys`.
    fn positions(&self, queries: &Tensor<2, Int>, keys: &Tensor<2, Int>) -> Positions {
        let relative = self.relative_bias.as_ref();
        (self.block).positions(self.hidden_size, queries, keys, relative)
    }

    /// The projection (if factorized), `layer` applied at every depth, and the final norm of
    /// a pre-norm stack.
    fn stack_with(
        &self,
        mut x: Tensor<3>,
        mut layer: impl FnMut(usize, &EncoderLayer, Tensor<3>) -> Tensor<3>,
    ) -> Tensor<3> {
        if let Some(projection) = &self.projection {
            x = linear_3d(projection, x);
        }
        for depth in 0..self.depth {
            x = layer(depth, &self.layers[depth % self.layers.len()], x);
        }
        match &self.final_norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }
}

/// What one forward pass of a stack reads ([`TransformerEncoder::forward`]): token ids, and
/// where given their positions, their segments, the attention mask and a key/value cache, as
/// x-transformers takes them by keyword.
#[derive(Debug)]
pub struct StackInput<'a> {
    /// Token ids `[batch, len]`.
    pub ids: Tensor<2, Int>,
    /// Their positions `[batch, len]`. Default `0..len` in every row (after the cached ones,
    /// with a cache).
    pub positions: Option<Tensor<2, Int>>,
    /// Their segment ids `[batch, len]`. Default none (segment 0 with a cache).
    pub segments: Option<Tensor<2, Int>>,
    /// The attention mask. Default none: every position sees every key.
    pub mask: Option<&'a AttentionMask>,
    /// The keys and values of earlier positions, which the new ones join.
    pub cache: Option<&'a mut KvCache>,
}

impl<'a> StackInput<'a> {
    /// `ids` at the default positions, without segments, mask or cache.
    pub fn new(ids: Tensor<2, Int>) -> Self {
        Self {
            ids,
            positions: None,
            segments: None,
            mask: None,
            cache: None,
        }
    }

    /// At `positions` `[batch, len]`.
    pub fn at(self, positions: Tensor<2, Int>) -> Self {
        Self {
            positions: Some(positions),
            ..self
        }
    }

    /// With `segments`, if any.
    pub fn with_segments(self, segments: Option<Tensor<2, Int>>) -> Self {
        Self { segments, ..self }
    }

    /// Under `mask`, if any.
    pub fn with_mask(self, mask: Option<&'a AttentionMask>) -> Self {
        Self { mask, ..self }
    }

    /// Reading and joining `cache`.
    pub fn with_cache(self, cache: &'a mut KvCache) -> Self {
        Self {
            cache: Some(cache),
            ..self
        }
    }
}

/// Positions `0..len` in each of `batch` rows.
pub fn default_positions(batch: usize, len: usize, device: &Device) -> Tensor<2, Int> {
    Tensor::<1, Int>::arange(0..len as i64, device)
        .reshape([1, len])
        .expand([batch, len])
}

impl EncoderBackbone for TransformerEncoder {
    fn embed(&self, ids: Tensor<2, Int>, segments: Option<Tensor<2, Int>>) -> Tensor<3> {
        self.embeddings.forward(ids, segments)
    }

    fn encode(
        &self,
        ids: Tensor<2, Int>,
        segments: Option<Tensor<2, Int>>,
        mask: Option<&AttentionMask>,
    ) -> Tensor<3> {
        self.forward(StackInput::new(ids).with_segments(segments).with_mask(mask))
    }

    fn token_embedding(&self) -> Tensor<2> {
        self.embeddings.tokens.weight.val()
    }

    fn embedding_size(&self) -> usize {
        self.embeddings.tokens.weight.lazy_shape().dims::<2>()[1]
    }

    fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    fn num_segments(&self) -> usize {
        self.embeddings.num_segments()
    }

    fn vocab_size(&self) -> usize {
        self.embeddings.vocab_size()
    }

    fn max_positions(&self) -> usize {
        self.embeddings.max_positions()
    }

    fn num_layers(&self) -> usize {
        self.depth
    }

    fn block(&self) -> Option<&BlockConfig> {
        Some(&self.block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::PositionEncoding;
    use crate::test_support::max_abs_diff;

    #[test]
    fn parameter_count_matches_the_arithmetic() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        for norm_first in [false, true] {
            let cfg = TransformerEncoderConfig::new(
                100,
                32,
                2,
                BlockConfig::new(4, 64).with_norm_first(norm_first),
            );
            assert_eq!(cfg.init(&device).unwrap().num_params(), cfg.num_params());
        }
        // The scalar of scaled sines, T5's bias table, the queries' and keys' norms.
        for block in [
            BlockConfig::new(4, 64).with_positions(PositionEncoding::ScaledSinusoidal),
            BlockConfig::new(4, 64).t5_layout().with_glu(true),
            BlockConfig::new(4, 64).with_qk_norm(true),
        ] {
            let cfg = TransformerEncoderConfig::new(100, 32, 2, block);
            assert_eq!(cfg.init(&device).unwrap().num_params(), cfg.num_params());
        }
    }

    #[test]
    fn factorized_and_shared_parameter_count_matches_the_hand_arithmetic() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let cfg = TransformerEncoderConfig::new(100, 32, 3, BlockConfig::new(4, 64))
            .with_embedding_size(Some(16));
        // Embeddings 100*16 + 512*16 + 2*16 + LayerNorm 2*16 = 9,856; projection 16*32 + 32 =
        // 544; one layer 4*(32*32 + 32) + (32*64 + 64) + (64*32 + 32) + 2*2*32 = 8,544.
        assert_eq!(cfg.num_params(), 9_856 + 544 + 3 * 8_544);
        assert_eq!(cfg.init(&device).unwrap().num_params(), cfg.num_params());
        let shared = cfg.with_share_layers(true);
        assert_eq!(shared.num_params(), 9_856 + 544 + 8_544);
        assert_eq!(
            shared.init(&device).unwrap().num_params(),
            shared.num_params()
        );
    }

    #[test]
    fn a_shared_layer_is_applied_at_every_depth() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let cfg = TransformerEncoderConfig::new(50, 32, 1, BlockConfig::new(4, 64))
            .with_dropout(0.0)
            .with_share_layers(true);
        let one = cfg.init(&device).unwrap();
        let mut three = one.clone();
        three.depth = 3;
        let ids = Tensor::<2, Int>::from_ints([[5, 6, 7]], &device);
        let a = one.encode(ids.clone(), None, None);
        let b = three.encode(ids, None, None);
        assert_eq!(one.num_params(), three.num_params());
        assert!(max_abs_diff(a, b) > 1e-3);
    }

    #[test]
    fn zero_layers_or_bad_heads_are_typed_errors() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        assert!(matches!(
            TransformerEncoderConfig::new(100, 30, 2, BlockConfig::new(4, 64)).init(&device),
            Err(Error::HeadsDoNotDivide { .. })
        ));
        assert!(matches!(
            TransformerEncoderConfig::new(100, 32, 0, BlockConfig::new(4, 64)).init(&device),
            Err(Error::InvalidConfig(_))
        ));
    }

    /// A Llama-style block: pre-RMSNorm, SwiGLU, no biases, 4 query heads sharing 2 key/value
    /// heads, positions as `positions`.
    fn modern(positions: PositionEncoding) -> BlockConfig {
        BlockConfig::new(4, 48)
            .with_kv_heads(Some(2))
            .with_qkv_bias(false)
            .with_output_bias(false)
            .with_activation(crate::blocks::Activation::Silu)
            .with_glu(true)
            .with_ffn_bias(false)
            .with_norm(crate::blocks::NormKind::RmsNorm)
            .with_norm_eps(1e-6)
            .with_norm_first(true)
            .with_positions(positions)
    }

    /// The stacks the cache and causality tests run: pre-LN with a factorized embedding and
    /// shared layers (every path of the stack), and the modern block with rotary positions,
    /// with ALiBi, and with a local layer after a global one.
    fn stacks(device: &Device) -> Vec<TransformerEncoder> {
        let classic =
            TransformerEncoderConfig::new(50, 32, 3, BlockConfig::new(4, 64).with_norm_first(true))
                .with_embedding_size(Some(16))
                .with_share_layers(true);
        let modern = |p| {
            TransformerEncoderConfig::new(50, 32, 2, modern(p))
                .with_num_segments(0)
                .with_embedding_norm(false)
        };
        // ModernBERT's pattern: layer 0 global, layer 1 local (two keys either side, its own
        // rotary base).
        let windowed = modern(PositionEncoding::Rotary { theta: 100.0 }).map_block(|b| {
            b.with_window(Some(2))
                .with_global_every(2)
                .with_local_theta(Some(30.0))
        });
        [
            classic,
            modern(PositionEncoding::Rotary { theta: 100.0 }),
            modern(PositionEncoding::Alibi),
            windowed,
        ]
        .into_iter()
        .map(|config| {
            crate::util::random::init_seeded(device, 3, || {
                config.with_dropout(0.0).init(device).unwrap()
            })
        })
        .collect()
    }

    #[test]
    fn cached_decoding_equals_the_full_forward_at_every_step() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        for model in stacks(&device) {
            let rows: [&[i64]; 2] = [&[0, 0, 5, 6, 7, 8, 9, 10], &[1, 5, 8, 9, 11, 12, 13, 14]];
            let pads = [2, 0];
            let len = rows[0].len();
            let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(flat, [2, len]), &device);
            let positions: Vec<i64> = pads
                .iter()
                .flat_map(|&p| (0..len).map(move |t| t.saturating_sub(p) as i64))
                .collect();
            let positions =
                Tensor::<2, Int>::from_data(TensorData::new(positions, [2, len]), &device);
            let whole = AttentionMask::cached_causal(&pads, 0, len, &device);
            let full = model.forward(
                StackInput::new(ids.clone())
                    .at(positions.clone())
                    .with_mask(Some(&whole))
                    .with_cache(&mut KvCache::new()),
            );
            // Prefill four positions, then one at a time.
            let mut cache = KvCache::new();
            let prefill = 4;
            let first = AttentionMask::cached_causal(&pads, 0, prefill, &device);
            let mut steps = vec![
                model.forward(
                    StackInput::new(ids.clone().slice([0..2, 0..prefill]))
                        .at(positions.clone().slice([0..2, 0..prefill]))
                        .with_mask(Some(&first))
                        .with_cache(&mut cache),
                ),
            ];
            for t in prefill..len {
                let mask = AttentionMask::cached_causal(&pads, t, 1, &device);
                steps.push(
                    model.forward(
                        StackInput::new(ids.clone().slice([0..2, t..t + 1]))
                            .at(positions.clone().slice([0..2, t..t + 1]))
                            .with_mask(Some(&mask))
                            .with_cache(&mut cache),
                    ),
                );
                assert_eq!(cache.len(), t + 1);
            }
            let cached = Tensor::cat(steps, 1);
            // Real positions only: a padding query's state is never read.
            let real = |t: Tensor<3>| {
                Tensor::cat(
                    vec![t.clone().slice([0..1, 2..len]), t.slice([1..2, 2..len])],
                    1,
                )
            };
            assert!(max_abs_diff(real(full.clone()), real(cached)) < 1e-5);
            let segments = |n| (model.num_segments() > 0).then(|| Tensor::zeros([1, n], &device));
            // And the second row equals the ordinary causal forward of `encode`.
            let unpadded = model.encode(
                ids.slice([1..2, 0..len]),
                segments(len),
                Some(&AttentionMask::causal(len, &device)),
            );
            let row = full.clone().slice([1..2, 0..len]);
            assert!(max_abs_diff(unpadded, row) < 1e-5);
            // The padded first row's real positions equal its prompt run alone: each row's
            // own positions reach the rotary tables and the ALiBi bias.
            let alone = model.encode(
                Tensor::<2, Int>::from_ints([[5, 6, 7, 8, 9, 10]], &device),
                segments(len - 2),
                Some(&AttentionMask::causal(len - 2, &device)),
            );
            let row = full.slice([0..1, 2..len]);
            assert!(max_abs_diff(alone, row) < 1e-5);
        }
    }

    #[test]
    fn relative_positions_reach_every_layer_and_only_differences_count() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        for model in stacks(&device).into_iter().skip(1) {
            let ids = Tensor::<2, Int>::from_ints([[5, 6, 7, 8, 9]], &device);
            let at =
                |start: i64| Tensor::<1, Int>::arange(start..start + 5, &device).reshape([1, 5]);
            let base = model.forward(StackInput::new(ids.clone()).at(at(0)));
            // The same text further along: rotary and ALiBi see only distances.
            let moved = model.forward(StackInput::new(ids.clone()).at(at(7)));
            assert!(max_abs_diff(base.clone(), moved) < 1e-4);
            // Positions matter: the same tokens in another order at the same places differ,
            // and so do the same tokens given other relative positions.
            let spread = Tensor::<2, Int>::from_ints([[0, 2, 4, 6, 8]], &device);
            let out = model.forward(StackInput::new(ids).at(spread));
            assert!(max_abs_diff(base, out) > 1e-3);
        }
    }

    #[test]
    fn a_local_layer_sees_only_its_window_and_a_global_one_everything() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        // One layer, bidirectional: local (every layer) or global.
        let one = |global_every| {
            let block = modern(PositionEncoding::Rotary { theta: 100.0 })
                .with_window(Some(2))
                .with_global_every(global_every);
            let config = TransformerEncoderConfig::new(50, 32, 1, block)
                .with_num_segments(0)
                .with_dropout(0.0);
            crate::util::random::init_seeded(&device, 4, || config.init(&device).unwrap())
        };
        let a = Tensor::<2, Int>::from_ints([[5, 6, 7, 8, 9, 10, 11]], &device);
        let b = Tensor::<2, Int>::from_ints([[5, 6, 7, 8, 9, 10, 40]], &device);
        let row = |h: &Tensor<3>, i: usize| h.clone().slice([0..1, i..i + 1]);
        let local = one(0);
        let (ha, hb) = (
            local.encode(a.clone(), None, None),
            local.encode(b.clone(), None, None),
        );
        // Token 6 changed: rows 0..4 lie more than two positions away, rows 4..7 within.
        for i in 0..4 {
            assert!(
                max_abs_diff(row(&ha, i), row(&hb, i)) < 1e-6,
                "row {i} saw past its window"
            );
        }
        assert!(max_abs_diff(row(&ha, 4), row(&hb, 4)) > 1e-4);
        let global = one(1);
        let (ha, hb) = (global.encode(a, None, None), global.encode(b, None, None));
        assert!(
            max_abs_diff(row(&ha, 0), row(&hb, 0)) > 1e-4,
            "a global layer sees all"
        );
    }

    #[test]
    fn a_block_it_cannot_build_is_a_typed_error_naming_the_field() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let build = |block: BlockConfig| {
            TransformerEncoderConfig::new(50, 30, 1, block)
                .init(&device)
                .unwrap_err()
                .to_string()
        };
        // Six heads of 5 features: rotary pairs need an even width.
        let odd = build(
            BlockConfig::new(6, 40).with_positions(PositionEncoding::Rotary { theta: 10_000.0 }),
        );
        assert!(odd.contains("rotary") && odd.contains("not 5"), "{odd}");
        let kv = build(BlockConfig::new(3, 40).with_kv_heads(Some(2)));
        assert!(
            kv.contains("kv_heads 2") && kv.contains("num_heads 3"),
            "{kv}"
        );
        let theta = build(
            BlockConfig::new(3, 40)
                .with_head_size(Some(8))
                .with_positions(PositionEncoding::Rotary { theta: 0.0 }),
        );
        assert!(theta.contains("rotary theta"), "{theta}");
        let window = build(BlockConfig::new(3, 40).with_window(Some(0)));
        assert!(window.contains("window"), "{window}");
        let relative = |buckets, max_distance| {
            build(
                BlockConfig::new(3, 40).with_positions(PositionEncoding::Relative {
                    buckets,
                    max_distance,
                }),
            )
        };
        for (buckets, distance) in [(2, 128), (32, 16)] {
            let err = relative(buckets, distance);
            assert!(
                err.contains(&format!("not {buckets} buckets up to {distance}")),
                "{err}"
            );
        }
        let scale = build(BlockConfig::new(3, 40).with_attention_scale(Some(0.0)));
        assert!(scale.contains("attention_scale"), "{scale}");
    }

    #[test]
    fn a_causal_stack_never_looks_ahead() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let model = TransformerEncoderConfig::new(50, 32, 2, BlockConfig::new(4, 64))
            .with_dropout(0.0)
            .init(&device)
            .unwrap();
        let mask = AttentionMask::causal(6, &device);
        let a = Tensor::<2, Int>::from_ints([[5, 6, 7, 8, 9, 10]], &device);
        let b = Tensor::<2, Int>::from_ints([[5, 6, 7, 8, 40, 41]], &device);
        let ha = model.encode(a, None, Some(&mask));
        let hb = model.encode(b, None, Some(&mask));
        let part = |h: &Tensor<3>, r: std::ops::Range<usize>| h.clone().slice([0..1, r]);
        let diff = |r: std::ops::Range<usize>| max_abs_diff(part(&ha, r.clone()), part(&hb, r));
        assert!(diff(0..4) < 1e-5, "prefix changed by later tokens");
        assert!(diff(4..6) > 1e-3, "later positions did not react");
    }
}
