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
    fn new(blocked: Tensor<4, Bool>, keeps_first_key: bool) -> Self {
        Self {
            blocked,
            keeps_first_key,
        }
    }

    /// Blocks padding keys. `padding` is `[batch, keys]`, `true` where the token is padding.
    pub fn padding(padding: Tensor<2, Bool>) -> Self {
        Self::new(Self::keys(padding).blocked, true)
    }

    /// Blocks the keys marked `true` in `blocked` `[batch, keys]` for every query. Unlike
    /// [`padding`](Self::padding), any key may be blocked, the first included, so a row with
    /// nothing to see gives zeros.
    pub fn keys(blocked: Tensor<2, Bool>) -> Self {
        let [batch, keys] = blocked.dims();
        Self::new(blocked.reshape([batch, 1, 1, keys]), false)
    }

    /// Blocks every key after the query (left-to-right attention), for any batch.
    pub fn causal(len: usize, device: &Device) -> Self {
        let blocked = Tensor::<2, Bool>::tril_mask([len, len], 0, device);
        Self::new(blocked.reshape([1, 1, len, len]), true)
    }

    /// Left-to-right attention for `new` queries that follow `cached` positions already in a
    /// [`KvCache`](super::KvCache), in rows that each start with `left_pads[b]` padding
    /// positions: query `i` of row `b` sees keys `left_pads[b] ..= cached + i`. Called with
    /// `cached = 0` it is the causal mask of the whole (left-padded) sequence. A padding query
    /// sees nothing and gives zeros.
    pub fn cached_causal(left_pads: &[usize], cached: usize, new: usize, device: &Device) -> Self {
        let keys = cached + new;
        let blocked: Vec<bool> = left_pads
            .iter()
            .flat_map(|&pad| {
                (0..new).flat_map(move |i| (0..keys).map(move |j| j < pad || j > cached + i))
            })
            .collect();
        let shape = [left_pads.len(), new, keys];
        let blocked = Tensor::<3, Bool>::from_bool(TensorData::new(blocked, shape), device);
        match left_pads.iter().any(|&pad| pad > 0) {
            true => Self::from_blocked(blocked),
            // Without padding every query sees key 0, so no row needs zeroing.
            false => Self::new(blocked.reshape([shape[0], 1, new, keys]), true),
        }
    }

    /// Blocks every key before the query (right-to-left attention), for any batch.
    pub fn anti_causal(len: usize, device: &Device) -> Self {
        let blocked = Tensor::<2, Bool>::triu_mask([len, len], 0, device);
        // The last key, not the first, is the one every query sees; padding keys are blocked
        // on top, so a row may be left with none.
        Self::new(blocked.reshape([1, 1, len, len]), false)
    }

    /// Prefix LM (UniLM's sequence-to-sequence mask): every query sees the first
    /// `prefix[b]` keys of its row (the source) and the keys after the prefix up to itself
    /// (the target, left to right); source queries see no target key.
    pub fn prefix(prefix: Tensor<1, Int>, len: usize) -> Self {
        let batch = prefix.dims()[0];
        let device = prefix.device();
        let shape = [batch, len, len];
        let keys = Tensor::<1, Int>::arange(0..len as i64, &device)
            .reshape([1, 1, len])
            .expand(shape);
        let queries = Tensor::<1, Int>::arange(0..len as i64, &device)
            .reshape([1, len, 1])
            .expand(shape);
        let in_target = keys
            .clone()
            .greater_equal(prefix.reshape([batch, 1, 1]).expand(shape));
        let blocked = in_target.bool_and(keys.greater(queries));
        Self::new(blocked.reshape([batch, 1, len, len]), true)
    }

    /// From a `[batch, queries, keys]` mask where `true` means *blocked*.
    pub fn from_blocked(blocked: Tensor<3, Bool>) -> Self {
        let [b, q, k] = blocked.dims();
        Self::new(blocked.reshape([b, 1, q, k]), false)
    }

    /// From a `[batch, queries, keys]` mask where `true` means *may attend*.
    pub fn from_allowed(allowed: Tensor<3, Bool>) -> Self {
        Self::from_blocked(allowed.bool_not())
    }

    /// From a per-head `[batch, heads, queries, keys]` mask where `true` means *blocked*.
    pub fn per_head_blocked(blocked: Tensor<4, Bool>) -> Self {
        Self::new(blocked, false)
    }

    /// Attention by rank in a factorization order (XLNet's and MPNet's two streams): row `i`
    /// of `rows` `[batch, queries]` may see key `j` of `keys` `[batch, keys]` when
    /// `keys[j] <= rows[i]`; where `slots` `[batch, keys]` marks a key, the rule flips and the
    /// row sees it when `keys[j] > rows[i]` (MPNet's `[MASK]` slots, which later predictions
    /// show to earlier ones). A key ranked above every row is blocked for all (padding).
    pub fn by_rank(
        rows: Tensor<2, Int>,
        keys: Tensor<2, Int>,
        slots: Option<Tensor<2, Bool>>,
    ) -> Self {
        let [batch, q] = rows.dims();
        let k = keys.dims()[1];
        let shape = [batch, q, k];
        let rows = rows.reshape([batch, q, 1]).expand(shape);
        let keys = keys.reshape([batch, 1, k]);
        let blocked = match slots {
            None => keys.expand(shape).greater(rows),
            // Blocked: an ordinary key ranked above the row, or a slot ranked at or below it.
            Some(slots) => keys
                .expand(shape)
                .lower_equal(rows)
                .equal(slots.reshape([batch, 1, k]).expand(shape)),
        };
        Self::from_blocked(blocked)
    }

    /// A key is blocked when either mask blocks it (shapes broadcast over size-1 dimensions).
    pub fn or(self, other: AttentionMask) -> Self {
        let a = self.blocked.dims();
        let b = other.blocked.dims();
        let shape: [usize; 4] = std::array::from_fn(|i| a[i].max(b[i]));
        let blocked = self
            .blocked
            .expand(shape)
            .bool_or(other.blocked.expand(shape));
        Self::new(blocked, self.keeps_first_key && other.keeps_first_key)
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

    fn bools<const D: usize>(t: Tensor<D, Bool>) -> Vec<bool> {
        t.into_data().try_to_vec().unwrap()
    }

    #[test]
    fn by_rank_follows_the_order_and_flips_for_slots() {
        let device = Device::flex();
        // Keys: context (-2), two targets ranked 0 and 2 in a doubled scale, one slot ranked 2.
        let keys = Tensor::<2, Int>::from_ints([[-2, 0, 2, 2]], &device);
        let slots = Tensor::<2, Bool>::from_bool(
            TensorData::new(vec![false, false, false, true], [1, 4]),
            &device,
        );
        // Rows: a context row (-1), the first target's content (0), the second target's query
        // (1: it sees the first target but not itself) and its content (2).
        let rows = Tensor::<2, Int>::from_ints([[-1, 0, 1, 2]], &device);
        let plain = AttentionMask::by_rank(rows.clone(), keys.clone(), None).blocked([1, 1, 4, 4]);
        #[rustfmt::skip]
        let expected = vec![
            false, true, true, true,
            false, false, true, true,
            false, false, true, true,
            false, false, false, false,
        ];
        assert_eq!(bools(plain), expected);
        let with_slots = AttentionMask::by_rank(rows, keys, Some(slots)).blocked([1, 1, 4, 4]);
        #[rustfmt::skip]
        let expected = vec![
            false, true, true, false,
            false, false, true, false,
            false, false, true, false,
            false, false, false, true,
        ];
        assert_eq!(bools(with_slots), expected);
    }

    #[test]
    fn right_to_left_and_prefix_masks_are_the_unilm_matrices() {
        let device = Device::flex();
        let r2l = AttentionMask::anti_causal(3, &device).blocked([1, 1, 3, 3]);
        #[rustfmt::skip]
        let expected = vec![
            false, false, false,
            true, false, false,
            true, true, false,
        ];
        assert_eq!(bools(r2l), expected);
        // Two rows of 4: prefixes of 2 and 1 ([CLS] alone would be 1).
        let prefix = Tensor::<1, Int>::from_ints([2, 1], &device);
        let s2s = AttentionMask::prefix(prefix, 4).blocked([2, 1, 4, 4]);
        #[rustfmt::skip]
        let expected = vec![
            false, false, true, true,
            false, false, true, true,
            false, false, false, true,
            false, false, false, false,

            false, true, true, true,
            false, false, true, true,
            false, false, false, true,
            false, false, false, false,
        ];
        assert_eq!(bools(s2s), expected);
    }

    #[test]
    fn cached_causal_skips_left_padding_and_follows_the_cache() {
        let device = Device::flex();
        // Row 0 has one left pad; two positions are cached and one query is new.
        let step = AttentionMask::cached_causal(&[1, 0], 2, 1, &device);
        assert!(step.may_block_whole_rows());
        assert_eq!(
            bools(step.blocked([2, 1, 1, 3])),
            vec![true, false, false, false, false, false]
        );
        // The prefill of the same rows: causal, with row 0's pad blocked as a key.
        let prefill = AttentionMask::cached_causal(&[1, 0], 0, 2, &device).blocked([2, 1, 2, 2]);
        assert_eq!(
            bools(prefill),
            vec![true, true, true, false, false, true, false, false]
        );
        // Without pads it is the plain causal mask.
        let plain = AttentionMask::cached_causal(&[0], 0, 3, &device);
        assert!(!plain.may_block_whole_rows());
        assert_eq!(
            bools(plain.blocked([1, 1, 3, 3])),
            bools(AttentionMask::causal(3, &device).blocked([1, 1, 3, 3]))
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
