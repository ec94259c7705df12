//! What rewards a response: the one interface PPO optimises and a policy is judged by, met by
//! a trained reward model, by the programmatic style judge, or by any rule a user writes.

use crate::align::RewardModel;
use crate::error::Result;
use crate::tokenize::Tokenizer;

use super::style::StyleScorer;

/// Scores `(prompt, response)` pairs, higher for better responses.
pub trait Scorer {
    /// One score per pair, in order.
    fn score(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>>;

    /// A short description for logs and run files, e.g. the reward model's directory.
    fn name(&self) -> String;

    /// Checks that responses written with `policy`'s tokenizer read as this scorer reads them
    /// (a reward model reads token ids); by default anything goes.
    fn check_tokenizer(&self, _policy: &Tokenizer) -> Result<()> {
        Ok(())
    }
}

/// Rows a reward model scores at a time.
const BATCH: usize = 64;

impl Scorer for RewardModel {
    fn score(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>> {
        RewardModel::score(self, pairs, BATCH)
    }

    fn name(&self) -> String {
        "reward model".into()
    }

    fn check_tokenizer(&self, policy: &Tokenizer) -> Result<()> {
        RewardModel::check_tokenizer(self, policy)
    }
}

/// The style judge scores the response alone.
impl Scorer for StyleScorer {
    fn score(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>> {
        Ok(pairs
            .iter()
            .map(|(_, response)| StyleScorer::score(self, response))
            .collect())
    }

    fn name(&self) -> String {
        "style judge".into()
    }
}
