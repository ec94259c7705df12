//! The Transformer encoder: a layer (self-attention + feed-forward, post-LN as BERT or pre-LN
//! as GPT-2), a stack of them over [`Embeddings`], and the [`EncoderBackbone`] capability that
//! objectives ask of it.
//!
//! A causal language model is this same encoder under a causal mask (x-transformers' `Decoder`
//! is its `Encoder` with `causal = True`), so one backbone serves MLM and CLM alike.

use burn::nn::Linear;
use burn::prelude::*;

use super::attention::{MultiHeadAttention, MultiHeadAttentionConfig};
use super::dropout::Dropout;
use super::embedding::{Embeddings, EmbeddingsConfig, PositionEncoding};
use super::feed_forward::{Activation, FeedForward, FeedForwardConfig};
use super::kv_cache::{KeysValues, KvCache};
use super::layer_norm::LayerNorm;
use super::mask::AttentionMask;
use super::{linear_3d, normal_linear};
use crate::error::{Error, Result};

/// Configuration of a [`TransformerEncoder`] backbone.
#[derive(Config, Debug)]
pub struct TransformerEncoderConfig {
    /// Vocabulary size; must equal the tokenizer's.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Number of layers.
    pub num_layers: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_heads: usize,
    /// Inner width of the feed-forward networks.
    pub ffn_size: usize,
    /// Longest sequence. Default 512.
    #[config(default = 512)]
    pub max_positions: usize,
    /// Position encoding. Default learned.
    #[config(default = "PositionEncoding::Learned")]
    pub positions: PositionEncoding,
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
    /// LayerNorm before each sub-layer (GPT-2) instead of after the residual (BERT). Default false.
    #[config(default = false)]
    pub norm_first: bool,
    /// LayerNorm epsilon. Default 1e-12.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
    /// Factorized embedding (ALBERT): embedding tables of this width, projected up to
    /// `hidden_size`. Default none (tables as wide as the model).
    #[config(default = "None")]
    pub embedding_size: Option<usize>,
    /// Cross-layer parameter sharing (ALBERT): one layer's weights applied `num_layers` times.
    /// Default false.
    #[config(default = false)]
    pub share_layers: bool,
    /// The GELU of the feed-forward networks. Default exact (BERT); GPT-2 and ALBERT use the
    /// tanh approximation.
    #[config(default = "Activation::Gelu")]
    pub activation: Activation,
    /// LayerNorm over the summed embeddings (BERT, BART); GPT-2 has none. Default true.
    #[config(default = true)]
    pub embedding_norm: bool,
    /// Factor on the token vectors before positions are added (BART with `scale_embedding`:
    /// √width). Default 1.
    #[config(default = 1.0)]
    pub embedding_scale: f64,
}

/// One encoder layer.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    attention: MultiHeadAttention,
    attention_norm: LayerNorm,
    ffn: FeedForward,
    ffn_norm: LayerNorm,
    dropout: Dropout,
    norm_first: bool,
}

impl EncoderLayer {
    /// The same layer without dropout, on its residual branches or its attention weights.
    fn without_dropout(self) -> Self {
        Self {
            attention: self.attention.without_dropout(),
            dropout: Dropout::new(0.0),
            ..self
        }
    }

    /// Applies the layer to `[batch, len, hidden]`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&AttentionMask>) -> Tensor<3> {
        let len = x.dims()[1];
        self.forward_two_stream(x, len, mask)
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
    ) -> Tensor<3> {
        self.sublayers(x, |h| {
            let [batch, len, width] = h.dims();
            let content = if keys < len {
                h.clone().slice([0..batch, 0..keys, 0..width])
            } else {
                h.clone()
            };
            self.attention.forward(h, content, mask)
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
    ) -> Tensor<3> {
        self.sublayers(x, |h| self.attention.forward_cached(h, cache, mask))
    }

    /// The attention sub-layer with `attend` as its attention, then the feed-forward one.
    fn sublayers(&self, x: Tensor<3>, attend: impl FnOnce(Tensor<3>) -> Tensor<3>) -> Tensor<3> {
        let (dropout, first) = (&self.dropout, self.norm_first);
        let x = residual(x, &self.attention_norm, dropout, first, attend);
        residual(x, &self.ffn_norm, dropout, first, |h| self.ffn.forward(h))
    }
}

/// One residual sub-layer: `x + dropout(f(norm(x)))` when `norm_first` (pre-LN, GPT-2),
/// `norm(x + dropout(f(x)))` otherwise (post-LN, BERT and the original Transformer).
pub(crate) fn residual(
    x: Tensor<3>,
    norm: &LayerNorm,
    dropout: &Dropout,
    norm_first: bool,
    f: impl FnOnce(Tensor<3>) -> Tensor<3>,
) -> Tensor<3> {
    if norm_first {
        x.clone() + dropout.forward(f(norm.forward(x)))
    } else {
        norm.forward(x.clone() + dropout.forward(f(x)))
    }
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
    /// Final LayerNorm, present with pre-LN layers.
    final_norm: Option<LayerNorm>,
    hidden_size: usize,
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
}

impl TransformerEncoderConfig {
    /// Checks sizes and rates.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("ffn_size", self.ffn_size),
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
        self.attention().validate()
    }

    /// The attention every layer of this shape uses.
    pub(crate) fn attention(&self) -> MultiHeadAttentionConfig {
        MultiHeadAttentionConfig::new(self.hidden_size, self.num_heads).with_dropout(self.dropout)
    }

    /// A LayerNorm over the model width.
    pub(crate) fn layer_norm(&self, device: &Device) -> LayerNorm {
        LayerNorm::new(self.hidden_size, self.layer_norm_eps, device)
    }

    /// The feed-forward network every layer of this shape uses.
    pub(crate) fn ffn(&self, device: &Device) -> FeedForward {
        FeedForwardConfig::new(self.hidden_size, self.ffn_size)
            .with_activation(self.activation)
            .init(device)
    }

    /// One encoder layer of this shape.
    pub fn layer(&self, device: &Device) -> Result<EncoderLayer> {
        Ok(EncoderLayer {
            attention: self.attention().init(device)?,
            attention_norm: self.layer_norm(device),
            ffn: self.ffn(device),
            ffn_norm: self.layer_norm(device),
            dropout: Dropout::new(self.dropout),
            norm_first: self.norm_first,
        })
    }

    /// The embeddings' configuration at `width`.
    pub(crate) fn embeddings(&self, width: usize) -> EmbeddingsConfig {
        EmbeddingsConfig::new(self.vocab_size, width)
            .with_max_positions(self.max_positions)
            .with_position_offset(self.position_offset)
            .with_positions(self.positions)
            .with_num_segments(self.num_segments)
            .with_dropout(self.dropout)
            .with_layer_norm_eps(self.layer_norm_eps)
            .with_norm(self.embedding_norm)
            .with_token_scale(self.embedding_scale)
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
            .map(|_| self.layer(device))
            .collect::<Result<Vec<_>>>()?;
        let width = self.embedding_width();
        Ok(TransformerEncoder {
            projection: self
                .embedding_size
                .map(|e| normal_linear(e, self.hidden_size, 0.02, device)),
            embeddings: self.embeddings(width).init(device),
            layers,
            depth: self.num_layers,
            final_norm: self.norm_first.then(|| self.layer_norm(device)),
            hidden_size: self.hidden_size,
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
        embeddings + projection + distinct * self.layer_params() + self.final_norm_params()
    }

    /// Parameters of the position table (if learned) and the embedding LayerNorm (if any) at
    /// `width`.
    pub(crate) fn input_params(&self, width: usize) -> usize {
        let positions = match self.positions {
            PositionEncoding::Learned => self.max_positions * width,
            PositionEncoding::Sinusoidal => 0,
        };
        let norm = if self.embedding_norm { 2 * width } else { 0 };
        positions + norm
    }

    /// Parameters of one attention.
    pub(crate) fn attention_params(&self) -> usize {
        4 * (self.hidden_size * self.hidden_size + self.hidden_size)
    }

    /// Parameters of one encoder layer: attention, feed-forward, two LayerNorms.
    pub(crate) fn layer_params(&self) -> usize {
        let (h, f) = (self.hidden_size, self.ffn_size);
        self.attention_params() + (h * f + f) + (f * h + h) + 2 * 2 * h
    }

    /// Parameters of the final LayerNorm pre-LN stacks end with.
    pub(crate) fn final_norm_params(&self) -> usize {
        usize::from(self.norm_first) * 2 * self.hidden_size
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
    /// first `keys` positions as keys (see [`EncoderLayer::forward_two_stream`]), and the
    /// final LayerNorm of a pre-LN stack.
    pub(crate) fn stack(
        &self,
        x: Tensor<3>,
        keys: usize,
        mask: Option<&AttentionMask>,
    ) -> Tensor<3> {
        self.stack_with(x, |_, layer, x| layer.forward_two_stream(x, keys, mask))
    }

    /// Hidden states `[batch, len, hidden]` of `ids` `[batch, len]` at explicit `positions`
    /// `[batch, len]` (several texts packed in one row, each from position 0) under `mask`.
    pub fn encode_at(
        &self,
        ids: Tensor<2, Int>,
        positions: Tensor<2, Int>,
        segments: Option<Tensor<2, Int>>,
        mask: Option<&AttentionMask>,
    ) -> Tensor<3> {
        let x = self.embeddings.forward_at(ids, positions, segments);
        let len = x.dims()[1];
        self.stack(x, len, mask)
    }

    /// Hidden states `[batch, new, hidden]` of `ids` `[batch, new]` at `positions`
    /// `[batch, new]` (segment 0), which follow the positions already in `cache`, under `mask`
    /// `[batch, _, new, cached + new]`; their keys and values join the cache. Called once on a
    /// prompt (prefill) and then once per token, it gives what [`EncoderBackbone::encode`]
    /// gives on the whole sequence under the same mask, for one position's work per token.
    pub fn forward_cached(
        &self,
        ids: Tensor<2, Int>,
        positions: Tensor<2, Int>,
        mask: Option<&AttentionMask>,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        let segments = (self.num_segments() > 0).then(|| ids.zeros_like());
        let x = self.embeddings.forward_at(ids, positions, segments);
        self.stack_with(x, |depth, layer, x| {
            layer.forward_cached(x, cache.own(depth), mask)
        })
    }

    /// The projection (if factorized), `layer` applied at every depth, and the final
    /// LayerNorm of a pre-LN stack.
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
        let x = self.embeddings.forward(ids, segments);
        let len = x.dims()[1];
        self.stack(x, len, mask)
    }

    fn token_embedding(&self) -> Tensor<2> {
        self.embeddings.tokens.weight.val()
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::max_abs_diff;

    #[test]
    fn parameter_count_matches_the_arithmetic() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        for norm_first in [false, true] {
            let cfg = TransformerEncoderConfig::new(100, 32, 2, 4, 64).with_norm_first(norm_first);
            assert_eq!(cfg.init(&device).unwrap().num_params(), cfg.num_params());
        }
    }

    #[test]
    fn factorized_and_shared_parameter_count_matches_the_hand_arithmetic() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let cfg = TransformerEncoderConfig::new(100, 32, 3, 4, 64).with_embedding_size(Some(16));
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
        let cfg = TransformerEncoderConfig::new(50, 32, 1, 4, 64)
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
            TransformerEncoderConfig::new(100, 30, 2, 4, 64).init(&device),
            Err(Error::HeadsDoNotDivide { .. })
        ));
        assert!(matches!(
            TransformerEncoderConfig::new(100, 32, 0, 4, 64).init(&device),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[test]
    fn cached_decoding_equals_the_full_forward_at_every_step() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        // Pre-LN with a factorized embedding and shared layers: every path of the stack.
        let model = crate::util::random::init_seeded(&device, 3, || {
            TransformerEncoderConfig::new(50, 32, 3, 4, 64)
                .with_dropout(0.0)
                .with_norm_first(true)
                .with_embedding_size(Some(16))
                .with_share_layers(true)
                .init(&device)
                .unwrap()
        });
        let rows: [&[i64]; 2] = [&[0, 0, 5, 6, 7, 8, 9, 10], &[1, 5, 8, 9, 11, 12, 13, 14]];
        let pads = [2, 0];
        let len = rows[0].len();
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(flat, [2, len]), &device);
        let positions: Vec<i64> = pads
            .iter()
            .flat_map(|&p| (0..len).map(move |t| t.saturating_sub(p) as i64))
            .collect();
        let positions = Tensor::<2, Int>::from_data(TensorData::new(positions, [2, len]), &device);
        let full = model.forward_cached(
            ids.clone(),
            positions.clone(),
            Some(&AttentionMask::cached_causal(&pads, 0, len, &device)),
            &mut KvCache::new(),
        );
        // Prefill four positions, then one at a time.
        let mut cache = KvCache::new();
        let prefill = 4;
        let mut steps = vec![model.forward_cached(
            ids.clone().slice([0..2, 0..prefill]),
            positions.clone().slice([0..2, 0..prefill]),
            Some(&AttentionMask::cached_causal(&pads, 0, prefill, &device)),
            &mut cache,
        )];
        for t in prefill..len {
            let mask = AttentionMask::cached_causal(&pads, t, 1, &device);
            steps.push(model.forward_cached(
                ids.clone().slice([0..2, t..t + 1]),
                positions.clone().slice([0..2, t..t + 1]),
                Some(&mask),
                &mut cache,
            ));
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
        // And the second row equals the ordinary causal forward of `encode`.
        let unpadded = model.encode(
            ids.slice([1..2, 0..len]),
            Some(Tensor::zeros([1, len], &device)),
            Some(&AttentionMask::causal(len, &device)),
        );
        let row = full.clone().slice([1..2, 0..len]);
        assert!(max_abs_diff(unpadded, row) < 1e-5);
        // The padded first row's real positions equal its prompt run alone.
        let alone = model.encode(
            Tensor::<2, Int>::from_ints([[5, 6, 7, 8, 9, 10]], &device),
            Some(Tensor::zeros([1, len - 2], &device)),
            Some(&AttentionMask::causal(len - 2, &device)),
        );
        let row = full.slice([0..1, 2..len]);
        assert!(max_abs_diff(alone, row) < 1e-5);
    }

    #[test]
    fn a_causal_stack_never_looks_ahead() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let model = TransformerEncoderConfig::new(50, 32, 2, 4, 64)
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
