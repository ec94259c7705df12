//! BERT's pooler: the first (`[CLS]`) position's hidden state through a dense layer and `tanh`
//! (ELECTRA's classification head: GELU), one vector per sequence for sentence-level heads (NSP,
//! SOP, sequence classification).

use burn::nn::Linear;
use burn::prelude::*;

use serde::{Deserialize, Serialize};

use super::normal_linear;

/// The pooler's non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolerActivation {
    /// `tanh`: BERT, RoBERTa and ALBERT.
    #[default]
    Tanh,
    /// The exact GELU: ELECTRA's `ElectraClassificationHead`.
    Gelu,
}

/// Configuration of [`Pooler`].
#[derive(Config, Debug)]
pub struct PoolerConfig {
    /// Width of the backbone's hidden states.
    pub hidden_size: usize,
    /// The non-linearity after the dense layer.
    #[config(default = "PoolerActivation::Tanh")]
    pub activation: PoolerActivation,
}

/// `tanh(dense(h[:, 0]))` (or GELU in place of `tanh`).
#[derive(Module, Debug)]
pub struct Pooler {
    dense: Linear,
    #[module(skip)]
    activation: PoolerActivation,
}

impl PoolerConfig {
    /// Builds the module.
    pub fn init(&self, device: &Device) -> Pooler {
        Pooler {
            dense: normal_linear(self.hidden_size, self.hidden_size, 0.02, device),
            activation: self.activation,
        }
    }
}

impl Pooler {
    /// Pools `hidden` `[batch, len, hidden]` into `[batch, hidden]`.
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<2> {
        let [batch, _, width] = hidden.dims();
        let first = hidden
            .slice([0..batch, 0..1, 0..width])
            .reshape([batch, width]);
        let dense = self.dense.forward(first);
        match self.activation {
            PoolerActivation::Tanh => dense.tanh(),
            PoolerActivation::Gelu => burn::tensor::activation::gelu(dense),
        }
    }

    /// The non-linearity after the dense layer.
    pub fn activation(&self) -> PoolerActivation {
        self.activation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn only_the_first_position_matters() {
        let device = Device::flex();
        let _draws = crate::util::random::seeded(&device, 1);
        let pooler = PoolerConfig::new(8).init(&device);
        let hidden = Tensor::<3>::random([3, 5, 8], Distribution::Default, &device);
        let noise = |shape: [usize; 3]| Tensor::<3>::random(shape, Distribution::Default, &device);
        let later_changed = hidden
            .clone()
            .slice_assign([0..3, 1..5, 0..8], noise([3, 4, 8]));
        let first_changed = hidden
            .clone()
            .slice_assign([0..3, 0..1, 0..8], noise([3, 1, 8]));
        let pooled = pooler.forward(hidden);
        assert_eq!(pooled.dims(), [3, 8]);
        let diff = |other: Tensor<2>| (pooled.clone() - other).abs().max().into_scalar::<f32>();
        assert_eq!(diff(pooler.forward(later_changed)), 0.0);
        assert!(diff(pooler.forward(first_changed)) > 1e-4);
    }
}
