//! The [`Spine`] every training loop stands on: the optimizer, the learning-rate schedule,
//! divergence checks, gradient clipping, the metrics log, checkpoints and exact resume.
//!
//! A loop owns only what is its own: how a step's gradient is made. The [`Trainer`] draws a
//! batch of a [`Task`] and backpropagates an [`Objective`]'s loss; PPO samples rollouts and
//! takes several clipped updates over them. Both run
//!
//! ```text
//! let (mut spine, mut model) = Spine::start(model, &config, dir, resume)?;
//! while let Some(step) = spine.begin_step() {
//!     let lr = spine.lr(0);
//!     let (loss, grads) = …;                        // the loop's own work
//!     model = spine.update(model, grads, loss, lr)?; // divergence check, clipping, AdamW
//!     spine.end_step(&model, done, lr, validate)?;   // log, validation, checkpoint
//! }
//! let (history, state) = spine.finish();
//! ```
//!
//! so a new loop (distillation, a GAN, another RL algorithm) gets the same schedule, logs,
//! checkpoints and resume by writing only its step.
//!
//! [`Trainer`]: super::Trainer
//! [`Task`]: crate::data::Task
//! [`Objective`]: crate::objectives::Objective

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::log::{LogRecord, Logger, StepDone, TrainLog};
use super::{TrainConfig, TrainState, adamw, checkpoint, grads};
use crate::error::{Error, Result};

/// The shared parts of a training loop over a model of type `M` (see the module docs).
pub struct Spine<M> {
    config: TrainConfig,
    dir: Option<PathBuf>,
    optimizer: ModuleOptimizer,
    state: TrainState,
    log: TrainLog,
    /// The step at which this call stops: `steps`, or `pause_after` when sooner.
    stop: usize,
    updates_per_step: usize,
    history: Vec<LogRecord>,
    step_started: Instant,
    _model: PhantomData<M>,
}

impl<M> std::fmt::Debug for Spine<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spine")
            .field("config", &self.config)
            .field("dir", &self.dir)
            .field("state", &self.state)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl<M: Module> Spine<M> {
    /// Starts a loop of `config` over `model`, writing `metrics.jsonl` and `checkpoint/` in
    /// `dir` when given. With `resume`, the model, the optimizer and the step come from `dir`'s
    /// checkpoint, after checking that it was trained with `config`'s settings (all but
    /// [`super::RESUMABLE`]'s); the model to use from then on is the one returned.
    pub fn start(
        model: M,
        config: &TrainConfig,
        dir: Option<&Path>,
        resume: bool,
    ) -> Result<(Self, M)> {
        Self::start_on_rank(model, config, dir, resume, 0)
    }

    /// [`start`](Self::start) for rank `rank` of a run over several
    /// [ranks](super::Collective): every rank resumes from `dir`'s checkpoint, but only rank 0
    /// writes there (the log and the checkpoints) and shows progress.
    pub fn start_on_rank(
        model: M,
        config: &TrainConfig,
        dir: Option<&Path>,
        resume: bool,
        rank: usize,
    ) -> Result<(Self, M)> {
        config.validate()?;
        let writes = dir.filter(|_| rank == 0);
        if let Some(dir) = writes {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut optimizer = adamw(config.weight_decay, config.adam_beta2);
        let mut state = TrainState::start(config);
        let mut model = model;
        if resume {
            let dir =
                dir.ok_or_else(|| Error::InvalidConfig("resuming needs a run directory".into()))?;
            let ckpt = checkpoint::locate(dir).ok_or_else(|| Error::Checkpoint {
                path: dir.join(checkpoint::CHECKPOINT_DIR),
                reason: "no checkpoint to resume from".into(),
            })?;
            state = checkpoint::load_state(&ckpt)?;
            state.check_resumes(config)?;
            model = checkpoint::load_model(&ckpt, model)?;
            optimizer = checkpoint::load_optimizer(&ckpt, optimizer)?;
        }
        let progress = config.progress && rank == 0;
        let logger = Logger::new(writes, progress, resume.then_some(state.step))?;
        let spine = Self {
            log: TrainLog::new(logger, config, state.step),
            stop: config.pause_after.unwrap_or(config.steps).min(config.steps),
            config: config.clone(),
            dir: writes.map(Path::to_path_buf),
            optimizer,
            state,
            updates_per_step: 1,
            history: Vec::new(),
            step_started: Instant::now(),
            _model: PhantomData,
        };
        Ok((spine, model))
    }

    /// Makes each step take `updates` optimizer updates (PPO's epochs × minibatches): the
    /// schedule then runs over `steps × updates` of them. Default 1.
    pub fn updates_per_step(mut self, updates: usize) -> Self {
        self.updates_per_step = updates.max(1);
        self
    }

    /// Where training stands.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// The index of the next step to run (from 0), and starts its clock; `None` once the run
    /// is done or paused.
    pub fn begin_step(&mut self) -> Option<usize> {
        self.step_started = Instant::now();
        (self.state.step < self.stop).then_some(self.state.step)
    }

    /// The learning rate of the step's `update`-th update (0 for a loop of one a step), as
    /// the schedule gives it over all updates, `warmup_fraction` of them warming up.
    pub fn lr(&self, update: usize) -> f64 {
        let total = self.config.steps * self.updates_per_step;
        self.config.schedule.rate(
            self.config.learning_rate,
            self.state.step * self.updates_per_step + update,
            (self.config.warmup_fraction * total as f64).round() as usize,
            total,
        )
    }

    /// One optimizer update of `model` by `grads`, the gradient of a loss worth `loss`:
    /// [`Error::Diverged`] when the loss is not finite, else the gradient clipped to the
    /// global norm `max_grad_norm` and an AdamW step at `lr`.
    pub fn update(
        &mut self,
        model: M,
        mut grads: GradientsParams,
        loss: f64,
        lr: f64,
    ) -> Result<M> {
        if !loss.is_finite() {
            return Err(Error::Diverged {
                step: self.state.step + 1,
                loss,
            });
        }
        grads::clip(&model, &mut grads, self.config.max_grad_norm);
        Ok(self.optimizer.step(lr, model, grads))
    }

    /// Ends the step: counts it, logs it (a record every `log_every` steps, the first and the
    /// last), calls `validate(model, step, lr)` every `valid_every` steps and at the last
    /// (logging the record it returns, if any), and checkpoints every `checkpoint_every`
    /// steps and where this call stops.
    pub fn end_step(
        &mut self,
        model: &M,
        done: StepDone,
        lr: f64,
        validate: impl FnOnce(&M, usize, f64) -> Result<Option<LogRecord>>,
    ) -> Result<()> {
        let took = self.step_started.elapsed();
        self.state.step += 1;
        self.state.tokens_seen += done.tokens as u64;
        let step = self.state.step;
        self.history.extend(self.log.step(step, lr, done, took)?);
        if (step.is_multiple_of(self.config.valid_every) || step == self.config.steps)
            && let Some(record) = validate(model, step, lr)?
        {
            self.log.record(&record)?;
            self.history.push(record);
        }
        let due =
            self.config.checkpoint_every > 0 && step.is_multiple_of(self.config.checkpoint_every);
        if let Some(dir) = &self.dir
            && (due || step == self.stop)
        {
            checkpoint::save(dir, model, &self.optimizer, &self.state)?;
        }
        Ok(())
    }

    /// Every record this call logged, and where training ended.
    pub fn finish(self) -> (Vec<LogRecord>, TrainState) {
        (self.history, self.state)
    }
}
