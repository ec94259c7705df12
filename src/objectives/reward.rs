//! The reward model of InstructGPT's second step: a scalar head read at the last real token
//! of each sequence (the end of text after the answer, never a padding position), trained on
//! rankings of answers to a prompt ([`crate::dataset::preferences`]; a preference pair is a
//! ranking of two) with the pairwise loss `−log σ(r_better − r_worse − margin)`, plus TRL's
//! optional `center_rewards_coefficient · mean((r_better + r_worse)²)`, which keeps rewards
//! near 0.
//!
//! As InstructGPT (Ouyang et al. 2022, §3.5), the C(K, 2) comparisons of a prompt's K ranked
//! answers are one batch element, not C(K, 2) of them: its K sequences are scored once, and
//! its comparisons share a weight of 1/C(K, 2), so that the loss is
//! `−1/C(K,2) · Σ log σ(r_better − r_worse)` per prompt, averaged over the batch's prompts.
//! Comparisons of one ranking are correlated; fed as separate elements they overfit after a
//! single pass, and cost a forward pass of each answer per comparison it is in.
//! On a batch of pairs (K = 2) this is [`pairwise_loss`] exactly.
//!
//! Sequences are `[CLS] prompt answer [SEP]`, as SFT frames them. The backbone reads them left
//! to right (a causal model's view, the SFT model it usually starts from) or both ways.

use std::path::PathBuf;

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;
use serde::{Deserialize, Serialize};

use super::sft::{frame_answer, frame_prompt};
use super::{Loss, Metric, Objective, ObjectiveOutput, Weights};
use crate::blocks::{AttentionMask, EncoderBackbone, TransformerEncoder, normal_linear, states_at};
use crate::data::{Batch, Task};
use crate::dataset::preferences::{self, Ranking};
use crate::error::{Error, Result};
use crate::tokenize::Tokenizer;
use crate::util::rng::ExampleRng;

/// The unit of ranking losses: the rankings of a batch (a preference pair is a ranking of 2).
pub const RANKINGS: &str = "rankings";

/// Configuration of a [`RewardHead`].
#[derive(Config, Debug)]
pub struct RewardHeadConfig {
    /// Read the sequence left to right (a causal backbone's mask); false reads it both ways.
    /// Default true.
    #[config(default = true)]
    pub causal: bool,
    /// Weight in the loss of the comparisons' weighted mean of `(r_better + r_worse)²` (TRL's
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
    pub fn init(&self, backbone: &TransformerEncoder, device: &Device) -> Result<RewardHead> {
        check_center(self.center_rewards_coefficient)?;
        let width = backbone.hidden_size();
        let std = 1.0 / ((width + 1) as f64).sqrt();
        Ok(RewardHead {
            score: normal_linear(width, 1, std, device),
            causal: self.causal,
            center: self.center_rewards_coefficient,
        })
    }
}

/// Checks TRL's `center_rewards_coefficient`, which must be 0 or more.
pub fn check_center(coefficient: f64) -> Result<()> {
    crate::error::check_weight("center_rewards_coefficient", coefficient)
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

/// The pairwise loss of `chosen` and `rejected` scores `[pairs]`, summed over the pairs, each
/// pair's `margin` subtracted from its difference, plus `center · Σ (chosen + rejected)²`; with the
/// metrics `accuracy` (the share of pairs scored the right way round), `margin` (the mean
/// difference) and `mean_reward` (the mean of all scores). It is [`ranking_loss`] on a batch
/// of pairs, each its own group.
pub fn pairwise_loss(
    chosen: Tensor<1>,
    rejected: Tensor<1>,
    margin: Tensor<1>,
    center: f64,
) -> ObjectiveOutput {
    let pairs = chosen.dims()[0];
    let device = chosen.device();
    // Chosen scores are rows 0..pairs, rejected ones pairs..2·pairs.
    let comparisons = Comparisons {
        better: Tensor::arange(0..pairs as i64, &device),
        worse: Tensor::arange(pairs as i64..2 * pairs as i64, &device),
        margin,
        weight: Tensor::full([pairs], 1.0, &device),
    };
    ranking_loss(Tensor::cat(vec![chosen, rejected], 0), comparisons, center)
}

/// The comparisons of a batch's scores `[rows]`: which row scores the better answer and which
/// the worse, each `[pairs]`, with the pair's margin and weight.
#[derive(Debug, Clone)]
pub struct Comparisons {
    /// The row of the better answer of each pair.
    pub better: Tensor<1, Int>,
    /// The row of the worse answer.
    pub worse: Tensor<1, Int>,
    /// How far the better should score above the worse.
    pub margin: Tensor<1>,
    /// The pair's share of its ranking's loss, 1/C(K, 2) for a ranking of K answers; the
    /// weights of a ranking sum to 1.
    pub weight: Tensor<1>,
}

/// The loss of `scores` `[rows]` over `comparisons`, summed over the rankings:
/// `Σ weight · −log σ(r_better − r_worse − margin)` plus
/// `center · Σ weight · (r_better + r_worse)²`; with the metrics `accuracy` (the share of
/// pairs scored the right way round) and `margin` (the mean difference), each pair counted
/// once, and `mean_reward` (the mean of all scores).
pub fn ranking_loss(scores: Tensor<1>, comparisons: Comparisons, center: f64) -> ObjectiveOutput {
    let device = scores.device();
    let rows = scores.dims()[0] as f32;
    let pairs = comparisons.better.dims()[0] as f32;
    let better = scores.clone().select(0, comparisons.better);
    let worse = scores.clone().select(0, comparisons.worse);
    let weight = comparisons.weight;
    let difference = better.clone() - worse.clone();
    let nll = log_sigmoid(difference.clone() - comparisons.margin).neg();
    let mut loss = (nll * weight.clone()).sum();
    if center > 0.0 {
        let sum = better + worse;
        loss = loss + (sum.clone() * sum * weight).sum().mul_scalar(center);
    }
    let count = |n: f32| Tensor::from_floats([n], &device);
    let right = difference.clone().detach().greater_elem(0.0).float().sum();
    ObjectiveOutput {
        metrics: vec![
            Metric::mean("accuracy", right, count(pairs)),
            Metric::mean("margin", difference.detach().sum(), count(pairs)),
            Metric::mean("mean_reward", scores.detach().sum(), count(rows)),
        ],
        loss: Loss::over(RANKINGS, loss),
    }
}

impl Objective<TransformerEncoder> for RewardHead {
    type Batch = RewardBatch;

    fn forward(&self, backbone: &TransformerEncoder, batch: RewardBatch) -> ObjectiveOutput {
        let scores = self.scores(backbone, batch.ids, batch.padding, batch.last);
        ranking_loss(scores, batch.comparisons, self.center)
    }
}

/// One ranking as token ids: `[CLS] prompt answer [SEP]` for each answer, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardExample {
    /// The sequences, the best answer's first; at least two.
    pub sequences: Vec<Vec<u32>>,
    /// How far each should score above the ones after it (a pair line's margin, else 0).
    pub margin: f64,
}

/// Rankings as a batch: the sequences of every ranking, ranking after ranking (each best
/// first), and the comparisons between them.
#[derive(Debug, Clone)]
pub struct RewardBatch {
    /// Token ids `[rows, len]`, padded at the end.
    pub ids: Tensor<2, Int>,
    /// Padding `[rows, len]`.
    pub padding: Tensor<2, Bool>,
    /// Flat index of each row's last real token `[rows]`.
    pub last: Tensor<1, Int>,
    /// The C(K, 2) comparisons of each ranking of K rows.
    pub comparisons: Comparisons,
    /// Real tokens.
    pub num_tokens: usize,
    /// Rankings (groups of answers to one prompt).
    pub rankings: usize,
}

impl Batch for RewardBatch {
    fn num_tokens(&self) -> usize {
        self.num_tokens
    }

    /// Its rankings.
    fn weights(&self) -> Weights {
        Weights::of(RANKINGS, self.rankings as f64)
    }
}

/// The data side of a reward model: rankings (and preference pairs, rankings of two) as
/// sequences.
#[derive(Debug, Clone)]
pub struct RewardTask {
    examples: Vec<RewardExample>,
    pad: u32,
    truncated: usize,
}

impl RewardTask {
    /// `rankings` tokenized by `tokenizer`, one example each, sequences of at most `seq_len`
    /// tokens; an answer too long is cut (its score is then read at its last kept token), a
    /// prompt that leaves no room for an answer is an error naming its line.
    pub fn new(rankings: &[Ranking], tokenizer: &Tokenizer, seq_len: usize) -> Result<Self> {
        if rankings.is_empty() {
            return Err(Error::EmptyCorpus(
                "no preference pair or ranking to train on".into(),
            ));
        }
        let mut truncated = 0;
        let mut examples = Vec::with_capacity(rankings.len());
        for ranking in rankings {
            let prompt = frame_prompt(tokenizer, &ranking.prompt, seq_len, false, ranking.line)?;
            let sequences = ranking
                .answers
                .iter()
                .map(|answer| {
                    let (tail, cut) =
                        frame_answer(tokenizer, prompt.len(), answer, seq_len, false)?;
                    truncated += usize::from(cut);
                    Ok([prompt.as_slice(), &tail].concat())
                })
                .collect::<Result<_>>()?;
            examples.push(RewardExample {
                sequences,
                margin: ranking.margin,
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

    fn example(&self, index: usize, _rng: &mut ExampleRng) -> Result<RewardExample> {
        Ok(self.examples[index].clone())
    }

    fn collate(&self, examples: &[RewardExample], device: &Device) -> Result<RewardBatch> {
        if examples.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if let Some(e) = examples.iter().find(|e| e.sequences.len() < 2) {
            return Err(Error::InvalidConfig(format!(
                "a ranking of {} answer(s) compares nothing: it needs 2 or more",
                e.sequences.len()
            )));
        }
        let mut rows: Vec<&[u32]> = Vec::new();
        let (mut better, mut worse) = (Vec::new(), Vec::new());
        let (mut margin, mut weight) = (Vec::new(), Vec::new());
        for example in examples {
            let k = example.sequences.len();
            // Each ranking weighs 1, shared by its C(K, 2) comparisons.
            let share = 1.0 / (k * (k - 1) / 2) as f64;
            for (b, w) in preferences::comparisons(k) {
                better.push((rows.len() + b) as i64);
                worse.push((rows.len() + w) as i64);
                margin.push(example.margin as f32);
                weight.push(share as f32);
            }
            rows.extend(example.sequences.iter().map(Vec::as_slice));
        }
        let (ids, padding, last) = pad_rows(&rows, self.pad, device);
        let pairs = better.len();
        let floats = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [pairs]), device);
        let ints = |v: Vec<i64>| Tensor::from_data(TensorData::new(v, [pairs]), device);
        Ok(RewardBatch {
            ids,
            padding,
            last,
            comparisons: Comparisons {
                better: ints(better),
                worse: ints(worse),
                margin: floats(margin),
                weight: floats(weight),
            },
            num_tokens: rows.iter().map(|r| r.len()).sum(),
            rankings: examples.len(),
        })
    }
}

/// `rows` padded at the end into ids and padding `[rows, len]`, with each row's last real
/// token as a flat index `[rows]`.
pub(crate) fn pad_rows<R: AsRef<[u32]>>(
    rows: &[R],
    pad: u32,
    device: &Device,
) -> (Tensor<2, Int>, Tensor<2, Bool>, Tensor<1, Int>) {
    let len = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let n = rows.len();
    let mut ids = vec![i64::from(pad); n * len];
    let mut padding = vec![true; n * len];
    let mut last = Vec::with_capacity(n);
    for (r, row) in rows.iter().map(AsRef::as_ref).enumerate() {
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

/// The settings of `reward`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardSettings {
    /// The preference pairs or rankings (JSON lines); none: the bundled
    /// `data/preferences.jsonl`.
    pub data: Option<PathBuf>,
    /// Read sequences left to right, as the causal model it starts from. Default true.
    pub causal: bool,
    /// TRL's `center_rewards_coefficient`: weight of the comparisons' weighted mean of
    /// `(r_better + r_worse)²`. Default 0.
    pub center_rewards_coefficient: f64,
}

impl Default for RewardSettings {
    fn default() -> Self {
        Self {
            data: None,
            causal: true,
            center_rewards_coefficient: 0.0,
        }
    }
}

impl RewardSettings {
    /// The head these settings describe.
    pub fn head_config(&self) -> RewardHeadConfig {
        RewardHeadConfig::new()
            .with_causal(self.causal)
            .with_center_rewards_coefficient(self.center_rewards_coefficient)
    }

    /// The preference file.
    pub fn data_path(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(preferences::bundled_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::util::{floats as values, ints};

    fn metric(out: &ObjectiveOutput, name: &str) -> f32 {
        let m = out.metrics.iter().find(|m| m.name == name).unwrap();
        m.sum.clone().into_scalar::<f32>() / m.count.clone().into_scalar::<f32>()
    }

    /// The mean loss over `rankings` rankings.
    fn mean(out: &ObjectiveOutput, rankings: usize) -> f64 {
        let weights = Weights::of(RANKINGS, rankings as f64);
        f64::from(out.loss.normalized(&weights).into_scalar::<f32>())
    }

    #[test]
    fn the_pairwise_loss_and_its_metrics_are_the_formula_on_hand_values() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let chosen = Tensor::<1>::from_floats([2.0, 0.5, -1.0], &device);
        let rejected = Tensor::<1>::from_floats([1.0, 1.5, -3.0], &device);
        let margin = Tensor::<1>::from_floats([0.0, 0.5, 1.0], &device);
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        // Differences 1, -1, 2 less margins 0, 0.5, 1: 1, -1.5, 1.
        let nll = |d: f64| -sigmoid(d).ln();
        let expected = (nll(1.0) + nll(-1.5) + nll(1.0)) / 3.0;
        let out = pairwise_loss(chosen.clone(), rejected.clone(), margin.clone(), 0.0);
        assert!((mean(&out, 3) - expected).abs() < 1e-6);
        assert!((metric(&out, "accuracy") - 2.0 / 3.0).abs() < 1e-6);
        assert!((metric(&out, "margin") - 2.0 / 3.0).abs() < 1e-6);
        // Scores sum to 1.5 - 0.5 over six.
        assert!((metric(&out, "mean_reward") - 1.0 / 6.0).abs() < 1e-6);
        // Centring adds 0.1 · mean of (3², 2², (-4)²) = 0.1 · 29/3.
        let centred = pairwise_loss(chosen, rejected, margin, 0.1);
        let with = expected + 0.1 * 29.0 / 3.0;
        assert!((mean(&centred, 3) - with).abs() < 1e-5);
    }

    /// A task that only collates, padding with `pad`.
    fn collator(pad: u32) -> RewardTask {
        RewardTask {
            examples: Vec::new(),
            pad,
            truncated: 0,
        }
    }

    fn nll(d: f64) -> f64 {
        (1.0 + (-d).exp()).ln()
    }

    #[test]
    fn a_ranking_of_three_is_three_comparisons_of_a_third_each_on_hand_values() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let three = RewardExample {
            sequences: vec![vec![2, 5, 3], vec![2, 6, 3], vec![2, 7, 3]],
            margin: 0.0,
        };
        let batch = collator(0)
            .collate(std::slice::from_ref(&three), &device)
            .unwrap();
        let c = batch.comparisons;
        assert_eq!(ints(c.better.clone()), [0, 0, 1]);
        assert_eq!(ints(c.worse.clone()), [1, 2, 2]);
        assert_eq!(values(c.weight.clone()), [1.0 / 3.0; 3]);
        assert_eq!(values(c.margin.clone()), [0.0; 3]);
        // Scores best first 2, 0.5, 1: differences 1.5, 1, -0.5; the second and third are
        // the wrong way round.
        let scores = || Tensor::<1>::from_floats([2.0, 0.5, 1.0], &device);
        let expected = (nll(1.5) + nll(1.0) + nll(-0.5)) / 3.0;
        let out = ranking_loss(scores(), c.clone(), 0.0);
        assert!((mean(&out, 1) - expected).abs() < 1e-6);
        assert!((metric(&out, "accuracy") - 2.0 / 3.0).abs() < 1e-6);
        assert!((metric(&out, "margin") - 2.0 / 3.0).abs() < 1e-6);
        assert!((metric(&out, "mean_reward") - 3.5 / 3.0).abs() < 1e-6);
        // Centring adds 0.1 · mean of (2.5², 3², 1.5²) = 0.1 · 17.5/3.
        let centred = ranking_loss(scores(), c, 0.1);
        let with = expected + 0.1 * 17.5 / 3.0;
        assert!((mean(&centred, 1) - with).abs() < 1e-5);
    }

    #[test]
    fn each_ranking_weighs_the_same_whatever_its_size() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let three = RewardExample {
            sequences: vec![vec![2, 5, 3], vec![2, 6, 3], vec![2, 7, 3]],
            margin: 0.0,
        };
        let two = RewardExample {
            sequences: vec![vec![2, 8, 9, 3], vec![2, 8, 3]],
            margin: 0.5,
        };
        let batch = collator(0).collate(&[three, two], &device).unwrap();
        assert_eq!(batch.num_tokens, 3 * 3 + 4 + 3);
        let c = batch.comparisons;
        assert_eq!(ints(c.better.clone()), [0, 0, 1, 3]);
        assert_eq!(ints(c.worse.clone()), [1, 2, 2, 4]);
        let third = 1.0 / 3.0;
        assert_eq!(values(c.weight.clone()), [third, third, third, 1.0]);
        assert_eq!(batch.rankings, 2);
        assert_eq!(values(c.margin.clone()), [0.0, 0.0, 0.0, 0.5]);
        // The pair scores 0 and 1 less its margin: difference -1.5.
        let scores = Tensor::<1>::from_floats([2.0, 0.5, 1.0, 0.0, 1.0], &device);
        let out = ranking_loss(scores, c, 0.0);
        let expected = (nll(1.5) + nll(1.0) + nll(-0.5)) / 3.0 / 2.0 + nll(-1.5) / 2.0;
        assert!((mean(&out, 2) - expected).abs() < 1e-6);
        // Each pair counts once in the metrics; each sequence once in the mean reward.
        assert!((metric(&out, "accuracy") - 2.0 / 4.0).abs() < 1e-6);
        assert!((metric(&out, "margin") - 1.0 / 4.0).abs() < 1e-6);
        assert!((metric(&out, "mean_reward") - 4.5 / 5.0).abs() < 1e-6);
        let one = RewardExample {
            sequences: vec![vec![2, 5, 3]],
            margin: 0.0,
        };
        let err = collator(0).collate(&[one], &device).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    }

    #[test]
    fn on_rankings_of_two_the_reward_head_is_the_pairwise_loss() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (encoder, _, _) = crate::test_support::tiny_parts(&device);
        let pairs = [
            (vec![2, 7, 8, 3], vec![2, 5, 3], 0.0),
            (vec![2, 9, 3], vec![2, 9, 10, 11, 3], 0.5),
            (vec![2, 12, 13, 3], vec![2, 14, 3], 1.0),
        ];
        let examples: Vec<RewardExample> = pairs
            .iter()
            .map(|(chosen, rejected, margin)| RewardExample {
                sequences: vec![chosen.clone(), rejected.clone()],
                margin: *margin,
            })
            .collect();
        let margins = Tensor::<1>::from_floats([0.0, 0.5, 1.0], &device);
        for center in [0.0, 0.1] {
            let head = RewardHeadConfig::new()
                .with_center_rewards_coefficient(center)
                .init(&encoder, &device)
                .unwrap();
            let batch = collator(0).collate(&examples, &device).unwrap();
            let scores = head.scores(
                &encoder,
                batch.ids.clone(),
                batch.padding.clone(),
                batch.last.clone(),
            );
            // Rows are chosen, rejected, chosen, rejected, ….
            let rows =
                |first: i64| Tensor::<1, Int>::from_ints([first, first + 2, first + 4], &device);
            let chosen = scores.clone().select(0, rows(0));
            let rejected = scores.select(0, rows(1));
            let pairwise = pairwise_loss(chosen, rejected, margins.clone(), center);
            let ranked = head.forward(&encoder, batch);
            let loss = |out: &ObjectiveOutput| mean(out, 3);
            assert!(
                (loss(&ranked) - loss(&pairwise)).abs() < 1e-6,
                "{} {}",
                loss(&ranked),
                loss(&pairwise)
            );
            for name in ["accuracy", "margin", "mean_reward"] {
                let (a, b) = (metric(&ranked, name), metric(&pairwise, name));
                assert!((a - b).abs() < 1e-6, "{name}: {a} {b}");
            }
        }
    }

    #[test]
    fn the_score_is_read_at_the_last_real_token_whatever_the_padding() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (encoder, _, _) = crate::test_support::tiny_parts(&device);
        let head = RewardHeadConfig::new().init(&encoder, &device).unwrap();
        let example = |best: Vec<u32>| RewardExample {
            sequences: vec![best, vec![2, 5, 3], vec![2, 6, 6, 3]],
            margin: 0.0,
        };
        let task = collator(0);
        let score = |task: &RewardTask, examples: &[RewardExample]| {
            let batch = task.collate(examples, &device).unwrap();
            values(head.scores(&encoder, batch.ids, batch.padding, batch.last))
        };
        let short = example(vec![2, 7, 8, 3]);
        let alone = score(&task, std::slice::from_ref(&short));
        // Beside a longer ranking, the short sequence is padded: its score does not move.
        let long = example(vec![2, 9, 10, 11, 12, 13, 3]);
        let together = score(&task, &[short.clone(), long.clone()]);
        assert!(
            (alone[0] - together[0]).abs() < 1e-5,
            "{alone:?} {together:?}"
        );
        // Rows: each ranking's sequences, best first, ranking after ranking.
        assert_eq!(together.len(), 6);
        assert!((alone[1] - together[4]).abs() < 1e-5);
        assert!((alone[2] - together[5]).abs() < 1e-5);
        // Nor does the padding's id.
        let repadded = score(&collator(30), &[short, long]);
        assert!((repadded[0] - together[0]).abs() < 1e-5);
        // The last token decides: change it and the score moves.
        let other = score(&task, &[example(vec![2, 7, 8, 4])]);
        assert!((other[0] - alone[0]).abs() > 1e-4);
    }
}
