//! Multi-task pretraining in the spirit of ERNIE 2.0: several objectives train one backbone,
//! each example drawn from one task in proportion to the tasks' weights, tasks joining the mix
//! at their own start step (all at once when every start is 0, or added over time as ERNIE 2.0's
//! continual multi-task learning).
//!
//! Tasks are the encoder objectives whose data are token batches: `mlm`, `clm`, `nsp`, `sop`,
//! and the mixes `bert` (mlm + nsp) and `albert` (n-gram mlm + sop), which are [`Mix`]es of
//! heads over one pass. A batch holds examples of several tasks; each task's examples go
//! through its own head. The loss is `Σ shareₜ · lossₜ`, each task's loss averaged over its
//! own targets in the whole step and weighted by its share of the draws (its weight over the
//! started tasks' total), so a task weighs as much as its share of the examples, on average.
//!
//! ERNIE 2.0 adds a task embedding to the input. Here each task `t` reads the segment ids
//! `2t` and `2t + 1` instead of 0 and 1: its own pair of segment embeddings, which holds the
//! task embedding (the backbone needs `2 × tasks` of them).
//!
//! This file is the model and data side of a mix: the heads, the draws and the batches. Which
//! objectives make the mix, with what settings, is the recipe layer's (its `multitask`
//! module, `pretrain --objectives FILE`).

use burn::prelude::*;
use rand::RngExt;

use super::{Clm, Loss, Mix, Mlm, Objective, ObjectiveOutput, PairHead, Weights};
use crate::blocks::{EncoderBackbone, TransformerEncoder, with_dropout_rows};
use crate::data::{Batch, Task, TokenBatch, TokenExample};
use crate::error::{Error, Result};
use crate::util::rng::{ExampleRng, pick_weighted};

/// The head of one task.
#[derive(Module, Debug)]
pub enum TaskHead {
    /// `mlm`.
    Mlm(Mlm),
    /// `clm`.
    Clm(Clm),
    /// `nsp` or `sop`.
    Pair(PairHead),
    /// `bert` or `albert`.
    MlmPair(Mix<Mlm, PairHead>),
}

impl TaskHead {
    /// The MLM head, if the task has one (`mlm`, `bert`, `albert`).
    pub fn mlm(&self) -> Option<&Mlm> {
        match self {
            Self::Mlm(mlm) => Some(mlm),
            Self::MlmPair(mix) => Some(mix.first()),
            Self::Clm(_) | Self::Pair(_) => None,
        }
    }

    /// The causal LM head, if the task is `clm`.
    pub fn clm(&self) -> Option<&Clm> {
        match self {
            Self::Clm(clm) => Some(clm),
            Self::Mlm(_) | Self::Pair(_) | Self::MlmPair(_) => None,
        }
    }

    /// The sentence-pair head, if the task has one (`nsp`, `sop`, `bert`, `albert`).
    pub fn pair(&self) -> Option<&PairHead> {
        match self {
            Self::Pair(pair) => Some(pair),
            Self::MlmPair(mix) => Some(mix.second()),
            Self::Mlm(_) | Self::Clm(_) => None,
        }
    }
}

/// The data side of a task: token examples and batches.
pub trait TokenTask: Task<Example = TokenExample, Batch = TokenBatch> {}

impl<T: Task<Example = TokenExample, Batch = TokenBatch>> TokenTask for T {}

impl Task for Box<dyn TokenTask> {
    type Example = TokenExample;
    type Batch = TokenBatch;

    fn num_examples(&self) -> usize {
        self.as_ref().num_examples()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<TokenExample> {
        self.as_ref().example(index, rng)
    }

    fn collate(&self, examples: &[TokenExample], device: &Device) -> Result<TokenBatch> {
        self.as_ref().collate(examples, device)
    }

    fn example_at(&self, index: usize, step: usize, rng: &mut ExampleRng) -> Result<TokenExample> {
        self.as_ref().example_at(index, step, rng)
    }
}

impl<M: EncoderBackbone> Objective<M> for TaskHead {
    type Batch = TokenBatch;

    fn forward(&self, backbone: &M, batch: TokenBatch) -> ObjectiveOutput {
        match self {
            Self::Mlm(h) => h.forward(backbone, batch),
            Self::Clm(h) => h.forward(backbone, batch),
            Self::Pair(h) => h.forward(backbone, batch),
            Self::MlmPair(h) => h.forward(backbone, batch),
        }
    }
}

/// Several tasks' heads over one backbone.
#[derive(Module, Debug)]
pub struct MultiTask {
    heads: Vec<TaskHead>,
}

impl MultiTask {
    /// The mix of `heads`, one per task, over `backbone`, which needs `2 × tasks` segment
    /// embeddings (see the module's documentation).
    pub fn new(backbone: &TransformerEncoder, heads: Vec<TaskHead>) -> Result<Self> {
        let needed = 2 * heads.len();
        if backbone.num_segments() < needed {
            return Err(Error::InvalidConfig(format!(
                "{} tasks read segment ids 0 to {}; the backbone has {} segment embeddings \
                 (build it with num_segments {needed})",
                heads.len(),
                needed.saturating_sub(1),
                backbone.num_segments()
            )));
        }
        Ok(Self { heads })
    }

    /// The head of task `task`.
    pub fn head(&self, task: usize) -> &TaskHead {
        &self.heads[task]
    }
}

impl<M: EncoderBackbone> Objective<M> for MultiTask {
    type Batch = MultiTaskBatch;

    fn forward(&self, backbone: &M, batch: MultiTaskBatch) -> ObjectiveOutput {
        let mut loss: Option<Loss> = None;
        let mut metrics = Vec::new();
        for part in batch.parts {
            let head = &self.heads[part.task];
            let out = with_dropout_rows(&part.rows, || head.forward(backbone, part.tokens));
            let weighted = out.loss.prefixed(&task_unit(part.task)).scaled(part.share);
            loss = Some(match loss {
                None => weighted,
                Some(sum) => sum.plus(weighted),
            });
            metrics.extend(out.metrics);
        }
        ObjectiveOutput {
            loss: loss.expect("a batch has at least one part"),
            metrics,
        }
    }
}

/// One example of a [`MultiTaskData`]: the task it was drawn for at its step, and its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiTaskExample {
    /// Index of the task.
    pub task: usize,
    /// The optimizer step it was drawn for, which fixes the tasks' shares of the loss.
    pub step: usize,
    /// The example, segment ids offset to the task's.
    pub tokens: TokenExample,
}

/// The prefix of task `t`'s units: its targets are counted apart from the other tasks'.
fn task_unit(task: usize) -> String {
    format!("task{task}/")
}

/// The examples of one task in a batch.
#[derive(Debug, Clone)]
pub struct TaskPart {
    /// Index of the task.
    pub task: usize,
    /// Where its examples sit in the batch (which fixes their dropout masks); as many as
    /// the part has examples.
    pub rows: Vec<usize>,
    /// The task's weight in the loss at this step: its share of the draws, its weight over
    /// the total weight of the tasks started.
    pub share: f64,
    /// Their batch.
    pub tokens: TokenBatch,
}

/// A batch of several tasks' examples, one part per task present.
#[derive(Debug, Clone)]
pub struct MultiTaskBatch {
    /// The parts, in task order.
    pub parts: Vec<TaskPart>,
}

impl Batch for MultiTaskBatch {
    fn num_tokens(&self) -> usize {
        self.parts.iter().map(|p| p.tokens.num_tokens).sum()
    }

    /// Each task's units, apart.
    fn weights(&self) -> Weights {
        let mut weights = Weights::default();
        for part in &self.parts {
            weights.add(&part.tokens.weights().prefixed(&task_unit(part.task)));
        }
        weights
    }
}

/// When a task of a mix is drawn: how often, and from which optimizer step on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskDraw {
    /// Relative weight: the task's share of the examples once it has started.
    pub weight: f64,
    /// The optimizer step from which the task is drawn.
    pub start_step: usize,
}

/// The data side of [`MultiTask`]: each example drawn from one of the tasks started by the
/// current step, in proportion to their weights.
pub struct MultiTaskData {
    tasks: Vec<Box<dyn TokenTask>>,
    draws: Vec<TaskDraw>,
    pad: u32,
}

impl std::fmt::Debug for MultiTaskData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiTaskData")
            .field("draws", &self.draws)
            .finish_non_exhaustive()
    }
}

impl MultiTaskData {
    /// The mix of `tasks`, each drawn as `draws` says (one each, at least one), padded with
    /// `pad`.
    pub fn new(tasks: Vec<Box<dyn TokenTask>>, draws: &[TaskDraw], pad: u32) -> Result<Self> {
        if draws.len() != tasks.len() || draws.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{} task draws for {} tasks",
                draws.len(),
                tasks.len()
            )));
        }
        Ok(Self {
            tasks,
            draws: draws.to_vec(),
            pad,
        })
    }

    /// The task a uniform draw `u` in [0, 1) picks among those started by `step`.
    pub fn pick(&self, u: f64, step: usize) -> usize {
        let weights: Vec<f64> = self
            .draws
            .iter()
            .map(|s| if s.start_step <= step { s.weight } else { 0.0 })
            .collect();
        pick_weighted(&weights, u)
    }
}

impl Task for MultiTaskData {
    type Example = MultiTaskExample;
    type Batch = MultiTaskBatch;

    fn num_examples(&self) -> usize {
        self.tasks
            .iter()
            .map(|t| t.num_examples())
            .max()
            .unwrap_or(0)
    }

    /// An example as at a step when every task has started.
    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<MultiTaskExample> {
        self.example_at(index, usize::MAX, rng)
    }

    fn example_at(
        &self,
        index: usize,
        step: usize,
        rng: &mut ExampleRng,
    ) -> Result<MultiTaskExample> {
        let task = self.pick(rng.random(), step);
        let data = &self.tasks[task];
        let mut tokens = data.example(index % data.num_examples(), rng)?;
        for s in &mut tokens.segment_ids {
            *s += 2 * task as u32;
        }
        Ok(MultiTaskExample { task, step, tokens })
    }

    fn collate(&self, examples: &[MultiTaskExample], device: &Device) -> Result<MultiTaskBatch> {
        // Token tasks all pad the same way, so the parts collate here, from borrowed examples.
        let Some(step) = examples.first().map(|e| e.step) else {
            return Err(Error::EmptyBatch);
        };
        let started: f64 = self
            .draws
            .iter()
            .filter(|s| s.start_step <= step)
            .map(|s| s.weight)
            .sum();
        let mut parts = Vec::new();
        for task in 0..self.tasks.len() {
            let rows: Vec<usize> = (0..examples.len())
                .filter(|&i| examples[i].task == task)
                .collect();
            if !rows.is_empty() {
                let mine: Vec<&TokenExample> = rows.iter().map(|&i| &examples[i].tokens).collect();
                parts.push(TaskPart {
                    task,
                    tokens: TokenBatch::collate(&mine, self.pad, device)?,
                    rows,
                    share: self.draws[task].weight / started,
                });
            }
        }
        Ok(MultiTaskBatch { parts })
    }
}
