//! The one masked cross-entropy every objective calls, with accuracy alongside.
//!
//! burn's `CrossEntropyLoss` has no ignore index; this one skips targets equal to
//! [`IGNORE_INDEX`] and sums over the rest, so that the training loop can divide by the count
//! of the whole step (see [`Loss`]).

use burn::prelude::*;

use super::{Loss, Metric};
use crate::kernels::nll_rows;
use crate::noise::IGNORE_INDEX;

/// Cross-entropy of a set of predictions, with what metrics need.
#[derive(Debug, Clone)]
pub struct Predictions {
    /// Summed negative log-likelihood over the counted targets (differentiable).
    pub nll_sum: Tensor<1>,
    /// Number of targets whose arg-max prediction is right (detached).
    pub correct: Tensor<1>,
    /// Number of counted targets.
    pub count: Tensor<1>,
}

impl Predictions {
    /// The summed negative log-likelihood as a loss over `unit` (what the targets are:
    /// [`TARGETS`](crate::data::TARGETS) for tokens, [`SEQUENCES`](crate::data::SEQUENCES)
    /// for sequence labels).
    pub fn loss(&self, unit: &str) -> Loss {
        Loss::over(unit, self.nll_sum.clone())
    }

    /// Mean negative log-likelihood over this batch's counted targets (differentiable).
    pub fn mean(&self) -> Tensor<1> {
        self.nll_sum.clone() / self.count.clone().clamp_min(1.0)
    }

    /// Accuracy as a metric named `name`.
    pub fn accuracy(&self, name: &str) -> Metric {
        Metric::mean(name, self.correct.clone(), self.count.clone())
    }

    /// Mean negative log-likelihood as a metric named `name`.
    pub fn mean_loss(&self, name: &str) -> Metric {
        Metric::mean(name, self.nll_sum.clone().detach(), self.count.clone())
    }

    /// Perplexity (exp of the mean NLL) as a metric named `name`.
    pub fn perplexity(&self, name: &str) -> Metric {
        Metric::exp_mean(name, self.nll_sum.clone().detach(), self.count.clone())
    }
}

/// Cross-entropy of `logits` `[n, classes]` against `targets` `[n]`, skipping [`IGNORE_INDEX`].
pub fn masked_cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Predictions {
    let [n, _] = logits.dims();
    let valid = targets.clone().equal_elem(IGNORE_INDEX).bool_not().float();
    let nll_sum = nll_rows(logits.clone(), targets.clone()).sum();
    let count = valid.clone().sum();
    let hits = logits
        .detach()
        .argmax(1)
        .reshape([n])
        .equal(targets)
        .float()
        .mul(valid);
    Predictions {
        nll_sum,
        correct: hits.sum(),
        count: count.detach(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_targets_do_not_count() {
        let device = Device::flex();
        let logits =
            Tensor::<2>::from_floats([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [9.0, 0.0, 0.0]], &device);
        let targets = Tensor::<1, Int>::from_ints([0, 2, IGNORE_INDEX], &device);
        let p = masked_cross_entropy(logits, targets);
        let lse = |a: f64, b: f64, c: f64| (a.exp() + b.exp() + c.exp()).ln();
        let expected = ((lse(2.0, 0.0, 0.0) - 2.0) + (lse(0.0, 3.0, 0.0) - 0.0)) / 2.0;
        assert!((p.mean().into_scalar::<f32>() as f64 - expected).abs() < 1e-5);
        assert_eq!(p.count.into_scalar::<f32>(), 2.0);
        assert_eq!(p.correct.into_scalar::<f32>(), 1.0);
    }

    #[test]
    fn uniform_logits_give_ln_of_the_class_count() {
        let device = Device::flex();
        let p = masked_cross_entropy(
            Tensor::<2>::zeros([4, 100], &device),
            Tensor::<1, Int>::from_ints([1, 2, 3, 4], &device),
        );
        assert!((p.mean().into_scalar::<f32>() - (100f32).ln()).abs() < 1e-5);
    }
}
