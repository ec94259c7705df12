//! Fused cross-entropy of logit rows against target ids: the negative log-likelihood of each
//! row's target, `logsumexp(x) − x[t]`, 0 where the target is ignored, in one pass per row;
//! the backward pass `g · (softmax(x) − onehot(t))` recomputes the softmax from the kept
//! log-sum-exp rather than storing it.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::Shape;
use rayon::prelude::*;

use super::gelu::exp;
use super::reduce::{max_of, sum_of};
use super::{tensor, values};
use crate::noise::IGNORE_INDEX;

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 4;

/// The target ids, as `i64`.
pub(super) fn ids(targets: &FlexTensor) -> Vec<i64> {
    targets
        .clone()
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("int targets")
}

/// Each row's negative log-likelihood and log-sum-exp.
pub(super) fn forward(logits: &FlexTensor, targets: &[i64]) -> (FlexTensor, FlexTensor) {
    let [rows, width] = logits.layout().shape().dims::<2>();
    let x = values(logits);
    let mut out = vec![(0f32, 0f32); rows];
    out.par_chunks_mut(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(task, out)| {
            for (r, out) in out.iter_mut().enumerate() {
                let row = task * ROWS_PER_TASK + r;
                let x = &x[row * width..(row + 1) * width];
                let max = max_of(x);
                let sum = sum_of(x, |v| exp(v - max));
                let lse = max + sum.ln();
                let t = targets[row];
                let nll = if t == IGNORE_INDEX {
                    0.0
                } else {
                    lse - x[t as usize]
                };
                *out = (nll, lse);
            }
        });
    let (nll, lse): (Vec<f32>, Vec<f32>) = out.into_iter().unzip();
    (
        tensor(nll, Shape::new([rows])),
        tensor(lse, Shape::new([rows])),
    )
}

/// The gradient of the logits from each row's gradient `g`.
fn backward(g: &FlexTensor, logits: &FlexTensor, lse: &FlexTensor, targets: &[i64]) -> FlexTensor {
    let [rows, width] = logits.layout().shape().dims::<2>();
    let (g, x, lse) = (values(g), values(logits), values(lse));
    let mut dx = vec![0f32; rows * width];
    dx.par_chunks_mut(ROWS_PER_TASK * width)
        .enumerate()
        .for_each(|(task, dx)| {
            for (r, dx) in dx.chunks_mut(width).enumerate() {
                let row = task * ROWS_PER_TASK + r;
                let t = targets[row];
                if t == IGNORE_INDEX {
                    continue;
                }
                let x = &x[row * width..(row + 1) * width];
                for (d, &v) in dx.iter_mut().zip(x) {
                    *d = g[row] * exp(v - lse[row]);
                }
                dx[t as usize] -= g[row];
            }
        });
    tensor(dx, Shape::new([rows, width]))
}

/// The autodiff node of the fused cross-entropy: its state is the logits, each row's
/// log-sum-exp and the targets.
#[derive(Debug)]
struct CrossEntropyBackward;

impl Backward<Flex, 1> for CrossEntropyBackward {
    type State = (FlexTensor, FlexTensor, Vec<i64>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (logits, lse, targets) = ops.state;
        let g = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, backward(&g, &logits, &lse, &targets));
        }
    }
}

/// The fused cross-entropy as an autodiff op (the targets carry no gradient).
pub(super) fn autodiff<C: CheckpointStrategy>(
    logits: FloatTensor<Autodiff<Flex, C>>,
    targets: FlexTensor,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = CrossEntropyBackward
        .prepare::<C>([logits.node()])
        .compute_bound()
        .stateful();
    let targets = ids(&targets);
    let (nll, lse) = forward(logits.primitive(), &targets);
    match prep {
        OpsKind::Tracked(prep) => prep.finish((logits.primitive().clone(), lse, targets), nll),
        OpsKind::UnTracked(prep) => prep.finish(nll),
    }
}
