//! From documents to batches: the [`Task`] trait (how example `index` is made and how
//! examples become a batch), segments of documents, samplers over them (NSP and SOP sentence
//! pairs), the examples and batches of every objective, and the loss units a batch counts;
//! and seeded views of images and the codebook of their patches. The documents and images themselves come from
//! [`crate::dataset`].

pub mod batch;
pub mod images;
pub mod pairs;
pub mod patch_codes;
pub mod permutation;
pub mod segments;
pub mod seq2seq;
pub mod token_source;
pub mod weights;

pub use crate::tokenize::Segment;
pub use batch::{NamedTargets, TokenBatch, TokenExample};
pub use pairs::{DEFAULT_SHORT_SEQ_PROB, PairKind, PairSampler, SentencePair};
pub use permutation::{PermutationBatch, PermutationExample};
pub use segments::{Segments, body_len, pack_segments};
pub use seq2seq::{Seq2SeqBatch, Seq2SeqExample};
pub use token_source::{TokenSource, TokenTaskOf};
pub use weights::{REAL_TOKENS, SEQUENCES, TARGETS, Weights};

use burn::prelude::Device;

use crate::error::Result;
use crate::util::rng::ExampleRng;

/// The data side of an objective: how example `index` of a split is made, and how examples
/// become a batch. Implementations are pure given the random stream they are handed, which the
/// training loop derives from `(seed, epoch, index)`.
pub trait Task: Send + Sync {
    /// One example, on plain data.
    type Example: Send;
    /// A batch, as tensors on a device.
    type Batch: Batch;

    /// Number of distinct examples in one epoch.
    fn num_examples(&self) -> usize;

    /// Makes example `index` (`< num_examples()`) with the given random stream.
    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<Self::Example>;

    /// Pads and stacks examples into a batch on `device`.
    fn collate(&self, examples: &[Self::Example], device: &Device) -> Result<Self::Batch>;

    /// Example `index` for optimizer step `step`, which is what the training loop asks for.
    /// A task whose data follow a schedule reads the step, such as
    /// [`MultiTaskData`](crate::objectives::multitask::MultiTaskData), whose tasks start at
    /// given steps. Any other task gives [`example`](Self::example).
    fn example_at(&self, index: usize, step: usize, rng: &mut ExampleRng) -> Result<Self::Example> {
        let _ = step;
        self.example(index, rng)
    }
}

/// What the training loop needs of any batch.
pub trait Batch: Clone + Send {
    /// Real (non-padding) tokens, for throughput figures.
    fn num_tokens(&self) -> usize;

    /// How many of each unit its objective's losses are summed over (targets, sequences,
    /// pairs…), counted from the data alone. The loop adds them over every part of a step
    /// before any part runs and divides each loss term by its unit's total (see
    /// [`Loss`](crate::objectives::Loss)).
    fn weights(&self) -> Weights;
}

impl Batch for TokenBatch {
    fn num_tokens(&self) -> usize {
        self.num_tokens
    }

    /// Its tokens with a target, its real tokens, its sequences, and each named target's
    /// values.
    fn weights(&self) -> Weights {
        let mut weights = Weights::of(TARGETS, self.num_targets as f64)
            .and(REAL_TOKENS, self.num_tokens as f64)
            .and(SEQUENCES, self.input_ids.dims()[0] as f64);
        for (name, targets) in &self.named {
            weights = weights.and(name, targets.count as f64);
        }
        weights
    }
}
