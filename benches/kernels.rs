//! Each fused CPU kernel (`pretext::kernels`) against burn's composed ops, forward and
//! backward under autodiff, at the shapes of the reference MLM step (16 sequences of 128
//! tokens, hidden 256, 4 heads, ffn 1024, 303 predicted rows over a vocabulary of 8192; GeGLU
//! at ⅔ of that ffn).
//! Criterion's rate is elements of the op's input per second.
//!
//! `cargo bench --bench kernels`

use std::time::Duration;

use burn::nn::Gelu;
use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pretext::kernels;

/// Benchmarks `op` (forward, then backward from the sum) on a fresh leaf of `shape`, fused
/// and composed.
fn bench_op<const D: usize>(
    c: &mut Criterion,
    name: &str,
    shape: [usize; D],
    op: impl Fn(Tensor<D>) -> Tensor<D>,
) {
    let device = Device::flex().autodiff();
    let x = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let mut group = c.benchmark_group("kernels");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(shape.iter().product::<usize>() as u64));
    for fused in [true, false] {
        let id = format!("{name}_{}", if fused { "fused" } else { "composed" });
        group.bench_function(&id, |b| {
            kernels::set_fused(fused);
            b.iter(|| {
                let leaf = x.clone().detach().require_grad();
                let grads = op(leaf.clone()).sum().backward();
                leaf.grad(&grads).expect("a gradient")
            })
        });
    }
    kernels::set_fused(true);
    group.finish();
}

fn fused_kernels(c: &mut Criterion) {
    pretext::train::tune_allocator();
    let device = Device::flex().autodiff();
    let gamma = Tensor::<1>::random([256], Distribution::Normal(1.0, 0.1), &device);
    let beta = Tensor::<1>::random([256], Distribution::Normal(0.0, 0.1), &device);
    bench_op(c, "layer_norm_2048x256", [2048, 256], |x| {
        kernels::layer_norm(x, gamma.clone(), beta.clone(), 1e-12)
    });
    bench_op(
        c,
        "softmax_16x4x128x128",
        [16, 4, 128, 128],
        kernels::softmax,
    );
    let gelu = Gelu::new();
    bench_op(c, "gelu_2048x1024", [2048, 1024], |x| {
        kernels::gelu(&gelu, x)
    });
    // GeGLU at ⅔ of the ffn's width, as `modernbert` has it (its up half a fixed input).
    let up = Tensor::<2>::random([2048, 683], Distribution::Normal(0.0, 1.0), &device);
    bench_op(c, "geglu_2048x683", [2048, 683], |gate| {
        kernels::glu(gate, up.clone(), true)
    });
    let targets: Vec<i64> = (0..303).map(|i| (i * 2711) % 8192).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [303]), &device);
    bench_op(c, "cross_entropy_303x8192", [303, 8192], |x| {
        kernels::nll_rows(x, targets.clone()).unsqueeze_dim(1)
    });
}

criterion_group!(benches, fused_kernels);
criterion_main!(benches);
