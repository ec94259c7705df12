//! Weighted mixes of encoder heads over one backbone pass: `bert` = mlm + nsp, `albert` =
//! mlm + sop, or any mix of your own.
//!
//! The parts read the same [`TokenBatch`], so the backbone runs once and each head scores the
//! same hidden states; the loss is `Σ wᵢ · lossᵢ` and every part's metrics are reported under
//! its own names. A mix is itself an [`EncoderHead`], so mixes nest: `Mix::new(Mix::new(a, 1.0,
//! b, 1.0)?, 1.0, c, 0.5)?` mixes three.

use burn::prelude::*;

use super::{EncoderHead, Objective, ObjectiveOutput, forward_encoder_head};
use crate::blocks::EncoderBackbone;
use crate::data::TokenBatch;
use crate::error::{Error, Result};

/// Two heads scored on one encoder pass, their losses weighted.
#[derive(Module, Debug)]
pub struct Mix<A: Module, B: Module> {
    first: A,
    second: B,
    #[module(skip)]
    weights: [f64; 2],
}

impl<A: Module, B: Module> Mix<A, B> {
    /// `first_weight · first + second_weight · second`. Weights must be finite and
    /// non-negative, and not both zero.
    pub fn new(first: A, first_weight: f64, second: B, second_weight: f64) -> Result<Self> {
        let weights = [first_weight, second_weight];
        for w in weights {
            crate::error::check_weight("an objective's weight", w)?;
        }
        if weights.iter().all(|&w| w == 0.0) {
            return Err(Error::InvalidConfig(
                "objective weights are all zero: nothing would be trained".into(),
            ));
        }
        Ok(Self {
            first,
            second,
            weights,
        })
    }

    /// The two weights, in order.
    pub fn weights(&self) -> [f64; 2] {
        self.weights
    }

    /// The first objective.
    pub fn first(&self) -> &A {
        &self.first
    }

    /// The second objective.
    pub fn second(&self) -> &B {
        &self.second
    }
}

impl<M, A, B> EncoderHead<M> for Mix<A, B>
where
    M: EncoderBackbone,
    A: EncoderHead<M>,
    B: EncoderHead<M>,
{
    fn score(&self, backbone: &M, hidden: Tensor<3>, batch: &TokenBatch) -> ObjectiveOutput {
        let first = self.first.score(backbone, hidden.clone(), batch);
        let second = self.second.score(backbone, hidden, batch);
        let [a, b] = self.weights;
        ObjectiveOutput {
            loss: first.loss.scaled(a).plus(second.loss.scaled(b)),
            metrics: first.metrics.into_iter().chain(second.metrics).collect(),
        }
    }
}

impl<M, A, B> Objective<M> for Mix<A, B>
where
    M: EncoderBackbone,
    A: EncoderHead<M>,
    B: EncoderHead<M>,
{
    type Batch = TokenBatch;

    fn forward(&self, backbone: &M, batch: TokenBatch) -> ObjectiveOutput {
        forward_encoder_head(self, backbone, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Batch;
    use crate::objectives::Loss;
    use crate::test_support::{pair_batch, tiny_parts};

    #[test]
    fn the_loss_is_the_weighted_sum_of_the_parts_and_every_metric_is_kept() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (backbone, mlm, nsp) = tiny_parts(&device);
        let alone_mlm = Objective::forward(&mlm, &backbone, pair_batch(&device, 0));
        let alone_nsp = Objective::forward(&nsp, &backbone, pair_batch(&device, 0));
        let mix = Mix::new(mlm, 1.0, nsp, 0.25).unwrap();
        let out = Objective::forward(&mix, &backbone, pair_batch(&device, 0));
        let weights = pair_batch(&device, 0).weights();
        let scalar = |loss: Loss| loss.normalized(&weights).into_scalar::<f32>();
        let expected = scalar(alone_mlm.loss) + 0.25 * scalar(alone_nsp.loss);
        assert!((scalar(out.loss) - expected).abs() < 1e-5);
        let names: Vec<_> = out.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["mlm_acc", "mlm_ppl", "nsp_acc", "nsp_loss"]);
    }

    #[test]
    fn negative_non_finite_or_all_zero_weights_are_errors() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        for weights in [
            [-1.0, 1.0],
            [0.0, 0.0],
            [f64::NAN, 1.0],
            [1.0, f64::INFINITY],
        ] {
            let (_, mlm, nsp) = tiny_parts(&device);
            assert!(
                matches!(
                    Mix::new(mlm, weights[0], nsp, weights[1]),
                    Err(Error::InvalidConfig(_))
                ),
                "{weights:?}"
            );
        }
        let (_, mlm, nsp) = tiny_parts(&device);
        assert_eq!(Mix::new(mlm, 0.0, nsp, 2.0).unwrap().weights(), [0.0, 2.0]);
    }
}
