//! Training throughput of one MLM step (forward, backward, AdamW) at the reference configuration
//! of `shared/reference/performance.md`: vocab 8192, hidden 256, 4 layers, 4 heads, ffn 1024,
//! sequences of 128, batches of 16, dropout 0.1, 15 % masking, tied head evaluated at the
//! masked positions only. Criterion reports tokens/s; the achieved GFLOP/s is that rate times
//! the FLOPs per token printed at start.
//!
//! Two variants: the whole batch on the calling thread (burn's kernels spread over the cores
//! as they can), and the batch in one shard per core ([`Shards`]), as `pretrain` runs on a CPU.
//!
//! `cargo bench --bench train_step`

use std::time::Duration;

use burn::optim::GradientsAccumulator;
use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pretext::data::Task;
use pretext::noise::{MlmMasking, example_rng};
use pretext::objectives::{MlmConfig, MlmTask};
use pretext::train::Shards;
use pretext::{Preset, Pretrainer, Tokenizer};

const BATCH: usize = 16;
const SEQ_LEN: usize = 128;

/// Training FLOPs of one step (3 × forward): matmuls of the layers, attention scores and
/// mixing, and the vocab projection at `targets` positions.
fn train_flops(hidden: f64, ffn: f64, layers: f64, vocab: f64, tokens: f64, targets: f64) -> f64 {
    let per_layer = 2.0 * tokens * (4.0 * hidden * hidden + 2.0 * hidden * ffn)
        + 2.0 * 2.0 * tokens * SEQ_LEN as f64 * hidden;
    let head = 2.0 * targets * (hidden * hidden + hidden * vocab);
    3.0 * (layers * per_layer + head)
}

fn mlm_step(c: &mut Criterion) {
    pretext::train::tune_allocator();
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = Device::flex().autodiff();
    device.seed(0);
    let encoder = Preset::Mini.encoder(tokenizer.vocab_size());
    let backbone = encoder.init(&device).unwrap();
    let head = MlmConfig::new().init(&backbone, &device);
    let mut model = Pretrainer::new(backbone, head);
    let mut optim = pretext::train::adamw(0.01);

    // Full-length segments of real text, so every sequence is 128 tokens.
    let mut corpus = pretext::corpus::Corpus::from_dir(
        pretext::corpus::bundled_data_dir().join("shakespeare"),
        pretext::corpus::DocumentBoundary::File,
    )
    .unwrap();
    corpus.documents.truncate(2);
    let docs = pretext::data::tokenize_corpus(&corpus, &tokenizer).unwrap();
    let task = MlmTask::new(&docs, &tokenizer, MlmMasking::default(), SEQ_LEN).unwrap();
    let full: Vec<usize> = (0..task.num_examples()).collect();
    let examples: Vec<_> = full
        .iter()
        .map(|&i| task.example(i, &mut example_rng(0, 0, i as u64)).unwrap())
        .filter(|e| e.input_ids.len() == SEQ_LEN)
        .take(BATCH)
        .collect();
    let batch = task.collate(&examples, &device).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let tokens = (BATCH * SEQ_LEN) as f64;
    let flops = train_flops(256.0, 1024.0, 4.0, 8192.0, tokens, batch.num_targets as f64);
    eprintln!(
        "reference MLM step: {} parameters, {:.1} GFLOP per step ({:.2} MFLOP per token, {} targets)",
        model.num_params(),
        flops / 1e9,
        flops / tokens / 1e6,
        batch.num_targets
    );

    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(5));
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(tokens as u64));
    for n in [1, cores] {
        let shards = Shards::new(n).unwrap();
        let parts: Vec<_> = examples
            .chunks(BATCH.div_ceil(n))
            .map(|part| task.collate(part, &device).unwrap())
            .collect();
        let seeds: Vec<u64> = (0..n as u64).collect();
        group.bench_function(format!("mlm_reference_tokens_{n}_shards"), |b| {
            b.iter(|| {
                let mut grads = GradientsAccumulator::new();
                for shard in shards.run(&model, parts.clone(), &seeds, &device) {
                    grads.accumulate(&model, shard.grads);
                }
                model = optim.step(1e-4, model.clone(), grads.grads());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, mlm_step);
criterion_main!(benches);
