//! Classifier heads.
//!
//! - [`SequenceClassifier`]: BERT's pooler on the `[CLS]` state, dropout, then a linear layer
//!   to the classes, trained with cross-entropy on the batch's sequence labels. NSP and SOP
//!   are two-class instances ([`PairHeadConfig`](super::PairHeadConfig)); fine-tuning puts one
//!   with the downstream task's classes on a pretrained backbone.
//! - [`TokenClassifier`]: dropout and a linear layer on the state of every labelled token
//!   (the batch's targets), as BERT's tagging heads.
//! - [`ImageClassifier`]: a linear layer on a Vision Transformer's vector of each image (its
//!   `[CLS]` state or the mean of its patches'), for fine-tuning on classes and for pretext
//!   tasks that are classifications (rotation prediction).

use burn::nn::Linear;
use burn::prelude::*;

use super::{
    EncoderHead, Objective, ObjectiveOutput, SEQUENCES, TARGETS, forward_encoder_head,
    masked_cross_entropy,
};
use crate::blocks::VisionTransformer;
use crate::blocks::{
    Dropout, EncoderBackbone, Pooler, PoolerActivation, PoolerConfig, normal_linear, states_at,
};
use crate::data::TokenBatch;
use crate::data::images::LabelledImageBatch;
use crate::error::Result;

/// Configuration of a [`SequenceClassifier`].
#[derive(Config, Debug)]
pub struct SequenceClassifierConfig {
    /// Number of classes, at least 2.
    pub num_classes: usize,
    /// Prefix of the metric names: `{name}_acc`, `{name}_loss`.
    pub name: String,
    /// Dropout on the pooled vector. Default 0 (BERT's pretraining heads have none; its
    /// fine-tuning uses 0.1).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// The pooler's non-linearity: `tanh` (BERT's) or GELU (ELECTRA's classification head).
    #[config(default = "PoolerActivation::Tanh")]
    pub pooler_activation: PoolerActivation,
}

/// The loss of `p`, over `unit`, with its `{name}_acc` and `{name}_loss` metrics.
fn named_output(p: super::Predictions, unit: &str, name: &str) -> ObjectiveOutput {
    ObjectiveOutput {
        metrics: vec![
            p.accuracy(&format!("{name}_acc")),
            p.mean_loss(&format!("{name}_loss")),
        ],
        loss: p.loss(unit),
    }
}

/// Checks a classifier head's settings.
fn check_head(num_classes: usize, dropout: f64) -> Result<()> {
    if num_classes < 2 {
        return Err(crate::error::Error::InvalidConfig(format!(
            "a classifier needs at least 2 classes, got {num_classes}"
        )));
    }
    crate::error::check_rate("classifier dropout", dropout)
}

/// Pooler, dropout and a classifier over the `[CLS]` state.
#[derive(Module, Debug)]
pub struct SequenceClassifier {
    pooler: Pooler,
    dropout: Dropout,
    classifier: Linear,
    #[module(skip)]
    name: String,
}

impl SequenceClassifierConfig {
    /// Builds the head for `backbone`.
    pub fn init<M: EncoderBackbone>(
        &self,
        backbone: &M,
        device: &Device,
    ) -> Result<SequenceClassifier> {
        check_head(self.num_classes, self.dropout)?;
        let hidden = backbone.hidden_size();
        Ok(SequenceClassifier {
            pooler: PoolerConfig::new(hidden)
                .with_activation(self.pooler_activation)
                .init(device),
            dropout: Dropout::new(self.dropout),
            classifier: normal_linear(hidden, self.num_classes, 0.02, device),
            name: self.name.clone(),
        })
    }
}

impl SequenceClassifier {
    /// Logits `[batch, classes]` from the hidden states `[batch, len, hidden]`.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<2> {
        self.classifier
            .forward(self.dropout.forward(self.pooler.forward(hidden)))
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classifier.weight.lazy_shape().dims::<2>()[1]
    }

    /// The pooler's non-linearity.
    pub fn pooler_activation(&self) -> PoolerActivation {
        self.pooler.activation()
    }

    /// The metric names' prefix.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<M: EncoderBackbone> Objective<M> for SequenceClassifier {
    type Batch = TokenBatch;

    fn forward(&self, backbone: &M, batch: TokenBatch) -> ObjectiveOutput {
        forward_encoder_head(self, backbone, batch)
    }
}

impl<M: EncoderBackbone> EncoderHead<M> for SequenceClassifier {
    /// # Panics
    ///
    /// If `batch` carries no labels: the head was paired with a task that makes none.
    fn score(&self, _backbone: &M, hidden: Tensor<3>, batch: &TokenBatch) -> ObjectiveOutput {
        let labels = batch.labels.clone().unwrap_or_else(|| {
            panic!(
                "the {} head needs sequence labels; its batches come from a task without them",
                self.name
            )
        });
        named_output(
            masked_cross_entropy(self.logits(hidden), labels),
            SEQUENCES,
            &self.name,
        )
    }
}

/// Configuration of a [`TokenClassifier`].
#[derive(Config, Debug)]
pub struct TokenClassifierConfig {
    /// Number of classes, at least 2.
    pub num_classes: usize,
    /// Prefix of the metric names: `{name}_acc`, `{name}_loss`.
    pub name: String,
    /// Dropout on each token's state. Default 0.1 (BERT's fine-tuning).
    #[config(default = 0.1)]
    pub dropout: f64,
}

/// Dropout and a classifier over the state of each labelled token.
#[derive(Module, Debug)]
pub struct TokenClassifier {
    dropout: Dropout,
    classifier: Linear,
    #[module(skip)]
    name: String,
}

impl TokenClassifierConfig {
    /// Builds the head for `backbone`.
    pub fn init<M: EncoderBackbone>(
        &self,
        backbone: &M,
        device: &Device,
    ) -> Result<TokenClassifier> {
        check_head(self.num_classes, self.dropout)?;
        Ok(TokenClassifier {
            dropout: Dropout::new(self.dropout),
            classifier: normal_linear(backbone.hidden_size(), self.num_classes, 0.02, device),
            name: self.name.clone(),
        })
    }
}

impl TokenClassifier {
    /// Logits `[n, classes]` of the tokens at flat `positions` of `hidden`
    /// `[batch, len, hidden]`.
    pub fn logits_at(&self, hidden: Tensor<3>, positions: Tensor<1, Int>) -> Tensor<2> {
        // Dropout before the gather: its masks follow the batch's rows (see `Dropout`).
        self.classifier
            .forward(states_at(self.dropout.forward(hidden), positions))
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classifier.weight.lazy_shape().dims::<2>()[1]
    }
}

impl<M: EncoderBackbone> Objective<M> for TokenClassifier {
    type Batch = TokenBatch;

    fn forward(&self, backbone: &M, batch: TokenBatch) -> ObjectiveOutput {
        forward_encoder_head(self, backbone, batch)
    }
}

impl<M: EncoderBackbone> EncoderHead<M> for TokenClassifier {
    /// The batch's targets are the labelled tokens and their classes.
    fn score(&self, _backbone: &M, hidden: Tensor<3>, batch: &TokenBatch) -> ObjectiveOutput {
        let logits = self.logits_at(hidden, batch.target_positions.clone());
        named_output(
            masked_cross_entropy(logits, batch.target_ids.clone()),
            TARGETS,
            &self.name,
        )
    }
}

/// A linear layer from a Vision Transformer's vector of an image to its classes.
#[derive(Module, Debug)]
pub struct ImageClassifier {
    classifier: Linear,
    #[module(skip)]
    mean_pool: bool,
    #[module(skip)]
    name: String,
}

impl ImageClassifier {
    /// A fresh head over `vit`'s `[CLS]` state, or (`mean_pool`) the mean of its patches'
    /// states (MAE fine-tunes so), into `num_classes` classes; its metrics are named
    /// `{name}_acc` and `{name}_loss`.
    pub fn new(
        vit: &VisionTransformer,
        num_classes: usize,
        mean_pool: bool,
        name: &str,
        device: &Device,
    ) -> Result<Self> {
        check_head(num_classes, 0.0)?;
        Ok(Self {
            classifier: normal_linear(vit.hidden_size(), num_classes, 0.02, device),
            mean_pool,
            name: name.to_string(),
        })
    }

    /// Logits `[batch, classes]` of `images` `[batch, channels, side, side]`.
    pub fn logits(&self, vit: &VisionTransformer, images: Tensor<4>) -> Tensor<2> {
        self.classifier
            .forward(vit.features(images, self.mean_pool))
    }
}

impl Objective<VisionTransformer> for ImageClassifier {
    type Batch = LabelledImageBatch;

    fn forward(&self, vit: &VisionTransformer, batch: LabelledImageBatch) -> ObjectiveOutput {
        let logits = self.logits(vit, batch.images);
        named_output(
            masked_cross_entropy(logits, batch.labels),
            TARGETS,
            &self.name,
        )
    }
}
