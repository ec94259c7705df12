//! T5's bucketed relative position bias: a learned table `[buckets, heads]` that one stack owns
//! and every layer of it reads, indexed by the bucket of each key's offset from its query —
//! exact for small offsets, logarithmic up to a maximum distance, one bucket beyond. An
//! encoder's buckets tell earlier from later keys (half the buckets each); a decoder's cover
//! earlier keys only, as its later ones are masked.
//!
//! The bias is added to the attention scores as they are; T5 leaves them unscaled (its
//! `attention_scale` is 1), having folded `1/√d` into the query's initialisation.

use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;

/// T5's relative position bias of one stack.
#[derive(Module, Debug)]
pub struct RelativeBias {
    /// One learned score offset per bucket and head, `[buckets, heads]`.
    pub table: Embedding,
    buckets: usize,
    max_distance: usize,
    /// Buckets for earlier keys only (a decoder's).
    causal: bool,
}

impl RelativeBias {
    /// A table of `buckets × heads` offsets drawn from `Normal(0, 0.02)`, for offsets up to
    /// `max_distance` (those beyond share the last bucket), causal or not.
    pub fn new(
        buckets: usize,
        max_distance: usize,
        heads: usize,
        causal: bool,
        device: &Device,
    ) -> Self {
        let init = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        Self {
            table: EmbeddingConfig::new(buckets, heads)
                .with_initializer(init)
                .init(device),
            buckets,
            max_distance,
            causal,
        }
    }

    /// The bucket `[batch, queries, keys]` of each key's offset `key − query` from each query,
    /// for queries at `queries` `[batch, q]` and keys at `keys` `[batch, k]`: Hugging Face's
    /// `_relative_position_bucket`, its logarithm taken in f32 and truncated as there.
    pub fn buckets(&self, queries: &Tensor<2, Int>, keys: &Tensor<2, Int>) -> Tensor<3, Int> {
        let ([batch, q], k) = (queries.dims(), keys.dims()[1]);
        let offset = keys.clone().reshape([batch, 1, k]) - queries.clone().reshape([batch, q, 1]);
        // A bidirectional stack gives later keys the upper half of the buckets.
        let (range, base, distance) = match self.causal {
            true => (self.buckets, offset.zeros_like(), offset.neg().clamp_min(0)),
            false => {
                let half = self.buckets / 2;
                let later = offset.clone().greater_elem(0).int() * (half as i64);
                (half, later, offset.abs())
            }
        };
        let exact = (range / 2) as i64;
        let far = (self.max_distance as f64 / exact as f64).ln();
        let logarithmic = distance
            .clone()
            .clamp_min(exact)
            .float()
            .cast(burn::tensor::DType::F32)
            .div_scalar(exact as f64)
            .log()
            .div_scalar(far)
            .mul_scalar((range as i64 - exact) as f64)
            .int()
            .add_scalar(exact)
            .clamp_max(range as i64 - 1);
        let near = distance.clone().lower_elem(exact);
        base + logarithmic.mask_where(near, distance)
    }

    /// The bias `[batch, heads, queries, keys]` for queries at `queries` attending to keys at
    /// `keys`.
    pub fn bias(&self, queries: &Tensor<2, Int>, keys: &Tensor<2, Int>) -> Tensor<4> {
        let ([batch, q], k) = (queries.dims(), keys.dims()[1]);
        let buckets = self.buckets(queries, keys).reshape([batch * q * k]);
        let heads = self.table.weight.dims()[1];
        self.table
            .weight
            .val()
            .select(0, buckets)
            .reshape([batch, q, k, heads])
            .permute([0, 3, 1, 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bucket of each offset `key − query` for a query at position 200.
    fn buckets(causal: bool, offsets: &[i64]) -> Vec<i64> {
        let device = Device::flex();
        let bias = RelativeBias::new(32, 128, 2, causal, &device);
        let queries = Tensor::<2, Int>::from_ints([[200]], &device);
        let keys: Vec<i64> = offsets.iter().map(|o| 200 + o).collect();
        let keys = Tensor::<2, Int>::from_data(TensorData::new(keys, [1, offsets.len()]), &device);
        bias.buckets(&queries, &keys)
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap()
    }

    #[test]
    fn bidirectional_buckets_are_t5s() {
        // Hugging Face's values for 32 buckets and a maximum distance of 128.
        let offsets = [-1, -8, -128, 0, 7, 8, 12, 100, 500];
        assert_eq!(buckets(false, &offsets), [1, 8, 15, 0, 23, 24, 25, 31, 31]);
    }

    #[test]
    fn causal_buckets_cover_earlier_keys_only() {
        let offsets = [-15, -16, -20, -50, -100, -127, -1000, 0, 3];
        assert_eq!(buckets(true, &offsets), [15, 16, 17, 24, 30, 31, 31, 0, 0]);
    }

    #[test]
    fn the_bias_is_the_tables_row_of_each_bucket_per_head() {
        let device = Device::flex();
        let bias = RelativeBias::new(8, 20, 3, false, &device);
        let at = Tensor::<2, Int>::from_ints([[0, 1, 2]], &device);
        let got: Vec<f32> = bias.bias(&at, &at).into_data().try_to_vec().unwrap();
        let table: Vec<f32> = bias.table.weight.val().into_data().try_to_vec().unwrap();
        let buckets: Vec<i64> = bias
            .buckets(&at, &at)
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        for head in 0..3 {
            for cell in 0..9 {
                let bucket = buckets[cell] as usize;
                assert_eq!(got[head * 9 + cell], table[bucket * 3 + head]);
            }
        }
        // Query 0 to key 2 is an offset of +2: the upper half's bucket 4 + 2.
        assert_eq!(buckets[2], 6);
    }
}
