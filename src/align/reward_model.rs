//! A trained reward model as PPO's rollouts use it: read back from a `reward` run, it scores
//! answers to prompts, framed and cut as in training.

use std::path::Path;

use burn::prelude::*;

use crate::blocks::{EncoderBackbone, TransformerEncoder};
use crate::error::{Error, Result};
use crate::objectives::reward::{RewardHead, pad_rows};
use crate::objectives::sft::{frame_answer, frame_prompt};
use crate::pretrainer::Pretrainer;
use crate::recipe::{ObjectiveRecipe, RunDir};
use crate::tokenize::Tokenizer;

/// A trained reward model, ready to score answers to prompts (what PPO's rollouts are
/// rewarded with).
#[derive(Debug)]
pub struct RewardModel {
    /// The tokenizer; a policy it scores must read text the same way.
    pub tokenizer: Tokenizer,
    /// The backbone.
    pub encoder: TransformerEncoder,
    /// The scalar head.
    pub head: RewardHead,
    /// The longest sequence it was trained on; longer answers are cut, as in training.
    pub seq_len: usize,
}

impl RewardModel {
    /// The model a `reward` run left in `dir` (its checkpoint), on `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let run = RunDir::open(dir)?;
        let recipe = &run.recipe;
        let ObjectiveRecipe::Reward(settings) = &recipe.objective else {
            return Err(Error::Recipe {
                field: "objective".into(),
                reason: format!(
                    "{} is a `{}` run, not a reward model",
                    dir.display(),
                    recipe.objective.name()
                ),
            });
        };
        let encoder = recipe.encoder.init(device)?;
        let head = settings.head_config().init(&encoder, device)?;
        let trained = run.checkpoint(Pretrainer::new(encoder, head))?;
        Ok(Self {
            tokenizer: recipe.tokenizer.load()?,
            encoder: trained.backbone,
            head: trained.objective,
            seq_len: recipe.seq_len,
        })
    }

    /// Checks that `policy` (the tokenizer of the model whose answers this one scores) reads
    /// text as this model's does: its token ids are what this model reads.
    pub fn check_tokenizer(&self, policy: &Tokenizer) -> Result<()> {
        match self.tokenizer.difference(policy) {
            Some(detail) => Err(Error::TokenizerMismatch {
                what: "reward model's and policy's".into(),
                detail,
            }),
            None => Ok(()),
        }
    }

    /// The score of each `(prompt, answer)`, framed and cut as in training, `batch` at a time.
    /// A prompt too long for the model is [`Error::PromptTooLong`], its `line` the pair's place
    /// in `pairs` from 1.
    pub fn score(&self, pairs: &[(&str, &str)], batch: usize) -> Result<Vec<f32>> {
        let device = self.encoder.token_embedding().device();
        let special = self.tokenizer.special();
        let mut scores = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(batch.max(1)) {
            let mut rows = Vec::with_capacity(chunk.len());
            for (prompt, answer) in chunk {
                let place = scores.len() + rows.len() + 1;
                let ids = frame_prompt(&self.tokenizer, prompt, self.seq_len, false, place)?;
                let (tail, _) =
                    frame_answer(&self.tokenizer, ids.len(), answer, self.seq_len, false)?;
                rows.push([ids.as_slice(), &tail].concat());
            }
            let (ids, padding, last) = pad_rows(&rows, special.pad, &device);
            let out = self.head.scores(&self.encoder, ids, padding, last);
            scores.extend(crate::util::floats(out));
        }
        Ok(scores)
    }
}
