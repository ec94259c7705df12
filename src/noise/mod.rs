//! Data noising: pure, seeded functions from token ids to corrupted inputs and targets.
//!
//! Nothing here touches tensors: noisers work on plain slices, so they are fast, property-tested
//! and benchmarked on their own. Every example gets its own random stream derived from
//! `(seed, epoch, example index)`, as fairseq does, so the data do not depend on the number of
//! loader threads and a resumed run sees exactly the batches it would have seen.
//!
//! - [`mlm`]: BERT's masking, by tokens, whole words, ALBERT's n-grams or SpanBERT's spans.
//! - [`pairs`]: NSP and SOP sentence pairs.
//! - [`bart`]: BART's transforms: token masking and deletion, text infilling, sentence
//!   permutation, document rotation.
//! - [`mass`]: MASS's one-span masking and the decoder's shifted inputs.
//! - [`t5`]: T5's span corruption with sentinels, and its length arithmetic.
//! - [`permutation`]: factorization orders for permuted LM (XLNet, MPNet).

pub mod bart;
pub mod mass;
pub mod mlm;
pub mod pairs;
pub mod permutation;
pub mod t5;

pub use mlm::{MaskUnit, MlmMasker, MlmMasking};
pub use pairs::{DEFAULT_SHORT_SEQ_PROB, PairKind, PairSampler, SentencePair};
pub use permutation::{FactorizationOrder, PermutationMasking};

use rand::SeedableRng;

/// The target value of a position that carries no prediction (the value HF uses).
pub const IGNORE_INDEX: i64 = -100;

/// The random stream of one example: a xoshiro256++ generator, portable and fast.
pub type ExampleRng = rand::rngs::Xoshiro256PlusPlus;

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
