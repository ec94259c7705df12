//! The norms of a block, over the last dimension: LayerNorm (with or without its shift) and
//! RMSNorm (Llama, T5), both in one module named `LayerNorm` with burn's parameter names
//! (`gamma`, `beta`): burn-store's PyTorch adapter maps `weight`/`bias` to those by that type
//! name, so checkpoints and imported weights load unchanged. Both take the fused kernels of
//! [`crate::kernels`] on the CPU backend in f32, with or without autodiff.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;

use crate::kernels;

/// Which normalisation a block applies.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum NormKind {
    /// `(x − mean) / √(var + ε) · gamma (+ beta)` (BERT, GPT-2, ModernBERT without the shift).
    LayerNorm,
    /// `x / √(mean(x²) + ε) · gamma`: no centring, no shift (Llama, Qwen2, T5).
    RmsNorm,
}

/// LayerNorm or RMSNorm over the last dimension ([`NormKind`]).
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// The scale, `[width]`.
    pub gamma: Param<Tensor<1>>,
    /// The shift, `[width]`, where the norm has one.
    pub beta: Option<Param<Tensor<1>>>,
    epsilon: f64,
    rms: bool,
}

impl LayerNorm {
    /// A norm of `kind` over `width` features: `gamma` ones, `beta` (a LayerNorm's, with
    /// `bias`) zeros.
    pub fn new(kind: NormKind, width: usize, epsilon: f64, bias: bool, device: &Device) -> Self {
        let rms = kind == NormKind::RmsNorm;
        Self {
            gamma: Param::from_tensor(Tensor::ones([width], device)),
            beta: (bias && !rms).then(|| Param::from_tensor(Tensor::zeros([width], device))),
            epsilon,
            rms,
        }
    }

    /// BERT's LayerNorm over `width` features, with its shift.
    pub fn layer_norm(width: usize, epsilon: f64, device: &Device) -> Self {
        Self::new(NormKind::LayerNorm, width, epsilon, true, device)
    }

    /// The epsilon added to the variance (or the mean square).
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Which norm this is.
    pub fn kind(&self) -> NormKind {
        match self.rms {
            true => NormKind::RmsNorm,
            false => NormKind::LayerNorm,
        }
    }

    /// Normalizes `x` `[…, width]` over its last dimension. Half-precision inputs are widened
    /// to f32 for the statistics, as burn's LayerNorm and Hugging Face's RMSNorm do, and
    /// narrowed back.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dtype = x.dtype();
        if matches!(dtype, DType::F16 | DType::BF16) {
            let wide = |t: Tensor<1>| t.cast(DType::F32);
            let gamma = wide(self.gamma.val());
            let beta = self.beta.as_ref().map(|b| wide(b.val()));
            return self.normalize(x.cast(DType::F32), gamma, beta).cast(dtype);
        }
        let beta = self.beta.as_ref().map(Param::val);
        self.normalize(x, self.gamma.val(), beta)
    }

    fn normalize<const D: usize>(
        &self,
        x: Tensor<D>,
        gamma: Tensor<1>,
        beta: Option<Tensor<1>>,
    ) -> Tensor<D> {
        if self.rms {
            return kernels::rms_norm(x, gamma, self.epsilon);
        }
        let beta = beta.unwrap_or_else(|| gamma.zeros_like());
        kernels::layer_norm(x, gamma, beta, self.epsilon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::max_abs_diff;
    use burn::tensor::Distribution;

    #[test]
    fn rms_norm_gives_unit_mean_square_times_the_gain() {
        let device = Device::flex();
        let _draws = crate::util::random::seeded(&device, 4);
        let x = Tensor::<3>::random([2, 3, 8], Distribution::Normal(1.0, 3.0), &device);
        let mut norm = LayerNorm::new(NormKind::RmsNorm, 8, 1e-6, true, &device);
        assert!(norm.beta.is_none(), "RMSNorm has no shift");
        let y = norm.forward(x.clone());
        let mean_square = y.clone().square().mean_dim(2);
        assert!(max_abs_diff(mean_square, Tensor::ones([2, 3, 1], &device)) < 1e-4);
        // Not centred: a constant row keeps its sign and normalizes to ±1, where LayerNorm
        // would give zeros.
        let constant = Tensor::<3>::full([1, 1, 8], -2.5, &device);
        let ones = Tensor::<3>::full([1, 1, 8], -1.0, &device);
        assert!(max_abs_diff(norm.forward(constant), ones) < 1e-5);
        // The gain scales each feature.
        norm.gamma = Param::from_tensor(Tensor::full([8], 2.0, &device));
        assert!(max_abs_diff(norm.forward(x), y * 2.0) < 1e-5);
    }

    #[test]
    fn a_layer_norm_without_its_shift_is_the_shifted_one_at_zero() {
        let device = Device::flex();
        let _draws = crate::util::random::seeded(&device, 5);
        let x = Tensor::<3>::random([2, 3, 8], Distribution::Normal(1.0, 3.0), &device);
        let plain = LayerNorm::new(NormKind::LayerNorm, 8, 1e-5, false, &device);
        let shifted = LayerNorm::layer_norm(8, 1e-5, &device);
        assert!(plain.beta.is_none());
        let y = plain.forward(x.clone());
        assert!(max_abs_diff(y.clone(), shifted.forward(x)) < 1e-6);
        assert!(max_abs_diff(y.mean_dim(2), Tensor::zeros([2, 3, 1], &device)) < 1e-5);
    }
}
