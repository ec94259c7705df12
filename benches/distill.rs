//! Inference time of a distilled student against its teacher: encoder forward passes (no
//! gradients) of all-MiniLM-L6-v2's shape (BERT's block, width 384, 12 heads, feed-forward
//! 1,536, vocabulary 30,522) at its 6 layers and at the 3 a `distill` student keeps, over one
//! batch of 16 passages of 128 tokens. Weights are random: the time depends on the shape
//! alone.
//!
//! After the two, a line gives each median pass, per passage, and the student's share of the
//! teacher's time, with the CPU they ran on.
//!
//! `cargo bench --bench distill`

use std::time::Duration;

use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pretext::blocks::{AttentionMask, BlockConfig, EncoderBackbone, TransformerEncoderConfig};

#[path = "support/calls.rs"]
mod calls;

const PASSAGES: usize = 16;
const TOKENS: usize = 128;

fn inference(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(0);
    let ids = Tensor::<2, Int>::random(
        [PASSAGES, TOKENS],
        burn::tensor::Distribution::Uniform(1000.0, 30_000.0),
        &device,
    );
    let padding = ids.clone().equal_elem(0);
    let mask = AttentionMask::padding(padding);
    let mut group = c.benchmark_group("distill");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(3));
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(PASSAGES as u64));
    let mut medians = Vec::new();
    for (name, layers) in [("teacher-6-layers", 6), ("student-3-layers", 3)] {
        let encoder =
            TransformerEncoderConfig::new(30_522, 384, layers, BlockConfig::new(12, 1536))
                .with_dropout(0.0)
                .init(&device)
                .unwrap();
        let mut calls = Vec::new();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                calls::timed(iters, &mut calls, || {
                    let hidden = encoder.encode(ids.clone(), None, Some(&mask));
                    // Read the result back, so the pass is timed whole.
                    let _ = hidden.sum().into_scalar::<f32>();
                })
            })
        });
        let Some(median) = calls::median(calls) else {
            continue; // filtered out
        };
        eprintln!(
            "{name}: median {:.1} ms a pass, {:.2} ms a passage",
            1e3 * median,
            1e3 * median / PASSAGES as f64
        );
        medians.push(median);
    }
    if let [teacher, student] = medians[..] {
        eprintln!(
            "the student takes {:.1} % of the teacher's time ({})",
            100.0 * student / teacher,
            pretext::device::host_cpu()
        );
    }
    group.finish();
}

criterion_group!(benches, inference);
criterion_main!(benches);
