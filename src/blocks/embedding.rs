//! Input embeddings: token, position (learned, or sinusoidal, scaled or not, when positions
//! are added at the input) and segment, summed, then a norm and dropout, as BERT does.
//!
//! The part after the token lookup is its own module, [`InputEncoding`], so that a decoder can
//! look tokens up in the encoder's table (shared embeddings) and still have positions of its own.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;

use super::dropout::Dropout;
use super::norm::{LayerNorm, NormKind};
use super::positions::PositionEncoding;

/// Configuration of [`Embeddings`].
#[derive(Config, Debug)]
pub struct EmbeddingsConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Embedding width.
    pub hidden_size: usize,
    /// Longest sequence the position table holds. Default 512.
    #[config(default = 512)]
    pub max_positions: usize,
    /// Position encoding. Default learned.
    #[config(default = "PositionEncoding::Learned")]
    pub positions: PositionEncoding,
    /// Index of the first position's vector in the table (RoBERTa's tables start after the
    /// padding id, at 2); sequences may then be `max_positions - position_offset` long.
    /// Default 0.
    #[config(default = 0)]
    pub position_offset: usize,
    /// Number of segment (token type) ids; 0 for none. Default 2.
    #[config(default = 2)]
    pub num_segments: usize,
    /// Dropout after the LayerNorm. Default 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// LayerNorm epsilon. Default 1e-12 (BERT).
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
    /// Which norm follows the sum. Default LayerNorm.
    #[config(default = "NormKind::LayerNorm")]
    pub norm_kind: NormKind,
    /// A shift in that norm. Default true.
    #[config(default = true)]
    pub norm_bias: bool,
    /// Standard deviation of the normal initialisation. Default 0.02: burn's N(0, 1) default
    /// would make a tied LM head start near loss 59 instead of ln V.
    #[config(default = 0.02)]
    pub init_std: f64,
    /// A norm over the sum (BERT, BART, ModernBERT); GPT-2 and Llama have none. Default true.
    #[config(default = true)]
    pub norm: bool,
    /// Factor on the token vectors before the sum (BART's `scale_embedding`). Default 1.
    #[config(default = 1.0)]
    pub token_scale: f64,
}

/// Token + position + segment embeddings.
#[derive(Module, Debug)]
pub struct Embeddings {
    /// The token table `[vocab, hidden]`, also the weight of a tied LM head.
    pub tokens: Embedding,
    input: InputEncoding,
}

/// What is added to token vectors (position and segment embeddings), then a norm and
/// dropout.
#[derive(Module, Debug)]
pub struct InputEncoding {
    positions: Option<Embedding>,
    /// Sines and cosines added in place of a learned table.
    sinusoidal: bool,
    /// The learned factor on them, where they are scaled (Cramming's).
    sinusoid_scale: Option<Param<Tensor<1>>>,
    segments: Option<Embedding>,
    norm: Option<LayerNorm>,
    dropout: Dropout,
    max_positions: usize,
    position_offset: usize,
    token_scale: f64,
}

impl EmbeddingsConfig {
    /// Builds the module.
    pub fn init(&self, device: &Device) -> Embeddings {
        Embeddings {
            tokens: self.table(self.vocab_size, device),
            input: self.init_input(device),
        }
    }

    /// Builds only what follows the token lookup (`vocab_size` is not used), for a module
    /// that looks its tokens up in another's table.
    pub fn init_input(&self, device: &Device) -> InputEncoding {
        InputEncoding {
            positions: self
                .positions
                .learned()
                .then(|| self.table(self.max_positions, device)),
            sinusoidal: self.positions.sinusoidal(),
            sinusoid_scale: (self.positions == PositionEncoding::ScaledSinusoidal).then(|| {
                let start = (self.hidden_size as f64).powf(-0.5);
                Param::from_tensor(Tensor::full([1], start, device))
            }),
            segments: (self.num_segments > 0).then(|| self.table(self.num_segments, device)),
            norm: self.norm.then(|| {
                let (kind, width, eps) = (self.norm_kind, self.hidden_size, self.layer_norm_eps);
                LayerNorm::new(kind, width, eps, self.norm_bias, device)
            }),
            dropout: Dropout::new(self.dropout),
            max_positions: self.max_positions,
            position_offset: self.position_offset,
            token_scale: self.token_scale,
        }
    }

    fn table(&self, n: usize, device: &Device) -> Embedding {
        EmbeddingConfig::new(n, self.hidden_size)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: self.init_std,
            })
            .init(device)
    }
}

impl Embeddings {
    /// The same embeddings without dropout.
    pub(crate) fn without_dropout(mut self) -> Self {
        self.input.dropout = Dropout::new(0.0);
        self
    }

    /// Embeds `ids` `[batch, len]` with optional `segments` `[batch, len]`.
    ///
    /// `len` must not exceed `max_positions`; callers check lengths up front
    /// (see [`crate::error::Error::SequenceTooLong`]).
    pub fn forward(&self, ids: Tensor<2, Int>, segments: Option<Tensor<2, Int>>) -> Tensor<3> {
        self.input.forward(self.tokens.forward(ids), None, segments)
    }

    /// Embeds `ids` at explicit `positions` `[batch, len]`, each below `max_positions`
    /// (tokens need not sit at their index: XLNet's query stream, MPNet's appended masks).
    pub fn forward_at(
        &self,
        ids: Tensor<2, Int>,
        positions: Tensor<2, Int>,
        segments: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        self.input
            .forward(self.tokens.forward(ids), Some(positions), segments)
    }

    /// Longest sequence accepted: the table's rows after the position offset.
    pub fn max_positions(&self) -> usize {
        self.input.max_positions - self.input.position_offset
    }

    /// Segment ids the table holds (0 for none).
    pub fn num_segments(&self) -> usize {
        self.input
            .segments
            .as_ref()
            .map_or(0, |t| t.weight.lazy_shape().dims::<2>()[0])
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        // `lazy_shape`: sizes read without drawing a lazy table's values.
        self.tokens.weight.lazy_shape().dims::<2>()[0]
    }
}

impl InputEncoding {
    /// Adds position and segment embeddings to `tokens` `[batch, len, hidden]` (scaled by the
    /// token scale), then normalises (if the encoding has a norm). `positions` `[batch, len]`
    /// defaults to `0..len` in every row; given, they place tokens anywhere in the table
    /// (MASS's decoder sees only a masked span, at its own positions). Every position must be
    /// below `max_positions`. Without added positions (rotary, ALiBi or none) only segments
    /// are added.
    pub fn forward(
        &self,
        tokens: Tensor<3>,
        positions: Option<Tensor<2, Int>>,
        segments: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let [batch, len, hidden] = tokens.dims();
        let device = tokens.device();
        let offset = self.position_offset as i64;
        let positions = positions.map(|p| if offset > 0 { p.add_scalar(offset) } else { p });
        let position_vectors = match (&self.positions, positions) {
            (Some(table), None) => Some(
                table
                    .forward(Tensor::arange(offset..offset + len as i64, &device).reshape([1, len]))
                    .expand([batch, len, hidden]),
            ),
            (Some(table), Some(positions)) => Some(table.forward(positions)),
            (None, None) if self.sinusoidal => Some(
                sinusoidal_table(len + offset as usize, hidden, &device)
                    .slice([offset as usize..offset as usize + len, 0..hidden])
                    .reshape([1, len, hidden])
                    .expand([batch, len, hidden]),
            ),
            (None, Some(positions)) if self.sinusoidal => Some(
                sinusoidal_table(self.max_positions, hidden, &device)
                    .select(0, positions.reshape([batch * len]))
                    .reshape([batch, len, hidden]),
            ),
            (None, _) => None,
        };
        let position_vectors = match (&self.sinusoid_scale, position_vectors) {
            (Some(scale), Some(vectors)) => Some(vectors * scale.val().reshape([1, 1, 1])),
            (_, vectors) => vectors,
        };
        let tokens = if self.token_scale == 1.0 {
            tokens
        } else {
            tokens.mul_scalar(self.token_scale)
        };
        let mut x = match position_vectors {
            Some(vectors) => tokens + vectors,
            None => tokens,
        };
        if let (Some(table), Some(segments)) = (&self.segments, segments) {
            x = x + table.forward(segments);
        }
        if let Some(norm) = &self.norm {
            x = norm.forward(x);
        }
        self.dropout.forward(x)
    }
}

/// The Transformer's sinusoidal position table `[len, hidden]`.
pub fn sinusoidal_table(len: usize, hidden: usize, device: &Device) -> Tensor<2> {
    let mut values = Vec::with_capacity(len * hidden);
    for pos in 0..len {
        for i in 0..hidden {
            let rate = 10_000f64.powf(-((i / 2 * 2) as f64) / hidden as f64);
            let angle = pos as f64 * rate;
            values.push(if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    Tensor::from_data(TensorData::new(values, [len, hidden]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_moves_every_position_along_the_table() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let config = EmbeddingsConfig::new(50, 8)
            .with_max_positions(10)
            .with_dropout(0.0);
        let plain = config.init(&device);
        let shifted = Embeddings {
            tokens: plain.tokens.clone(),
            input: InputEncoding {
                position_offset: 2,
                ..plain.input.clone()
            },
        };
        assert_eq!(shifted.max_positions(), 8);
        let ids = Tensor::<2, Int>::from_ints([[7, 8, 9]], &device);
        // Position k of the shifted table is row k + 2: what the plain one gives at 2, 3, 4.
        let at = Tensor::<2, Int>::from_ints([[2, 3, 4]], &device);
        let diff = (shifted.forward(ids.clone(), None) - plain.forward_at(ids.clone(), at, None))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert_eq!(diff, 0.0);
        let zero = Tensor::<2, Int>::from_ints([[0, 1, 2]], &device);
        let explicit = (shifted.forward(ids.clone(), None) - shifted.forward_at(ids, zero, None))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert_eq!(
            explicit, 0.0,
            "explicit positions count from the offset too"
        );
    }

    #[test]
    fn token_table_starts_small() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let e = EmbeddingsConfig::new(1000, 64).init(&device);
        let std = e
            .tokens
            .weight
            .val()
            .var(0)
            .mean()
            .sqrt()
            .into_scalar::<f32>();
        assert!((std - 0.02).abs() < 0.003, "token embedding std {std}");
    }

    #[test]
    fn sinusoidal_positions_have_no_parameters_and_distinguish_positions() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let cfg = EmbeddingsConfig::new(50, 16)
            .with_positions(PositionEncoding::Sinusoidal)
            .with_dropout(0.0);
        let learned = EmbeddingsConfig::new(50, 16).init(&device);
        let fixed = cfg.init(&device);
        assert_eq!(learned.num_params() - fixed.num_params(), 512 * 16);
        let ids = Tensor::<2, Int>::from_ints([[7, 7]], &device);
        let out = fixed.forward(ids, None);
        let diff = (out.clone().slice([0..1, 0..1]) - out.slice([0..1, 1..2]))
            .abs()
            .sum()
            .into_scalar::<f32>();
        assert!(diff > 1e-3);
    }

    #[test]
    fn scaled_sinusoidal_positions_are_the_table_times_one_learned_scalar() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let config = |positions| {
            EmbeddingsConfig::new(50, 16)
                .with_positions(positions)
                .with_norm(false)
                .with_dropout(0.0)
        };
        let plain = config(PositionEncoding::Sinusoidal).init(&device);
        let scaled = Embeddings {
            tokens: plain.tokens.clone(),
            input: config(PositionEncoding::ScaledSinusoidal).init_input(&device),
        };
        assert_eq!(scaled.num_params(), plain.num_params() + 1);
        let ids = Tensor::<2, Int>::from_ints([[7, 8, 9]], &device);
        let tokens = plain.tokens.forward(ids.clone());
        let positions = |e: &Embeddings| e.forward(ids.clone(), None) - tokens.clone();
        // 1/√16: the positions' vectors a quarter of the unscaled ones.
        let diff = (positions(&scaled) - positions(&plain).mul_scalar(0.25))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(diff < 1e-7, "{diff}");
    }
}
