//! The crate's seeded randomness and hashing: one random stream per example derived from
//! `(seed, epoch, example index)` as fairseq does, SplitMix64 to derive seeds, FNV-1a to hash
//! names, and the weighted and uniform picks every sampler draws with.

use rand::SeedableRng;

/// The random stream of one example: a xoshiro256++ generator, portable and fast.
pub type ExampleRng = rand::rngs::Xoshiro256PlusPlus;

/// FNV-1a's offset basis: where a fresh [`fnv1a`] hash starts.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `hash` ([`FNV_OFFSET`] for a fresh one): the crate's
/// one hash of names, vocabularies and file lists.
pub(crate) fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64's finaliser: a bijective 64-bit mix with good avalanche.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The random stream of example `index` in epoch `epoch` of a run seeded with `seed`.
pub fn example_rng(seed: u64, epoch: u64, index: u64) -> ExampleRng {
    ExampleRng::seed_from_u64(splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ index))
}

/// The index a uniform draw `u` in [0, 1) picks from `weights` (non-negative, not all zero):
/// each index with probability proportional to its weight. A draw that rounding leaves past
/// the last cumulative weight picks the last index that has any.
pub fn pick_weighted(weights: &[f64], u: f64) -> usize {
    let target = u * weights.iter().sum::<f64>();
    let mut acc = 0.0;
    let mut last = 0;
    for (i, &w) in weights.iter().enumerate().filter(|(_, w)| **w > 0.0) {
        acc += w;
        last = i;
        if target < acc {
            return i;
        }
    }
    last
}

/// `k` distinct indices below `n` (`k <= n`), drawn uniformly, in draw order: a partial
/// Fisher–Yates shuffle.
pub fn choose(n: usize, k: usize, rng: &mut ExampleRng) -> Vec<usize> {
    use rand::RngExt;
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i..n);
        all.swap(i, j);
    }
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_picks_follow_the_weights_and_skip_zero_ones() {
        let weights = [0.0, 3.0, 0.0, 1.0];
        assert_eq!(pick_weighted(&weights, 0.0), 1);
        assert_eq!(pick_weighted(&weights, 0.74), 1);
        assert_eq!(pick_weighted(&weights, 0.76), 3);
        // A draw at the very top still lands on a weighted index.
        assert_eq!(pick_weighted(&weights, 1.0), 3);
        assert_eq!(pick_weighted(&[2.0, 0.0], 0.999), 0);
    }
}
