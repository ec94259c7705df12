//! One training loop for every objective: AdamW, warmup + linear decay, global-norm gradient
//! clipping, gradient accumulation, validation every N steps, metrics as JSON lines, progress
//! with tokens/s, atomic checkpoints and exact resume.
//!
//! The loop is step-based rather than burn-train's epoch-based `Learner`: pretraining counts
//! optimizer updates, validates every N of them and must resume mid-epoch exactly, which is
//! simplest when every random draw derives from `(seed, step)`. The device is a parameter, so
//! the same loop runs on any burn backend.

pub mod checkpoint;
pub mod grads;
pub mod log;
pub mod schedule;
pub mod shards;

pub use checkpoint::TrainState;
pub use log::{LogRecord, Logger, MetricTotals, Split};
pub use shards::{ShardOutput, Shards};

use std::path::Path;
use std::time::Instant;

use burn::module::ParamGroup;
use burn::optim::{AdamWConfig, GradientsAccumulator, ModuleOptimizer};
use burn::prelude::*;

use crate::data::{Batch, Task};
use crate::error::Error;
use crate::noise::{ExampleRng, example_rng, splitmix64};
use crate::objectives::Objective;
use crate::pretrainer::Pretrainer;

/// Settings of a training run.
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// Optimizer updates to run.
    pub steps: usize,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Peak learning rate. Default 5e-4.
    #[config(default = 5e-4)]
    pub learning_rate: f64,
    /// Share of the steps spent warming up linearly from 0. Default 0.1.
    #[config(default = 0.1)]
    pub warmup_fraction: f64,
    /// AdamW decoupled weight decay. Default 0.01.
    #[config(default = 0.01)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0 disables). Default 1.0.
    #[config(default = 1.0)]
    pub max_grad_norm: f64,
    /// Micro-batches per optimizer update. Default 1.
    #[config(default = 1)]
    pub grad_accumulation: usize,
    /// Parts each micro-batch is split into, run at once on their own threads (see
    /// [`Shards`]); their gradients add up as accumulated micro-batches do. On a CPU backend,
    /// the number of cores; on a GPU, 1. Default 1.
    #[config(default = 1)]
    pub shards: usize,
    /// Validate every this many steps (and at the end). Default 50.
    #[config(default = 50)]
    pub valid_every: usize,
    /// Validation batches (always the same ones). Default 8.
    #[config(default = 8)]
    pub valid_batches: usize,
    /// Log training metrics every this many steps. Default 10.
    #[config(default = 10)]
    pub log_every: usize,
    /// Checkpoint every this many steps (and at the end; 0 = only at the end). Default 100.
    #[config(default = 100)]
    pub checkpoint_every: usize,
    /// Seed of every random draw of the run. Default 42.
    #[config(default = 42)]
    pub seed: u64,
    /// Print progress on stderr. Default true.
    #[config(default = true)]
    pub progress: bool,
    /// Stop after this many updates with a checkpoint, as if interrupted, while the schedule
    /// still runs to `steps`; a later call with `resume` continues. Default none.
    #[config(default = "None")]
    pub pause_after: Option<usize>,
}

impl TrainConfig {
    /// Checks counts and rates.
    pub fn validate(&self) -> crate::Result<()> {
        for (name, value) in [
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("grad_accumulation", self.grad_accumulation),
            ("shards", self.shards),
            ("valid_every", self.valid_every),
            ("log_every", self.log_every),
        ] {
            if value == 0 {
                return Err(Error::InvalidConfig(format!("{name} must be positive")));
            }
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::InvalidConfig(format!(
                "learning_rate must be positive, got {}",
                self.learning_rate
            )));
        }
        crate::error::check_rate("warmup_fraction", self.warmup_fraction)
    }

    fn warmup_steps(&self) -> usize {
        (self.warmup_fraction * self.steps as f64).round() as usize
    }
}

/// AdamW with BERT's settings: epsilon 1e-6, and no weight decay on LayerNorm parameters and
/// biases (their paths contain `norm` or `bias`).
pub fn adamw(weight_decay: f64) -> ModuleOptimizer {
    let adamw = |decay: f64| {
        AdamWConfig::new()
            .with_weight_decay(decay as f32)
            .with_epsilon(1e-6)
    };
    let no_decay = ParamGroup::from_regex(r"(norm|bias)").expect("a valid regex");
    adamw(weight_decay)
        .init()
        .with_group(no_decay, adamw(0.0).build(), None)
}

/// What a finished run returns.
#[derive(Debug)]
pub struct TrainReport<M: Module, O: Module> {
    /// The trained model (on the training device).
    pub model: Pretrainer<M, O>,
    /// Every record logged by this call, train and validation.
    pub history: Vec<LogRecord>,
    /// Where training ended.
    pub state: TrainState,
}

/// Orders the examples of each epoch by a seeded shuffle and hands out micro-batches.
pub(crate) struct Sampler {
    seed: u64,
    len: usize,
    epoch: u64,
    /// The epoch's order; `u32` halves its memory, which grows with the corpus (the training
    /// loop checks that the count fits).
    order: Vec<u32>,
}

impl Sampler {
    pub(crate) fn new(seed: u64, len: usize) -> Self {
        Self {
            seed,
            len,
            epoch: u64::MAX,
            order: Vec::new(),
        }
    }

    /// `(epoch, example index)` of the `n`-th example the run draws.
    pub(crate) fn get(&mut self, n: u64) -> (u64, usize) {
        let epoch = n / self.len as u64;
        if epoch != self.epoch {
            use rand::seq::SliceRandom;
            self.order = (0..self.len as u32).collect();
            self.order
                .shuffle(&mut example_rng(self.seed, epoch, u64::MAX));
            self.epoch = epoch;
        }
        (epoch, self.order[(n % self.len as u64) as usize] as usize)
    }
}

fn make_batch<T: Task>(
    task: &T,
    seed: u64,
    picks: impl Iterator<Item = (u64, usize)>,
    device: &Device,
) -> crate::Result<T::Batch> {
    let examples = picks
        .map(|(epoch, index)| {
            let mut rng: ExampleRng = example_rng(seed, epoch, index as u64);
            task.example(index, &mut rng)
        })
        .collect::<crate::Result<Vec<_>>>()?;
    task.collate(&examples, device)
}

/// Trains `model` (built on the autodiff `device`) on `train`, validating on `valid`.
///
/// With `dir`, writes `dir/metrics.jsonl` and checkpoints to `dir/checkpoint/`; with `resume`
/// as well, continues from that checkpoint exactly where it stopped (the same batches, masks,
/// dropout and optimizer state as an uninterrupted run).
pub fn train<M, O, T>(
    model: Pretrainer<M, O>,
    train: &T,
    valid: &T,
    config: &TrainConfig,
    dir: Option<&Path>,
    resume: bool,
    device: &Device,
) -> crate::Result<TrainReport<M, O>>
where
    M: Module,
    O: Objective<M, Batch = T::Batch>,
    Pretrainer<M, O>: Module,
    T: Task,
{
    train_data_parallel(
        model,
        train,
        valid,
        config,
        dir,
        resume,
        std::slice::from_ref(device),
    )
}

/// [`train`] with each batch split over several autodiff `devices` (GPUs), one shard per
/// device; `config.shards` then does not apply. The model, the optimizer and validation stay
/// on the first device, where every shard's gradients are summed before the update. With one
/// device this is [`train`].
///
/// ```no_run
/// # fn run<M, O, T>(model: pretext::Pretrainer<M, O>, task: &T, valid: &T) -> pretext::Result<()>
/// # where M: burn::module::Module, O: pretext::objectives::Objective<M, Batch = T::Batch>,
/// #   pretext::Pretrainer<M, O>: burn::module::Module, T: pretext::data::Task {
/// use burn::prelude::Device;
/// use pretext::train::{TrainConfig, train_data_parallel};
///
/// // Two GPUs (with the `cuda` feature): `Device::cuda(0).autodiff()`, `Device::cuda(1).autodiff()`.
/// let devices = [Device::flex().autodiff()];
/// let config = TrainConfig::new(1000, 32);
/// train_data_parallel(model, task, valid, &config, None, false, &devices)?;
/// # Ok(()) }
/// ```
pub fn train_data_parallel<M, O, T>(
    model: Pretrainer<M, O>,
    train: &T,
    valid: &T,
    config: &TrainConfig,
    dir: Option<&Path>,
    resume: bool,
    devices: &[Device],
) -> crate::Result<TrainReport<M, O>>
where
    M: Module,
    O: Objective<M, Batch = T::Batch>,
    Pretrainer<M, O>: Module,
    T: Task,
{
    let Some(device) = devices.first() else {
        return Err(Error::InvalidConfig("training needs a device".into()));
    };
    config.validate()?;
    if devices.len() > config.batch_size {
        return Err(Error::InvalidConfig(format!(
            "{} devices need batches of at least {} examples, not {}",
            devices.len(),
            devices.len(),
            config.batch_size
        )));
    }
    if train.num_examples() == 0 || valid.num_examples() == 0 {
        return Err(Error::EmptyCorpus(
            "the train or validation split has no example".into(),
        ));
    }
    if train.num_examples() > u32::MAX as usize {
        return Err(Error::InvalidConfig(format!(
            "{} examples an epoch: the sampler counts at most {} (use longer sequences)",
            train.num_examples(),
            u32::MAX
        )));
    }
    if !device.is_autodiff() {
        return Err(Error::InvalidConfig(
            "training needs an autodiff device: pass `device.autodiff()`".into(),
        ));
    }
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut model = model;
    let mut optimizer = adamw(config.weight_decay);
    let mut state = TrainState {
        step: 0,
        seed: config.seed,
        tokens_seen: 0,
    };
    if resume {
        let dir =
            dir.ok_or_else(|| Error::InvalidConfig("resuming needs a run directory".into()))?;
        let ckpt = checkpoint::locate(dir).ok_or_else(|| Error::Checkpoint {
            path: dir.join(checkpoint::CHECKPOINT_DIR),
            reason: "no checkpoint to resume from".into(),
        })?;
        state = checkpoint::load_state(&ckpt)?;
        if state.seed != config.seed {
            return Err(Error::InvalidConfig(format!(
                "the checkpoint was trained with seed {}, not {}",
                state.seed, config.seed
            )));
        }
        model = checkpoint::load_model(&ckpt, model)?;
        optimizer = checkpoint::load_optimizer(&ckpt, optimizer)?;
    }
    let logger = Logger::new(dir, config.progress, resume.then_some(state.step))?;
    let valid_device = device.clone().inner();
    let mut sampler = Sampler::new(config.seed, train.num_examples());
    let shards = if devices.len() > 1 {
        Shards::on_devices(devices.to_vec())?
    } else {
        Shards::new(config.shards.min(config.batch_size))?
    };
    let per_step = (config.batch_size * config.grad_accumulation) as u64;
    let warmup = config.warmup_steps();
    let mut history = Vec::new();
    let mut totals = MetricTotals::default();
    // Throughput counts training work only, not validation or checkpoint writing.
    let mut window_tokens = 0usize;
    let mut window_time = 0.0f64;
    let run_start = Instant::now();
    let first_step = state.step;

    let stop = config.pause_after.unwrap_or(config.steps).min(config.steps);
    while state.step < stop {
        let step = state.step;
        let lr = schedule::warmup_linear_decay(config.learning_rate, step, warmup, config.steps);
        let step_start = Instant::now();
        let mut step_tokens = 0usize;
        train.set_step(step);
        let mut accumulator = GradientsAccumulator::<Pretrainer<M, O>>::new();
        let mut parts = 0;
        for micro in 0..config.grad_accumulation {
            let first = step as u64 * per_step + (micro * config.batch_size) as u64;
            let picks: Vec<(u64, usize)> = (first..first + config.batch_size as u64)
                .map(|n| sampler.get(n))
                .collect();
            let batches = picks
                .chunks(config.batch_size.div_ceil(shards.count()))
                .enumerate()
                .map(|(k, part)| {
                    let shard_device = shards.device(k, device);
                    make_batch(train, config.seed, part.iter().copied(), shard_device)
                })
                .collect::<crate::Result<Vec<_>>>()?;
            step_tokens += batches.iter().map(Batch::num_tokens).sum::<usize>();
            // Seed dropout from the step so that a resumed run drops the same units.
            let seeds: Vec<u64> = (0..batches.len() as u64)
                .map(|k| splitmix64(config.seed ^ splitmix64((step * 1024 + micro) as u64) ^ k))
                .collect();
            for shard in shards.run(&model, batches, &seeds, device) {
                if !shard.loss.is_finite() {
                    return Err(Error::Diverged {
                        step: step + 1,
                        loss: shard.loss,
                    });
                }
                totals.add(shard.loss, &shard.metrics);
                accumulator.accumulate(&model, shard.grads);
                parts += 1;
            }
        }
        let mut grads = accumulator.grads();
        grads::average_and_clip(&model, &mut grads, parts, config.max_grad_norm);
        model = optimizer.step(lr, model, grads);
        state.step += 1;
        state.tokens_seen += step_tokens as u64;
        window_tokens += step_tokens;
        window_time += step_start.elapsed().as_secs_f64();
        let tokens_per_s = window_tokens as f64 / window_time.max(1e-9);

        let done = state.step - first_step;
        let eta = run_start
            .elapsed()
            .mul_f64((config.steps - state.step) as f64 / done as f64);
        logger.progress(
            state.step,
            config.steps,
            totals.mean_loss(),
            tokens_per_s,
            eta,
        );
        if state.step % config.log_every == 0 || state.step == 1 || state.step == config.steps {
            let record = LogRecord {
                step: state.step,
                split: Split::Train,
                loss: totals.mean_loss(),
                tokens_per_s,
                lr,
                metrics: totals.values(),
            };
            logger.record(&record)?;
            history.push(record);
            totals = MetricTotals::default();
            window_tokens = 0;
            window_time = 0.0;
        }
        if state.step % config.valid_every == 0 || state.step == config.steps {
            let record = validate(&model, valid, config, state.step, lr, &valid_device)?;
            logger.record(&record)?;
            history.push(record);
        }
        let checkpoint_due =
            config.checkpoint_every > 0 && state.step % config.checkpoint_every == 0;
        if let Some(dir) = dir
            && (checkpoint_due || state.step == stop)
        {
            checkpoint::save(dir, &model, &optimizer, &state)?;
        }
    }
    Ok(TrainReport {
        model,
        history,
        state,
    })
}

/// Scores the fixed validation batches with `model` in inference mode.
pub fn validate<M, O, T>(
    model: &Pretrainer<M, O>,
    valid: &T,
    config: &TrainConfig,
    step: usize,
    lr: f64,
    device: &Device,
) -> crate::Result<LogRecord>
where
    M: Module,
    O: Objective<M, Batch = T::Batch>,
    Pretrainer<M, O>: Module,
    T: Task,
{
    valid.set_step(step);
    let inference = model.valid();
    let n = valid.num_examples();
    let batches = config
        .valid_batches
        .max(1)
        .min(n.div_ceil(config.batch_size));
    // Spread the picks evenly over the split: its examples are in document order, so the
    // first few batches would all come from its first documents.
    let picked = (batches * config.batch_size).min(n);
    let mut totals = MetricTotals::default();
    for b in 0..batches {
        let picks = (b * config.batch_size..((b + 1) * config.batch_size).min(picked))
            .map(|k| (0, k * n / picked));
        let batch = make_batch(valid, config.seed, picks, device)?;
        let output = inference.forward(batch);
        totals.add(f64::from(output.loss.into_scalar::<f32>()), &output.metrics);
    }
    Ok(LogRecord {
        step,
        split: Split::Valid,
        loss: totals.mean_loss(),
        tokens_per_s: 0.0,
        lr,
        metrics: totals.values(),
    })
}

/// Keeps freed large buffers inside the process instead of returning them to the kernel.
///
/// glibc hands every large allocation back with `munmap` and gets a fresh, zeroed mapping on
/// the next one; a training step allocates and frees the same large activations hundreds of
/// times, so on burn's CPU backend page faults cost ~12 % of a step. Turning mmap off for
/// allocations and raising the trim threshold makes freed memory reusable (measured +38 %
/// tokens/s on the reference MLM step). Call once at start-up; a no-op off glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_MAX: i32 = -4;
        // SAFETY: mallopt only changes glibc's allocation policy; it is called before any
        // other thread of ours exists and takes plain integers.
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
    use burn::optim::GradientsParams;

    #[derive(Module, Debug)]
    struct Block {
        dense: Linear,
        norm: LayerNorm,
    }

    #[test]
    fn adamw_decays_weights_but_not_norms_or_biases() {
        let device = Device::flex().autodiff();
        let block = Block {
            dense: LinearConfig::new(4, 4).init(&device),
            norm: LayerNormConfig::new(4).init(&device),
        };
        let sum = |t: Tensor<1>| t.abs().sum().into_scalar::<f32>();
        let before = (
            sum(block.dense.weight.val().flatten(0, 1)),
            sum(block.dense.bias.as_ref().unwrap().val()),
            sum(block.norm.gamma.val()),
        );
        let x = Tensor::<2>::ones([2, 4], &device);
        // A zero loss: every gradient is zero, so only weight decay moves parameters.
        let loss = block
            .norm
            .forward(block.dense.forward(x))
            .sum()
            .mul_scalar(0.0);
        let grads = GradientsParams::from_grads(loss.backward(), &block);
        let block = adamw(0.5).step(0.1, block, grads);
        let after = (
            sum(block.dense.weight.val().flatten(0, 1)),
            sum(block.dense.bias.as_ref().unwrap().val()),
            sum(block.norm.gamma.val()),
        );
        assert!(
            (after.0 - before.0 * 0.95).abs() < 1e-4,
            "{before:?} -> {after:?}"
        );
        assert!((after.1 - before.1).abs() < 1e-6, "bias decayed");
        assert!((after.2 - before.2).abs() < 1e-6, "LayerNorm decayed");
    }
}
