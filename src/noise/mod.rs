//! Data noising: pure, seeded functions from token ids to corrupted inputs and targets.
//!
//! Nothing here touches tensors: noisers work on plain slices, so they are fast, property-tested
//! and benchmarked on their own. Every example gets its own random stream derived from
//! `(seed, epoch, example index)`, as fairseq does, so the data do not depend on the number of
//! loader threads and a resumed run sees exactly the batches it would have seen.
//!
//! - [`mlm`]: BERT's masking, by tokens, whole words, ALBERT's n-grams or SpanBERT's spans.
//! - [`bart`]: BART's transforms: token masking and deletion, text infilling, sentence
//!   permutation, document rotation.
//! - [`mass`]: MASS's one-span masking and the decoder's shifted inputs.
//! - [`t5`]: T5's span corruption with sentinels, and its length arithmetic.
//! - [`permutation`]: factorization orders for permuted LM (XLNet, MPNet).
//! - [`augment`]: views of an image (crops, flips, jitter, noise) and its quarter turns.

pub mod augment;
pub mod bart;
pub mod mass;
pub mod mlm;

pub mod permutation;
pub mod t5;

pub use mlm::{MaskUnit, MlmMasker, MlmMasking};

pub use permutation::{FactorizationOrder, PermutationMasking};

/// The target value of a position that carries no prediction (the value HF uses).
pub const IGNORE_INDEX: i64 = -100;
