//! SiLU (Swish), `x · σ(x)`, SwiGLU's gate: forward and backward in one parallel pass each,
//! with the polynomial `exp` of the GELU kernel.

use burn::backend::flex::FlexTensor;
use rayon::prelude::*;

use super::gelu::exp;
use super::{tensor, values};

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// `σ(x) = 1 / (1 + e^−x)`.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// SiLU of every element of `x`.
pub(super) fn forward(x: &FlexTensor) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let x = values(x);
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x * sigmoid(x);
            }
        });
    tensor(y, shape)
}

/// `g · SiLU'(x)`, where `SiLU'(x) = σ(x) · (1 + x · (1 − σ(x)))`.
pub(super) fn backward(x: &FlexTensor, g: &FlexTensor) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let (x, g) = (values(x), values(g));
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|(dx, (x, g))| {
            for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(g) {
                let s = sigmoid(x);
                *dx = g * s * (1.0 + x * (1.0 - s));
            }
        });
    tensor(dx, shape)
}
