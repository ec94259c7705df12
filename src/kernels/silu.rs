//! SiLU (Swish), `x · σ(x)`, SwiGLU's gate: forward and backward in one parallel pass each,
//! with the polynomial `exp` of the GELU kernel.

use burn::backend::flex::FlexTensor;

use super::gelu::exp;
use super::{elementwise, elementwise_grad};

/// `σ(x) = 1 / (1 + e^−x)`.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `SiLU(x) = x · σ(x)`.
#[inline(always)]
pub(super) fn value(x: f32) -> f32 {
    x * sigmoid(x)
}

/// `SiLU'(x) = σ(x) · (1 + x · (1 − σ(x)))`.
#[inline(always)]
fn slope(x: f32) -> f32 {
    value_and_slope(x).1
}

/// `(SiLU(x), SiLU'(x))`, one `σ` for both.
#[inline(always)]
pub(super) fn value_and_slope(x: f32) -> (f32, f32) {
    let s = sigmoid(x);
    (x * s, s * (1.0 + x * (1.0 - s)))
}

/// SiLU of every element of `x`.
pub(super) fn forward(x: &FlexTensor) -> FlexTensor {
    elementwise(x, value)
}

/// `g · SiLU'(x)`.
pub(super) fn backward(x: &FlexTensor, g: &FlexTensor) -> FlexTensor {
    elementwise_grad(x, g, |x, g| g * slope(x))
}
