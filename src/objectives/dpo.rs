//! Direct preference optimisation (DPO, Rafailov et al. 2023) and its IPO variant: the loss
//! of a policy's log-probabilities of preferred and dispreferred answers against a frozen
//! reference's, as TRL's `DPOTrainer` and the DPO reference code compute it.
//!
//! With `Δ = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))`, each log-probability
//! summed over the answer's tokens: sigmoid DPO is `−log σ(β Δ)`, IPO `(Δ − 1/(2β))²` (the
//! reference code's form, without TRL's length normalisation). Metrics as TRL logs them:
//! `rewards/chosen` = mean β (log π − log π_ref)(y_w), `rewards/rejected` likewise,
//! `rewards/margins` their mean difference, `rewards/accuracies` the share of pairs whose
//! chosen reward is the higher.

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use serde::{Deserialize, Serialize};

use super::sft::{SftExample, frame_answer, frame_prompt, shifted};
use super::{Clm, Loss, Metric, Objective, ObjectiveOutput, Weights, encode};
use crate::blocks::{AttentionMask, EncoderBackbone, LmHead, TransformerEncoder};
use crate::data::{Batch, Task, TokenBatch, TokenExample};
use crate::dataset::preferences::{self, Preference};
use crate::error::{Error, Result};
use crate::noise::IGNORE_INDEX;
use crate::tokenize::Tokenizer;
use crate::util::rng::ExampleRng;

/// Which preference loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DpoLoss {
    /// `−log σ(β Δ)`: DPO.
    Sigmoid,
    /// `(Δ − 1/(2β))²`: IPO, which regresses the margin to a target instead of pushing it
    /// without bound.
    Ipo,
}

/// Checks β, which must be positive.
pub fn check_beta(beta: f64) -> Result<()> {
    crate::error::check_positive("beta", beta)
}

/// The unit of preference losses: the pairs of a batch.
pub const PAIRS: &str = "pairs";

/// The preference loss, summed over the pairs, of the policy's summed log-probabilities of the chosen and rejected
/// answers `[pairs]` against the reference's, and TRL's four reward metrics.
pub fn dpo_loss(
    policy_chosen: Tensor<1>,
    policy_rejected: Tensor<1>,
    reference_chosen: Tensor<1>,
    reference_rejected: Tensor<1>,
    beta: f64,
    kind: DpoLoss,
) -> ObjectiveOutput {
    let pairs = policy_chosen.dims()[0] as f32;
    let device = policy_chosen.device();
    let chosen = policy_chosen - reference_chosen;
    let rejected = policy_rejected - reference_rejected;
    let delta = chosen.clone() - rejected.clone();
    let loss = match kind {
        DpoLoss::Sigmoid => log_sigmoid(delta.mul_scalar(beta)).neg().sum(),
        DpoLoss::Ipo => {
            let off = delta.sub_scalar(1.0 / (2.0 * beta));
            (off.clone() * off).sum()
        }
    };
    let chosen = chosen.detach().mul_scalar(beta);
    let rejected = rejected.detach().mul_scalar(beta);
    let margins = chosen.clone() - rejected.clone();
    let count = || Tensor::from_floats([pairs], &device);
    ObjectiveOutput {
        metrics: vec![
            Metric::mean("rewards/chosen", chosen.sum(), count()),
            Metric::mean("rewards/rejected", rejected.sum(), count()),
            Metric::mean(
                "rewards/accuracies",
                margins.clone().greater_elem(0.0).float().sum(),
                count(),
            ),
            Metric::mean("rewards/margins", margins.sum(), count()),
        ],
        loss: Loss::over(PAIRS, loss),
    }
}

/// Summed log-probabilities `[rows]` of each row's target tokens (those not ignored) under
/// `head` over `backbone` read left to right; `owners` `[rows, targets]` has a 1 where a target
/// (in the batch's order) belongs to a row.
pub fn sequence_logps(
    backbone: &TransformerEncoder,
    head: &LmHead,
    tokens: &TokenBatch,
    owners: Tensor<2>,
) -> Tensor<1> {
    let [rows, len] = tokens.input_ids.dims();
    let mask = AttentionMask::causal(len, &tokens.input_ids.device())
        .or(AttentionMask::padding(tokens.padding.clone()));
    let hidden = encode(backbone, tokens, &mask);
    let at = tokens.target_positions.clone();
    let logits = head.forward_at(hidden, at, backbone.token_embedding());
    let n = tokens.num_targets;
    let picked = log_softmax(logits, 1)
        .gather(1, tokens.target_ids.clone().reshape([n, 1]))
        .reshape([n, 1]);
    owners.matmul(picked).reshape([rows])
}

/// The DPO objective: a causal LM's head trained on preference pairs against the reference
/// log-probabilities each pair carries.
#[derive(Module, Debug)]
pub struct Dpo {
    clm: Clm,
    beta: f64,
    ipo: bool,
}

impl Dpo {
    /// DPO (or IPO) at `beta` over `clm`'s head.
    pub fn new(clm: Clm, beta: f64, kind: DpoLoss) -> Result<Self> {
        check_beta(beta)?;
        Ok(Self {
            clm,
            beta,
            ipo: kind == DpoLoss::Ipo,
        })
    }

    /// The causal LM head.
    pub fn clm(&self) -> &Clm {
        &self.clm
    }
}

impl Objective<TransformerEncoder> for Dpo {
    type Batch = DpoBatch;

    fn forward(&self, backbone: &TransformerEncoder, batch: DpoBatch) -> ObjectiveOutput {
        let rows = batch.tokens.input_ids.dims()[0];
        let pairs = rows / 2;
        let logps = sequence_logps(backbone, self.clm.head(), &batch.tokens, batch.owners);
        let kind = if self.ipo {
            DpoLoss::Ipo
        } else {
            DpoLoss::Sigmoid
        };
        dpo_loss(
            logps.clone().slice([0..pairs]),
            logps.slice([pairs..rows]),
            batch.reference_chosen,
            batch.reference_rejected,
            self.beta,
            kind,
        )
    }
}

/// One preference pair as causal LM sequences (targets on the answer only), with the
/// reference's summed log-probabilities of each answer.
#[derive(Debug, Clone, PartialEq)]
pub struct DpoExample {
    /// `[CLS] prompt chosen [SEP]`, shifted.
    pub chosen: SftExample,
    /// `[CLS] prompt rejected [SEP]`, shifted.
    pub rejected: SftExample,
    /// The reference's log-probabilities of the chosen and the rejected answer.
    pub reference: [f32; 2],
}

/// Pairs as a batch: every chosen sequence, then every rejected one.
#[derive(Debug, Clone)]
pub struct DpoBatch {
    /// The `2 · pairs` sequences.
    pub tokens: TokenBatch,
    /// Which row each target belongs to `[2 · pairs, targets]`.
    pub owners: Tensor<2>,
    /// The reference's log-probabilities of the chosen answers `[pairs]`.
    pub reference_chosen: Tensor<1>,
    /// And of the rejected ones.
    pub reference_rejected: Tensor<1>,
}

impl Batch for DpoBatch {
    fn num_tokens(&self) -> usize {
        self.tokens.num_tokens
    }

    /// Its preference pairs.
    fn weights(&self) -> Weights {
        Weights::of(PAIRS, self.reference_chosen.dims()[0] as f64)
    }
}

/// The data side of [`Dpo`]: preference pairs and their reference log-probabilities.
#[derive(Debug, Clone)]
pub struct DpoTask {
    examples: Vec<DpoExample>,
    pad: u32,
    truncated: usize,
}

impl DpoTask {
    /// How many answers were cut to fit the sequence length.
    pub fn truncated(&self) -> usize {
        self.truncated
    }

    /// `pairs` as sequences of at most `seq_len` inputs, answers cut to fit, their reference
    /// log-probabilities computed once by `reference` (the policy as it starts, frozen) on
    /// `device`, `batch` pairs at a time.
    pub fn new(
        pairs: &[Preference],
        tokenizer: &Tokenizer,
        seq_len: usize,
        reference: (&TransformerEncoder, &Clm),
        device: &Device,
    ) -> Result<Self> {
        if pairs.is_empty() {
            return Err(Error::EmptyCorpus("no preference pair to train on".into()));
        }
        let mut examples = Vec::with_capacity(pairs.len());
        let mut truncated = 0;
        for pair in pairs {
            let prompt = frame_prompt(tokenizer, &pair.prompt, seq_len, true, pair.line)?;
            let mut sequence = |answer: &str| -> Result<SftExample> {
                let (answer, cut) = frame_answer(tokenizer, prompt.len(), answer, seq_len, true)?;
                truncated += usize::from(cut);
                Ok(shifted(&prompt, &answer, true))
            };
            examples.push(DpoExample {
                chosen: sequence(&pair.chosen)?,
                rejected: sequence(&pair.rejected)?,
                reference: [0.0; 2],
            });
        }
        let mut task = Self {
            examples,
            pad: tokenizer.special().pad,
            truncated,
        };
        let (encoder, clm) = reference;
        for start in (0..task.examples.len()).step_by(REFERENCE_BATCH) {
            let end = (start + REFERENCE_BATCH).min(task.examples.len());
            let batch = task.collate(&task.examples[start..end], device)?;
            let logps = sequence_logps(encoder, clm.head(), &batch.tokens, batch.owners);
            let logps = crate::util::floats(logps);
            let pairs = end - start;
            for (k, example) in task.examples[start..end].iter_mut().enumerate() {
                example.reference = [logps[k], logps[pairs + k]];
            }
        }
        Ok(task)
    }
}

/// Pairs scored at a time when the reference's log-probabilities are computed.
const REFERENCE_BATCH: usize = 32;

impl Task for DpoTask {
    type Example = DpoExample;
    type Batch = DpoBatch;

    fn num_examples(&self) -> usize {
        self.examples.len()
    }

    fn example(&self, index: usize, _rng: &mut ExampleRng) -> Result<DpoExample> {
        Ok(self.examples[index].clone())
    }

    fn collate(&self, examples: &[DpoExample], device: &Device) -> Result<DpoBatch> {
        let rows: Vec<&TokenExample> = examples
            .iter()
            .map(|e| &e.chosen.tokens)
            .chain(examples.iter().map(|e| &e.rejected.tokens))
            .collect();
        let tokens = TokenBatch::collate(&rows, self.pad, device)?;
        // Targets come in row order; mark each one's row.
        let n = tokens.num_targets;
        let mut owners = vec![0.0f32; rows.len() * n];
        let mut k = 0;
        for (r, row) in rows.iter().enumerate() {
            for _ in row.targets.iter().filter(|&&t| t != IGNORE_INDEX) {
                owners[r * n + k] = 1.0;
                k += 1;
            }
        }
        let reference =
            |i: usize| -> Vec<f32> { examples.iter().map(|e| e.reference[i]).collect() };
        let pairs = examples.len();
        Ok(DpoBatch {
            owners: Tensor::from_data(TensorData::new(owners, [rows.len(), n]), device),
            reference_chosen: Tensor::from_data(TensorData::new(reference(0), [pairs]), device),
            reference_rejected: Tensor::from_data(TensorData::new(reference(1), [pairs]), device),
            tokens,
        })
    }
}

/// The settings of `dpo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpoSettings {
    /// The preference pairs (JSON lines); none: the bundled `data/preferences.jsonl`.
    pub data: Option<PathBuf>,
    /// β: how far from the reference the policy may move for a preference. Default 0.1.
    pub beta: f64,
    /// The loss: `sigmoid` (DPO) or `ipo`. Default sigmoid.
    pub loss: DpoLoss,
    /// GPT-2's head, as the causal model DPO starts from has it; the recipe's `init_from` sets
    /// it. Default false.
    pub gpt2_head: bool,
    /// The LM head has a table of its own (Llama's `lm_head`), as the causal model DPO starts
    /// from has it; the recipe's `init_from` sets it. Default false.
    pub untied_head: bool,
}

impl Default for DpoSettings {
    fn default() -> Self {
        Self {
            data: None,
            beta: 0.1,
            loss: DpoLoss::Sigmoid,
            gpt2_head: false,
            untied_head: false,
        }
    }
}

impl DpoSettings {
    /// The preference file.
    pub fn data_path(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(preferences::bundled_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(out: &ObjectiveOutput, name: &str) -> f64 {
        let m = out.metrics.iter().find(|m| m.name == name).unwrap();
        f64::from(m.sum.clone().into_scalar::<f32>() / m.count.clone().into_scalar::<f32>())
    }

    fn tensor(values: [f32; 3]) -> Tensor<1> {
        Tensor::from_floats(values, &Device::flex())
    }

    /// Summed log-probabilities of three pairs: policy and reference, chosen and rejected.
    fn pairs() -> [Tensor<1>; 4] {
        [
            tensor([-10.0, -20.0, -5.0]),
            tensor([-12.0, -18.0, -9.0]),
            tensor([-11.0, -19.0, -6.0]),
            tensor([-11.0, -19.0, -8.0]),
        ]
    }

    /// The mean loss over the 3 pairs.
    fn mean(out: &ObjectiveOutput) -> f32 {
        out.loss
            .normalized(&Weights::of(PAIRS, 3.0))
            .into_scalar::<f32>()
    }

    #[test]
    fn dpo_and_its_metrics_are_the_formula_on_fixed_log_probabilities() {
        let [pc, pr, rc, rr] = pairs();
        let out = dpo_loss(pc, pr, rc, rr, 0.5, DpoLoss::Sigmoid);
        // Chosen log-ratios 1, -1, 1; rejected -1, 1, -1; Δ = 2, -2, 2.
        let nll = |x: f64| (1.0 + (-x).exp()).ln();
        let expected = (2.0 * nll(1.0) + nll(-1.0)) / 3.0;
        assert!((f64::from(mean(&out)) - expected).abs() < 1e-6);
        assert!((metric(&out, "rewards/chosen") - 0.5 / 3.0).abs() < 1e-6);
        assert!((metric(&out, "rewards/rejected") + 0.5 / 3.0).abs() < 1e-6);
        assert!((metric(&out, "rewards/margins") - 1.0 / 3.0).abs() < 1e-6);
        assert!((metric(&out, "rewards/accuracies") - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn ipo_regresses_the_margin_to_one_over_two_beta() {
        let [pc, pr, rc, rr] = pairs();
        let out = dpo_loss(pc, pr, rc, rr, 0.5, DpoLoss::Ipo);
        // (Δ − 1)² for Δ = 2, -2, 2: 1, 9, 1.
        assert!((mean(&out) - 11.0 / 3.0).abs() < 1e-5);
    }

    #[test]
    fn a_policy_equal_to_its_reference_scores_ln_2_and_zero_rewards() {
        let [pc, pr, ..] = pairs();
        let out = dpo_loss(
            pc.clone(),
            pr.clone(),
            pc.clone(),
            pr.clone(),
            0.1,
            DpoLoss::Sigmoid,
        );
        assert!((mean(&out) - std::f32::consts::LN_2).abs() < 1e-6);
        for name in [
            "rewards/chosen",
            "rewards/rejected",
            "rewards/margins",
            "rewards/accuracies",
        ] {
            assert_eq!(metric(&out, name), 0.0, "{name}");
        }
        // IPO's loss there is the squared target, (1/(2β))² = 25.
        let ipo = dpo_loss(pc.clone(), pr.clone(), pc, pr, 0.1, DpoLoss::Ipo);
        assert!((mean(&ipo) - 25.0).abs() < 1e-4);
    }

    #[test]
    fn beta_must_be_positive() {
        for beta in [0.0, -0.1, f64::NAN] {
            assert!(matches!(check_beta(beta), Err(Error::InvalidConfig(_))));
        }
        assert!(check_beta(0.1).is_ok());
    }
}
