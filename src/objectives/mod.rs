//! Pretraining objectives behind one [`Objective`] trait.
//!
//! An objective owns its heads and its loss; the backbone it trains is handed to it, and the
//! trait's type parameter says which capability it needs (`mlm` and `clm` take any
//! [`EncoderBackbone`](crate::blocks::EncoderBackbone)). Its data side is a
//! [`Task`](crate::data::Task) that turns documents into examples and batches.

pub mod clm;
pub mod loss;
pub mod mlm;

pub use clm::{Clm, ClmConfig, ClmTask};
pub use loss::{Predictions, masked_cross_entropy};
pub use mlm::{Mlm, MlmConfig, MlmTask};

use burn::module::ModuleDisplay;
use burn::prelude::*;

use crate::blocks::{AttentionMask, EncoderBackbone, LmHead};
use crate::data::TokenBatch;

/// How a metric's batches combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// `sum / count` (accuracy, mean loss).
    Mean,
    /// `exp(sum / count)` (perplexity from summed NLL).
    ExpMean,
}

/// A metric as a (sum, count) pair, so it averages correctly over batches and devices.
#[derive(Debug, Clone)]
pub struct Metric {
    /// Name in `metrics.jsonl`, e.g. `"mlm_acc"`.
    pub name: String,
    /// Sum over the batch (detached).
    pub sum: Tensor<1>,
    /// What the sum is over (detached).
    pub count: Tensor<1>,
    /// How sums combine into a value.
    pub reduce: Reduce,
}

impl Metric {
    /// A metric whose value is `sum / count`.
    pub fn mean(name: &str, sum: Tensor<1>, count: Tensor<1>) -> Self {
        Self {
            name: name.to_string(),
            sum,
            count,
            reduce: Reduce::Mean,
        }
    }

    /// A metric whose value is `exp(sum / count)`.
    pub fn exp_mean(name: &str, sum: Tensor<1>, count: Tensor<1>) -> Self {
        Self {
            name: name.to_string(),
            sum,
            count,
            reduce: Reduce::ExpMean,
        }
    }
}

/// What an objective returns for one batch.
#[derive(Debug, Clone)]
pub struct ObjectiveOutput {
    /// The loss to minimise (a scalar).
    pub loss: Tensor<1>,
    /// Metrics of this batch.
    pub metrics: Vec<Metric>,
}

/// A pretraining objective over a backbone of type `M`.
///
/// Implement it for a module holding your heads to plug in an objective of your own; the
/// training loop, checkpoints and metrics work unchanged.
pub trait Objective<M>: Module + ModuleDisplay {
    /// The batch this objective scores.
    type Batch: Clone + Send;

    /// Runs `backbone` and the heads on `batch` and scores the result.
    fn forward(&self, backbone: &M, batch: Self::Batch) -> ObjectiveOutput;
}

/// Runs `backbone` under `mask` and scores `head`'s predictions at the batch's targets: the
/// shared path of masked and causal LM.
pub fn predict_tokens<M: EncoderBackbone>(
    backbone: &M,
    head: &LmHead,
    batch: TokenBatch,
    mask: &AttentionMask,
) -> Predictions {
    let hidden = backbone.encode(batch.input_ids, Some(batch.segment_ids), Some(mask));
    let logits = head.forward_at(hidden, batch.target_positions, backbone.token_embedding());
    masked_cross_entropy(logits, batch.target_ids)
}
