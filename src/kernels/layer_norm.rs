//! Fused LayerNorm: the forward pass keeps each row's mean and `1/σ` (the input is kept
//! anyway), and the backward pass is the closed form
//! `dx = (1/σ) · (gγ − mean(gγ) − x̂ · mean(gγ ⊙ x̂))`, `dγ = Σ g ⊙ x̂`, `dβ = Σ g` (sums over
//! the rows), each one pass over the rows in parallel.

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

/// The forward pass: `y`, and each row's mean and `1/σ`.
pub(super) fn forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let [rows, width] = x.layout().shape().dims::<2>();
    let (x, gamma, beta) = (values(x), values(gamma), values(beta));
    let mut y = vec![0f32; rows * width];
    let mut stats = vec![(0f32, 0f32); rows];
    y.par_chunks_mut(ROWS_PER_TASK * width)
        .zip(stats.par_chunks_mut(ROWS_PER_TASK))
        .enumerate()
        .for_each(|(task, (y, stats))| {
            let first = task * ROWS_PER_TASK * width;
            for (r, (y, stats)) in y.chunks_mut(width).zip(stats).enumerate() {
                let row = &x[first + r * width..first + (r + 1) * width];
                let mean = sum_of(row, |v| v) / width as f32;
                let var = sum_of(row, |v| (v - mean) * (v - mean)) / width as f32;
                let rstd = 1.0 / (var + epsilon as f32).sqrt();
                for (((out, &v), &gamma), &beta) in
                    y.iter_mut().zip(row).zip(&gamma[..]).zip(&beta[..])
                {
                    *out = (v - mean) * rstd * gamma + beta;
                }
                *stats = (mean, rstd);
            }
        });
    let (mean, rstd): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
    let per_row = || Shape::new([rows]);
    (
        tensor(y, Shape::new([rows, width])),
        tensor(mean, per_row()),
        tensor(rstd, per_row()),
    )
}

/// The backward pass: `(dx, dγ, dβ)` from the output's gradient `g`.
fn backward(
    g: &FlexTensor,
    x: &FlexTensor,
    mean: &FlexTensor,
    rstd: &FlexTensor,
    gamma: &FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let [rows, width] = x.layout().shape().dims::<2>();
    let (g, x) = (values(g), values(x));
    let (mean, rstd, gamma) = (values(mean), values(rstd), values(gamma));
    let mut dx = vec![0f32; rows * width];
    // Each task adds its rows' dγ and dβ into partial sums of its own, added up after.
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(ROWS_PER_TASK * width)
        .enumerate()
        .map(|(task, dx)| {
            let mut dgamma = vec![0f32; width];
            let mut dbeta = vec![0f32; width];
            let mut xhat = vec![0f32; width];
            let mut gg = vec![0f32; width];
            for (r, dx) in dx.chunks_mut(width).enumerate() {
                let row = task * ROWS_PER_TASK + r;
                let start = row * width;
                let g = &g[start..start + width];
                for (h, v) in xhat.iter_mut().zip(&x[start..start + width]) {
                    *h = (v - mean[row]) * rstd[row];
                }
                for ((gg, &g), &gamma) in gg.iter_mut().zip(g).zip(&gamma[..]) {
                    *gg = g * gamma;
                }
                for (((dgamma, dbeta), &g), &h) in
                    dgamma.iter_mut().zip(dbeta.iter_mut()).zip(g).zip(&xhat)
                {
                    *dgamma += g * h;
                    *dbeta += g;
                }
                let mean_gg = sum_of(&gg, |v| v) / width as f32;
                let mean_ggx = dot(&gg, &xhat) / width as f32;
                for ((dx, &gg), &h) in dx.iter_mut().zip(&gg).zip(&xhat) {
                    *dx = rstd[row] * (gg - mean_gg - h * mean_ggx);
                }
            }
            (dgamma, dbeta)
        })
        .collect();
    let mut dgamma = vec![0f32; width];
    let mut dbeta = vec![0f32; width];
    for (pg, pb) in partials {
        for j in 0..width {
            dgamma[j] += pg[j];
            dbeta[j] += pb[j];
        }
    }
    (
        tensor(dx, Shape::new([rows, width])),
        tensor(dgamma, Shape::new([width])),
        tensor(dbeta, Shape::new([width])),
    )
}

/// The autodiff node of the fused LayerNorm; its state is `(x, mean, 1/σ, γ)`.
#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    type State = (FlexTensor, FlexTensor, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, mean, rstd, gamma) = ops.state;
        let g = grads.consume::<Flex>(&ops.node);
        let (dx, dgamma, dbeta) = backward(&g, &x, &mean, &rstd, &gamma);
        for (parent, grad) in ops.parents.into_iter().zip([dx, dgamma, dbeta]) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// The fused LayerNorm as an autodiff op.
pub(super) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    gamma: FloatTensor<Autodiff<Flex, C>>,
    beta: FloatTensor<Autodiff<Flex, C>>,
    epsilon: f64,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = LayerNormBackward
        .prepare::<C>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful();
    let (y, mean, rstd) = forward(x.primitive(), gamma.primitive(), beta.primitive(), epsilon);
    match prep {
        OpsKind::Tracked(prep) => {
            let state = (x.primitive().clone(), mean, rstd, gamma.primitive().clone());
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
