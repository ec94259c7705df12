//! Attention masks with one meaning: `true` marks a key a query may **not** attend to.
//!
//! That is burn's convention (x-transformers uses the opposite). Masks only travel between
//! modules as an [`AttentionMask`], whose constructors say which convention their input uses,
//! so a raw bool tensor of unknown meaning never reaches the attention.

use burn::prelude::*;

/// Which keys each query may not see, shaped `[batch, heads or 1, queries or 1, keys]`.
#[derive(Debug, Clone)]
pub struct AttentionMask {
    blocked: Tensor<4, Bool>,
    /// Whether every query may see key 0. True of padding masks (a sequence starts with a real
    /// token) and causal masks, and of their union; then no query is left with nothing to
    /// attend to, and the attention can skip zeroing such rows.
    keeps_first_key: bool,
}

impl AttentionMask {
    /// Blocks padding keys. `padding` is `[batch, keys]`, `true` where the token is padding.
    pub fn padding(padding: Tensor<2, Bool>) -> Self {
        let [batch, keys] = padding.dims();
        Self {
            blocked: padding.reshape([batch, 1, 1, keys]),
            keeps_first_key: true,
        }
    }

    /// Blocks the keys marked `true` in `blocked` `[batch, keys]` for every query. Unlike
    /// [`padding`](Self::padding), any key may be blocked, the first included, so a row with
    /// nothing to see gives zeros.
    pub fn keys(blocked: Tensor<2, Bool>) -> Self {
        let [batch, keys] = blocked.dims();
        Self {
            blocked: blocked.reshape([batch, 1, 1, keys]),
            keeps_first_key: false,
        }
    }

    /// Blocks every key after the query (left-to-right attention), for any batch.
    pub fn causal(len: usize, device: &Device) -> Self {
        Self {
            blocked: Tensor::<2, Bool>::tril_mask([len, len], 0, device).reshape([1, 1, len, len]),
            keeps_first_key: true,
        }
    }

    /// From a `[batch, queries, keys]` mask where `true` means *blocked*.
    pub fn from_blocked(blocked: Tensor<3, Bool>) -> Self {
        let [b, q, k] = blocked.dims();
        Self {
            blocked: blocked.reshape([b, 1, q, k]),
            keeps_first_key: false,
        }
    }

    /// From a `[batch, queries, keys]` mask where `true` means *may attend*.
    pub fn from_allowed(allowed: Tensor<3, Bool>) -> Self {
        Self::from_blocked(allowed.bool_not())
    }

    /// From a per-head `[batch, heads, queries, keys]` mask where `true` means *blocked*.
    pub fn per_head_blocked(blocked: Tensor<4, Bool>) -> Self {
        Self {
            blocked,
            keeps_first_key: false,
        }
    }

    /// A key is blocked when either mask blocks it (shapes broadcast over size-1 dimensions).
    pub fn or(self, other: AttentionMask) -> Self {
        let a = self.blocked.dims();
        let b = other.blocked.dims();
        let shape: [usize; 4] = std::array::from_fn(|i| a[i].max(b[i]));
        Self {
            blocked: self
                .blocked
                .expand(shape)
                .bool_or(other.blocked.expand(shape)),
            keeps_first_key: self.keeps_first_key && other.keeps_first_key,
        }
    }

    /// Whether some query may be left with no key to attend to.
    pub fn may_block_whole_rows(&self) -> bool {
        !self.keeps_first_key
    }

    /// The mask broadcast to `[batch, heads, queries, keys]`, `true` = blocked.
    pub fn blocked(&self, shape: [usize; 4]) -> Tensor<4, Bool> {
        self.blocked.clone().expand(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_blocks_exactly_the_future() {
        let device = Device::flex();
        let m = AttentionMask::causal(3, &device).blocked([1, 1, 3, 3]);
        let got: Vec<bool> = m.into_data().try_to_vec().unwrap();
        assert_eq!(
            got,
            vec![false, true, true, false, false, true, false, false, false]
        );
    }

    #[test]
    fn or_combines_padding_and_causal() {
        let device = Device::flex();
        let pad = Tensor::<2, Bool>::from_bool(
            TensorData::new(vec![false, false, true], [1, 3]),
            &device,
        );
        let m = AttentionMask::padding(pad)
            .or(AttentionMask::causal(3, &device))
            .blocked([1, 2, 3, 3]);
        let got: Vec<bool> = m.into_data().try_to_vec().unwrap();
        let one_head = vec![false, true, true, false, false, true, false, false, true];
        assert_eq!(got, [one_head.clone(), one_head].concat());
    }
}
