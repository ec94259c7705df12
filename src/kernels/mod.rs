//! Fused CPU kernels with hand-written backward passes, through burn's backend extension.
//!
//! Under autodiff, burn composes LayerNorm and softmax from elementwise ops (mean, subtract,
//! square, square root, divide, exp, sums…), each a full-size temporary and an autodiff node,
//! most of them on one core: burn's fused Flex kernels run only without autodiff. Its GELU
//! calls `erff` element by element on one thread. The ops here are one pass forward and one
//! backward each, on the `flex` CPU backend in f32, with or without autodiff:
//!
//! - [`layer_norm`]: keeps each row's mean and `1/σ`; closed-form backward for `x`, `γ`, `β`;
//! - [`softmax`] over the last dimension: burn's fused forward, `dx = y ⊙ (g − Σ y ⊙ g)`;
//! - [`gelu`] (exact): a vectorizable `erf` and `exp`, accurate to f32;
//! - [`rms_norm`], [`silu`], the gated product `act(gate) ⊙ up` ([`glu`]) and the rotary
//!   embeddings' rotation ([`rotate`]), for the modern block.
//!
//! On other backends and float types the blocks keep burn's composed ops. [`set_fused`]
//! switches the fused path off for the whole process (as `PRETEXT_FUSED=0` does from the
//! start, which moves rounding the way another CPU does), and [`with_fused`] for one call on
//! one thread, so that a test can hold the two paths against each other while other tests run.

mod cross_entropy;
mod gelu;
mod glu;
mod layer_norm;
mod reduce;
mod rms_norm;
mod rotary;
mod silu;
mod softmax;

use std::cell::Cell;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::nn::Gelu;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bytes, DType, Shape};
use rayon::prelude::*;

use crate::noise::IGNORE_INDEX;

/// The process's setting: on unless the environment says `PRETEXT_FUSED=0`.
static FUSED: LazyLock<AtomicBool> =
    LazyLock::new(|| AtomicBool::new(std::env::var("PRETEXT_FUSED").as_deref() != Ok("0")));

thread_local! {
    /// This thread's setting while [`with_fused`] runs, over the process's.
    static FUSED_HERE: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Turns the fused kernels on (the default) or off for the whole process: for a program, not
/// for a test that shares its process with others (use [`with_fused`] there).
pub fn set_fused(on: bool) {
    FUSED.store(on, Ordering::Relaxed);
}

/// Runs `f` with the fused kernels on or off on this thread alone; other threads (a
/// `Trainer`'s shards among them) keep the process's setting.
pub fn with_fused<R>(on: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FUSED_HERE.with(|h| h.set(self.0));
        }
    }
    let _restore = Restore(FUSED_HERE.with(|h| h.replace(Some(on))));
    f()
}

/// Whether the fused kernels are on for this thread.
pub fn fused() -> bool {
    FUSED_HERE
        .with(Cell::get)
        .unwrap_or_else(|| FUSED.load(Ordering::Relaxed))
}

/// The fused ops, implemented for the `flex` CPU backend and for autodiff over it.
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: burn::backend::Backend {
    /// LayerNorm of the rows of `x` `[rows, width]`: `(x − mean) / √(var + epsilon) · gamma +
    /// beta`, the variance biased, as BERT's.
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// RMSNorm of the rows of `x` `[rows, width]`: `x / √(mean(x²) + epsilon) · gamma`.
    fn fused_rms_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// Softmax of `x` over its last dimension.
    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Exact GELU of every element of `x`.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// SiLU of every element of `x`.
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `act(gate) ⊙ up`, `act` the exact GELU if `gelu`, SiLU otherwise.
    fn fused_glu(gate: FloatTensor<Self>, up: FloatTensor<Self>, gelu: bool) -> FloatTensor<Self>;

    /// `x` `[batch, heads, len, d]` rotated by the tables `cos` and `sin` `[batch, 1, len, d]`
    /// (Hugging Face's layout: feature `j` paired with `j + d/2`).
    fn fused_rotary(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The negative log-likelihood `[rows]` of each row of `logits` `[rows, classes]` at its
    /// target id, 0 where the target is [`crate::noise::IGNORE_INDEX`].
    fn fused_nll(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self>;
}

impl FusedOps for Flex {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        layer_norm::forward(&x, &gamma, &beta, epsilon).0
    }

    fn fused_rms_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        rms_norm::forward(&x, &gamma, epsilon).0
    }

    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        softmax::forward(x)
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        gelu::forward(&x)
    }

    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        silu::forward(&x)
    }

    fn fused_glu(gate: FloatTensor<Self>, up: FloatTensor<Self>, gelu: bool) -> FloatTensor<Self> {
        glu::forward(&gate, &up, gelu)
    }

    fn fused_rotary(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        rotary::forward(&x, &cos, &sin)
    }

    fn fused_nll(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self> {
        cross_entropy::forward(&logits, &cross_entropy::ids(&targets)).0
    }
}

impl<C: CheckpointStrategy> FusedOps for Autodiff<Flex, C> {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        layer_norm::autodiff::<C>(x, gamma, beta, epsilon)
    }

    fn fused_rms_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        rms_norm::autodiff::<C>(x, gamma, epsilon)
    }

    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        // Softmax's gradient reads its output.
        unary::<C>(
            x,
            |x| softmax::forward(x.clone()),
            Keep::Output,
            softmax::backward,
        )
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        unary::<C>(x, gelu::forward, Keep::Input, gelu::backward)
    }

    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        unary::<C>(x, silu::forward, Keep::Input, silu::backward)
    }

    fn fused_glu(gate: FloatTensor<Self>, up: FloatTensor<Self>, gelu: bool) -> FloatTensor<Self> {
        glu::autodiff::<C>(gate, up, gelu)
    }

    fn fused_rotary(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        rotary::autodiff::<C>(x, cos, sin)
    }

    fn fused_nll(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self> {
        cross_entropy::autodiff::<C>(logits, targets)
    }
}

/// Which tensor an elementwise op's backward pass reads.
#[derive(Debug, Clone, Copy)]
enum Keep {
    Input,
    Output,
}

/// The autodiff node of a fused elementwise op: `dx = backward(kept, g)`.
#[derive(Debug)]
struct UnaryBackward {
    backward: fn(&FlexTensor, &FlexTensor) -> FlexTensor,
}

impl Backward<Flex, 1> for UnaryBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, (self.backward)(&ops.state, &g));
        }
    }
}

/// `forward` as an autodiff op whose gradient is `backward(kept, g)`.
fn unary<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    forward: fn(&FlexTensor) -> FlexTensor,
    keep: Keep,
    backward: fn(&FlexTensor, &FlexTensor) -> FlexTensor,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = UnaryBackward { backward }
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful();
    let y = forward(x.primitive());
    match prep {
        OpsKind::Tracked(prep) => {
            let kept = match keep {
                Keep::Input => x.primitive().clone(),
                Keep::Output => y.clone(),
            };
            prep.finish(kept, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// The f32 values of a tensor in row-major order: its own memory when it is laid out so,
/// one contiguous copy otherwise (a transposed view: attention's heads).
enum Values<'a> {
    Own(&'a [f32]),
    Copied(FlexTensor),
}

impl std::ops::Deref for Values<'_> {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match self {
            Self::Own(values) => values,
            Self::Copied(t) => t.as_slice::<f32>().expect("a contiguous f32 tensor"),
        }
    }
}

/// The f32 values of `t`, in row-major order.
fn values(t: &FlexTensor) -> Values<'_> {
    match t.as_slice::<f32>() {
        Some(v) => Values::Own(v),
        None => Values::Copied(t.to_contiguous()),
    }
}

/// Elements per parallel task of an elementwise kernel.
const CHUNK: usize = 1 << 14;

/// `f` of every element of `x`, in parallel chunks.
fn elementwise(x: &FlexTensor, f: impl Fn(f32) -> f32 + Sync) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let x = values(x);
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = f(x);
            }
        });
    tensor(y, shape)
}

/// `f(x, g)` of every element of `x` and the gradient `g` beside it (an elementwise op's
/// backward pass), in parallel chunks.
fn elementwise_grad(
    x: &FlexTensor,
    g: &FlexTensor,
    f: impl Fn(f32, f32) -> f32 + Sync,
) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let (x, g) = (values(x), values(g));
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|(dx, (x, g))| {
            for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(g) {
                *dx = f(x, g);
            }
        });
    tensor(dx, shape)
}

/// A contiguous f32 tensor of `shape` holding `data`.
fn tensor(data: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// Whether `x` can take the fused path: f32 on the `flex` CPU backend, the switch on.
fn fusable<const D: usize>(x: &Tensor<D>) -> bool {
    fused() && x.dtype() == DType::F32 && x.device() == Device::flex()
}

/// LayerNorm of `x` over its last dimension with `gamma`, `beta` and `epsilon`: fused where it
/// can be, burn's otherwise.
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Tensor<D> {
    if !(fusable(&x) && gamma.dtype() == DType::F32 && beta.dtype() == DType::F32) {
        return burn::tensor::module::layer_norm(x, gamma, Some(beta), epsilon);
    }
    let dims = x.dims();
    let width = dims[D - 1];
    let rows = dims.iter().product::<usize>() / width.max(1);
    let y = Dispatch::fused_layer_norm(
        x.reshape([rows, width]).into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    Tensor::<2>::from_dispatch(y).reshape(dims)
}

/// RMSNorm of `x` over its last dimension with `gamma` and `epsilon`: fused where it can be,
/// burn's composed ops otherwise.
pub fn rms_norm<const D: usize>(x: Tensor<D>, gamma: Tensor<1>, epsilon: f64) -> Tensor<D> {
    if !(fusable(&x) && gamma.dtype() == DType::F32) {
        let scale = (x.clone().square().mean_dim(D - 1) + epsilon)
            .sqrt()
            .recip();
        return x * scale * gamma.unsqueeze::<D>();
    }
    let dims = x.dims();
    let width = dims[D - 1];
    let rows = dims.iter().product::<usize>() / width.max(1);
    let y = Dispatch::fused_rms_norm(
        x.reshape([rows, width]).into_dispatch(),
        gamma.into_dispatch(),
        epsilon,
    );
    Tensor::<2>::from_dispatch(y).reshape(dims)
}

/// SiLU of `x`: fused where it can be, burn's otherwise.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !fusable(&x) {
        return burn::tensor::activation::silu(x);
    }
    Tensor::from_dispatch(Dispatch::fused_silu(x.into_dispatch()))
}

/// The gated feed-forward product `act(gate) ⊙ up`, `act` the exact GELU if `gelu` (GeGLU),
/// SiLU otherwise (SwiGLU): one fused op where it can be, the activation then a product
/// otherwise.
pub fn glu<const D: usize>(gate: Tensor<D>, up: Tensor<D>, gelu: bool) -> Tensor<D> {
    if !(fusable(&gate) && fusable(&up)) {
        let activated = match gelu {
            true => self::gelu(&Gelu::new(), gate),
            false => silu(gate),
        };
        return activated * up;
    }
    let y = Dispatch::fused_glu(gate.into_dispatch(), up.into_dispatch(), gelu);
    Tensor::from_dispatch(y)
}

/// `x` `[batch, heads, len, d]` rotated by the rotary tables `cos` and `sin`
/// `[batch, 1, len, d]`, pairing feature `j` with `j + d/2`: fused where it can be, burn's
/// ops otherwise.
pub fn rotate(x: Tensor<4>, cos: Tensor<4>, sin: Tensor<4>) -> Tensor<4> {
    if !(fusable(&x) && fusable(&cos) && fusable(&sin)) {
        let [batch, heads, len, size] = x.dims();
        let half = size / 2;
        let first = x.clone().slice([0..batch, 0..heads, 0..len, 0..half]);
        let second = x.clone().slice([0..batch, 0..heads, 0..len, half..size]);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);
        return x * cos + rotated * sin;
    }
    let y = Dispatch::fused_rotary(x.into_dispatch(), cos.into_dispatch(), sin.into_dispatch());
    Tensor::from_dispatch(y)
}

/// Softmax of `x` over its last dimension: fused where it can be, burn's otherwise.
pub fn softmax<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !fusable(&x) {
        return burn::tensor::activation::softmax(x, D - 1);
    }
    Tensor::from_dispatch(Dispatch::fused_softmax(x.into_dispatch()))
}

/// `activation` (exact or tanh-approximated GELU) applied to `x`: the exact one fused where it
/// can be, burn's otherwise.
pub fn gelu<const D: usize>(activation: &Gelu, x: Tensor<D>) -> Tensor<D> {
    if activation.approximate || !fusable(&x) {
        return activation.forward(x);
    }
    Tensor::from_dispatch(Dispatch::fused_gelu(x.into_dispatch()))
}

/// The negative log-likelihood `[rows]` of each row of `logits` `[rows, classes]` at its
/// target, 0 where the target is [`IGNORE_INDEX`]: fused where it can be, composed from
/// burn's `log_softmax` otherwise.
pub fn nll_rows(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    if fusable(&logits) {
        let nll = Dispatch::fused_nll(logits.into_dispatch(), targets.into_dispatch());
        return Tensor::from_dispatch(nll);
    }
    let [n, _] = logits.dims();
    let ignored = targets.clone().equal_elem(IGNORE_INDEX);
    let safe = targets.mask_fill(ignored.clone(), 0);
    log_softmax(logits, 1)
        .gather(1, safe.reshape([n, 1]))
        .reshape([n])
        .neg()
        .mask_fill(ignored, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Runs `f` with the fused path on, then off, on this thread, and gives both results.
    pub(super) fn both<R>(f: impl Fn() -> R) -> (R, R) {
        (with_fused(true, &f), with_fused(false, &f))
    }

    /// The largest difference of `a` and `b`, relative to the largest magnitude of `b` when it
    /// is above 1 (a gradient through `1/σ` of a narrow row is large, and so are its rounding
    /// errors).
    /// `op`'s output at `x` and the gradient of `Σ weights ⊙ output` with respect to `x`.
    pub(super) fn output_and_grad<const D: usize, const E: usize>(
        x: &Tensor<D>,
        weights: &Tensor<E>,
        op: impl Fn(Tensor<D>) -> Tensor<E>,
    ) -> (Tensor<E>, Tensor<D>) {
        let x = x.clone().detach().require_grad();
        let y = op(x.clone());
        let mut grads = (y.clone() * weights.clone()).sum().backward();
        (y.inner(), x.grad_remove(&mut grads).unwrap())
    }

    /// Fails, naming `what`, unless every difference is below 1e-5.
    pub(super) fn assert_close(diffs: &[f32], what: &str) {
        assert!(diffs.iter().all(|&d| d < 1e-5), "{what} off by {diffs:?}");
    }

    pub(super) fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        let scale = b.clone().abs().max().into_scalar::<f32>().max(1.0);
        (a - b).abs().max().into_scalar::<f32>() / scale
    }

    #[test]
    fn layer_norm_and_its_gradients_equal_the_composed_ops() {
        let device = Device::flex().autodiff();
        let _draws = crate::util::random::seeded(&device, 1);
        for (shape, scale) in [([2, 5, 16], 1.0), ([1, 1, 7], 3.0), ([3, 4, 64], 0.1)] {
            let random = || {
                Tensor::<1>::random([shape[2]], Distribution::Normal(0.5, 1.0), &device)
                    .require_grad()
            };
            let (gamma, beta) = (random(), random());
            let x = Tensor::<3>::random(shape, Distribution::Normal(1.0, scale), &device);
            let weights = Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let run = || {
                let x = x.clone().require_grad();
                let y = layer_norm(x.clone(), gamma.clone(), beta.clone(), 1e-12);
                let mut grads = (y.clone() * weights.clone()).sum().backward();
                let dx = x.grad_remove(&mut grads).unwrap();
                let dgamma = gamma.grad_remove(&mut grads).unwrap();
                let dbeta = beta.grad_remove(&mut grads).unwrap();
                (y.inner(), dx, dgamma, dbeta)
            };
            let (fused, composed) = both(run);
            let diffs = [
                max_diff(fused.0, composed.0),
                max_diff(fused.1, composed.1),
                max_diff(fused.2, composed.2),
                max_diff(fused.3, composed.3),
            ];
            assert_close(&diffs, &format!("{shape:?}: y, dx, dγ, dβ"));
        }
    }

    #[test]
    fn softmax_and_its_gradient_equal_the_composed_ops() {
        let device = Device::flex().autodiff();
        let _draws = crate::util::random::seeded(&device, 2);
        for shape in [[2, 3, 5, 7], [1, 1, 1, 9], [2, 2, 16, 16]] {
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 3.0), &device);
            // A row of -1e9 but one entry, as a masked attention row.
            let x = x.slice_assign(
                [0..1, 0..1, 0..1, 1..shape[3]],
                Tensor::full([1, 1, 1, shape[3] - 1], -1.0e9, &device),
            );
            let weights = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let (fused, composed) = both(|| output_and_grad(&x, &weights, softmax));
            assert!(max_diff(fused.0, composed.0) < 1e-6, "{shape:?} output");
            assert!(max_diff(fused.1, composed.1) < 1e-6, "{shape:?} dx");
        }
    }

    #[test]
    fn gelu_and_its_gradient_equal_the_composed_ops() {
        let device = Device::flex().autodiff();
        let _draws = crate::util::random::seeded(&device, 3);
        let exact = Gelu::new();
        for (n, scale) in [(1, 1.0), (1000, 2.0), (70_000, 5.0)] {
            let x = Tensor::<2>::random([n, 1], Distribution::Normal(0.0, scale), &device);
            let weights = Tensor::<2>::random([n, 1], Distribution::Normal(0.0, 1.0), &device);
            let (fused, composed) = both(|| output_and_grad(&x, &weights, |x| gelu(&exact, x)));
            let diffs = [max_diff(fused.0, composed.0), max_diff(fused.1, composed.1)];
            assert_close(&diffs, &format!("{n}: y, dx"));
        }
    }

    #[test]
    fn silu_and_its_gradient_equal_the_composed_ops() {
        let device = Device::flex().autodiff();
        let _draws = crate::util::random::seeded(&device, 6);
        for (n, scale) in [(1, 1.0), (1000, 2.0), (70_000, 8.0)] {
            let x = Tensor::<2>::random([n, 1], Distribution::Normal(0.0, scale), &device);
            let weights = Tensor::<2>::random([n, 1], Distribution::Normal(0.0, 1.0), &device);
            let (fused, composed) = both(|| output_and_grad(&x, &weights, silu));
            let diffs = [max_diff(fused.0, composed.0), max_diff(fused.1, composed.1)];
            assert_close(&diffs, &format!("{n}: y, dx"));
        }
    }

    #[test]
    fn the_gated_product_and_its_gradients_equal_the_composed_ops() {
        let device = Device::flex().autodiff();
        let _draws = crate::util::random::seeded(&device, 9);
        for gelu in [false, true] {
            for (shape, scale) in [([1, 1, 1], 1.0), ([2, 7, 24], 3.0), ([4, 64, 300], 6.0)] {
                let random =
                    |std| Tensor::<3>::random(shape, Distribution::Normal(0.0, std), &device);
                let (gate, up, weights) = (random(scale), random(1.0), random(1.0));
                let run = || {
                    let (gate, up) = (gate.clone().require_grad(), up.clone().require_grad());
                    let y = glu(gate.clone(), up.clone(), gelu);
                    let mut grads = (y.clone() * weights.clone()).sum().backward();
                    let d_gate = gate.grad_remove(&mut grads).unwrap();
                    let d_up = up.grad_remove(&mut grads).unwrap();
                    (y.inner(), d_gate, d_up)
                };
                let (fused, composed) = both(run);
                let diffs = [
                    max_diff(fused.0, composed.0),
                    max_diff(fused.1, composed.1),
                    max_diff(fused.2, composed.2),
                ];
                assert_close(&diffs, &format!("gelu {gelu}, {shape:?}: y, d_gate, d_up"));
            }
        }
    }

    #[test]
    fn the_rotation_and_its_gradient_equal_the_composed_ops() {
        let device = Device::flex().autodiff();
        let _draws = crate::util::random::seeded(&device, 10);
        for [batch, heads, len, size] in [[1, 1, 1, 2], [2, 3, 5, 8], [3, 4, 33, 64]] {
            let normal = Distribution::Normal(0.0, 2.0);
            let x = Tensor::<4>::random([batch, heads, len, size], normal, &device);
            // A table per row and position, as left-padded rows have.
            let angles = Tensor::<4>::random([batch, 1, len, size], normal, &device);
            let (cos, sin) = (angles.clone().cos(), angles.sin());
            let weights = Tensor::<4>::random([batch, heads, len, size], normal, &device);
            // The heads' view of a projection, as attention hands it over: not contiguous.
            let x = x.swap_dims(1, 2).swap_dims(1, 2);
            let (fused, composed) =
                both(|| output_and_grad(&x, &weights, |x| rotate(x, cos.clone(), sin.clone())));
            let diffs = [max_diff(fused.0, composed.0), max_diff(fused.1, composed.1)];
            assert_close(&diffs, &format!("{:?}: y, dx", [batch, heads, len, size]));
        }
    }

    #[test]
    fn rms_norm_and_its_gradients_equal_the_composed_ops() {
        let device = Device::flex().autodiff();
        let _draws = crate::util::random::seeded(&device, 7);
        for shape in [[2, 3, 8], [1, 1, 1], [4, 33, 64]] {
            let x = Tensor::<3>::random(shape, Distribution::Normal(0.5, 2.0), &device);
            let gamma = Tensor::<1>::random([shape[2]], Distribution::Normal(1.0, 0.5), &device);
            let weights = Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let run = || {
                let gamma = gamma.clone().require_grad();
                let x = x.clone().require_grad();
                let y = rms_norm(x.clone(), gamma.clone(), 1e-6);
                let mut grads = (y.clone() * weights.clone()).sum().backward();
                let dx = x.grad_remove(&mut grads).unwrap();
                let dgamma = gamma.grad_remove(&mut grads).unwrap();
                (y.inner(), dx, dgamma)
            };
            let (fused, composed) = both(run);
            let diffs = [
                max_diff(fused.0, composed.0),
                max_diff(fused.1, composed.1),
                max_diff(fused.2, composed.2),
            ];
            assert_close(&diffs, &format!("{shape:?}: y, dx, dγ"));
        }
    }

    #[test]
    fn cross_entropy_and_its_gradient_equal_the_composed_ops() {
        let device = Device::flex().autodiff();
        let _draws = crate::util::random::seeded(&device, 4);
        for (rows, classes) in [(1, 5), (6, 40), (33, 1000)] {
            let logits =
                Tensor::<2>::random([rows, classes], Distribution::Normal(0.0, 4.0), &device);
            let targets: Vec<i64> = (0..rows)
                .map(|r| {
                    if r % 3 == 1 {
                        IGNORE_INDEX
                    } else {
                        (r * 7 % classes) as i64
                    }
                })
                .collect();
            let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [rows]), &device);
            let weights = Tensor::<1>::random([rows], Distribution::Normal(1.0, 1.0), &device);
            let (fused, composed) =
                both(|| output_and_grad(&logits, &weights, |x| nll_rows(x, targets.clone())));
            let diffs = [max_diff(fused.0, composed.0), max_diff(fused.1, composed.1)];
            assert_close(&diffs, &format!("{rows}x{classes}: nll, dx"));
        }
    }

    #[test]
    fn without_autodiff_the_fused_layer_norm_is_burns() {
        let device = Device::flex();
        let _draws = crate::util::random::seeded(&device, 5);
        let x = Tensor::<3>::random([4, 3, 32], Distribution::Normal(0.0, 2.0), &device);
        let gamma = Tensor::<1>::random([32], Distribution::Normal(1.0, 0.5), &device);
        let beta = Tensor::<1>::random([32], Distribution::Normal(0.0, 0.5), &device);
        let (fused, composed) = both(|| layer_norm(x.clone(), gamma.clone(), beta.clone(), 1e-5));
        assert!(max_diff(fused, composed) < 1e-5);
    }
}
