//! A [`Pretrainer`] pairs one backbone with one objective: what the training loop steps and what
//! a checkpoint holds. Fine-tuning later takes the backbone back out of it.

use burn::prelude::*;

use crate::blocks::EncoderBackbone;
use crate::error::{Error, Result};
use crate::objectives::{Objective, ObjectiveOutput};
use crate::tokenize::Tokenizer;

/// A backbone and the objective that trains it.
#[derive(Module, Debug)]
pub struct Pretrainer<M: Module, O: Module> {
    /// The model being pretrained.
    pub backbone: M,
    /// The objective's heads.
    pub objective: O,
}

impl<M: Module, O: Objective<M>> Pretrainer<M, O> {
    /// Pairs `backbone` with `objective`.
    pub fn new(backbone: M, objective: O) -> Self {
        Self {
            backbone,
            objective,
        }
    }

    /// Scores one batch.
    pub fn forward(&self, batch: O::Batch) -> ObjectiveOutput {
        self.objective.forward(&self.backbone, batch)
    }
}

/// Checks that a tokenizer and a backbone agree on the vocabulary, and that sequences of
/// `seq_len` fit the backbone's position table.
pub fn check_compatible<M: EncoderBackbone>(
    tokenizer: &Tokenizer,
    backbone: &M,
    seq_len: usize,
) -> Result<()> {
    if tokenizer.vocab_size() != backbone.vocab_size() {
        return Err(Error::VocabMismatch {
            tokenizer: tokenizer.vocab_size(),
            model: backbone.vocab_size(),
        });
    }
    if seq_len > backbone.max_positions() {
        return Err(Error::SequenceTooLong {
            len: seq_len,
            max: backbone.max_positions(),
        });
    }
    Ok(())
}
