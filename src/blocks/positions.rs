//! Where each token is, as the model sees it: vectors added to the input (a learned table, or
//! fixed sines and cosines, scaled or not — see [`InputEncoding`](super::InputEncoding)), or inside
//! attention, as rotary embeddings (queries and keys rotated by their position) or ALiBi (a
//! bias on the scores that grows with distance).
//!
//! A stack computes its [`Positions`] once per forward from the rows' position ids and hands
//! the same value to every layer, as x-transformers and Hugging Face's Llama do; a new scheme
//! lives here and in the block's configuration, not in every layer's signature.

use burn::prelude::*;

/// How positions are encoded.
#[derive(Config, Debug, PartialEq, Copy)]
pub enum PositionEncoding {
    /// A learned table of `max_positions` vectors added to the input (BERT, GPT-2).
    Learned,
    /// Fixed sines and cosines added to the input (the original Transformer); no parameters.
    Sinusoidal,
    /// The same sines and cosines times one learned scalar, initialised to `1/√width`
    /// (Cramming's positions; x-transformers' `scaled_sinu_pos_emb`).
    ScaledSinusoidal,
    /// Rotary embeddings (RoFormer; Llama, Qwen2, ModernBERT): each head's queries and keys
    /// rotated by angles `position / theta^(2i/d)`, in Hugging Face's layout (feature `j`
    /// paired with `j + d/2`). Scores then depend on positions only through differences.
    Rotary {
        /// The base of the angles' wavelengths (10 000 in RoFormer and Llama 2).
        theta: f64,
    },
    /// ALiBi (Press et al.): no position vectors; head `h` adds `−m_h · |i − j|` to its
    /// scores, with geometric slopes `m_h`. Symmetric, so the same bias serves bidirectional
    /// stacks (MosaicBERT) and causal ones (under the causal mask it is the paper's).
    Alibi,
    /// T5's bucketed relative bias: a learned score offset per head for each bucket of a
    /// key's offset from its query, one table per stack (see
    /// [`RelativeBias`](super::RelativeBias)); T5 uses 32 buckets up to a distance of 128.
    Relative {
        /// Buckets of offsets (half of them for later keys in a bidirectional stack).
        buckets: usize,
        /// Offsets from this far on share the last bucket.
        max_distance: usize,
    },
    /// No position information at all (a causal stack can still infer order: NoPE).
    None,
}

impl PositionEncoding {
    /// Whether vectors are added at the input (a learned or sinusoidal table).
    pub fn added(self) -> bool {
        matches!(
            self,
            Self::Learned | Self::Sinusoidal | Self::ScaledSinusoidal
        )
    }

    /// Whether vectors added at the input are the sinusoidal table (scaled or not).
    pub fn sinusoidal(self) -> bool {
        matches!(self, Self::Sinusoidal | Self::ScaledSinusoidal)
    }

    /// Whether a table of learned vectors is part of the model.
    pub fn learned(self) -> bool {
        self == Self::Learned
    }
}

/// Rotary tables: cosines and sines `[batch, 1, len, head_size]` for the rows of a layer's
/// input.
#[derive(Debug, Clone)]
struct Rotary {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

/// The position information of one forward pass of a stack, handed to every layer: what
/// global layers apply, and what local ones do where the stack has any (their own rotary base
/// and the window they see, as ModernBERT computes one of each per layer type).
#[derive(Debug, Clone, Default)]
pub struct Positions {
    rotary: Option<Rotary>,
    /// An additive score bias `[batch, heads, queries, keys]`.
    bias: Option<Tensor<4>>,
    /// The keys each query may not see for distance, `[batch, 1, queries, keys]`: a local
    /// layer's window.
    window: Option<Tensor<4, Bool>>,
    /// What local layers apply instead.
    local: Option<Box<Positions>>,
}

impl Positions {
    /// Nothing to apply inside attention: positions already added at the input, or none at
    /// all, or cross-attention (whose keys are another sequence's).
    pub fn none() -> Self {
        Self::default()
    }

    /// What layers of `encoding` with `heads` heads of `head_size` features need for rows at
    /// positions `queries` `[batch, q]` that attend to keys at positions `keys`
    /// `[batch, k]` (the rows' own for self-attention; earlier ones first under a cache).
    pub fn new(
        encoding: PositionEncoding,
        queries: &Tensor<2, Int>,
        keys: &Tensor<2, Int>,
        heads: usize,
        head_size: usize,
    ) -> Self {
        match encoding {
            PositionEncoding::Rotary { theta } => Self {
                rotary: Some(rotary_tables(queries, head_size, theta)),
                ..Self::none()
            },
            PositionEncoding::Alibi => Self {
                bias: Some(alibi_bias(queries, keys, heads)),
                ..Self::none()
            },
            _ => Self::none(),
        }
    }

    /// These positions with `bias` `[batch, heads, queries, keys]` added to the scores.
    pub fn with_bias(self, bias: Tensor<4>) -> Self {
        Self {
            bias: Some(bias),
            ..self
        }
    }

    /// `x` `[batch, heads, len, head_size]` (queries, or the keys of the first `len` rows)
    /// rotated by its rows' positions; unchanged without rotary embeddings.
    pub fn rotate(&self, x: Tensor<4>) -> Tensor<4> {
        let Some(Rotary { cos, sin }) = &self.rotary else {
            return x;
        };
        let [batch, _, len, size] = x.dims();
        let dtype = x.dtype();
        let rows = |t: &Tensor<4>| {
            let t = t.clone();
            let t = if t.dims()[2] == len {
                t
            } else {
                t.slice([0..batch, 0..1, 0..len, 0..size])
            };
            t.cast(dtype)
        };
        crate::kernels::rotate(x, rows(cos), rows(sin))
    }

    /// The additive score bias `[batch, heads, queries, keys]`, if the scheme has one.
    pub fn bias(&self) -> Option<&Tensor<4>> {
        self.bias.as_ref()
    }

    /// The keys beyond a local layer's window, `[batch, 1, queries, keys]`, if this is a
    /// local layer's.
    pub fn window(&self) -> Option<&Tensor<4, Bool>> {
        self.window.as_ref()
    }

    /// These positions, with `local` what the stack's local layers apply: `positions` seen
    /// through a window of `window` keys either side of each query, at `queries` attending to
    /// `keys`.
    pub fn with_local(
        self,
        positions: Positions,
        window: usize,
        queries: &Tensor<2, Int>,
        keys: &Tensor<2, Int>,
    ) -> Self {
        let ([batch, q], k) = (queries.dims(), keys.dims()[1]);
        let distance = (queries.clone().reshape([batch, 1, q, 1])
            - keys.clone().reshape([batch, 1, 1, k]))
        .abs();
        let local = Positions {
            window: Some(distance.greater_elem(window as i64)),
            ..positions
        };
        Self {
            local: Some(Box::new(local)),
            ..self
        }
    }

    /// What a layer applies: the local layers' positions for a local layer where the stack
    /// has them, these otherwise.
    pub fn for_layer(&self, local: bool) -> &Positions {
        match (&self.local, local) {
            (Some(positions), true) => positions,
            _ => self,
        }
    }
}

/// Rotary cosines and sines for rows at `positions` `[batch, len]`: angle
/// `p · theta^(−2i/d)` for `i < d/2`, each repeated for the pair `(i, i + d/2)`. The inverse
/// frequencies and angles are f32, as Hugging Face computes them.
fn rotary_tables(positions: &Tensor<2, Int>, head_size: usize, theta: f64) -> Rotary {
    let [batch, len] = positions.dims();
    let device = positions.device();
    let half = head_size / 2;
    let inverse: Vec<f32> = (0..half)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_size as f32))
        .collect();
    let inverse = Tensor::<1>::from_data(TensorData::new(inverse, [half]), &device)
        .cast(burn::tensor::DType::F32);
    let angles = positions
        .clone()
        .float()
        .cast(burn::tensor::DType::F32)
        .reshape([batch, len, 1])
        * inverse.reshape([1, 1, half]);
    let doubled =
        |t: Tensor<3>| Tensor::cat(vec![t.clone(), t], 2).reshape([batch, 1, len, 2 * half]);
    Rotary {
        cos: doubled(angles.clone().cos()),
        sin: doubled(angles.sin()),
    }
}

/// ALiBi's slope of each of `heads` heads: `2^(−8(h+1)/n)` for a power of two `n`; otherwise
/// those of the power of two below, then every other slope of the power of two above.
pub fn alibi_slopes(heads: usize) -> Vec<f64> {
    let geometric = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|h| 2f64.powf(-8.0 * (h + 1) as f64 / n as f64))
            .collect()
    };
    if heads.is_power_of_two() {
        return geometric(heads);
    }
    let below = 1 << heads.ilog2();
    let mut slopes = geometric(below);
    slopes.extend(
        geometric(2 * below)
            .into_iter()
            .step_by(2)
            .take(heads - below),
    );
    slopes
}

/// ALiBi's bias `−m_h · |q − k|` `[batch, heads, queries, keys]` for queries and keys at the
/// given positions.
fn alibi_bias(queries: &Tensor<2, Int>, keys: &Tensor<2, Int>, heads: usize) -> Tensor<4> {
    let ([batch, q], k) = (queries.dims(), keys.dims()[1]);
    let device = queries.device();
    let distance = (queries.clone().reshape([batch, 1, q, 1])
        - keys.clone().reshape([batch, 1, 1, k]))
    .abs()
    .float();
    let slopes: Vec<f32> = alibi_slopes(heads).into_iter().map(|m| -m as f32).collect();
    let slopes = Tensor::<1>::from_data(TensorData::new(slopes, [heads]), &device);
    distance * slopes.reshape([1, heads, 1, 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::max_abs_diff;
    use burn::tensor::Distribution;

    #[test]
    fn alibi_slopes_are_the_papers() {
        let powers = |xs: Vec<f64>| -> Vec<f64> { xs.into_iter().map(|m| -m.log2()).collect() };
        assert_eq!(
            powers(alibi_slopes(8)),
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
        );
        assert_eq!(powers(alibi_slopes(6)), [2.0, 4.0, 6.0, 8.0, 1.0, 3.0]);
        let twelve = powers(alibi_slopes(12));
        assert_eq!(twelve[..8], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        for (got, want) in twelve[8..].iter().zip([0.5, 1.5, 2.5, 3.5]) {
            assert!((got - want).abs() < 1e-12, "{twelve:?}");
        }
    }

    #[test]
    fn rotary_scores_depend_only_on_position_differences() {
        let device = Device::flex();
        let _draws = crate::util::random::seeded(&device, 6);
        let q = Tensor::<4>::random([1, 2, 1, 8], Distribution::Normal(0.0, 1.0), &device);
        let k = Tensor::<4>::random([1, 2, 1, 8], Distribution::Normal(0.0, 1.0), &device);
        let score = |pq: i64, pk: i64| {
            let at = |p: i64| Tensor::<2, Int>::from_ints([[p]], &device);
            let rq = Positions::new(
                PositionEncoding::Rotary { theta: 100.0 },
                &at(pq),
                &at(pq),
                2,
                8,
            );
            let rk = Positions::new(
                PositionEncoding::Rotary { theta: 100.0 },
                &at(pk),
                &at(pk),
                2,
                8,
            );
            (rq.rotate(q.clone()) * rk.rotate(k.clone())).sum_dim(3)
        };
        // The same distance at other places gives the same scores; another distance does not.
        assert!(max_abs_diff(score(5, 2), score(13, 10)) < 1e-5);
        assert!(max_abs_diff(score(5, 2), score(5, 4)) > 1e-3);
        // Position 0 is the identity, and rotation keeps each pair's length.
        assert!(max_abs_diff(score(0, 0), (q.clone() * k).sum_dim(3)) < 1e-6);
        let at = Tensor::<2, Int>::from_ints([[7]], &device);
        let r = Positions::new(PositionEncoding::Rotary { theta: 100.0 }, &at, &at, 2, 8);
        let norm = |t: Tensor<4>| t.square().sum_dim(3);
        assert!(max_abs_diff(norm(r.rotate(q.clone())), norm(q)) < 1e-5);
    }

    #[test]
    fn alibi_bias_grows_with_distance_either_way() {
        let device = Device::flex();
        let at = Tensor::<2, Int>::from_ints([[0, 1, 2, 3]], &device);
        let positions = Positions::new(PositionEncoding::Alibi, &at, &at, 2, 4);
        let bias: Vec<f32> = positions
            .bias()
            .unwrap()
            .clone()
            .into_data()
            .try_to_vec()
            .unwrap();
        // Head 0's slope is 2^-4 with two heads: row 1 is −|1 − j| / 16.
        assert_eq!(&bias[4..8], &[-1.0 / 16.0, 0.0, -1.0 / 16.0, -2.0 / 16.0]);
        // Head 1's is 2^-8.
        assert_eq!(bias[16 + 3], -3.0 / 256.0);
    }
}
