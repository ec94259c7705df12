//! The position-wise feed-forward network: linear, GELU, linear.
//!
//! No dropout inside: as in BERT, dropout follows the whole network on the residual branch
//! (in the encoder layer).

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::gelu;

use super::normal_linear;

/// Configuration of [`FeedForward`].
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Model width.
    pub hidden_size: usize,
    /// Inner width (usually 4 × hidden).
    pub ffn_size: usize,
    /// Standard deviation of the normal initialisation. Default 0.02.
    #[config(default = 0.02)]
    pub init_std: f64,
}

/// Two linear maps with a GELU between them.
#[derive(Module, Debug)]
pub struct FeedForward {
    up: Linear,
    down: Linear,
}

impl FeedForwardConfig {
    /// Builds the module.
    pub fn init(&self, device: &Device) -> FeedForward {
        FeedForward {
            up: normal_linear(self.hidden_size, self.ffn_size, self.init_std, device),
            down: normal_linear(self.ffn_size, self.hidden_size, self.init_std, device),
        }
    }
}

impl FeedForward {
    /// Applies the network to `[batch, len, hidden]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down.forward(gelu(self.up.forward(x)))
    }
}
