//! A one-shot check of a device, for a machine lent for minutes: the reference encoder's hidden
//! states and MLM loss on it against burn's composed ops on the CPU (within `--tolerance`), the
//! reference MLM training step's speed on it in the float type `--float`, and, given
//! `--devices 2` or more, a short data-parallel run over that many devices. It exits non-zero
//! when parity fails. A device's float type is set once per process, so bf16 is a second run
//! (`--float bf16`, which times the step only).
//!
//! On `--device flex` it is the CPU half of the check (run in CI): the same comparison then
//! holds the fused CPU kernels against the composed ops, and times the step on the CPU.
//!
//! ```text
//! cargo run --release --example gpu_check -- --device flex --steps 3
//! cargo build --release --features cuda --example gpu_check   # then, on the GPU machine:
//! bash scripts/gpu_check.sh target/release/examples/gpu_check
//! ```

use std::time::Instant;

use clap::Parser;
use pretext::blocks::{AttentionMask, EncoderBackbone, TransformerEncoderConfig};
use pretext::burn::prelude::*;
use pretext::corpus::{Corpus, DocumentBoundary, bundled_data_dir};
use pretext::data::{Batch, Task};
use pretext::dataset::Documents;
use pretext::device::{DeviceKind, FloatType, host_cpu};
use pretext::noise::MlmMasking;
use pretext::objectives::{MlmConfig, MlmTask};
use pretext::train::{Part, Shards, TrainConfig, Trainer, adamw, step_gradients};
use pretext::util::rng::example_rng;
use pretext::{Preset, Pretrainer, Tokenizer, kernels};

/// The reference step's shape (`shared/reference/performance.md`): 16 sequences of 128 tokens.
const BATCH: usize = 16;
const SEQ_LEN: usize = 128;

#[derive(Parser)]
struct Args {
    /// The device to check: flex, cuda, wgpu, rocm or metal.
    #[arg(long, default_value = "flex")]
    device: String,
    /// The float type of the timed steps: f32 (with the parity check) or bf16.
    #[arg(long, default_value = "f32")]
    float: String,
    /// Timed training steps (after 2 untimed ones).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Devices for the data-parallel run (cuda, rocm); below 2, it is skipped.
    #[arg(long, default_value_t = 1)]
    devices: usize,
    /// Largest difference allowed between the device and the CPU, relative to the largest
    /// magnitude of the CPU's hidden states (and absolute for the loss).
    #[arg(long, default_value_t = 1e-3)]
    tolerance: f32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let kind: DeviceKind = args.device.parse()?;
    let float: FloatType = args.float.parse()?;
    println!("host: {}; device: {} in {float:?}", host_cpu(), args.device);
    // Before any tensor: a device's float type cannot change once it has been used.
    let devices = kind.autodiff_devices(args.devices.max(1), float)?;

    let tokenizer = Tokenizer::bundled()?;
    let mut corpus = Corpus::from_dir(
        bundled_data_dir().join("shakespeare"),
        DocumentBoundary::File,
    )?;
    corpus.documents.truncate(2);
    let docs = Documents::tokenize(&corpus, &tokenizer)?;
    let task = MlmTask::new(&docs, &tokenizer, MlmMasking::default(), SEQ_LEN)?;
    let examples = (0..BATCH)
        .map(|i| task.example(i, &mut example_rng(0, 0, i as u64)))
        .collect::<pretext::Result<Vec<_>>>()?;
    let encoder = Preset::Mini.encoder(tokenizer.vocab_size());

    if float == FloatType::F32 {
        parity(&encoder, &task, &examples, kind, args.tolerance)?;
    }

    let (tokens_per_s, loss) =
        time_steps(encoder.clone(), &task, &examples, args.steps, &devices[0])?;
    println!(
        "reference MLM step, {float:?}, unsharded: {tokens_per_s:.0} tokens/s (median of {} \
         steps), last loss {loss:.3}",
        args.steps
    );

    if devices.len() >= 2 {
        devices[0].seed(0);
        let backbone = encoder.init(&devices[0])?;
        let model = Pretrainer::new(
            backbone.clone(),
            MlmConfig::new().init(&backbone, &devices[0]),
        );
        let steps = args.steps.max(2);
        let config = TrainConfig::new(steps, BATCH * devices.len())
            .with_log_every(steps)
            .with_valid_every(steps)
            .with_valid_batches(1)
            .with_progress(false);
        let report = Trainer::new(model, &config)
            .devices(&devices)
            .fit(&task, &task)?;
        let last = report.history.iter().rev().find(|r| r.tokens_per_s > 0.0);
        if let Some(record) = last {
            println!(
                "data parallel over {} devices, {steps} steps of {} sequences: {:.0} tokens/s, \
                 train loss {:.3}",
                devices.len(),
                BATCH * devices.len(),
                record.tokens_per_s,
                record.loss
            );
        }
    }
    Ok(())
}

/// The hidden states and MLM loss of the reference encoder on `kind`'s first device against
/// the CPU's composed ops, dropout off; an error beyond `tolerance`.
fn parity(
    encoder: &TransformerEncoderConfig,
    task: &MlmTask,
    examples: &[<MlmTask as Task>::Example],
    kind: DeviceKind,
    tolerance: f32,
) -> Result<(), Box<dyn std::error::Error>> {
    let cpu = Device::flex();
    cpu.seed(0);
    let backbone = encoder.init(&cpu)?.without_dropout();
    let model = Pretrainer::new(backbone.clone(), MlmConfig::new().init(&backbone, &cpu));
    kernels::set_fused(false);
    let (hidden, loss) = forward(&model, task, examples, &cpu)?;
    kernels::set_fused(true);
    let device = kind.device(0)?;
    let (hidden_there, loss_there) = forward(&model.to_device(&device), task, examples, &device)?;
    let scale = hidden.clone().abs().max().into_scalar::<f32>().max(1.0);
    let diff = (hidden - hidden_there.to_device(&cpu))
        .abs()
        .max()
        .into_scalar::<f32>()
        / scale;
    let loss_diff = (loss - loss_there).abs();
    let what = if kind.is_cpu() {
        "fused CPU kernels"
    } else {
        "device"
    };
    println!(
        "parity ({what} against the CPU's composed ops): hidden states differ by {diff:.2e} \
         (relative), the MLM loss by {loss_diff:.2e} ({loss:.5} on the CPU)"
    );
    if !(diff <= tolerance && loss_diff <= tolerance) {
        return Err(format!(
            "parity failed: {diff:.2e} / {loss_diff:.2e} above the tolerance {:.0e}",
            tolerance
        )
        .into());
    }

    Ok(())
}

/// The encoder's hidden states of `examples` and the MLM loss, on `device`.
fn forward(
    model: &Pretrainer<pretext::blocks::TransformerEncoder, pretext::objectives::Mlm>,
    task: &MlmTask,
    examples: &[<MlmTask as Task>::Example],
    device: &Device,
) -> pretext::Result<(Tensor<3>, f32)> {
    let batch = task.collate(examples, device)?;
    let mask = AttentionMask::padding(batch.padding.clone());
    let hidden = model.backbone.encode(
        batch.input_ids.clone(),
        Some(batch.segment_ids.clone()),
        Some(&mask),
    );
    let weights = batch.weights();
    let loss = model.forward(batch).loss.normalized(&weights);
    Ok((hidden, loss.into_scalar()))
}

/// Median tokens/s of `steps` training steps (forward, backward, AdamW) of a fresh reference
/// model on `device`, after two untimed ones, and the last loss.
fn time_steps(
    encoder: TransformerEncoderConfig,
    task: &MlmTask,
    examples: &[<MlmTask as Task>::Example],
    steps: usize,
    device: &Device,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    device.seed(0);
    let backbone = encoder.init(device)?;
    let mut model = Pretrainer::new(backbone.clone(), MlmConfig::new().init(&backbone, device));
    let mut optim = adamw(0.01, None);
    let batch = task.collate(examples, device)?;
    let tokens = batch.num_tokens() as f64;
    let shards = Shards::new(1)?;
    let mut times = Vec::new();
    let mut loss = f64::NAN;
    for step in 0..steps + 2 {
        let start = Instant::now();
        let part = Part {
            batch: batch.clone(),
            first_example: 0,
        };
        // Synchronised, so that a GPU's queued work is inside the time.
        let result = step_gradients(&model, &shards, vec![vec![part]], step as u64, device);
        model = optim.step(1e-4, model, result.grads);
        device.sync().map_err(|e| format!("{device:?}: {e:?}"))?;
        loss = result.loss;
        if step >= 2 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((tokens / times[times.len() / 2], loss))
}
