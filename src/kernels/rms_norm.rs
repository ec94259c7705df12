//! Fused RMSNorm (Llama, T5): the forward pass keeps each row's `r = 1/√(mean(x²) + ε)`, and
//! the backward pass is the closed form `dx = r · (gγ − x̂ · mean(gγ ⊙ x̂))` with `x̂ = x·r`,
//! `dγ = Σ g ⊙ x̂` (summed over the rows), each one pass over the rows in parallel.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::Shape;
use rayon::prelude::*;

use super::reduce::{dot, sum_of};
use super::{tensor, values};

/// Rows per parallel task: enough work to outweigh scheduling, enough tasks to share out.
const ROWS_PER_TASK: usize = 16;

/// The forward pass: `y`, and each row's `1/√(mean(x²) + ε)`.
pub(super) fn forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor) {
    let [rows, width] = x.layout().shape().dims::<2>();
    let (x, gamma) = (values(x), values(gamma));
    let mut y = vec![0f32; rows * width];
    let mut rstd = vec![0f32; rows];
    y.par_chunks_mut(ROWS_PER_TASK * width)
        .zip(rstd.par_chunks_mut(ROWS_PER_TASK))
        .enumerate()
        .for_each(|(task, (y, rstd))| {
            let first = task * ROWS_PER_TASK * width;
            for (r, (y, rstd)) in y.chunks_mut(width).zip(rstd).enumerate() {
                let row = &x[first + r * width..first + (r + 1) * width];
                let mean_square = sum_of(row, |v| v * v) / width as f32;
                *rstd = 1.0 / (mean_square + epsilon as f32).sqrt();
                for ((out, &v), &gamma) in y.iter_mut().zip(row).zip(&gamma[..]) {
                    *out = v * *rstd * gamma;
                }
            }
        });
    (
        tensor(y, Shape::new([rows, width])),
        tensor(rstd, Shape::new([rows])),
    )
}

/// The backward pass: `(dx, dγ)` from the output's gradient `g`.
fn backward(
    g: &FlexTensor,
    x: &FlexTensor,
    rstd: &FlexTensor,
    gamma: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let [rows, width] = x.layout().shape().dims::<2>();
    let (g, x, rstd, gamma) = (values(g), values(x), values(rstd), values(gamma));
    let mut dx = vec![0f32; rows * width];
    // Each task adds its rows' dγ into a partial sum of its own, added up after.
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(ROWS_PER_TASK * width)
        .enumerate()
        .map(|(task, dx)| {
            let mut dgamma = vec![0f32; width];
            let mut xhat = vec![0f32; width];
            let mut gg = vec![0f32; width];
            for (r, dx) in dx.chunks_mut(width).enumerate() {
                let row = task * ROWS_PER_TASK + r;
                let start = row * width;
                let g = &g[start..start + width];
                for (h, v) in xhat.iter_mut().zip(&x[start..start + width]) {
                    *h = v * rstd[row];
                }
                for ((gg, &g), &gamma) in gg.iter_mut().zip(g).zip(&gamma[..]) {
                    *gg = g * gamma;
                }
                for ((dgamma, &g), &h) in dgamma.iter_mut().zip(g).zip(&xhat) {
                    *dgamma += g * h;
                }
                let mean_ggx = dot(&gg, &xhat) / width as f32;
                for ((dx, &gg), &h) in dx.iter_mut().zip(&gg).zip(&xhat) {
                    *dx = rstd[row] * (gg - h * mean_ggx);
                }
            }
            dgamma
        })
        .collect();
    let mut dgamma = vec![0f32; width];
    for partial in partials {
        for (sum, p) in dgamma.iter_mut().zip(partial) {
            *sum += p;
        }
    }
    (
        tensor(dx, Shape::new([rows, width])),
        tensor(dgamma, Shape::new([width])),
    )
}

/// The autodiff node of the fused RMSNorm; its state is `(x, r, γ)`.
#[derive(Debug)]
struct RmsNormBackward;

impl Backward<Flex, 2> for RmsNormBackward {
    type State = (FlexTensor, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, rstd, gamma) = ops.state;
        let g = grads.consume::<Flex>(&ops.node);
        let (dx, dgamma) = backward(&g, &x, &rstd, &gamma);
        for (parent, grad) in ops.parents.into_iter().zip([dx, dgamma]) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// The fused RMSNorm as an autodiff op.
pub(super) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    gamma: FloatTensor<Autodiff<Flex, C>>,
    epsilon: f64,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = RmsNormBackward
        .prepare::<C>([x.node(), gamma.node()])
        .compute_bound()
        .stateful();
    let (y, rstd) = forward(x.primitive(), gamma.primitive(), epsilon);
    match prep {
        OpsKind::Tracked(prep) => {
            let state = (x.primitive().clone(), rstd, gamma.primitive().clone());
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
