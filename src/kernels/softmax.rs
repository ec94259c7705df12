//! Fused softmax over the last dimension: forward through burn's fused Flex kernel, backward in
//! one pass over the rows, `dx = y ⊙ (g − Σ y ⊙ g)`, from the saved output `y`.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ActivationOps;
use rayon::prelude::*;

use super::reduce::dot;
use super::{tensor, values};

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// The softmax of `x` over its last dimension.
pub(super) fn forward(x: FlexTensor) -> FlexTensor {
    let last = x.layout().shape().num_dims() - 1;
    <Flex as ActivationOps<Flex>>::softmax(x, last)
}

/// `dx` from the output `y` and its gradient `g`.
pub(super) fn backward(y: &FlexTensor, g: &FlexTensor) -> FlexTensor {
    let shape = y.layout().shape().clone();
    let width = shape[shape.num_dims() - 1].max(1);
    let (y, g) = (values(y), values(g));
    let mut dx = vec![0f32; y.len()];
    dx.par_chunks_mut(ROWS_PER_TASK * width)
        .enumerate()
        .for_each(|(task, dx)| {
            let first = task * ROWS_PER_TASK * width;
            for (r, dx) in dx.chunks_mut(width).enumerate() {
                let start = first + r * width;
                let (y, g) = (&y[start..start + width], &g[start..start + width]);
                let yg = dot(y, g);
                for ((dx, y), g) in dx.iter_mut().zip(y).zip(g) {
                    *dx = y * (g - yg);
                }
            }
        });
    tensor(dx, shape)
}
