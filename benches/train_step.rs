//! Training throughput of one step (forward, backward, AdamW) at the reference configuration
//! of `shared/reference/performance.md`: vocab 8192, hidden 256, 4 layers, 4 heads, ffn 1024,
//! sequences of 128, batches of 16, dropout 0.1, on real bundled text.
//!
//! - `mlm_*`: 15 % masking, tied head evaluated at the masked positions only. Criterion's
//!   rate is tokens/s; the achieved GFLOP/s is that rate times the FLOPs per token printed at
//!   start.
//! - `electra_*`: the same encoder as discriminator, with ELECTRA's masking and a generator
//!   a quarter as wide sharing its embeddings; tokens counted as for MLM, so the two compare
//!   directly.
//! - `bart_*`: an encoder-decoder of 4 + 4 such layers on BART's noise (infilling 30 % +
//!   sentence permutation), the decoder predicting every target token. Its tokens are the
//!   source's and the decoder's together.
//! - `xlnet_*`: the MLM encoder run as two streams (XLNet's query stream for a sixth of the
//!   tokens, in spans), the tied head on the query stream; tokens counted as for MLM.
//!
//! Each in two variants: the whole batch on the calling thread (burn's kernels spread over
//! the cores as they can), and the batch in one shard per core ([`Shards`]), as `pretrain`
//! runs on a CPU.
//!
//! `cargo bench --bench train_step`

use std::time::Duration;

use burn::optim::GradientsAccumulator;
use burn::prelude::*;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use pretext::blocks::EncoderDecoderConfig;
use pretext::data::{Batch, Task, TokenizedDocument};
use pretext::noise::bart::BartNoise;
use pretext::noise::{MlmMasking, PermutationMasking, example_rng};
use pretext::objectives::{
    BartTask, ElectraConfig, ElectraTask, MlmConfig, MlmTask, Objective, PermutationTask,
    PermutedLmConfig, Seq2SeqConfig,
};
use pretext::train::Shards;
use pretext::{Preset, Pretrainer, Tokenizer};

const BATCH: usize = 16;
const SEQ_LEN: usize = 128;

/// Training FLOPs of one MLM step (3 × forward): matmuls of the layers, attention scores and
/// mixing, and the vocab projection at `targets` positions.
fn train_flops(hidden: f64, ffn: f64, layers: f64, vocab: f64, tokens: f64, targets: f64) -> f64 {
    let per_layer = 2.0 * tokens * (4.0 * hidden * hidden + 2.0 * hidden * ffn)
        + 2.0 * 2.0 * tokens * SEQ_LEN as f64 * hidden;
    let head = 2.0 * targets * (hidden * hidden + hidden * vocab);
    3.0 * (layers * per_layer + head)
}

/// Two long documents of real text, tokenized.
fn real_documents(tokenizer: &Tokenizer) -> Vec<TokenizedDocument> {
    let mut corpus = pretext::corpus::Corpus::from_dir(
        pretext::corpus::bundled_data_dir().join("shakespeare"),
        pretext::corpus::DocumentBoundary::File,
    )
    .unwrap();
    corpus.documents.truncate(2);
    pretext::data::tokenize_corpus(&corpus, tokenizer).unwrap()
}

/// The first `BATCH` examples of `task` that `full` accepts.
fn examples<T: Task>(task: &T, full: impl Fn(&T::Example) -> bool) -> Vec<T::Example> {
    (0..task.num_examples())
        .map(|i| task.example(i, &mut example_rng(0, 0, i as u64)).unwrap())
        .filter(|e| full(e))
        .take(BATCH)
        .collect()
}

/// Benchmarks a training step of `model` on `examples`, unsharded and in one shard per core.
fn bench_steps<M, O, T>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut model: Pretrainer<M, O>,
    task: &T,
    examples: &[T::Example],
    device: &Device,
) where
    M: Module,
    O: Objective<M, Batch = T::Batch>,
    Pretrainer<M, O>: Module,
    T: Task,
    T::Example: Clone,
{
    let mut optim = pretext::train::adamw(0.01);
    let tokens = task.collate(examples, device).unwrap().num_tokens();
    group.throughput(Throughput::Elements(tokens as u64));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for n in [1, cores] {
        let shards = Shards::new(n).unwrap();
        let parts: Vec<_> = examples
            .chunks(BATCH.div_ceil(n))
            .map(|part| task.collate(part, device).unwrap())
            .collect();
        let seeds: Vec<u64> = (0..n as u64).collect();
        group.bench_function(format!("{name}_tokens_{n}_shards"), |b| {
            b.iter(|| {
                let mut grads = GradientsAccumulator::new();
                for shard in shards.run(&model, parts.clone(), &seeds, device) {
                    grads.accumulate(&model, shard.grads);
                }
                model = optim.step(1e-4, model.clone(), grads.grads());
            })
        });
    }
}

fn train_steps(c: &mut Criterion) {
    pretext::train::tune_allocator();
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = Device::flex().autodiff();
    let docs = real_documents(&tokenizer);
    let encoder = Preset::Mini.encoder(tokenizer.vocab_size());

    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(5));
    group.measurement_time(Duration::from_secs(30));

    // Full-length segments, so every sequence is 128 tokens.
    device.seed(0);
    let backbone = encoder.init(&device).unwrap();
    let head = MlmConfig::new().init(&backbone, &device);
    let mlm = Pretrainer::new(backbone, head);
    let task = MlmTask::new(&docs, &tokenizer, MlmMasking::default(), SEQ_LEN).unwrap();
    let batch = examples(&task, |e| e.input_ids.len() == SEQ_LEN);
    let targets = task.collate(&batch, &device).unwrap().num_targets;
    let tokens = (BATCH * SEQ_LEN) as f64;
    let flops = train_flops(256.0, 1024.0, 4.0, 8192.0, tokens, targets as f64);
    eprintln!(
        "reference MLM step: {} parameters, {:.1} GFLOP per step ({:.2} MFLOP per token, {targets} targets)",
        mlm.num_params(),
        flops / 1e9,
        flops / tokens / 1e6,
    );
    bench_steps(&mut group, "mlm_reference", mlm, &task, &batch, &device);

    device.seed(0);
    let backbone = encoder.init(&device).unwrap();
    let head = ElectraConfig::new().init(&backbone, 4, &device).unwrap();
    let electra = Pretrainer::new(backbone, head);
    let task = ElectraTask::new(&docs, &tokenizer, MlmMasking::electra(), SEQ_LEN).unwrap();
    let batch = examples(&task, |e| e.tokens.input_ids.len() == SEQ_LEN);
    eprintln!(
        "reference ELECTRA step: {} parameters",
        electra.num_params()
    );
    bench_steps(
        &mut group,
        "electra_reference",
        electra,
        &task,
        &batch,
        &device,
    );

    device.seed(0);
    let backbone = encoder.init(&device).unwrap();
    let head = PermutedLmConfig::new().init(&backbone, &device);
    let xlnet = Pretrainer::new(backbone, head);
    let task =
        PermutationTask::xlnet(&docs, &tokenizer, PermutationMasking::XLNET, SEQ_LEN).unwrap();
    let batch = examples(&task, |e| e.ids.len() == SEQ_LEN);
    bench_steps(&mut group, "xlnet_reference", xlnet, &task, &batch, &device);

    device.seed(0);
    let config = EncoderDecoderConfig::new(encoder.clone().with_num_segments(0), 4);
    let backbone = config.init(&device).unwrap();
    let head = Seq2SeqConfig::new().init(&backbone, &device);
    let bart = Pretrainer::new(backbone, head);
    let task = BartTask::new(&docs, &tokenizer, BartNoise::BART, SEQ_LEN).unwrap();
    let batch = examples(&task, |e| e.targets.len() == SEQ_LEN);
    eprintln!("reference BART step: {} parameters", bart.num_params());
    bench_steps(&mut group, "bart_reference", bart, &task, &batch, &device);
    group.finish();
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
