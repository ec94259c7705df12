//! LayerNorm over the last dimension, as burn's (the same parameters, `gamma` and `beta`, so
//! checkpoints and imported weights load unchanged), whose forward pass takes the fused kernel
//! of [`crate::kernels`] on the CPU backend in f32, with or without autodiff.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;

use crate::kernels;

/// `(x − mean) / √(var + epsilon) · gamma + beta` over the last dimension (biased variance).
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// The scale, `[width]`.
    pub gamma: Param<Tensor<1>>,
    /// The shift, `[width]`.
    pub beta: Param<Tensor<1>>,
    epsilon: f64,
}

impl LayerNorm {
    /// A LayerNorm over `width` features: `gamma` ones, `beta` zeros.
    pub fn new(width: usize, epsilon: f64, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([width], device)),
            beta: Param::from_tensor(Tensor::zeros([width], device)),
            epsilon,
        }
    }

    /// The epsilon added to the variance.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Normalizes `x` `[…, width]` over its last dimension. Half-precision inputs are widened
    /// to f32 for the statistics, as burn's LayerNorm does, and narrowed back.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dtype = x.dtype();
        let (gamma, beta) = (self.gamma.val(), self.beta.val());
        if matches!(dtype, DType::F16 | DType::BF16) {
            let wide = |t: Tensor<1>| t.cast(DType::F32);
            return kernels::layer_norm(x.cast(DType::F32), wide(gamma), wide(beta), self.epsilon)
                .cast(dtype);
        }
        kernels::layer_norm(x, gamma, beta, self.epsilon)
    }
}
