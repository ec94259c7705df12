//! The reward model of InstructGPT's second step: a scalar head read at the last real token
//! of each sequence (the end of text after the answer, never a padding position), trained on
//! preference pairs ([`crate::finetune::preferences`]) with the pairwise loss
//! `−log σ(r_chosen − r_rejected − margin)`, plus TRL's optional
//! `center_rewards_coefficient · mean((r_chosen + r_rejected)²)`, which keeps rewards near 0.
//!
//! Sequences are `[CLS] prompt answer [SEP]`, as SFT frames them. The backbone reads them left
//! to right (a causal model's view, the SFT model it usually starts from) or both ways.

use std::path::{Path, PathBuf};

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;
use serde::{Deserialize, Serialize};

use super::sft::{frame_answer, frame_prompt};
use super::{Metric, Objective, ObjectiveOutput};
use crate::blocks::{AttentionMask, EncoderBackbone, TransformerEncoder, normal_linear, states_at};
use crate::data::{Batch, Task};
use crate::error::Error;
use crate::finetune::preferences::{self, Preference};
use crate::noise::ExampleRng;
use crate::preset::Preset;
use crate::recipe::{ObjectiveRecipe, ObjectiveSettings, Recipe, Run, RunReport};
use crate::tokenize::Tokenizer;

/// Configuration of a [`RewardHead`].
#[derive(Config, Debug)]
pub struct RewardHeadConfig {
    /// Read the sequence left to right (a causal backbone's mask); false reads it both ways.
    /// Default true.
    #[config(default = true)]
    pub causal: bool,
    /// Weight of `mean((r_chosen + r_rejected)²)` in the loss (TRL's
    /// `center_rewards_coefficient`); 0 for none. Default 0.
    #[config(default = 0.0)]
    pub center_rewards_coefficient: f64,
}

/// A linear map from the last real token's state to one score.
#[derive(Module, Debug)]
pub struct RewardHead {
    score: Linear,
    causal: bool,
    center: f64,
}

impl RewardHeadConfig {
    /// The head for `backbone`, its weights drawn from N(0, 1/√(width + 1)) as TRL's reward
    /// heads (small, so that first scores are near 0).
    pub fn init(
        &self,
        backbone: &TransformerEncoder,
        device: &Device,
    ) -> crate::Result<RewardHead> {
        let coefficient = self.center_rewards_coefficient;
        if !(coefficient.is_finite() && coefficient >= 0.0) {
            return Err(Error::InvalidConfig(format!(
                "center_rewards_coefficient must be 0 or more, not {coefficient}"
            )));
        }
        let width = backbone.hidden_size();
        let std = 1.0 / ((width + 1) as f64).sqrt();
        Ok(RewardHead {
            score: normal_linear(width, 1, std, device),
            causal: self.causal,
            center: coefficient,
        })
    }
}

impl RewardHead {
    /// The score `[rows]` of each sequence of `ids` `[rows, len]` (`padding` marks the padding
    /// after each), read at its last real token: flat index `last[r]` (`r · len + length − 1`).
    pub fn scores(
        &self,
        backbone: &TransformerEncoder,
        ids: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
        last: Tensor<1, Int>,
    ) -> Tensor<1> {
        let [rows, len] = ids.dims();
        let pad = AttentionMask::padding(padding);
        let mask = match self.causal {
            true => AttentionMask::causal(len, &ids.device()).or(pad),
            false => pad,
        };
        let segments = (backbone.num_segments() > 0).then(|| ids.zeros_like());
        let hidden = backbone.encode(ids, segments, Some(&mask));
        self.score.forward(states_at(hidden, last)).reshape([rows])
    }
}

/// The pairwise loss of `chosen` and `rejected` scores `[pairs]`, each pair's `margin`
/// subtracted from its difference, plus `center · mean((chosen + rejected)²)`; with the
/// metrics `accuracy` (the share of pairs scored the right way round), `margin` (the mean
/// difference) and `mean_reward` (the mean of all scores).
pub fn pairwise_loss(
    chosen: Tensor<1>,
    rejected: Tensor<1>,
    margin: Tensor<1>,
    center: f64,
) -> ObjectiveOutput {
    let pairs = chosen.dims()[0] as f32;
    let device = chosen.device();
    let difference = chosen.clone() - rejected.clone();
    let mut loss = log_sigmoid(difference.clone() - margin).neg().mean();
    if center > 0.0 {
        let sum = chosen.clone() + rejected.clone();
        loss = loss + (sum.clone() * sum).mean().mul_scalar(center);
    }
    let count = Tensor::from_floats([pairs], &device);
    let right = difference.clone().detach().greater_elem(0.0).float().sum();
    let scores = (chosen + rejected).detach().sum();
    ObjectiveOutput {
        metrics: vec![
            Metric::mean("accuracy", right, count.clone()),
            Metric::mean("margin", difference.detach().sum(), count.clone()),
            Metric::mean("mean_reward", scores, count.mul_scalar(2.0)),
        ],
        loss,
    }
}

impl Objective<TransformerEncoder> for RewardHead {
    type Batch = RewardBatch;

    fn forward(&self, backbone: &TransformerEncoder, batch: RewardBatch) -> ObjectiveOutput {
        let rows = batch.ids.dims()[0];
        let pairs = rows / 2;
        let scores = self.scores(backbone, batch.ids, batch.padding, batch.last);
        // Chosen answers fill the first half of the rows, their rejected ones the second.
        let chosen = scores.clone().slice([0..pairs]);
        let rejected = scores.slice([pairs..rows]);
        pairwise_loss(chosen, rejected, batch.margin, self.center)
    }
}

/// One preference pair as token ids: `[CLS] prompt answer [SEP]` for each answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardExample {
    /// The sequence with the preferred answer.
    pub chosen: Vec<u32>,
    /// The sequence with the other answer.
    pub rejected: Vec<u32>,
    /// How far the chosen should score above the rejected.
    pub margin: f64,
}

/// Pairs as a batch: `2 × pairs` rows, every chosen sequence, then every rejected one.
#[derive(Debug, Clone)]
pub struct RewardBatch {
    /// Token ids `[2 · pairs, len]`, padded at the end.
    pub ids: Tensor<2, Int>,
    /// Padding `[2 · pairs, len]`.
    pub padding: Tensor<2, Bool>,
    /// Flat index of each row's last real token `[2 · pairs]`.
    pub last: Tensor<1, Int>,
    /// Each pair's margin `[pairs]`.
    pub margin: Tensor<1>,
    /// Real tokens.
    pub num_tokens: usize,
}

impl Batch for RewardBatch {
    fn num_tokens(&self) -> usize {
        self.num_tokens
    }
}

/// The data side of a reward model: preference pairs as sequences.
#[derive(Debug, Clone)]
pub struct RewardTask {
    examples: Vec<RewardExample>,
    pad: u32,
    truncated: usize,
}

impl RewardTask {
    /// `pairs` tokenized by `tokenizer`, sequences of at most `seq_len` tokens; an answer too
    /// long is cut (its score is then read at its last kept token), a prompt that leaves no
    /// room for an answer is an error naming its line.
    pub fn new(pairs: &[Preference], tokenizer: &Tokenizer, seq_len: usize) -> crate::Result<Self> {
        if pairs.is_empty() {
            return Err(Error::EmptyCorpus("no preference pair to train on".into()));
        }
        let mut truncated = 0;
        let mut examples = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let prompt = frame_prompt(tokenizer, &pair.prompt, seq_len, false, pair.line)?;
            let mut sequence = |answer: &str| -> crate::Result<Vec<u32>> {
                let (tail, cut) = frame_answer(tokenizer, prompt.len(), answer, seq_len, false)?;
                truncated += usize::from(cut);
                Ok([prompt.as_slice(), &tail].concat())
            };
            examples.push(RewardExample {
                chosen: sequence(&pair.chosen)?,
                rejected: sequence(&pair.rejected)?,
                margin: pair.margin,
            });
        }
        Ok(Self {
            examples,
            pad: tokenizer.special().pad,
            truncated,
        })
    }

    /// How many answers were cut to fit the sequence length.
    pub fn truncated(&self) -> usize {
        self.truncated
    }
}

impl Task for RewardTask {
    type Example = RewardExample;
    type Batch = RewardBatch;

    fn num_examples(&self) -> usize {
        self.examples.len()
    }

    fn example(&self, index: usize, _rng: &mut ExampleRng) -> crate::Result<RewardExample> {
        Ok(self.examples[index].clone())
    }

    fn collate(&self, examples: &[RewardExample], device: &Device) -> crate::Result<RewardBatch> {
        if examples.is_empty() {
            return Err(Error::InvalidConfig("cannot collate an empty batch".into()));
        }
        let rows: Vec<Vec<u32>> = examples
            .iter()
            .map(|e| e.chosen.clone())
            .chain(examples.iter().map(|e| e.rejected.clone()))
            .collect();
        let (ids, padding, last) = pad_rows(&rows, self.pad, device);
        let margin: Vec<f32> = examples.iter().map(|e| e.margin as f32).collect();
        Ok(RewardBatch {
            ids,
            padding,
            last,
            margin: Tensor::from_data(TensorData::new(margin, [examples.len()]), device),
            num_tokens: rows.iter().map(Vec::len).sum(),
        })
    }
}

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
    pub fn load(dir: &Path, device: &Device) -> crate::Result<Self> {
        let recipe = Recipe::read(dir.join("config.json"))?;
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
        let head = RewardHeadConfig::new()
            .with_causal(settings.causal)
            .with_center_rewards_coefficient(settings.center_rewards_coefficient)
            .init(&encoder, device)?;
        let trained =
            crate::recipe::read_checkpoint(dir, crate::pretrainer::Pretrainer::new(encoder, head))?;
        Ok(Self {
            tokenizer: recipe.tokenizer.load()?,
            encoder: trained.backbone,
            head: trained.objective,
            seq_len: recipe.seq_len,
        })
    }

    /// Checks that `policy` (the tokenizer of the model whose answers this one scores) reads
    /// text as this model's does: its token ids are what this model reads.
    pub fn check_tokenizer(&self, policy: &Tokenizer) -> crate::Result<()> {
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
    pub fn score(&self, pairs: &[(&str, &str)], batch: usize) -> crate::Result<Vec<f32>> {
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
            scores.extend(
                out.into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .expect("floats"),
            );
        }
        Ok(scores)
    }
}

/// `rows` padded at the end into ids and padding `[rows, len]`, with each row's last real
/// token as a flat index `[rows]`.
fn pad_rows(
    rows: &[Vec<u32>],
    pad: u32,
    device: &Device,
) -> (Tensor<2, Int>, Tensor<2, Bool>, Tensor<1, Int>) {
    let len = rows.iter().map(Vec::len).max().unwrap_or(0);
    let n = rows.len();
    let mut ids = vec![i64::from(pad); n * len];
    let mut padding = vec![true; n * len];
    let mut last = Vec::with_capacity(n);
    for (r, row) in rows.iter().enumerate() {
        for (t, &id) in row.iter().enumerate() {
            ids[r * len + t] = i64::from(id);
            padding[r * len + t] = false;
        }
        last.push((r * len + row.len() - 1) as i64);
    }
    (
        Tensor::from_data(TensorData::new(ids, [n, len]), device),
        Tensor::from_data(TensorData::new(padding, [n, len]), device),
        Tensor::from_data(TensorData::new(last, [n]), device),
    )
}

/// The recipe settings of `reward`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardRecipe {
    /// The preference pairs (JSON lines); none: the bundled `data/preferences.jsonl`.
    #[serde(default)]
    pub data: Option<PathBuf>,
    /// Read sequences left to right, as the causal model it starts from. Default true.
    #[serde(default = "yes")]
    pub causal: bool,
    /// TRL's `center_rewards_coefficient`: weight of `mean((r_chosen + r_rejected)²)`.
    /// Default 0.
    #[serde(default)]
    pub center_rewards_coefficient: f64,
}

fn yes() -> bool {
    true
}

impl Default for RewardRecipe {
    fn default() -> Self {
        Self {
            data: None,
            causal: true,
            center_rewards_coefficient: 0.0,
        }
    }
}

/// `reward`'s recipe: the causal encoder `clm` and `sft` train (start it from one with
/// `init`), a fresh scalar head.
pub fn recipe(preset: Preset) -> crate::Result<Recipe> {
    let mut recipe = Recipe::new(ObjectiveRecipe::Reward(RewardRecipe::default()), preset)?;
    recipe.encoder.norm_first = true;
    Ok(recipe)
}

impl RewardRecipe {
    /// The preference file.
    pub fn data_path(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(preferences::bundled_path)
    }
}

impl ObjectiveSettings for RewardRecipe {
    fn segments(&self) -> usize {
        0
    }

    fn masks(&self) -> bool {
        false
    }

    fn reads_corpus(&self) -> bool {
        false
    }

    fn check(&self, _recipe: &Recipe, _tokenizer: &Tokenizer) -> crate::Result<()> {
        crate::finetune::check_data_file(&self.data_path())?;
        let c = self.center_rewards_coefficient;
        if !(c.is_finite() && c >= 0.0) {
            return Err(Error::Recipe {
                field: "objective.settings.center_rewards_coefficient".into(),
                reason: format!("must be 0 or more, not {c}"),
            });
        }
        Ok(())
    }

    fn run(&self, run: &Run) -> crate::Result<RunReport> {
        let encoder = run.encoder()?;
        let head = RewardHeadConfig::new()
            .with_causal(self.causal)
            .with_center_rewards_coefficient(self.center_rewards_coefficient)
            .init(&encoder, run.device())?;
        let data = preferences::load_from(&self.data_path())?;
        let (train, valid) =
            data.tasks(|pairs| RewardTask::new(pairs, run.tokenizer, run.seq_len()))?;
        run.note_cut(train.truncated() + valid.truncated());
        Ok(run.fit_tasks(encoder, head, train, valid)?.into())
    }

    fn hf_misfit(&self, _recipe: &Recipe) -> Option<String> {
        Some("a reward head, which pretext does not export".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    fn metric(out: &ObjectiveOutput, name: &str) -> f32 {
        let m = out.metrics.iter().find(|m| m.name == name).unwrap();
        m.sum.clone().into_scalar::<f32>() / m.count.clone().into_scalar::<f32>()
    }

    #[test]
    fn the_pairwise_loss_and_its_metrics_are_the_formula_on_hand_values() {
        let device = Device::flex();
        let chosen = Tensor::<1>::from_floats([2.0, 0.5, -1.0], &device);
        let rejected = Tensor::<1>::from_floats([1.0, 1.5, -3.0], &device);
        let margin = Tensor::<1>::from_floats([0.0, 0.5, 1.0], &device);
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        // Differences 1, -1, 2 less margins 0, 0.5, 1: 1, -1.5, 1.
        let nll = |d: f64| -sigmoid(d).ln();
        let expected = (nll(1.0) + nll(-1.5) + nll(1.0)) / 3.0;
        let out = pairwise_loss(chosen.clone(), rejected.clone(), margin.clone(), 0.0);
        assert!((out.loss.clone().into_scalar::<f32>() as f64 - expected).abs() < 1e-6);
        assert!((metric(&out, "accuracy") - 2.0 / 3.0).abs() < 1e-6);
        assert!((metric(&out, "margin") - 2.0 / 3.0).abs() < 1e-6);
        // Scores sum to 1.5 - 0.5 over six.
        assert!((metric(&out, "mean_reward") - 1.0 / 6.0).abs() < 1e-6);
        // Centring adds 0.1 · mean of (3², 2², (-4)²) = 0.1 · 29/3.
        let centred = pairwise_loss(chosen, rejected, margin, 0.1);
        let with = expected + 0.1 * 29.0 / 3.0;
        assert!((centred.loss.into_scalar::<f32>() as f64 - with).abs() < 1e-5);
    }

    #[test]
    fn the_score_is_read_at_the_last_real_token_whatever_the_padding() {
        let device = Device::flex();
        let (encoder, _, _) = crate::test_support::tiny_parts(&device);
        let head = RewardHeadConfig::new().init(&encoder, &device).unwrap();
        let example = |chosen: Vec<u32>| RewardExample {
            chosen,
            rejected: vec![2, 5, 3],
            margin: 0.0,
        };
        let task = RewardTask {
            examples: Vec::new(),
            pad: 0,
            truncated: 0,
        };
        let score = |task: &RewardTask, examples: &[RewardExample]| {
            let batch = task.collate(examples, &device).unwrap();
            values(head.scores(&encoder, batch.ids, batch.padding, batch.last))
        };
        let short = example(vec![2, 7, 8, 3]);
        let alone = score(&task, std::slice::from_ref(&short));
        // Beside a longer pair, the short sequence is padded: its score does not move.
        let long = example(vec![2, 9, 10, 11, 12, 13, 3]);
        let together = score(&task, &[short.clone(), long.clone()]);
        assert!(
            (alone[0] - together[0]).abs() < 1e-5,
            "{alone:?} {together:?}"
        );
        // Rows: chosen of each pair first, then the rejected ones.
        assert!((alone[1] - together[2]).abs() < 1e-5);
        // Nor does the padding's id.
        let other_pad = RewardTask {
            pad: 30,
            ..task.clone()
        };
        let repadded = score(&other_pad, &[short, long]);
        assert!((repadded[0] - together[0]).abs() < 1e-5);
        // The last token decides: change it and the score moves.
        let other = score(&task, &[example(vec![2, 7, 8, 4])]);
        assert!((other[0] - alone[0]).abs() > 1e-4);
    }
}
