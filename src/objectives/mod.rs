//! Pretraining objectives behind one [`Objective`] trait.
//!
//! An objective owns its heads and its loss; the backbone it trains is handed to it, and the
//! trait's type parameter says which capability it needs (`mlm`, `clm`, `nsp` and `sop` take
//! any [`EncoderBackbone`]). Its data side is a [`Task`](crate::data::Task) that turns
//! documents into examples and batches.
//!
//! `bart`, `mass` and `t5` share one model side, [`Seq2Seq`] over a
//! [`Seq2SeqBackbone`](crate::blocks::Seq2SeqBackbone), and differ in their tasks
//! ([`BartTask`], [`MassTask`], [`T5Task`]).
//!
//! Objectives that read one bidirectional encoder pass over a [`TokenBatch`] (`mlm`, `nsp`,
//! `sop`) are also [`EncoderHead`]s, which is what lets a [`Mix`] of them share that pass.

pub mod bart;
pub mod beit;
pub mod classifier;
pub mod clm;
pub mod detection;
pub mod distill;
pub mod dpo;
pub mod electra;
pub mod loss;
pub mod mae;
pub mod mass;
pub mod mix;
pub mod mlm;
pub mod multitask;
pub mod plm;
pub mod reduction;
pub mod reward;
pub mod rotation;
pub mod sentence_pair;
pub mod seq2seq;
pub mod sft;
pub mod simclr;
pub mod spanbert;
pub mod t5;
pub mod unilm;

pub use crate::data::{REAL_TOKENS, SEQUENCES, TARGETS, Weights};
pub use bart::BartTask;
pub use beit::{Beit, BeitBatch, BeitConfig, BeitTask};
pub use classifier::{
    ImageClassifier, SequenceClassifier, SequenceClassifierConfig, TokenClassifier,
    TokenClassifierConfig,
};
pub use clm::{Clm, ClmConfig, ClmTask};
pub use detection::{DetectionHead, DetectionHeadConfig};
pub use distill::{Distill, DistillConfig, DistillSettings, Teacher};
pub use electra::{Electra, ElectraBatch, ElectraConfig, ElectraTask};
pub use loss::{Predictions, masked_cross_entropy};
pub use mae::{Mae, MaeBatch, MaeConfig, MaeTask};
pub use mass::MassTask;
pub use mix::Mix;
pub use mlm::{Mlm, MlmConfig, MlmTask};
pub use multitask::{MultiTask, MultiTaskData, TaskDraw, TaskHead};
pub use plm::{PermutationTask, PermutedLm, PermutedLmConfig};
pub use reduction::{Loss, LossTerm};
pub use reward::{RewardBatch, RewardHead, RewardHeadConfig, RewardTask};
pub use rotation::{RotationTask, rotation_head};
pub use sentence_pair::{PairHead, PairHeadConfig, PairTaskConfig, SentencePairTask};
pub use seq2seq::{Seq2Seq, Seq2SeqConfig};
pub use sft::{Sft, SftBatch, SftExample, SftTask};
pub use simclr::{Simclr, SimclrBatch, SimclrConfig, SimclrTask};
pub use spanbert::{SboHead, SboHeadConfig, SpanBert, SpanBertConfig, SpanBertTask};
pub use t5::{SpanCorruption, T5Task};
pub use unilm::{Unilm, UnilmConfig, UnilmMask, UnilmShares, UnilmTask};

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
    /// The sum alone, over the batches logged together (tokens trained on).
    Sum,
    /// The latest value alone: a running count, such as PPO's episodes so far.
    Last,
}

/// A metric as a (sum, count) pair, so it averages correctly over batches and devices.
///
/// A mean whose count is 0 over all the batches of a record (recall when nothing was
/// replaced, precision when nothing was flagged) is left out of that record, rather than
/// written as 0, which would read as a bad model, or as `null`, which every reader of
/// `metrics.jsonl` would have to handle: a record holds only numbers, and a plot of the
/// metric shows a gap there. A batch whose count is 0 therefore adds nothing, not a zero.
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
    /// A metric whose value is the sum over the batches logged together.
    pub fn sum(name: &str, sum: Tensor<1>) -> Self {
        let count = sum.ones_like();
        Self {
            name: name.to_string(),
            sum,
            count,
            reduce: Reduce::Sum,
        }
    }

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
    /// The loss to minimise, as sums over the units the batch counts in
    /// [`Batch::weights`](crate::data::Batch::weights): `loss.normalized(&batch.weights())` is
    /// the batch's mean loss.
    pub loss: Loss,
    /// Metrics of this batch.
    pub metrics: Vec<Metric>,
}

/// A pretraining objective over a backbone of type `M`.
///
/// Implement it for a module holding your heads to plug in an objective of your own; the
/// training loop, checkpoints and metrics work unchanged. Return the loss *summed* over its
/// targets ([`Loss::over`]), naming a unit the batch counts: the loop divides by the unit's
/// total over the whole step, so that the result does not depend on how a batch is split.
pub trait Objective<M>: Module + ModuleDisplay {
    /// The batch this objective scores.
    type Batch: crate::data::Batch;

    /// Runs `backbone` and the heads on `batch` and scores the result.
    fn forward(&self, backbone: &M, batch: Self::Batch) -> ObjectiveOutput;

    /// Whether an example's loss depends on the other examples of its batch, as with
    /// SimCLR's in-batch negatives. Cutting such a batch into shards, micro-batches, devices
    /// or ranks would change the loss, not only the speed, so the trainer refuses to.
    /// Default false.
    fn couples_batch(&self) -> bool {
        false
    }
}

/// A head over one bidirectional encoder pass: given the hidden states of a [`TokenBatch`],
/// it scores its own part. Heads that read the same batch can share one pass in a [`Mix`]; each
/// is an [`Objective`] alone through [`forward_encoder_head`].
pub trait EncoderHead<M>: Module + ModuleDisplay {
    /// Scores `hidden` `[batch, len, width]`, the backbone's states for `batch`.
    fn score(&self, backbone: &M, hidden: Tensor<3>, batch: &TokenBatch) -> ObjectiveOutput;
}

/// Runs `backbone` over `batch` under `mask`.
pub fn encode<M: EncoderBackbone>(
    backbone: &M,
    batch: &TokenBatch,
    mask: &AttentionMask,
) -> Tensor<3> {
    let segments = Some(batch.segment_ids.clone());
    backbone.encode(batch.input_ids.clone(), segments, Some(mask))
}

/// Runs `backbone` over `batch` bidirectionally: only padding is hidden.
pub fn encode_bidirectional<M: EncoderBackbone>(backbone: &M, batch: &TokenBatch) -> Tensor<3> {
    encode(
        backbone,
        batch,
        &AttentionMask::padding(batch.padding.clone()),
    )
}

/// The [`Objective::forward`] of an [`EncoderHead`]: one bidirectional pass (only padding
/// hidden), then the head.
pub fn forward_encoder_head<M: EncoderBackbone, H: EncoderHead<M>>(
    head: &H,
    backbone: &M,
    batch: TokenBatch,
) -> ObjectiveOutput {
    let hidden = encode_bidirectional(backbone, &batch);
    head.score(backbone, hidden, &batch)
}

/// Scores `head`'s predictions from `hidden` at the batch's token targets: the shared path of
/// masked and causal LM.
pub fn predict_tokens<M: EncoderBackbone>(
    backbone: &M,
    head: &LmHead,
    hidden: Tensor<3>,
    batch: &TokenBatch,
) -> Predictions {
    let at = batch.target_positions.clone();
    let logits = head.forward_at(hidden, at, backbone.token_embedding());
    masked_cross_entropy(logits, batch.target_ids.clone())
}
