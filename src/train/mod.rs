//! One training loop for every objective, the [`Trainer`]: AdamW, a learning-rate schedule,
//! global-norm gradient clipping, gradient accumulation, validation every N steps, metrics as
//! JSON lines, progress with tokens/s, atomic checkpoints and exact resume. Its result does not
//! depend on how a batch is split (shards, micro-batches, devices): losses are divided by the
//! whole step's target counts, and dropout follows each example's position in the step.
//!
//! The loop is step-based rather than burn-train's epoch-based `Learner`: pretraining counts
//! optimizer updates, validates every N of them and must resume mid-epoch exactly, which is
//! simplest when every random draw derives from `(seed, step)`. The device is a parameter, so
//! the same loop runs on any burn backend.

pub mod batch_ramp;
pub mod checkpoint;
pub mod collective;
pub mod grads;
pub mod log;
#[cfg(feature = "mpi")]
pub mod mpi;
mod ranks;
pub mod schedule;
pub mod shards;
pub mod spine;
pub mod trainer;

pub use batch_ramp::BatchRamp;
pub use checkpoint::TrainState;
pub use collective::{Collective, LocalRank, Solo, launched_ranks};
pub use log::{LogRecord, Logger, MetricTotals, MetricValue, Split, StepDone};
pub use schedule::Schedule;
pub use shards::{Part, ShardOutput, Shards};
pub use spine::Spine;
pub(crate) use trainer::Sampler;
pub use trainer::{
    StepGradients, TrainReport, Trainer, step_gradients, step_gradients_on_ranks, validate,
};

use burn::module::ParamGroup;
use burn::optim::{AdamWConfig, ModuleOptimizer};
use burn::prelude::*;

use crate::error::{Error, Result};

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
    /// How the rate moves: warmup then linear decay (BERT's), warmup–stable–decay
    /// (ModernBERT's) or one cycle (Cramming's). Default warmup then linear decay.
    #[config(default = "Schedule::WarmupLinear")]
    pub schedule: Schedule,
    /// AdamW decoupled weight decay. Default 0.01.
    #[config(default = 0.01)]
    pub weight_decay: f64,
    /// AdamW's decay rate of the squared-gradient average, e.g. 0.98 (ModernBERT's and
    /// Cramming's, which follows the gradients' scale sooner). Default none: 0.999, BERT's.
    pub adam_beta2: Option<f64>,
    /// Clip the global gradient norm to this (0 disables). Default 1.0.
    #[config(default = 1.0)]
    pub max_grad_norm: f64,
    /// Micro-batches per optimizer update. Default 1.
    #[config(default = 1)]
    pub grad_accumulation: usize,
    /// A batch that grows over the first steps, e.g. `{"start": 4, "fraction": 0.6}` (see
    /// [`BatchRamp`]). Default none: every step draws the full batch.
    #[config(default = "None")]
    pub batch_ramp: Option<BatchRamp>,
    /// Parts each micro-batch is split into, run at once on their own threads (see
    /// [`Shards`]); their gradients add up as accumulated micro-batches do, so the count
    /// changes the speed, not the model (up to float rounding). On a CPU backend, the number
    /// of cores; on a GPU, 1. Default 1.
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

/// The settings a resumed run may change: the step budget, the output cadence and how the
/// work is split. Any other difference from the checkpoint's is an error.
pub const RESUMABLE: &[&str] = &[
    "steps",
    "valid_every",
    "log_every",
    "checkpoint_every",
    "progress",
    "pause_after",
    "shards",
];

/// The first field where the settings `saved` with a run's checkpoint and the settings `now`
/// differ, other than the [`RESUMABLE`] ones, with both values: what names the setting a
/// resumed run may not change. `at` is where the training settings sit in the values: `""`
/// for a [`TrainConfig`] (or a loop's config holding the same fields), `"train"` in a recipe.
/// A resumable field one side lacks (an older file) is not compared, and any other field the
/// saved settings lack (added since they were written) counts as its default, the value that
/// run trained with.
pub fn resume_difference(
    saved: &serde_json::Value,
    now: &serde_json::Value,
    at: &str,
) -> Option<(String, serde_json::Value, serde_json::Value)> {
    let (mut saved, mut now) = (saved.clone(), now.clone());
    let defaults = serde_json::to_value(TrainConfig::new(1, 1)).expect("a config serializes");
    let settings = match at {
        "" => Some(&mut saved),
        _ => saved.get_mut(at),
    };
    if let Some(settings) = settings.and_then(serde_json::Value::as_object_mut) {
        for (field, value) in defaults.as_object().expect("a config is an object") {
            settings
                .entry(field.clone())
                .or_insert_with(|| value.clone());
        }
    }
    for field in RESUMABLE {
        let path = match at {
            "" => field.to_string(),
            _ => format!("{at}.{field}"),
        };
        for value in [&mut saved, &mut now] {
            let _ = crate::util::json::set_path(value, &path, serde_json::Value::Null);
        }
    }
    crate::util::json::differences(&saved, &now, "")
        .into_iter()
        .next()
}

impl TrainConfig {
    /// Seeds `device`'s generator with [`seed`](Self::seed) and holds it (see
    /// [`crate::util::random`]), so that the weights initialised on it while the guard lives are the
    /// same in every run of this config, whatever else the process draws (the batches and
    /// dropout masks already follow the seed). Call it before `init` and drop the guard before
    /// training, as recipe runs do; it is what `transformers.set_seed` is to a Hugging Face
    /// script.
    pub fn seed_device(&self, device: &Device) -> crate::util::random::Draws {
        crate::util::random::seeded(device, self.seed)
    }

    /// Checks counts and rates.
    pub fn validate(&self) -> Result<()> {
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
        crate::error::check_positive("learning_rate", self.learning_rate)?;
        crate::error::check_weight("weight_decay", self.weight_decay)?;
        crate::error::check_weight("max_grad_norm", self.max_grad_norm)?;
        crate::error::check_rate("warmup_fraction", self.warmup_fraction)?;
        // At 1 the squared-gradient average never moves and Adam divides by zero.
        if let Some(beta2) = self.adam_beta2
            && !(0.0..1.0).contains(&beta2)
        {
            return Err(Error::InvalidConfig(format!(
                "adam_beta2 must be at least 0 and below 1, got {beta2}"
            )));
        }
        if let Some(ramp) = &self.batch_ramp {
            ramp.validate(self.batch_size * self.grad_accumulation)?;
        }
        self.schedule.validate()
    }

    /// Examples step `step` (from 0) draws: the full `batch_size × grad_accumulation`, fewer
    /// while a [`BatchRamp`] grows.
    pub fn step_examples(&self, step: usize) -> usize {
        let full = self.batch_size * self.grad_accumulation;
        self.batch_ramp
            .map_or(full, |ramp| ramp.examples(step, self.steps, full))
    }

    /// Examples the steps before `step` drew: where step `step` starts in the run's stream.
    pub fn examples_before(&self, step: usize) -> u64 {
        let full = (self.batch_size * self.grad_accumulation) as u64;
        let ramped = self
            .batch_ramp
            .map_or(0, |ramp| ramp.end(self.steps).min(step));
        let early: u64 = (0..ramped).map(|s| self.step_examples(s) as u64).sum();
        early + (step - ramped) as u64 * full
    }
}

/// AdamW with BERT's settings: epsilon 1e-6, β₂ 0.999 unless `beta2` says otherwise, and no
/// weight decay on LayerNorm parameters and biases (their paths contain `norm` or `bias`).
pub fn adamw(weight_decay: f64, beta2: Option<f64>) -> ModuleOptimizer {
    let beta2 = beta2.unwrap_or(0.999);
    let adamw = |decay: f64| {
        AdamWConfig::new()
            .with_weight_decay(decay as f32)
            .with_beta_2(beta2 as f32)
            .with_epsilon(1e-6)
    };
    let no_decay = ParamGroup::from_regex(r"(norm|bias)").expect("a valid regex");
    adamw(weight_decay)
        .init()
        .with_group(no_decay, adamw(0.0).build(), None)
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

    #[test]
    fn adams_beta2_must_lie_below_one() {
        let config = |beta2| TrainConfig::new(10, 4).with_adam_beta2(Some(beta2));
        for beta2 in [0.0, 0.98, 0.999] {
            config(beta2).validate().unwrap();
        }
        for beta2 in [1.0, -0.1, f64::NAN] {
            let err = config(beta2).validate().unwrap_err();
            assert!(err.to_string().contains("adam_beta2"), "{beta2}: {err}");
        }
    }

    #[derive(Module, Debug)]
    struct Block {
        dense: Linear,
        norm: LayerNorm,
    }

    #[test]
    fn adamw_decays_weights_but_not_norms_or_biases() {
        let _draws = crate::util::random::hold();
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
        let block = adamw(0.5, None).step(0.1, block, grads);
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

    #[test]
    fn a_setting_older_files_lack_counts_as_its_default_when_resuming() {
        let config = TrainConfig::new(10, 4);
        let mut saved = serde_json::to_value(&config).unwrap();
        saved.as_object_mut().unwrap().remove("schedule");
        let now = serde_json::to_value(&config).unwrap();
        assert_eq!(resume_difference(&saved, &now, ""), None);
        let recipe = |train| serde_json::json!({ "train": train });
        assert_eq!(
            resume_difference(&recipe(saved.clone()), &recipe(now), "train"),
            None
        );
        // Another schedule is still a change a resume may not make.
        let other = config.with_schedule(Schedule::OneCycle { start: 0.25 });
        let other = serde_json::to_value(&other).unwrap();
        let (field, ..) = resume_difference(&saved, &other, "").unwrap();
        assert_eq!(field, "schedule");
    }
}
