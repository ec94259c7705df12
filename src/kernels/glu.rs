//! The gated feed-forward network's product `act(gate) ⊙ up` (SwiGLU with SiLU, GeGLU with
//! the exact GELU): one pass forward, without the activated gate as a tensor of its own, and
//! one pass backward giving both gradients, `d_gate = g · up · act'(gate)` and
//! `d_up = g · act(gate)`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use rayon::prelude::*;

use super::{CHUNK, gelu, silu, tensor, values};

/// `act(gate) ⊙ up`.
pub(super) fn forward(gate: &FlexTensor, up: &FlexTensor, gelu: bool) -> FlexTensor {
    match gelu {
        true => forward_with(gate, up, gelu::value),
        false => forward_with(gate, up, silu::value),
    }
}

/// The forward pass with the activation `act`, taken as a function item (not a pointer) so
/// that the pass is compiled for it: through a pointer the per-element call is opaque and its
/// polynomial is not vectorized (the GeGLU passes took an eighth of a `modernbert` step so).
fn forward_with(gate: &FlexTensor, up: &FlexTensor, act: impl Fn(f32) -> f32 + Sync) -> FlexTensor {
    let shape = gate.layout().shape().clone();
    let (gate, up) = (values(gate), values(up));
    let mut y = vec![0f32; gate.len()];
    y.par_chunks_mut(CHUNK)
        .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)))
        .for_each(|(y, (gate, up))| {
            for ((y, &a), &b) in y.iter_mut().zip(gate).zip(up) {
                *y = act(a) * b;
            }
        });
    tensor(y, shape)
}

/// `(d_gate, d_up)` from the output's gradient `g`.
fn backward(
    gate: &FlexTensor,
    up: &FlexTensor,
    g: &FlexTensor,
    gelu: bool,
) -> (FlexTensor, FlexTensor) {
    match gelu {
        true => backward_with(gate, up, g, gelu::value_and_slope),
        false => backward_with(gate, up, g, silu::value_and_slope),
    }
}

/// The backward pass with `act_and_slope` giving `(act(x), act'(x))`, a function item as in
/// [`forward_with`].
fn backward_with(
    gate: &FlexTensor,
    up: &FlexTensor,
    g: &FlexTensor,
    act_and_slope: impl Fn(f32) -> (f32, f32) + Sync,
) -> (FlexTensor, FlexTensor) {
    let shape = gate.layout().shape().clone();
    let (gate, up, g) = (values(gate), values(up), values(g));
    let mut d_gate = vec![0f32; gate.len()];
    let mut d_up = vec![0f32; gate.len()];
    d_gate
        .par_chunks_mut(CHUNK)
        .zip(d_up.par_chunks_mut(CHUNK))
        .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((d_gate, d_up), (gate, up)), g)| {
            for i in 0..gate.len() {
                let (act, slope) = act_and_slope(gate[i]);
                d_gate[i] = g[i] * up[i] * slope;
                d_up[i] = g[i] * act;
            }
        });
    (tensor(d_gate, shape.clone()), tensor(d_up, shape))
}

/// The autodiff node of the fused product; its state is `(gate, up)`.
#[derive(Debug)]
struct GluBackward {
    gelu: bool,
}

impl Backward<Flex, 2> for GluBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (gate, up) = ops.state;
        let g = grads.consume::<Flex>(&ops.node);
        let (d_gate, d_up) = backward(&gate, &up, &g, self.gelu);
        for (parent, grad) in ops.parents.into_iter().zip([d_gate, d_up]) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// The fused product as an autodiff op.
pub(super) fn autodiff<C: CheckpointStrategy>(
    gate: FloatTensor<Autodiff<Flex, C>>,
    up: FloatTensor<Autodiff<Flex, C>>,
    gelu: bool,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = GluBackward { gelu }
        .prepare::<C>([gate.node(), up.node()])
        .compute_bound()
        .stateful();
    let y = forward(gate.primitive(), up.primitive(), gelu);
    match prep {
        OpsKind::Tracked(prep) => {
            prep.finish((gate.primitive().clone(), up.primitive().clone()), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
