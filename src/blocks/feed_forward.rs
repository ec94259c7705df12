//! The position-wise feed-forward network: linear, activation, linear (BERT, GPT-2), or its
//! gated form, `act(x·W_gate) ⊙ x·W_up` then down (GeGLU with GELU, SwiGLU with SiLU: Llama,
//! T5 v1.1, ModernBERT), with or without biases; and the activations checkpoints use.
//!
//! No dropout inside: as in BERT, dropout follows the whole network on the residual branch
//! (in the encoder layer).

use burn::nn::{Gelu, Linear};
use burn::prelude::*;

use super::{linear_3d, normal_linear_with_bias};
use crate::kernels::{gelu, glu, silu};

/// Which activation a block computes.
#[derive(Config, Debug, PartialEq, Copy)]
pub enum Activation {
    /// The exact GELU, `x·Φ(x)` (BERT, RoBERTa, ELECTRA, BART: Hugging Face's `gelu`).
    Gelu,
    /// The tanh approximation (GPT-2, ALBERT: Hugging Face's `gelu_new`).
    GeluTanh,
    /// `max(x, 0)` (the original Transformer, T5 v1.0).
    Relu,
    /// SiLU (Swish), `x·σ(x)`: SwiGLU's gate (Llama, Qwen2).
    Silu,
}

impl Activation {
    /// Applies the activation to `x`: the exact GELU and SiLU through the fused kernels where
    /// they can.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Gelu => gelu(&Gelu::new(), x),
            Self::GeluTanh => gelu(&Gelu::new_approximate(), x),
            Self::Relu => burn::tensor::activation::relu(x),
            Self::Silu => silu(x),
        }
    }

    /// The activation Hugging Face calls `name` (`hidden_act`, `activation_function`), if it
    /// is one of these.
    pub fn from_hf(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            "relu" => Some(Self::Relu),
            "silu" | "swish" => Some(Self::Silu),
            _ => None,
        }
    }

    /// Hugging Face's name of this activation.
    pub fn hf_name(self) -> &'static str {
        match self {
            Self::Gelu => "gelu",
            Self::GeluTanh => "gelu_new",
            Self::Relu => "relu",
            Self::Silu => "silu",
        }
    }
}

/// Configuration of [`FeedForward`].
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Model width.
    pub hidden_size: usize,
    /// Inner width (usually 4 × hidden; about ⅔ of that for a gated network of equal size).
    pub ffn_size: usize,
    /// Standard deviation of the normal initialisation. Default 0.02.
    #[config(default = 0.02)]
    pub init_std: f64,
    /// The activation. Default the exact GELU.
    #[config(default = "Activation::Gelu")]
    pub activation: Activation,
    /// Gated (GLU): the activation of a gate projection times an up projection. Default false.
    #[config(default = false)]
    pub gated: bool,
    /// Biases on the projections. Default true.
    #[config(default = true)]
    pub bias: bool,
}

/// Two linear maps with an activation between them, or three in the gated form.
#[derive(Module, Debug)]
pub struct FeedForward {
    up: Linear,
    gate: Option<Linear>,
    down: Linear,
    #[module(skip)]
    activation: Activation,
}

impl FeedForwardConfig {
    /// Builds the module.
    pub fn init(&self, device: &Device) -> FeedForward {
        let linear =
            |d_in, d_out| normal_linear_with_bias(d_in, d_out, self.init_std, self.bias, device);
        FeedForward {
            up: linear(self.hidden_size, self.ffn_size),
            gate: self.gated.then(|| linear(self.hidden_size, self.ffn_size)),
            down: linear(self.ffn_size, self.hidden_size),
            activation: self.activation,
        }
    }
}

impl FeedForward {
    /// Applies the network to `[batch, len, hidden]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = match &self.gate {
            Some(gate) => {
                let (gate, up) = (linear_3d(gate, x.clone()), linear_3d(&self.up, x));
                match self.activation {
                    Activation::Gelu => glu(gate, up, true),
                    Activation::Silu => glu(gate, up, false),
                    other => other.forward(gate) * up,
                }
            }
            None => self.activation.forward(linear_3d(&self.up, x)),
        };
        linear_3d(&self.down, hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::max_abs_diff;
    use burn::tensor::Distribution;

    #[test]
    fn a_gated_network_multiplies_the_activated_gate_by_the_up_projection() {
        let device = Device::flex();
        let _draws = crate::util::random::seeded(&device, 8);
        let ffn = FeedForwardConfig::new(6, 10)
            .with_activation(Activation::Silu)
            .with_gated(true)
            .with_bias(false)
            .with_init_std(0.5)
            .init(&device);
        assert!(ffn.up.bias.is_none() && ffn.down.bias.is_none());
        let x = Tensor::<3>::random([2, 3, 6], Distribution::Normal(0.0, 1.0), &device);
        let by_hand = |x: Tensor<3>| {
            let flat = x.reshape([6, 6]);
            let gate = flat.clone().matmul(ffn.gate.as_ref().unwrap().weight.val());
            let up = flat.matmul(ffn.up.weight.val());
            let silu = gate.clone() * burn::tensor::activation::sigmoid(gate);
            (silu * up).matmul(ffn.down.weight.val()).reshape([2, 3, 6])
        };
        assert!(max_abs_diff(ffn.forward(x.clone()), by_hand(x)) < 1e-5);
    }
}
