//! Losses as sums over units, and how a step divides them.
//!
//! An objective returns its loss as [`Loss`] terms: a summed loss (the negative log-likelihood
//! of every masked token, of every pair…) and the *unit* it is summed over (`targets`,
//! `sequences`, `pairs`…). A batch counts its units as [`Weights`] from its data alone, before
//! the model runs ([`Batch::weights`](crate::data::Batch::weights)). The training loop adds the
//! weights of every part of a step (shards, accumulated micro-batches, devices) and divides
//! each term's sum by its unit's total over the step. So a step's gradient is the gradient of
//! its whole batch's loss however the batch is split, which uniformly averaging each part's
//! own mean is not when parts carry different numbers of targets (fairseq's
//! `(loss, sample_size)`, Hugging Face's `num_items_in_batch`).
//!
//! ```
//! use burn::prelude::*;
//! use pretext::objectives::{Loss, Weights};
//!
//! let device = Device::flex();
//! // Two parts of a step: 3 targets summing to 6.0, and 1 target of 2.0.
//! let parts = [(6.0, 3.0), (2.0, 1.0)];
//! let mut total = Weights::default();
//! for (_, n) in parts {
//!     total.add(&Weights::of("targets", n));
//! }
//! let step: f32 = parts
//!     .iter()
//!     .map(|&(sum, _)| {
//!         let loss = Loss::over("targets", Tensor::<1>::from_floats([sum], &device));
//!         loss.normalized(&total).into_scalar::<f32>()
//!     })
//!     .sum();
//! assert_eq!(step, 2.0); // (6 + 2) / (3 + 1), not (6/3 + 2/1) / 2
//! ```

use burn::prelude::*;

use crate::data::Weights;

/// One term of a loss: `scale · sum / total(unit)`.
#[derive(Debug, Clone)]
pub struct LossTerm {
    /// What the sum is over.
    pub unit: String,
    /// The loss summed over this batch's units (differentiable).
    pub sum: Tensor<1>,
    /// The term's weight in the objective.
    pub scale: f64,
}

/// A loss as a weighted sum of terms, each a summed loss over a unit; its value over a set of
/// batches is `Σ scale · (Σ sums) / (Σ weights of the unit)`.
#[derive(Debug, Clone)]
pub struct Loss {
    terms: Vec<LossTerm>,
}

impl Loss {
    /// One term: `sum`, a loss summed over the batch's `unit`s.
    pub fn over(unit: &str, sum: Tensor<1>) -> Self {
        Self {
            terms: vec![LossTerm {
                unit: unit.to_string(),
                sum,
                scale: 1.0,
            }],
        }
    }

    /// Every term scaled by `factor`.
    pub fn scaled(mut self, factor: f64) -> Self {
        for term in &mut self.terms {
            term.scale *= factor;
        }
        self
    }

    /// This loss plus `other`.
    pub fn plus(mut self, other: Loss) -> Self {
        self.terms.extend(other.terms);
        self
    }

    /// The same terms with their units named `{prefix}{unit}` (see [`Weights::prefixed`]).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        for term in &mut self.terms {
            term.unit = format!("{prefix}{}", term.unit);
        }
        self
    }

    /// The terms.
    pub fn terms(&self) -> &[LossTerm] {
        &self.terms
    }

    /// This batch's share of a loss whose units total `totals`: `Σ scale · sum / total`. With
    /// `totals` the batch's own weights it is the batch's loss; with the totals of every part
    /// of a step, the parts' values add up to the step's loss. A unit whose total is 0 has
    /// nothing to average: its term counts 0.
    ///
    /// # Panics
    ///
    /// If the loss has no term.
    pub fn normalized(&self, totals: &Weights) -> Tensor<1> {
        self.terms
            .iter()
            .map(|t| {
                let total = totals.get(&t.unit);
                let factor = if total > 0.0 { t.scale / total } else { 0.0 };
                t.sum.clone().mul_scalar(factor)
            })
            .reduce(|a, b| a + b)
            .expect("a loss has at least one term")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{SEQUENCES, TARGETS};

    #[test]
    fn terms_are_averaged_over_their_own_units_totals() {
        let device = Device::flex();
        let scalar = |x: f32| Tensor::<1>::from_floats([x], &device);
        // A token term (sum 6 over 3 targets) plus a sequence term at half weight (sum 1 over 2).
        let loss =
            Loss::over(TARGETS, scalar(6.0)).plus(Loss::over(SEQUENCES, scalar(1.0)).scaled(0.5));
        let own = Weights::of(TARGETS, 3.0).and(SEQUENCES, 2.0);
        assert_eq!(loss.normalized(&own).into_scalar::<f32>(), 2.0 + 0.25);
        let mut totals = own.clone();
        totals.add(&Weights::of(TARGETS, 3.0));
        assert_eq!(totals.get(TARGETS), 6.0);
        assert_eq!(loss.normalized(&totals).into_scalar::<f32>(), 1.0 + 0.25);
        // A unit the totals lack counts nothing rather than dividing by zero.
        let prefixed = loss.prefixed("task1/");
        assert_eq!(prefixed.terms()[0].unit, "task1/targets");
        assert_eq!(prefixed.normalized(&own).into_scalar::<f32>(), 0.0);
        assert_eq!(own.prefixed("task1/").get("task1/sequences"), 2.0);
    }
}
