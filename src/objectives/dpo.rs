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

use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;
use serde::{Deserialize, Serialize};

use super::{Metric, ObjectiveOutput};
use crate::error::{Error, Result};

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
    if !(beta.is_finite() && beta > 0.0) {
        return Err(Error::InvalidConfig(format!(
            "beta must be positive, not {beta}"
        )));
    }
    Ok(())
}

/// The preference loss of the policy's summed log-probabilities of the chosen and rejected
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
        DpoLoss::Sigmoid => log_sigmoid(delta.mul_scalar(beta)).neg().mean(),
        DpoLoss::Ipo => {
            let off = delta.sub_scalar(1.0 / (2.0 * beta));
            (off.clone() * off).mean()
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
        loss,
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

    #[test]
    fn dpo_and_its_metrics_are_the_formula_on_fixed_log_probabilities() {
        let [pc, pr, rc, rr] = pairs();
        let out = dpo_loss(pc, pr, rc, rr, 0.5, DpoLoss::Sigmoid);
        // Chosen log-ratios 1, -1, 1; rejected -1, 1, -1; Δ = 2, -2, 2.
        let nll = |x: f64| (1.0 + (-x).exp()).ln();
        let expected = (2.0 * nll(1.0) + nll(-1.0)) / 3.0;
        assert!((f64::from(out.loss.clone().into_scalar::<f32>()) - expected).abs() < 1e-6);
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
        assert!((out.loss.into_scalar::<f32>() - 11.0 / 3.0).abs() < 1e-5);
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
        assert!((out.loss.clone().into_scalar::<f32>() - std::f32::consts::LN_2).abs() < 1e-6);
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
        assert!((ipo.loss.into_scalar::<f32>() - 25.0).abs() < 1e-4);
    }

    #[test]
    fn beta_must_be_positive() {
        for beta in [0.0, -0.1, f64::NAN] {
            assert!(matches!(check_beta(beta), Err(Error::InvalidConfig(_))));
        }
        assert!(check_beta(0.1).is_ok());
    }
}
