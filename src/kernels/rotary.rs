//! Rotary embeddings applied to queries or keys `x` `[batch, heads, len, d]` in Hugging Face's
//! layout (feature `j` paired with `j + d/2`): `y_j = x_j·cos_j − x_{j+d/2}·sin_j` and
//! `y_{j+d/2} = x_{j+d/2}·cos_{j+d/2} + x_j·sin_{j+d/2}`, with the tables `[batch, 1, len, d]`
//! shared by the heads. One pass each way instead of two slices, a negation, a concatenation,
//! two products and a sum; the tables are constants, so only `x` has a gradient:
//! `dx_j = g_j·cos_j + g_{j+d/2}·sin_{j+d/2}`, `dx_{j+d/2} = g_{j+d/2}·cos_{j+d/2} − g_j·sin_j`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use rayon::prelude::*;

use super::{tensor, values};

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// Applies `rotate(x_row, cos_row, sin_row, out_row)` to every row of `x` `[b, h, l, d]`, the
/// tables' row being the one of the same batch entry and position.
fn rows(
    x: &FlexTensor,
    cos: &FlexTensor,
    sin: &FlexTensor,
    rotate: impl Fn(&[f32], &[f32], &[f32], &mut [f32]) + Sync,
) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let [_, heads, len, d] = shape.dims::<4>();
    let (x, cos, sin) = (values(x), values(cos), values(sin));
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(ROWS_PER_TASK * d)
        .enumerate()
        .for_each(|(task, y)| {
            for (r, y) in y.chunks_mut(d).enumerate() {
                let row = task * ROWS_PER_TASK + r;
                let table = (row / (heads * len)) * len + row % len;
                let cells = table * d..(table + 1) * d;
                rotate(
                    &x[row * d..(row + 1) * d],
                    &cos[cells.clone()],
                    &sin[cells],
                    y,
                );
            }
        });
    tensor(y, shape)
}

/// `x` rotated by the tables.
pub(super) fn forward(x: &FlexTensor, cos: &FlexTensor, sin: &FlexTensor) -> FlexTensor {
    rows(x, cos, sin, |x, c, s, y| {
        let half = x.len() / 2;
        for j in 0..half {
            let (a, b) = (x[j], x[j + half]);
            y[j] = a * c[j] - b * s[j];
            y[j + half] = b * c[j + half] + a * s[j + half];
        }
    })
}

/// The gradient of `x` from the output's gradient `g`.
fn backward(g: &FlexTensor, cos: &FlexTensor, sin: &FlexTensor) -> FlexTensor {
    rows(g, cos, sin, |g, c, s, dx| {
        let half = g.len() / 2;
        for j in 0..half {
            let (a, b) = (g[j], g[j + half]);
            dx[j] = a * c[j] + b * s[j + half];
            dx[j + half] = b * c[j + half] - a * s[j];
        }
    })
}

/// The autodiff node of the fused rotation; its state is the tables.
#[derive(Debug)]
struct RotaryBackward;

impl Backward<Flex, 1> for RotaryBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (cos, sin) = ops.state;
        let g = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, backward(&g, &cos, &sin));
        }
    }
}

/// The fused rotation as an autodiff op (the tables carry no gradient).
pub(super) fn autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    cos: FloatTensor<Autodiff<Flex, C>>,
    sin: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = RotaryBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful();
    let (cos, sin) = (cos.primitive().clone(), sin.primitive().clone());
    let y = forward(x.primitive(), &cos, &sin);
    match prep {
        OpsKind::Tracked(prep) => prep.finish((cos, sin), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
