//! Multi-head attention that takes any [`AttentionMask`] (padding, causal, prefix, arbitrary
//! `[batch, query, key]` or per-head) and gives zeros, not NaN, for a query that may see no key;
//! while decoding, it reads earlier positions' keys and values from a [`KvCache`](super::KvCache).

use burn::nn::Linear;
use burn::prelude::*;

use super::dropout::Dropout;
use super::kv_cache::KeysValues;
use super::mask::AttentionMask;
use super::{linear_3d, normal_linear};
use crate::error::{Error, Result};
use crate::kernels::softmax;

/// Configuration of [`MultiHeadAttention`].
#[derive(Config, Debug)]
pub struct MultiHeadAttentionConfig {
    /// Model width.
    pub hidden_size: usize,
    /// Number of heads; must divide `hidden_size`.
    pub num_heads: usize,
    /// Dropout on the attention weights. Default 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Standard deviation of the normal initialisation of the projections. Default 0.02.
    #[config(default = 0.02)]
    pub init_std: f64,
}

/// Scaled dot-product attention over `num_heads` heads.
#[derive(Module, Debug)]
pub struct MultiHeadAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    dropout: Dropout,
    num_heads: usize,
    head_size: usize,
}

impl MultiHeadAttentionConfig {
    /// Checks the head count.
    pub fn validate(&self) -> Result<()> {
        if self.num_heads == 0 || self.hidden_size % self.num_heads != 0 {
            return Err(Error::HeadsDoNotDivide {
                hidden: self.hidden_size,
                heads: self.num_heads,
            });
        }
        crate::error::check_rate("attention dropout", self.dropout)
    }

    /// Builds the module.
    pub fn init(&self, device: &Device) -> Result<MultiHeadAttention> {
        self.validate()?;
        let linear = || normal_linear(self.hidden_size, self.hidden_size, self.init_std, device);
        Ok(MultiHeadAttention {
            query: linear(),
            key: linear(),
            value: linear(),
            output: linear(),
            dropout: Dropout::new(self.dropout),
            num_heads: self.num_heads,
            head_size: self.hidden_size / self.num_heads,
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

    /// Attends from `queries` `[batch, q, hidden]` to `keys_values` `[batch, k, hidden]`.
    /// Self-attention passes the same tensor twice.
    pub fn forward(
        &self,
        queries: Tensor<3>,
        keys_values: Tensor<3>,
        mask: Option<&AttentionMask>,
    ) -> Tensor<3> {
        let kv = self.keys_values(keys_values);
        self.attend(queries, &kv, mask)
    }

    /// Self-attention of the new positions `x` `[batch, new, hidden]` over the positions in
    /// `cache` and themselves, under `mask` `[batch, _, new, cached + new]`; their keys and
    /// values join the cache.
    pub fn forward_cached(
        &self,
        x: Tensor<3>,
        cache: &mut Option<KeysValues>,
        mask: Option<&AttentionMask>,
    ) -> Tensor<3> {
        let new = self.keys_values(x.clone());
        let kv = match cache.take() {
            Some(old) => old.append(new),
            None => new,
        };
        let out = self.attend(x, &kv, mask);
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
        let kv = cache.get_or_insert_with(|| self.keys_values(memory));
        self.attend(queries, kv, mask)
    }

    /// `x` `[batch, len, hidden]` split into heads: `[batch, heads, len, head_size]`.
    fn heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [batch, len, _] = x.dims();
        x.reshape([batch, len, self.num_heads, self.head_size])
            .swap_dims(1, 2)
    }

    /// The keys and values of `x` `[batch, len, hidden]`, split into heads.
    fn keys_values(&self, x: Tensor<3>) -> KeysValues {
        KeysValues {
            keys: self.heads(linear_3d(&self.key, x.clone())),
            values: self.heads(linear_3d(&self.value, x)),
        }
    }

    /// Scaled dot-product attention of `queries` over `kv`.
    fn attend(
        &self,
        queries: Tensor<3>,
        kv: &KeysValues,
        mask: Option<&AttentionMask>,
    ) -> Tensor<3> {
        let [batch, q_len, hidden] = queries.dims();
        let k_len = kv.len();
        let q = self.heads(linear_3d(&self.query, queries));
        let scale = (self.head_size as f64).powf(-0.5);
        let scores = q.mul_scalar(scale).matmul(kv.keys.clone().swap_dims(2, 3));
        let weights = match mask {
            Some(mask) => {
                // A finite fill keeps a fully blocked row finite through softmax; such rows
                // (possible only with arbitrary masks) are then zeroed instead of left as a
                // uniform mix.
                let blocked = mask.blocked([batch, self.num_heads, q_len, k_len]);
                let weights = softmax(scores.mask_fill(blocked.clone(), -1.0e9));
                if mask.may_block_whole_rows() {
                    weights.mask_fill(blocked, 0.0)
                } else {
                    weights
                }
            }
            None => softmax(scores),
        };
        let context = self
            .dropout
            .forward(weights)
            .matmul(kv.values.clone())
            .swap_dims(1, 2)
            .reshape([batch, q_len, hidden]);
        linear_3d(&self.output, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::max_abs_diff;
    use burn::tensor::Distribution;

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
        let base = attn.forward(x.clone(), x.clone(), Some(&mask));
        let noise = Tensor::<3>::random([2, 5, 16], Distribution::Normal(0.0, 5.0), &device);
        let perturbed = x.clone() + noise * keep;
        let out = attn.forward(perturbed.clone(), perturbed, Some(&mask));
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
        let base = attn.forward(x.clone(), x.clone(), Some(&mask));
        let changed = Tensor::cat(
            vec![
                x.clone().slice([0..1, 0..4]),
                Tensor::<3>::random([1, 2, 16], Distribution::Normal(0.0, 3.0), &device),
            ],
            1,
        );
        let out = attn.forward(changed.clone(), changed, Some(&mask));
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
        let out = attn.forward(x.clone(), x, Some(&mask));
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
