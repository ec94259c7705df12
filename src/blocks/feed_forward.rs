//! The position-wise feed-forward network: linear, GELU, linear; and the GELU variants
//! checkpoints use.
//!
//! No dropout inside: as in BERT, dropout follows the whole network on the residual branch
//! (in the encoder layer).

use burn::nn::{Gelu, Linear};
use burn::prelude::*;

use super::{linear_3d, normal_linear};
use crate::kernels::gelu;

/// Which GELU a block computes.
#[derive(Config, Debug, PartialEq, Copy)]
pub enum Activation {
    /// The exact GELU, `x·Φ(x)` (BERT, RoBERTa, ELECTRA, BART: Hugging Face's `gelu`).
    Gelu,
    /// The tanh approximation (GPT-2, ALBERT: Hugging Face's `gelu_new`).
    GeluTanh,
}

impl Activation {
    /// The activation module.
    pub fn init(self) -> Gelu {
        match self {
            Self::Gelu => Gelu::new(),
            Self::GeluTanh => Gelu::new_approximate(),
        }
    }

    /// The activation Hugging Face calls `name` (`hidden_act`, `activation_function`), if it
    /// is one of these.
    pub fn from_hf(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            _ => None,
        }
    }

    /// Hugging Face's name of this activation.
    pub fn hf_name(self) -> &'static str {
        match self {
            Self::Gelu => "gelu",
            Self::GeluTanh => "gelu_new",
        }
    }
}

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
    /// The GELU between the two maps. Default exact.
    #[config(default = "Activation::Gelu")]
    pub activation: Activation,
}

/// Two linear maps with a GELU between them.
#[derive(Module, Debug)]
pub struct FeedForward {
    up: Linear,
    down: Linear,
    activation: Gelu,
}

impl FeedForwardConfig {
    /// Builds the module.
    pub fn init(&self, device: &Device) -> FeedForward {
        FeedForward {
            up: normal_linear(self.hidden_size, self.ffn_size, self.init_std, device),
            down: normal_linear(self.ffn_size, self.hidden_size, self.init_std, device),
            activation: self.activation.init(),
        }
    }
}

impl FeedForward {
    /// Applies the network to `[batch, len, hidden]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = gelu(&self.activation, linear_3d(&self.up, x));
        linear_3d(&self.down, hidden)
    }
}
