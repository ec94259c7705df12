//! The [`Trainer`]: one run of the loop, from a model and a [`TrainConfig`] to a trained model,
//! its metrics and its checkpoints.
//!
//! A step draws `batch_size × grad_accumulation` examples, cuts them into parts (micro-batches,
//! each split into shards run at once on the cores or on several devices), adds the parts'
//! loss [`Weights`] before any of them runs, and backpropagates each part's loss divided by the
//! step's totals: the parts' gradients then add up to the gradient of the whole batch's loss,
//! and dropout masks follow each example's position in the step. So the same command trains
//! the same model on 2 cores or 16.

use std::path::PathBuf;
use std::sync::Arc;

use burn::module::ModuleDisplay;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use super::collective::{Collective, Solo};
use super::log::{LogRecord, MetricTotals, MetricValue, Split, StepDone};
use super::ranks;
use super::shards::{Part, Shards};
use super::spine::Spine;
use super::{TrainConfig, TrainState};
use crate::data::{Batch, Task};
use crate::error::{Error, Result};
use crate::objectives::{Metric, Objective, Weights};
use crate::pretrainer::Pretrainer;
use crate::util::rng::{ExampleRng, example_rng, splitmix64};

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

/// Trains a [`Pretrainer`] on a [`Task`]: AdamW, warmup + linear decay, global-norm clipping,
/// accumulation, shards, validation, metrics, checkpoints and exact resume.
///
/// ```no_run
/// # fn run<M, O, T>(model: pretext::Pretrainer<M, O>, task: &T, valid: &T) -> pretext::Result<()>
/// # where M: burn::module::Module + burn::module::ModuleDisplay,
/// #   O: pretext::objectives::Objective<M, Batch = T::Batch>, T: pretext::data::Task {
/// use burn::prelude::Device;
/// use pretext::train::{TrainConfig, Trainer};
///
/// let config = TrainConfig::new(1000, 32);
/// // Two GPUs (with the `cuda` feature): `Device::cuda(0).autodiff()`, `Device::cuda(1).autodiff()`.
/// let devices = [Device::flex().autodiff()];
/// let report = Trainer::new(model, &config)
///     .output("runs/mlm")
///     .resume(true)
///     .devices(&devices)
///     .fit(task, valid)?;
/// println!("{} steps", report.state.step);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Trainer<M: Module, O: Module> {
    model: Pretrainer<M, O>,
    config: TrainConfig,
    dir: Option<PathBuf>,
    resume: bool,
    /// `None`: the model's own device.
    devices: Option<Vec<Device>>,
    ranks: Arc<dyn Collective>,
}

impl<M: Module + ModuleDisplay, O: Objective<M>> Trainer<M, O> {
    /// A run of `model` with `config`'s settings, on the device the model lives on (which must
    /// be an autodiff device), writing nothing.
    pub fn new(model: Pretrainer<M, O>, config: &TrainConfig) -> Self {
        Self {
            model,
            config: config.clone(),
            dir: None,
            resume: false,
            devices: None,
            ranks: Arc::new(Solo),
        }
    }

    /// Writes `dir/metrics.jsonl` and checkpoints in `dir/checkpoint/`.
    pub fn output(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// With `true`, continues from the output directory's checkpoint exactly where it stopped
    /// (the same batches, masks, dropout and optimizer state as an uninterrupted run). The
    /// checkpoint's settings must be this run's but for the step budget and output cadence.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Trains on `device` (an autodiff device).
    pub fn device(self, device: &Device) -> Self {
        self.devices(std::slice::from_ref(device))
    }

    /// Splits each batch over several autodiff `devices` (GPUs), one shard per device;
    /// `config.shards` then does not apply. The model, the optimizer and validation stay on
    /// the first device, where every shard's gradients are summed before the update.
    pub fn devices(mut self, devices: &[Device]) -> Self {
        self.devices = Some(devices.to_vec());
        self
    }

    /// Runs as one of several ranks (processes, possibly on several machines; see
    /// [`Collective`]): each rank builds and runs its share of every step's examples, split
    /// over its own shards, and the ranks add up their loss totals, gradients and metrics, so
    /// that `n` ranks of `s` shards train the model one process of `n × s` shards trains.
    /// Every rank is given the same model, settings, data and output directory; rank 0 alone
    /// logs, validates and writes checkpoints, and every rank resumes from them.
    pub fn ranks(mut self, ranks: Arc<dyn Collective>) -> Self {
        self.ranks = ranks;
        self
    }

    /// Trains on `train`, validating on `valid`, until `config.steps` (or `pause_after`).
    pub fn fit<T: Task<Batch = O::Batch>>(self, train: &T, valid: &T) -> Result<TrainReport<M, O>> {
        self.fit_scoring(train, valid, None)
    }

    /// [`fit`](Self::fit), also scoring the model on `scored`'s task at every validation: its
    /// loss and metrics join the validation record as `loss@SUFFIX`, `NAME@SUFFIX`.
    pub fn fit_scoring<T: Task<Batch = O::Batch>>(
        self,
        train: &T,
        valid: &T,
        scored: Option<(&str, &T)>,
    ) -> Result<TrainReport<M, O>> {
        let Self {
            model,
            config,
            dir,
            resume,
            devices,
            ranks,
        } = self;
        let ranks = ranks.as_ref();
        let devices = devices.unwrap_or_else(|| model.devices().into_iter().take(1).collect());
        check(&config, &devices, ranks.size(), train, valid)?;
        if model.objective.couples_batch() {
            check_whole_batches(&config, devices.len(), ranks.size())?;
        }
        crate::quantize::check_not_quantized(&model)?;
        ranks::check_same_settings(ranks, &format!("{config:?}"))?;
        let per_step = config.batch_size * config.grad_accumulation;
        let examples = train.num_examples();
        if config.progress && ranks.rank() == 0 && examples < per_step {
            let plural = if examples == 1 { "" } else { "s" };
            eprintln!(
                "warning: the train split has {examples} example{plural}, fewer than the \
                 {per_step} a step draws: every step repeats them (a corpus this small teaches \
                 little)"
            );
        }
        let device = &devices[0];
        let (mut spine, mut model) =
            Spine::start_on_rank(model, &config, dir.as_deref(), resume, ranks.rank())?;
        ranks::check_replicas(ranks, &model, spine.state().step)?;
        let shards = if devices.len() > 1 {
            Shards::on_devices(devices.clone())?
        } else {
            Shards::new(config.shards.min(config.batch_size / ranks.size()))?
        };
        let mut sampler = Sampler::new(config.seed, train.num_examples());
        // Where the next step starts in the stream of examples (counted once, on resume).
        let mut drawn = None;
        while let Some(step) = spine.begin_step() {
            let lr = spine.lr(0);
            let first = *drawn.get_or_insert_with(|| config.examples_before(step));
            let count = config.step_examples(step);
            drawn = Some(first + count as u64);
            let picks: Vec<(u64, usize)> = (first..first + count as u64)
                .map(|n| sampler.get(n))
                .collect();
            let micro_batches = parts(train, picks, &shards, ranks, &config, step, device)?;
            // Dropout draws from the step and each example's position in it, not from its
            // shard or rank.
            let seed = splitmix64(config.seed ^ splitmix64(step as u64));
            let done = step_gradients_on_ranks(&model, &shards, ranks, micro_batches, seed, device);
            model = spine.update(model, done.grads, done.loss, lr)?;
            let metrics = done.metrics.iter().flatten().map(MetricValue::read);
            let done = StepDone {
                loss: done.loss,
                tokens: done.tokens,
                metrics: ranks::gather_metrics(ranks, metrics.collect()),
            };
            spine.end_step(&model, done, lr, |model, step, lr| {
                // Every rank comes here at every validation: the replicas are compared, and
                // rank 0 validates.
                ranks::check_replicas(ranks, model, step)?;
                if ranks.rank() != 0 {
                    return Ok(None);
                }
                let mut record = validate(model, valid, &config, step, lr, device, &shards)?;
                if let Some((suffix, task)) = scored {
                    let also = validate(model, task, &config, step, lr, device, &shards)?;
                    record.metrics.insert(format!("loss@{suffix}"), also.loss);
                    for (name, value) in also.metrics {
                        record.metrics.insert(format!("{name}@{suffix}"), value);
                    }
                }
                Ok(Some(record))
            })?;
        }
        let (history, state) = spine.finish();
        Ok(TrainReport {
            model,
            history,
            state,
        })
    }
}

/// Checks the settings, the devices, the ranks and the data before anything runs.
fn check<T: Task>(
    config: &TrainConfig,
    devices: &[Device],
    ranks: usize,
    train: &T,
    valid: &T,
) -> Result<()> {
    config.validate()?;
    if ranks > config.batch_size {
        return Err(Error::InvalidConfig(format!(
            "{ranks} ranks need batches of at least {ranks} examples, not {}",
            config.batch_size
        )));
    }
    let Some(device) = devices.first() else {
        return Err(Error::InvalidConfig("training needs a device".into()));
    };
    if !device.is_autodiff() {
        return Err(Error::InvalidConfig(
            "training needs an autodiff device: pass `device.autodiff()`".into(),
        ));
    }
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
    Ok(())
}

/// Checks that nothing cuts a step's batch, for an objective that scores each example against
/// the others of its batch.
fn check_whole_batches(config: &TrainConfig, devices: usize, ranks: usize) -> Result<()> {
    let cuts = [
        ("shards", config.shards.min(config.batch_size)),
        ("grad_accumulation", config.grad_accumulation),
        ("devices", devices),
        ("ranks", ranks),
    ];
    match cuts.into_iter().find(|&(_, n)| n > 1) {
        Some((name, n)) => Err(Error::InvalidConfig(format!(
            "the objective scores each example against the others of its batch (in-batch \
             negatives), so a step's batch must stay whole: {name} is {n}, and must be 1"
        ))),
        None => Ok(()),
    }
}

/// The loss of a step's whole batch and its gradient.
#[derive(Debug)]
pub struct StepGradients {
    /// The loss of the whole batch.
    pub loss: f64,
    /// Each part's metrics.
    pub metrics: Vec<Vec<Metric>>,
    /// Real tokens trained on.
    pub tokens: usize,
    /// The gradient of `loss`, keyed by parameter id.
    pub grads: GradientsParams,
}

/// The loss and gradient of the batch made of `micro_batches`, run one after the other, each
/// a list of parts run at once on `shards`, with the step's dropout `seed`. The parts'
/// [`Weights`] are added up first and every part's loss is divided by the totals, so the
/// result is the whole batch's however it is cut.
pub fn step_gradients<M: Module + ModuleDisplay, O: Objective<M>>(
    model: &Pretrainer<M, O>,
    shards: &Shards,
    micro_batches: Vec<Vec<Part<O::Batch>>>,
    seed: u64,
    device: &Device,
) -> StepGradients {
    step_gradients_on_ranks(model, shards, &Solo, micro_batches, seed, device)
}

/// [`step_gradients`] of a step whose parts are spread over `ranks`, this rank running
/// `micro_batches`: the totals, the loss, the tokens and the gradient are the whole step's,
/// added up over the ranks; the metrics are this rank's own.
pub fn step_gradients_on_ranks<M: Module + ModuleDisplay, O: Objective<M>>(
    model: &Pretrainer<M, O>,
    shards: &Shards,
    ranks: &dyn Collective,
    micro_batches: Vec<Vec<Part<O::Batch>>>,
    seed: u64,
    device: &Device,
) -> StepGradients {
    let mut totals = Weights::default();
    let mut tokens = 0;
    for part in micro_batches.iter().flatten() {
        totals.add(&part.batch.weights());
        tokens += part.batch.num_tokens();
    }
    let totals = ranks::global_totals(ranks, &totals);
    let mut accumulator = GradientsAccumulator::<Pretrainer<M, O>>::new();
    let mut loss = 0.0;
    let mut metrics = Vec::new();
    for parts in micro_batches {
        for shard in shards.run(model, parts, seed, &totals, device) {
            loss += shard.loss;
            metrics.push(shard.metrics);
            accumulator.accumulate(model, shard.grads);
        }
    }
    let (loss, tokens) = ranks::sum_loss(ranks, loss, tokens);
    StepGradients {
        loss,
        metrics,
        tokens,
        grads: ranks::sum_gradients(ranks, model, accumulator.grads()),
    }
}

/// This rank's parts of the examples `picks` of `step`: micro-batches of `batch_size`, each
/// cut into one part per shard of every rank, of which this rank takes its own.
fn parts<T: Task>(
    train: &T,
    picks: Vec<(u64, usize)>,
    shards: &Shards,
    ranks: &dyn Collective,
    config: &TrainConfig,
    step: usize,
    device: &Device,
) -> Result<Vec<Vec<Part<T::Batch>>>> {
    let first_part = ranks.rank() * shards.count();
    picks
        .chunks(config.batch_size)
        .enumerate()
        .map(|(m, micro)| {
            let shard_size = micro.len().div_ceil(shards.count() * ranks.size());
            micro
                .chunks(shard_size)
                .enumerate()
                .skip(first_part)
                .take(shards.count())
                .map(|(k, picked)| {
                    let device = shards.device(k - first_part, device);
                    let picked = picked.iter().copied();
                    Ok(Part {
                        batch: make_batch(train, config.seed, step, picked, device)?,
                        first_example: m * config.batch_size + k * shard_size,
                    })
                })
                .collect()
        })
        .collect()
}

/// Scores the fixed validation batches with `model` in inference mode; the loss is that of
/// the batches taken together, each term divided by its unit's total over them. The batches
/// are spread over `shards`' threads (on a CPU, validation would otherwise keep one core busy
/// of several) and summed in their order, so the record does not depend on the shard count.
pub fn validate<M, O, T>(
    model: &Pretrainer<M, O>,
    valid: &T,
    config: &TrainConfig,
    step: usize,
    lr: f64,
    device: &Device,
    shards: &Shards,
) -> Result<LogRecord>
where
    M: Module + ModuleDisplay,
    O: Objective<M, Batch = T::Batch>,
    T: Task,
{
    let inference = model.valid();
    let device = device.clone().inner();
    let n = valid.num_examples();
    let count = config
        .valid_batches
        .max(1)
        .min(n.div_ceil(config.batch_size));
    // Spread the picks evenly over the split: its examples are in document order, so the
    // first few batches would all come from its first documents.
    let picked = (count * config.batch_size).min(n);
    let batches = (0..count)
        .map(|b| {
            let picks = (b * config.batch_size..((b + 1) * config.batch_size).min(picked))
                .map(|k| (0, k * n / picked));
            make_batch(valid, config.seed, step, picks, &device)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut weights = Weights::default();
    for batch in &batches {
        weights.add(&batch.weights());
    }
    let scored = shards.map(&inference, batches, |model, batch| {
        let output = model.forward(batch);
        let loss = f64::from(output.loss.normalized(&weights).into_scalar::<f32>());
        (
            loss,
            output
                .metrics
                .iter()
                .map(MetricValue::read)
                .collect::<Vec<_>>(),
        )
    });
    let mut totals = MetricTotals::default();
    let mut loss = 0.0;
    for (batch_loss, metrics) in scored {
        loss += batch_loss;
        for metric in metrics {
            totals.add(metric);
        }
    }
    Ok(LogRecord {
        step,
        split: Split::Valid,
        loss,
        tokens_per_s: 0.0,
        lr,
        metrics: totals.values(),
    })
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

/// The batch of the examples `picks` (each `(epoch, index)`) for optimizer step `step`, on
/// `device`.
fn make_batch<T: Task>(
    task: &T,
    seed: u64,
    step: usize,
    picks: impl Iterator<Item = (u64, usize)>,
    device: &Device,
) -> Result<T::Batch> {
    let examples = picks
        .map(|(epoch, index)| {
            let mut rng: ExampleRng = example_rng(seed, epoch, index as u64);
            task.example_at(index, step, &mut rng)
        })
        .collect::<Result<Vec<_>>>()?;
    task.collate(&examples, device)
}
