//! Training throughput of one step (forward, backward, AdamW) at the reference configuration
//! of `shared/reference/performance.md`: vocab 8192, hidden 256, 4 layers, 4 heads, ffn 1024,
//! sequences of 128, batches of 16, dropout 0.1, on real bundled text.
//!
//! - `matmul_*`: a square matmul on the plain `flex` device, in f32 the rate the steps'
//!   achieved GFLOP/s compare against, and in bf16 and f16 (criterion's Gelem/s there are
//!   GFLOP/s).
//! - `mlm_*`: 15 % masking, tied head evaluated at the masked positions only.
//!   `mlm_modern` is the same step with a Llama-style block at about the reference's
//!   parameter count: pre-RMSNorm, SwiGLU 684 wide (three maps of 256 × 684 hold what two of
//!   256 × 1024 with biases do), rotary positions, no biases, no embedding norm.
//! - `electra_*`: the same encoder as discriminator, with ELECTRA's masking and a generator
//!   a quarter as wide sharing its embeddings; tokens counted as for MLM, so the two compare
//!   directly.
//! - `bart_*`: an encoder-decoder of 4 + 4 such layers on BART's noise (infilling 30 % +
//!   sentence permutation), the decoder predicting every target token. Its tokens are the
//!   source's and the decoder's together.
//! - `xlnet_*`: the MLM encoder run as two streams (XLNet's query stream for a sixth of the
//!   tokens, in spans), the tied head on the query stream; tokens counted as for MLM.
//! - `mae_*`: MAE's step at the `vision` example's shape, counted in images: a ViT 128 wide
//!   with 4 layers of 4 heads on 256 Fashion-MNIST pictures of 49 patches, 12 of them
//!   visible, and MAE's decoder, 64 wide, one layer (`scripts/torch_mae.py` is PyTorch's).
//!
//! Each step in two variants: the whole batch on the calling thread (burn's kernels spread
//! over the cores as they can), and the batch in one shard per core ([`Shards`]), as
//! `pretrain` runs on a CPU. Criterion's rate is tokens/s (images/s for MAE); after each
//! variant a line gives its median step, that rate, achieved GFLOP/s (the matmul FLOPs of the step, counted from
//! the shapes, over the median time) and the process's peak resident memory so far (run one
//! objective alone, e.g. with the filter `mlm`, to read its peak).
//!
//! `cargo bench --bench train_step`

use std::time::{Duration, Instant};

use burn::module::ModuleDisplay;
use burn::optim::GradientsAccumulator;
use burn::prelude::*;
use burn::tensor::{Distribution, FloatDType};
use criterion::measurement::WallTime;
use criterion::{Bencher, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use pretext::blocks::VisionTransformerConfig;
use pretext::blocks::{Activation, BlockConfig, EncoderDecoderConfig, NormKind, PositionEncoding};
use pretext::data::images::ImageViews;
use pretext::data::{Batch, Task};
use pretext::dataset::Documents;
use pretext::dataset::images::bundled_fashion_mnist;
use pretext::noise::augment::Augmentation;
use pretext::noise::bart::BartNoise;
use pretext::noise::{MlmMasking, PermutationMasking};
use pretext::objectives::{
    BartTask, ElectraConfig, ElectraTask, MaeConfig, MaeTask, MlmConfig, MlmTask, Objective,
    PermutationTask, PermutedLmConfig, Seq2SeqConfig, Weights,
};
use pretext::train::{Part, Shards};
use pretext::util::rng::example_rng;
use pretext::{Preset, Pretrainer, Tokenizer};

const BATCH: usize = 16;
/// Images in MAE's step (the `vision` example's batch).
const IMAGE_BATCH: usize = 256;
const SEQ_LEN: usize = 128;

/// Forward FLOPs of the matmuls of one Transformer layer of width `h` and feed-forward `ffn`
/// on `queries` tokens that attend to `keys` keys each (projections, feed-forward, attention
/// scores and mixing). Training costs 3 × forward.
fn layer_flops(queries: f64, keys: f64, h: f64, ffn: f64) -> f64 {
    2.0 * queries * (4.0 * h * h + 2.0 * h * ffn) + 4.0 * queries * keys * h
}

/// Forward FLOPs of the tied LM head at `targets` positions: the transform from `hidden` to
/// `embedding`, then the projection onto the vocabulary.
fn head_flops(targets: f64, hidden: f64, embedding: f64, vocab: f64) -> f64 {
    2.0 * targets * (hidden * embedding + embedding * vocab)
}

/// Two long documents of real text, tokenized.
fn real_documents(tokenizer: &Tokenizer) -> Documents {
    let mut corpus = pretext::corpus::Corpus::from_dir(
        pretext::corpus::bundled_data_dir().join("shakespeare"),
        pretext::corpus::DocumentBoundary::File,
    )
    .unwrap();
    corpus.documents.truncate(2);
    Documents::tokenize(&corpus, tokenizer).unwrap()
}

/// The first `BATCH` examples of `task` that `full` accepts.
fn examples<T: Task>(task: &T, full: impl Fn(&T::Example) -> bool) -> Vec<T::Example> {
    first_examples(task, BATCH, full)
}

/// The first `count` examples of `task` that `full` accepts.
fn first_examples<T: Task>(
    task: &T,
    count: usize,
    full: impl Fn(&T::Example) -> bool,
) -> Vec<T::Example> {
    (0..task.num_examples())
        .map(|i| task.example(i, &mut example_rng(0, 0, i as u64)).unwrap())
        .filter(|e| full(e))
        .take(count)
        .collect()
}

/// Benchmarks a training step of `model` on `examples`, unsharded and in one shard per core,
/// its rate counted in the batch's tokens, or in `examples` where `unit` is "images".
fn bench_steps<M, O, T>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut model: Pretrainer<M, O>,
    (task, examples, unit): (&T, &[T::Example], &str),
    flops: f64,
    device: &Device,
) where
    M: Module + ModuleDisplay,
    O: Objective<M, Batch = T::Batch>,
    T: Task,
    T::Example: Clone,
{
    let mut optim = pretext::train::adamw(0.01, None);
    let count = match unit {
        "tokens" => task.collate(examples, device).unwrap().num_tokens(),
        _ => examples.len(),
    };
    group.throughput(Throughput::Elements(count as u64));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for n in [1, cores] {
        let shards = Shards::new(n).unwrap();
        let size = examples.len().div_ceil(n);
        let parts: Vec<_> = examples
            .chunks(size)
            .enumerate()
            .map(|(k, part)| Part {
                batch: task.collate(part, device).unwrap(),
                first_example: k * size,
            })
            .collect();
        let mut totals = Weights::default();
        for part in &parts {
            totals.add(&part.batch.weights());
        }
        let id = format!("{name}_{unit}_{n}_shards");
        let mut steps = Vec::new();
        group.bench_function(&id, |b| {
            timed(b, &mut steps, || {
                let mut grads = GradientsAccumulator::new();
                for shard in shards.run(&model, parts.clone(), 1, &totals, device) {
                    grads.accumulate(&model, shard.grads);
                }
                model = optim.step(1e-4, model.clone(), grads.grads());
            })
        });
        report(&id, &mut steps, (count, unit), flops);
    }
}

/// Runs `step` as often as criterion asks, recording each run's seconds in `steps`.
fn timed(bencher: &mut Bencher<'_, WallTime>, steps: &mut Vec<f64>, mut step: impl FnMut()) {
    bencher.iter_custom(|iters| {
        let start = Instant::now();
        for _ in 0..iters {
            let one = Instant::now();
            step();
            steps.push(one.elapsed().as_secs_f64());
        }
        start.elapsed()
    })
}

/// Prints the median step of `steps` (the second half, past warm-up) as s/step, `count`
/// `unit`s per second (unless `count` is 0) and achieved GFLOP/s, with the process's peak
/// resident memory so far.
fn report(id: &str, steps: &mut Vec<f64>, (count, unit): (usize, &str), flops: f64) {
    if steps.is_empty() {
        return; // filtered out
    }
    let mut measured = steps.split_off(steps.len() / 2);
    measured.sort_by(f64::total_cmp);
    let median = measured[measured.len() / 2];
    eprintln!(
        "{id}: median {median:.3} s/step over {} steps,{} {:.1} GFLOP/s achieved \
         ({:.1} GFLOP/step); peak resident memory so far {}",
        measured.len(),
        match count {
            0 => String::new(),
            n => format!(" {:.0} {unit}/s,", n as f64 / median),
        },
        flops / median / 1e9,
        flops / 1e9,
        peak_memory(),
    );
}

/// The process's peak resident set (`VmHWM`), where `/proc` tells it.
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} MB", kb / 1024.0))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The matmul rate burn reaches here on a square product, forward only: the ceiling the
/// training steps' GFLOP/s compare against in f32, and the rates of the half-precision types
/// that mixed precision would run its matmuls in.
fn matmul_ceiling(group: &mut BenchmarkGroup<'_, WallTime>) {
    let device = Device::flex();
    for (n, dtype) in [
        (2048, FloatDType::F32),
        (1024, FloatDType::F32),
        (1024, FloatDType::BF16),
        (1024, FloatDType::F16),
    ] {
        let a = Tensor::<2>::random([n, n], Distribution::Default, &device).cast(dtype);
        let b = Tensor::<2>::random([n, n], Distribution::Default, &device).cast(dtype);
        let flops = 2.0 * (n as f64).powi(3);
        group.throughput(Throughput::Elements(flops as u64));
        let id = format!("matmul_{n}_{dtype:?}_flop").to_lowercase();
        let mut steps = Vec::new();
        group.bench_function(&id, |bench| {
            timed(bench, &mut steps, || {
                std::hint::black_box(a.clone().matmul(b.clone()).into_data());
            })
        });
        report(&id, &mut steps, (0, ""), flops);
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

    matmul_ceiling(&mut group);

    // The reference encoder's shape, for the FLOP counts.
    let (h, ffn) = (encoder.hidden_size as f64, encoder.block.ffn_size as f64);
    let layers = encoder.num_layers as f64;
    let vocab = tokenizer.vocab_size() as f64;
    let seq = SEQ_LEN as f64;
    let tokens = (BATCH * SEQ_LEN) as f64;

    // Full-length segments, so every sequence is 128 tokens.
    device.seed(0);
    let backbone = encoder.init(&device).unwrap();
    let head = MlmConfig::new().init(&backbone, &device);
    let mlm = Pretrainer::new(backbone, head);
    let task = MlmTask::new(&docs, &tokenizer, MlmMasking::default(), SEQ_LEN).unwrap();
    let batch = examples(&task, |e| e.input_ids.len() == SEQ_LEN);
    let targets = task.collate(&batch, &device).unwrap().num_targets as f64;
    let encoder_flops = layers * layer_flops(tokens, seq, h, ffn);
    let flops = 3.0 * (encoder_flops + head_flops(targets, h, h, vocab));
    eprintln!(
        "reference MLM step: {} parameters, {:.1} GFLOP per step ({targets} targets)",
        mlm.num_params(),
        flops / 1e9,
    );
    bench_steps(
        &mut group,
        "mlm_reference",
        mlm,
        (&task, &batch, "tokens"),
        flops,
        &device,
    );

    // The modern block at about the same parameter count, the same step otherwise.
    let modern_block = BlockConfig::new(encoder.block.num_heads, 684)
        .with_norm(NormKind::RmsNorm)
        .with_norm_eps(1e-6)
        .with_norm_first(true)
        .with_activation(Activation::Silu)
        .with_glu(true)
        .with_qkv_bias(false)
        .with_output_bias(false)
        .with_ffn_bias(false)
        .with_positions(PositionEncoding::Rotary { theta: 10_000.0 });
    let modern = encoder
        .clone()
        .map_block(|_| modern_block)
        .with_embedding_norm(false);
    device.seed(0);
    let backbone = modern.init(&device).unwrap();
    let head = MlmConfig::new().init(&backbone, &device);
    let model = Pretrainer::new(backbone, head);
    // Attention's four projections, the gated network's three maps, scores and mixing.
    let glu = 2.0 * tokens * (4.0 * h * h + 3.0 * h * 684.0) + 4.0 * tokens * seq * h;
    let modern_flops = 3.0 * (layers * glu + head_flops(targets, h, h, vocab));
    eprintln!(
        "modern MLM step: {} parameters, {:.1} GFLOP per step",
        model.num_params(),
        modern_flops / 1e9,
    );
    bench_steps(
        &mut group,
        "mlm_modern",
        model,
        (&task, &batch, "tokens"),
        modern_flops,
        &device,
    );

    device.seed(0);
    let backbone = encoder.init(&device).unwrap();
    let config = ElectraConfig::new();
    let generator = config.generator_encoder(&backbone);
    let head = config.init(&backbone, &device).unwrap();
    let electra = Pretrainer::new(backbone, head);
    let task = ElectraTask::new(&docs, &tokenizer, MlmMasking::electra(), SEQ_LEN).unwrap();
    let batch = examples(&task, |e| e.tokens.input_ids.len() == SEQ_LEN);
    let targets = task.collate(&batch, &device).unwrap().tokens.num_targets as f64;
    // Discriminator: the encoder and its dense + one-logit head on every token. Generator:
    // the embedding projected to its width, its layers, and its tied head at the targets.
    let g = generator.hidden_size as f64;
    let flops = 3.0
        * (encoder_flops
            + 2.0 * tokens * (h * h + h)
            + 2.0 * tokens * h * g
            + generator.num_layers as f64
                * layer_flops(tokens, seq, g, generator.block.ffn_size as f64)
            + head_flops(targets, g, h, vocab));
    eprintln!(
        "reference ELECTRA step: {} parameters, {:.1} GFLOP per step",
        electra.num_params(),
        flops / 1e9,
    );
    bench_steps(
        &mut group,
        "electra_reference",
        electra,
        (&task, &batch, "tokens"),
        flops,
        &device,
    );

    device.seed(0);
    let backbone = encoder.init(&device).unwrap();
    let head = PermutedLmConfig::new().init(&backbone, &device);
    let xlnet = Pretrainer::new(backbone, head);
    let task =
        PermutationTask::xlnet(&docs, &tokenizer, PermutationMasking::XLNET, SEQ_LEN).unwrap();
    let batch = examples(&task, |e| e.ids.len() == SEQ_LEN);
    let collated = task.collate(&batch, &device).unwrap();
    let queries = collated.query_ids.dims().iter().product::<usize>() as f64;
    let targets = collated.target_ids.dims()[0] as f64;
    // The content stream as MLM's encoder; the query stream's own query and output projections,
    // feed-forward and attention over the content keys; the head at the targets.
    let query_stream = 2.0 * queries * (2.0 * h * h + 2.0 * h * ffn) + 4.0 * queries * seq * h;
    let flops = 3.0 * (encoder_flops + layers * query_stream + head_flops(targets, h, h, vocab));
    eprintln!("reference XLNet step: {:.1} GFLOP per step", flops / 1e9);
    bench_steps(
        &mut group,
        "xlnet_reference",
        xlnet,
        (&task, &batch, "tokens"),
        flops,
        &device,
    );

    device.seed(0);
    let config =
        EncoderDecoderConfig::new(encoder.clone().with_num_segments(0), encoder.num_layers);
    let backbone = config.init(&device).unwrap();
    let head = Seq2SeqConfig::new().init(&backbone, &device);
    let bart = Pretrainer::new(backbone, head);
    let task = BartTask::new(&docs, &tokenizer, BartNoise::BART, SEQ_LEN).unwrap();
    let batch = examples(&task, |e| e.targets.len() == SEQ_LEN);
    let collated = task.collate(&batch, &device).unwrap();
    let [_, source_len] = collated.source_ids.dims();
    let [_, decoder_len] = collated.decoder_ids.dims();
    let source = (BATCH * source_len) as f64;
    let decoder = (BATCH * decoder_len) as f64;
    // Encoder layers on the source; decoder layers with self-attention, and cross-attention
    // whose keys and values are projected from the source; the head at every target.
    let cross = 2.0 * decoder * 2.0 * h * h
        + 2.0 * source * 2.0 * h * h
        + 4.0 * decoder * source_len as f64 * h;
    let flops = 3.0
        * (layers * layer_flops(source, source_len as f64, h, ffn)
            + layers * (layer_flops(decoder, decoder_len as f64, h, ffn) + cross)
            + head_flops(collated.num_targets as f64, h, h, vocab));
    eprintln!(
        "reference BART step: {} parameters, {:.1} GFLOP per step",
        bart.num_params(),
        flops / 1e9
    );
    bench_steps(
        &mut group,
        "bart_reference",
        bart,
        (&task, &batch, "tokens"),
        flops,
        &device,
    );
    mae_step(&mut group);
    group.finish();
}

/// MAE's step at the `vision` example's shape (see the header).
fn mae_step(group: &mut BenchmarkGroup<'_, WallTime>) {
    let device = Device::flex().autodiff();
    let (width, layers) = (128, 4);
    let vit_config = VisionTransformerConfig::new(width, layers, BlockConfig::new(4, 4 * width));
    let config = MaeConfig::new();
    device.seed(0);
    let vit = vit_config.init(&device).unwrap();
    let head = config.init(&vit, &device).unwrap();
    let (patches, pixels) = (vit.num_patches(), vit.patch_values());
    let mae = Pretrainer::new(vit, head);
    let (train, _) = bundled_fashion_mnist().unwrap();
    let views = ImageViews::fashion_mnist(train, Augmentation::mae()).unwrap();
    let task = MaeTask::new(views, patches, &config).unwrap();
    let batch = first_examples(&task, IMAGE_BATCH, |_| true);
    // The encoder on the visible patches and `[CLS]`; the decoder on every patch and `[CLS]`,
    // its input and output maps; the patch map on the visible patches.
    let n = IMAGE_BATCH as f64;
    let (seen, all) = (
        (config.visible(patches).unwrap() + 1) as f64,
        (patches + 1) as f64,
    );
    let (h, d, p) = (width as f64, config.decoder_width as f64, pixels as f64);
    let forward = layers as f64 * layer_flops(n * seen, seen, h, 4.0 * h)
        + config.decoder_layers as f64 * layer_flops(n * all, all, d, 4.0 * d)
        + 2.0 * n * (seen * h * d + all * d * p + (seen - 1.0) * p * h);
    let flops = 3.0 * forward;
    eprintln!(
        "MAE step: {} parameters, {IMAGE_BATCH} images, {:.1} GFLOP per step",
        mae.num_params(),
        flops / 1e9
    );
    bench_steps(
        group,
        "mae_vision",
        mae,
        (&task, &batch, "images"),
        flops,
        &device,
    );
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
