//! Multi-head attention that takes any [`AttentionMask`] (padding, causal, prefix, arbitrary
//! `[batch, query, key]` or per-head) and gives zeros, not NaN, for a query that may see no key;
//! with fewer key/value heads than query heads (grouped-query and multi-query attention), with
//! or without biases, and with the [`Positions`] its stack computed (rotary embeddings applied
//! to queries and keys, or a bias added to the scores). While decoding, it reads earlier
//! positions' keys and values from a [`KvCache`](super::KvCache).

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::dropout::Dropout;
use super::kv_cache::KeysValues;
use super::mask::AttentionMask;
use super::norm::{LayerNorm, NormKind};
use super::positions::Positions;
use super::{linear_3d, normal_linear_with_bias};
use crate::error::{Error, Result};
use crate::kernels::softmax;

/// Configuration of [`MultiHeadAttention`].
#[derive(Config, Debug)]
pub struct MultiHeadAttentionConfig {
    /// Model width.
    pub hidden_size: usize,
    /// Number of (query) heads; must divide `hidden_size` unless `head_size` is given.
    pub num_heads: usize,
    /// Key/value heads, each serving `num_heads / kv_heads` consecutive query heads
    /// (grouped-query attention; 1: multi-query); must divide `num_heads`. Default: as many
    /// as query heads.
    #[config(default = "None")]
    pub kv_heads: Option<usize>,
    /// Width of each head. Default `hidden_size / num_heads`.
    #[config(default = "None")]
    pub head_size: Option<usize>,
    /// Biases on the query, key and value projections. Default true.
    #[config(default = true)]
    pub qkv_bias: bool,
    /// A bias on the output projection. Default true.
    #[config(default = true)]
    pub output_bias: bool,
    /// The factor on the query·key scores. Default none: `1/√head_size`.
    #[config(default = "None")]
    pub scale: Option<f64>,
    /// Dropout on the attention weights. Default 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Standard deviation of the normal initialisation of the projections. Default 0.02.
    #[config(default = 0.02)]
    pub init_std: f64,
    /// A local layer: it applies its stack's local positions and window (see
    /// [`Positions::for_layer`]). Default false.
    #[config(default = false)]
    pub local: bool,
    /// A norm of this kind (its epsilon, its shift) over each head's queries and keys before
    /// positions are applied (OLMo 2, Qwen3, Gemma 3's q/k norm). Default none.
    #[config(default = "None")]
    pub qk_norm: Option<(NormKind, f64, bool)>,
}

/// Scaled dot-product attention over `num_heads` heads.
#[derive(Module, Debug)]
pub struct MultiHeadAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    /// The queries' and keys' norms over each head's features, where the block has them.
    query_norm: Option<LayerNorm>,
    key_norm: Option<LayerNorm>,
    dropout: Dropout,
    num_heads: usize,
    kv_heads: usize,
    head_size: usize,
    /// The factor on the scores.
    scale: f64,
    local: bool,
}

impl MultiHeadAttentionConfig {
    /// Width of each head.
    pub fn head_width(&self) -> usize {
        self.head_size
            .unwrap_or(self.hidden_size / self.num_heads.max(1))
    }

    /// Number of key/value heads.
    pub fn kv_head_count(&self) -> usize {
        self.kv_heads.unwrap_or(self.num_heads)
    }

    /// Checks the head counts and widths.
    pub fn validate(&self) -> Result<()> {
        let divides = self.head_size.is_some() || self.hidden_size % self.num_heads.max(1) == 0;
        if self.num_heads == 0 || !divides || self.head_size == Some(0) {
            return Err(Error::HeadsDoNotDivide {
                hidden: self.hidden_size,
                heads: self.num_heads,
            });
        }
        let kv = self.kv_head_count();
        if kv == 0 || self.num_heads % kv != 0 {
            return Err(Error::InvalidConfig(format!(
                "kv_heads {kv} must divide num_heads {} (each key/value head serves a group of \
                 query heads)",
                self.num_heads
            )));
        }
        crate::error::check_rate("attention dropout", self.dropout)
    }

    /// Builds the module.
    pub fn init(&self, device: &Device) -> Result<MultiHeadAttention> {
        self.validate()?;
        let (heads, kv, size) = (self.num_heads, self.kv_head_count(), self.head_width());
        let linear =
            |d_in, d_out, bias| normal_linear_with_bias(d_in, d_out, self.init_std, bias, device);
        let hidden = self.hidden_size;
        let norm = || {
            self.qk_norm
                .map(|(kind, eps, bias)| LayerNorm::new(kind, size, eps, bias, device))
        };
        Ok(MultiHeadAttention {
            query: linear(hidden, heads * size, self.qkv_bias),
            key: linear(hidden, kv * size, self.qkv_bias),
            value: linear(hidden, kv * size, self.qkv_bias),
            output: linear(heads * size, hidden, self.output_bias),
            query_norm: norm(),
            key_norm: norm(),
            dropout: Dropout::new(self.dropout),
            num_heads: heads,
            kv_heads: kv,
            head_size: size,
            scale: self.scale.unwrap_or((size as f64).powf(-0.5)),
            local: self.local,
        })
    }
}

impl MultiHeadAttention {
    /// The same attention without dropout on its weights.
    pub(crate) fn without_dropout(self) -> Self {
        Self {
            dropout: Dropout::new(0.0),
            ..self
        }
    }

    /// Attends from `queries` `[batch, q, hidden]` to `keys_values` `[batch, k, hidden]` with
    /// `positions` (the stack's, for the query rows, whose first `k` are the keys' rows).
    /// Self-attention passes the same tensor twice; cross-attention passes
    /// [`Positions::none`].
    pub fn forward(
        &self,
        queries: Tensor<3>,
        keys_values: Tensor<3>,
        mask: Option<&AttentionMask>,
        positions: &Positions,
    ) -> Tensor<3> {
        let kv = self.keys_values(keys_values, positions);
        self.attend(queries, &kv, mask, positions)
    }

    /// Self-attention of the new positions `x` `[batch, new, hidden]` over the positions in
    /// `cache` and themselves, under `mask` `[batch, _, new, cached + new]`; their keys and
    /// values (rotated, where rotary) join the cache.
    pub fn forward_cached(
        &self,
        x: Tensor<3>,
        cache: &mut Option<KeysValues>,
        mask: Option<&AttentionMask>,
        positions: &Positions,
    ) -> Tensor<3> {
        let new = self.keys_values(x.clone(), positions);
        let kv = match cache.take() {
            Some(old) => old.append(new),
            None => new,
        };
        let out = self.attend(x, &kv, mask, positions);
        *cache = Some(kv);
        out
    }

    /// Attention from `queries` to `memory` whose keys and values are computed on the first
    /// call and read from `cache` after it (cross-attention while decoding: the encoder's
    /// states do not change).
    pub fn forward_memory(
        &self,
        queries: Tensor<3>,
        memory: Tensor<3>,
        cache: &mut Option<KeysValues>,
        mask: Option<&AttentionMask>,
    ) -> Tensor<3> {
        let none = Positions::none();
        let kv = cache.get_or_insert_with(|| self.keys_values(memory, &none));
        self.attend(queries, kv, mask, &none)
    }

    /// `x` `[batch, len, heads · head_size]` split into `heads` heads:
    /// `[batch, heads, len, head_size]`.
    fn heads(&self, x: Tensor<3>, heads: usize) -> Tensor<4> {
        let [batch, len, _] = x.dims();
        x.reshape([batch, len, heads, self.head_size])
            .swap_dims(1, 2)
    }

    /// The keys (rotated by their rows' positions) and values of `x` `[batch, len, hidden]`,
    /// split into the key/value heads.
    fn keys_values(&self, x: Tensor<3>, positions: &Positions) -> KeysValues {
        let positions = positions.for_layer(self.local);
        let keys = self.heads(linear_3d(&self.key, x.clone()), self.kv_heads);
        KeysValues {
            keys: positions.rotate(normed(&self.key_norm, keys)),
            values: self.heads(linear_3d(&self.value, x), self.kv_heads),
        }
    }

    /// Key/value heads `[batch, kv_heads, len, size]` repeated for the query heads each serves
    /// (head `j` serves query heads `j·g … j·g + g − 1`, as Hugging Face's `repeat_kv`).
    fn for_queries(&self, t: Tensor<4>) -> Tensor<4> {
        if self.kv_heads == self.num_heads {
            return t;
        }
        let [batch, kv, len, size] = t.dims();
        let group = self.num_heads / kv;
        t.unsqueeze_dim::<5>(2)
            .expand([batch, kv, group, len, size])
            .reshape([batch, self.num_heads, len, size])
    }

    /// Scaled dot-product attention of `queries` over `kv`.
    fn attend(
        &self,
        queries: Tensor<3>,
        kv: &KeysValues,
        mask: Option<&AttentionMask>,
        positions: &Positions,
    ) -> Tensor<3> {
        self.attend_reading(queries, kv, mask, positions, false).0
    }

    /// [`attend`](Self::attend), and with `read` the [`Relations`] of the same pass.
    fn attend_reading(
        &self,
        queries: Tensor<3>,
        kv: &KeysValues,
        mask: Option<&AttentionMask>,
        positions: &Positions,
        read: bool,
    ) -> (Tensor<3>, Option<Relations>) {
        let [batch, q_len, _] = queries.dims();
        let scores = self.scores(queries, kv, positions);
        let blocked = self.blocked(scores.dims(), mask, positions);
        // A finite fill keeps a fully blocked row finite through softmax; such rows (possible
        // only with arbitrary masks) are then zeroed instead of left as a uniform mix.
        let filled = |t: Tensor<4>| match &blocked {
            Some(blocked) => t.mask_fill(blocked.clone(), -1.0e9),
            None => t,
        };
        let relations = read.then(|| {
            let values = self.for_queries(kv.values.clone());
            let value_scores = values
                .clone()
                .matmul(values.swap_dims(2, 3))
                .div_scalar((self.head_size as f64).sqrt());
            Relations {
                attention: log_softmax(filled(scores.clone()), 3),
                values: log_softmax(filled(value_scores), 3),
                scores: match &blocked {
                    Some(blocked) => scores.clone().mask_fill(blocked.clone(), 0.0),
                    None => scores.clone(),
                },
            }
        });
        let weights = match &relations {
            Some(relations) => relations.attention.clone().exp(),
            None => softmax(filled(scores)),
        };
        let weights = match blocked {
            Some(blocked) if mask.is_some_and(AttentionMask::may_block_whole_rows) => {
                weights.mask_fill(blocked, 0.0)
            }
            _ => weights,
        };
        let context = self
            .dropout
            .forward(weights)
            .matmul(self.for_queries(kv.values.clone()))
            .swap_dims(1, 2)
            .reshape([batch, q_len, self.num_heads * self.head_size]);
        (linear_3d(&self.output, context), relations)
    }

    /// The scaled query·key scores `[batch, heads, q, k]` of `queries` over `kv`, with the
    /// positions' bias where they have one.
    fn scores(&self, queries: Tensor<3>, kv: &KeysValues, positions: &Positions) -> Tensor<4> {
        let positions = positions.for_layer(self.local);
        let q = self.heads(linear_3d(&self.query, queries), self.num_heads);
        let q = positions.rotate(normed(&self.query_norm, q));
        let keys = self.for_queries(kv.keys.clone());
        let scores = q.mul_scalar(self.scale).matmul(keys.swap_dims(2, 3));
        match positions.bias() {
            Some(bias) => {
                let dtype = scores.dtype();
                scores + bias.clone().cast(dtype)
            }
            None => scores,
        }
    }

    /// Where scores of `shape` are blocked: by `mask`, by the layer's window, or by both.
    fn blocked(
        &self,
        shape: [usize; 4],
        mask: Option<&AttentionMask>,
        positions: &Positions,
    ) -> Option<Tensor<4, Bool>> {
        let window = (positions.for_layer(self.local).window()).map(|w| w.clone().expand(shape));
        match (mask.map(|m| m.blocked(shape)), window) {
            (Some(mask), Some(window)) => Some(mask.bool_or(window)),
            (mask, window) => mask.or(window),
        }
    }

    /// Self-attention of `x` `[batch, len, hidden]` under `mask`, as [`forward`](Self::forward)
    /// gives it, and the [`Relations`] read from the same pass: what distillation reads of a
    /// teacher's layer and a student's.
    pub fn forward_with_relations(
        &self,
        x: Tensor<3>,
        mask: Option<&AttentionMask>,
        positions: &Positions,
    ) -> (Tensor<3>, Relations) {
        let kv = self.keys_values(x.clone(), positions);
        let (out, relations) = self.attend_reading(x, &kv, mask, positions, true);
        (out, relations.expect("read"))
    }
}

/// One attention layer's relations between positions, each `[batch, heads, query, key]`: the
/// attention distributions `softmax(q·kᵀ/√d)` and the value relations `softmax(v·vᵀ/√d)` as
/// log-probabilities over the keys (blocked keys near −10⁹), what MiniLM (Wang et al. 2020)
/// distils, and the scores before the softmax, what TinyBERT (Jiao et al. 2020) distils.
#[derive(Debug, Clone)]
pub struct Relations {
    /// Log attention weights.
    pub attention: Tensor<4>,
    /// Log value relations.
    pub values: Tensor<4>,
    /// The attention scores before the softmax (scaled, with the positions' bias), blocked
    /// keys 0 as TinyBERT zeroes them.
    pub scores: Tensor<4>,
}

/// `x` normalised by `norm` over its last dimension, or as it is without one.
fn normed(norm: &Option<LayerNorm>, x: Tensor<4>) -> Tensor<4> {
    match norm {
        Some(norm) => norm.forward(x),
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::max_abs_diff;
    use burn::tensor::Distribution;

    fn none() -> Positions {
        Positions::none()
    }

    fn setup() -> (Device, MultiHeadAttention) {
        let device = Device::flex();
        // Wide weights make the attention sharp, so outputs react visibly to what they see.
        let attn = MultiHeadAttentionConfig::new(16, 4)
            .with_dropout(0.0)
            .with_init_std(0.5)
            .init(&device)
            .unwrap();
        (device, attn)
    }

    #[test]
    fn with_a_query_key_norm_the_scores_ignore_the_scale_of_the_projections() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let _draws = crate::util::random::seeded(&device, 12);
        let x = Tensor::<3>::random([2, 5, 16], Distribution::Normal(0.0, 1.0), &device);
        for qk_norm in [None, Some((NormKind::RmsNorm, 1e-6, false))] {
            let attn = MultiHeadAttentionConfig::new(16, 4)
                .with_dropout(0.0)
                .with_init_std(0.5)
                .with_qkv_bias(false)
                .with_qk_norm(qk_norm)
                .init(&device)
                .unwrap();
            let base = attn.forward(x.clone(), x.clone(), None, &none());
            let mut louder = attn.clone();
            louder.query.weight = louder.query.weight.map(|w| w.mul_scalar(10.0));
            louder.key.weight = louder.key.weight.map(|w| w.mul_scalar(3.0));
            let moved = max_abs_diff(base, louder.forward(x.clone(), x.clone(), None, &none()));
            match qk_norm {
                Some(_) => assert!(moved < 1e-4, "normed scores moved by {moved}"),
                None => assert!(moved > 1e-2, "plain scores moved by only {moved}"),
            }
        }
    }

    #[test]
    fn perturbing_a_padded_key_leaves_outputs_unchanged() {
        let _draws = crate::util::random::hold();
        let (device, attn) = setup();
        let _draws = crate::util::random::seeded(&device, 1);
        let x = Tensor::<3>::random([2, 5, 16], Distribution::Normal(0.0, 1.0), &device);
        let pad = Tensor::<2, Bool>::from_bool(
            TensorData::new(
                vec![
                    false, false, false, true, true, false, false, false, false, true,
                ],
                [2, 5],
            ),
            &device,
        );
        // The padded positions' vectors get noise, the others none.
        let keep = pad.clone().float().reshape([2, 5, 1]).expand([2, 5, 16]);
        let mask = AttentionMask::padding(pad);
        let base = attn.forward(x.clone(), x.clone(), Some(&mask), &none());
        let noise = Tensor::<3>::random([2, 5, 16], Distribution::Normal(0.0, 5.0), &device);
        let perturbed = x.clone() + noise * keep;
        let out = attn.forward(perturbed.clone(), perturbed, Some(&mask), &none());
        // Compare only the queries that are real tokens.
        let real = |t: Tensor<3>| {
            Tensor::cat(
                vec![t.clone().slice([0..1, 0..3]), t.slice([1..2, 0..4])],
                1,
            )
        };
        assert!(max_abs_diff(real(base.clone()), real(out.clone())) < 1e-5);
        // And the perturbation does change the padded queries themselves (the test can fail).
        assert!(max_abs_diff(base, out) > 1e-3);
    }

    #[test]
    fn causal_outputs_ignore_later_tokens() {
        let _draws = crate::util::random::hold();
        let (device, attn) = setup();
        let _draws = crate::util::random::seeded(&device, 2);
        let x = Tensor::<3>::random([1, 6, 16], Distribution::Normal(0.0, 1.0), &device);
        let mask = AttentionMask::causal(6, &device);
        let base = attn.forward(x.clone(), x.clone(), Some(&mask), &none());
        let changed = Tensor::cat(
            vec![
                x.clone().slice([0..1, 0..4]),
                Tensor::<3>::random([1, 2, 16], Distribution::Normal(0.0, 3.0), &device),
            ],
            1,
        );
        let out = attn.forward(changed.clone(), changed, Some(&mask), &none());
        let first = |t: Tensor<3>| t.slice([0..1, 0..4]);
        assert!(max_abs_diff(first(base.clone()), first(out.clone())) < 1e-5);
        assert!(max_abs_diff(base, out) > 1e-3);
    }

    #[test]
    fn a_fully_masked_row_gives_zeros_not_nan() {
        let _draws = crate::util::random::hold();
        let (device, attn) = setup();
        let _draws = crate::util::random::seeded(&device, 3);
        let x = Tensor::<3>::random([1, 3, 16], Distribution::Normal(0.0, 1.0), &device);
        let mut blocked = vec![false; 9];
        blocked[3..6].fill(true); // query 1 may see nothing
        let mask = AttentionMask::from_blocked(Tensor::<3, Bool>::from_bool(
            TensorData::new(blocked, [1, 3, 3]),
            &device,
        ));
        let out = attn.forward(x.clone(), x, Some(&mask), &none());
        let values: Vec<f32> = out.clone().into_data().try_to_vec().unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
        // The row's context is zero, so its output is exactly the output projection's bias.
        let row: Vec<f32> = out.slice([0..1, 1..2]).into_data().try_to_vec().unwrap();
        let bias: Vec<f32> = attn
            .output
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec()
            .unwrap();
        for (a, b) in row.iter().zip(&bias) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn grouped_query_attention_is_attention_with_each_key_value_head_repeated() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let _seeded = crate::util::random::seeded(&device, 9);
        let grouped = MultiHeadAttentionConfig::new(24, 6)
            .with_kv_heads(Some(2))
            .with_dropout(0.0)
            .with_init_std(0.3)
            .init(&device)
            .unwrap();
        let mut full = MultiHeadAttentionConfig::new(24, 6)
            .with_dropout(0.0)
            .init(&device)
            .unwrap();
        // Key/value head j (4 features) serves query heads 3j, 3j + 1, 3j + 2.
        let repeat = |linear: &burn::nn::Linear| {
            let w = linear.weight.val();
            let heads: Vec<Tensor<2>> = (0..6)
                .map(|h| w.clone().slice([0..24, (h / 3) * 4..(h / 3) * 4 + 4]))
                .collect();
            let b = linear.bias.as_ref().unwrap().val();
            let biases: Vec<Tensor<1>> = (0..6)
                .map(|h| b.clone().slice([(h / 3) * 4..(h / 3) * 4 + 4]))
                .collect();
            (Tensor::cat(heads, 1), Tensor::cat(biases, 0))
        };
        let set = |target: &mut burn::nn::Linear, (w, b): (Tensor<2>, Tensor<1>)| {
            target.weight = burn::module::Param::from_tensor(w);
            target.bias = Some(burn::module::Param::from_tensor(b));
        };
        set(&mut full.key, repeat(&grouped.key));
        set(&mut full.value, repeat(&grouped.value));
        full.query = grouped.query.clone();
        full.output = grouped.output.clone();
        let x = Tensor::<3>::random([2, 5, 24], burn::tensor::Distribution::Default, &device);
        let mask = AttentionMask::causal(5, &device);
        let none = none();
        let a = grouped.forward(x.clone(), x.clone(), Some(&mask), &none);
        let b = full.forward(x.clone(), x, Some(&mask), &none);
        assert!(max_abs_diff(a, b) < 1e-5);
        assert_eq!(
            grouped.key.weight.dims(),
            [24, 8],
            "two key heads of 4 features"
        );
    }

    #[test]
    fn heads_must_divide_hidden() {
        let _draws = crate::util::random::hold();
        let err = MultiHeadAttentionConfig::new(10, 4)
            .init(&Device::flex())
            .unwrap_err();
        assert!(matches!(
            err,
            Error::HeadsDoNotDivide {
                hidden: 10,
                heads: 4
            }
        ));
    }
}
