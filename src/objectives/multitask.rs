//! Multi-task pretraining in the spirit of ERNIE 2.0: several objectives train one backbone,
//! each example drawn from one task in proportion to the tasks' weights, tasks joining the mix
//! at their own start step (all at once when every start is 0, or added over time as ERNIE 2.0's
//! continual multi-task learning).
//!
//! Tasks are the encoder objectives whose data are token batches: `mlm`, `clm`, `nsp`, `sop`,
//! and the mixes `bert` (mlm + nsp) and `albert` (n-gram mlm + sop), which are [`Mix`]es of
//! heads over one pass; each takes its settings from the recipe registry (so `albert`'s pair
//! loss weighs 5), or from a task written in full. A batch holds examples of several tasks;
//! each task's examples go through its own head. The loss is `Σ shareₜ · lossₜ`, each task's loss averaged over its
//! own targets in the whole step and weighted by its share of the draws (its weight over the
//! started tasks' total), so a task weighs as much as its share of the examples, on average.
//!
//! ERNIE 2.0 adds a task embedding to the input. Here each task `t` reads the segment ids
//! `2t` and `2t + 1` instead of 0 and 1: its own pair of segment embeddings, which holds the
//! task embedding (the backbone needs `2 × tasks` of them).
//!
//! A mix can be written as JSON (`pretrain --objectives FILE`):
//!
//! ```
//! let tasks = pretext::objectives::multitask::parse_tasks(r#"[
//!     {"objective": "mlm", "weight": 1.0},
//!     {"objective": "sop", "weight": 0.5, "start_step": 200}
//! ]"#).unwrap();
//! assert_eq!(tasks[1].start_step, 200);
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::prelude::*;
use rand::RngExt;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::{Clm, Loss, Mix, Mlm, Objective, ObjectiveOutput, PairHead, Weights};
use crate::blocks::{EncoderBackbone, TransformerEncoder, with_dropout_rows};
use crate::data::{Batch, Documents, Task, TokenBatch, TokenExample};
use crate::error::Error;
use crate::util::rng::{ExampleRng, pick_weighted};
use crate::preset::Preset;
use crate::recipe::registry::{self, OBJECTIVES};
use crate::recipe::{
    ObjectiveRecipe, ObjectiveSettings, Recipe, Run, RunReport, TokenTaskSettings,
};
use crate::tokenize::Tokenizer;

/// One task of a mix: which objective, how often it is drawn, from which step on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The objective and its settings: in a file, its name (for the registry's defaults, e.g.
    /// `"albert"`) or a whole `{"name": …, "settings": {…}}`. One over token batches: `mlm`,
    /// `clm`, `nsp`, `sop`, `bert` or `albert`.
    #[serde(deserialize_with = "task_objective")]
    pub objective: ObjectiveRecipe,
    /// Relative weight: the task's share of the examples once it has started. Positive and
    /// finite; default 1.
    #[serde(default = "one", deserialize_with = "positive_weight")]
    pub weight: f64,
    /// The optimizer step from which the task is drawn. Default 0.
    #[serde(default)]
    pub start_step: usize,
}

impl TaskSpec {
    /// The registry's objective `name` as a task of weight 1 from step 0.
    pub fn named(name: &str) -> crate::Result<Self> {
        Ok(Self {
            objective: task_objective_named(name)?,
            weight: 1.0,
            start_step: 0,
        })
    }

    fn settings(&self) -> crate::Result<&dyn TokenTaskSettings> {
        token_task(&self.objective)
    }
}

fn one() -> f64 {
    1.0
}

fn positive_weight<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let w = f64::deserialize(d)?;
    if w > 0.0 && w.is_finite() {
        Ok(w)
    } else {
        Err(de::Error::custom(format!(
            "a task's weight must be positive and finite, got {w}"
        )))
    }
}

/// The registry's defaults of `name`, if it can be a task.
fn task_objective_named(name: &str) -> crate::Result<ObjectiveRecipe> {
    let objective = (registry::find(name)?.recipe)(Preset::Mini)?.objective;
    token_task(&objective)?;
    Ok(objective)
}

/// `objective` as a task of a mix, or an error naming the objectives that can be one.
fn token_task(objective: &ObjectiveRecipe) -> crate::Result<&dyn TokenTaskSettings> {
    if let Some(task) = objective.settings().token_task() {
        return Ok(task);
    }
    let tasks: Vec<&str> = OBJECTIVES
        .iter()
        .filter_map(|e| {
            let objective = (e.recipe)(Preset::Tiny).ok()?.objective;
            objective.settings().token_task().map(|_| e.name)
        })
        .collect();
    Err(Error::Recipe {
        field: "objective".into(),
        reason: format!(
            "{} cannot be a task of a multi-task mix; its tasks are objectives over token \
             batches: {}",
            objective.name(),
            tasks.join(", ")
        ),
    })
}

/// A task's objective: a name, or a whole `{"name": …, "settings": {…}}`.
fn task_objective<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectiveRecipe, D::Error> {
    struct NameOrRecipe;
    impl<'de> Visitor<'de> for NameOrRecipe {
        type Value = ObjectiveRecipe;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an objective's name or {\"name\": …, \"settings\": {…}}")
        }

        fn visit_str<E: de::Error>(self, name: &str) -> Result<ObjectiveRecipe, E> {
            task_objective_named(name).map_err(E::custom)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectiveRecipe, A::Error> {
            let objective =
                ObjectiveRecipe::deserialize(de::value::MapAccessDeserializer::new(map))?;
            token_task(&objective).map_err(de::Error::custom)?;
            Ok(objective)
        }
    }
    d.deserialize_any(NameOrRecipe)
}

/// Checks that a list of tasks has something to train from the first step.
fn check_tasks(tasks: &[TaskSpec]) -> Result<(), String> {
    if tasks.is_empty() {
        return Err("the list of objectives is empty".into());
    }
    if tasks.iter().all(|t| t.start_step > 0) {
        return Err(
            "no objective starts at step 0: the first steps would have nothing to train".into(),
        );
    }
    Ok(())
}

/// The list as a whole must start with something to train.
fn task_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TaskSpec>, D::Error> {
    let tasks = Vec::<TaskSpec>::deserialize(d)?;
    check_tasks(&tasks).map_err(de::Error::custom)?;
    Ok(tasks)
}

#[derive(Deserialize)]
struct TaskList(#[serde(deserialize_with = "task_list")] Vec<TaskSpec>);

/// Parses a JSON list of [`TaskSpec`]s; errors name the line and column at fault.
pub fn parse_tasks(json: &str) -> crate::Result<Vec<TaskSpec>> {
    parse_tasks_from(json, Path::new("<string>"))
}

/// Reads and parses a JSON file of [`TaskSpec`]s.
pub fn read_tasks(path: &Path) -> crate::Result<Vec<TaskSpec>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_tasks_from(&text, path)
}

fn parse_tasks_from(json: &str, path: &Path) -> crate::Result<Vec<TaskSpec>> {
    serde_json::from_str::<TaskList>(json)
        .map(|list| list.0)
        .map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })
}

/// The recipe settings of `multitask`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiTaskRecipe {
    /// The tasks.
    pub tasks: Vec<TaskSpec>,
}

/// `multitask`'s recipe: mlm and sop, each drawn half the time from the first step.
pub fn recipe(preset: Preset) -> crate::Result<Recipe> {
    recipe_of(
        vec![TaskSpec::named("mlm")?, TaskSpec::named("sop")?],
        preset,
    )
}

/// The recipe of a mix of `tasks` (as `pretrain --objectives FILE` reads them) at `preset`'s
/// size: an encoder with a pair of segment embeddings per task.
pub fn recipe_of(tasks: Vec<TaskSpec>, preset: Preset) -> crate::Result<Recipe> {
    let segments = 2 * tasks.len();
    let mut recipe = Recipe::new(
        ObjectiveRecipe::Multitask(MultiTaskRecipe { tasks }),
        preset,
    )?;
    recipe.encoder.num_segments = segments;
    Ok(recipe)
}

impl ObjectiveSettings for MultiTaskRecipe {
    fn segments(&self) -> usize {
        2 * self.tasks.len()
    }

    fn check(&self, recipe: &Recipe, tokenizer: &Tokenizer) -> crate::Result<()> {
        let field = |reason| Error::Recipe {
            field: "objective.settings.tasks".into(),
            reason,
        };
        check_tasks(&self.tasks).map_err(field)?;
        for (i, task) in self.tasks.iter().enumerate() {
            let in_task = |e: Error| e.in_field(&format!("objective.settings.tasks.{i}"));
            token_task(&task.objective).map_err(in_task)?;
            if !(task.weight > 0.0 && task.weight.is_finite()) {
                return Err(field(format!(
                    "task {i}'s weight must be positive, got {}",
                    task.weight
                )));
            }
            task.objective
                .settings()
                .check(recipe, tokenizer)
                .map_err(in_task)?;
        }
        Ok(())
    }

    fn run(&self, run: &Run) -> crate::Result<RunReport> {
        let backbone = run.encoder()?;
        let head = MultiTask::new(&backbone, &self.tasks, run.device())?;
        run.train(backbone, head, |docs| {
            MultiTaskData::new(&self.tasks, docs, run.tokenizer, run.seq_len())
        })
    }
}

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

    fn example(&self, index: usize, rng: &mut ExampleRng) -> crate::Result<TokenExample> {
        self.as_ref().example(index, rng)
    }

    fn collate(&self, examples: &[TokenExample], device: &Device) -> crate::Result<TokenBatch> {
        self.as_ref().collate(examples, device)
    }

    fn set_step(&self, step: usize) {
        self.as_ref().set_step(step)
    }
}

/// The run of an objective over token batches, alone: a fresh encoder, the objective's head
/// and its task, as a multi-task mix would build them for it.
pub fn run_token_task(objective: &dyn TokenTaskSettings, run: &Run) -> crate::Result<RunReport> {
    let backbone = run.encoder()?;
    let head = objective.head(&backbone, run.device())?;
    run.train(backbone, head, |docs| {
        objective.task(docs, run.tokenizer, run.seq_len())
    })
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
    /// One head per task of `specs`, for `backbone`, which needs `2 × tasks` segment
    /// embeddings (see the module's documentation).
    pub fn new(
        backbone: &TransformerEncoder,
        specs: &[TaskSpec],
        device: &Device,
    ) -> crate::Result<Self> {
        let needed = 2 * specs.len();
        if backbone.num_segments() < needed {
            return Err(Error::InvalidConfig(format!(
                "{} tasks read segment ids 0 to {}; the backbone has {} segment embeddings \
                 (build it with num_segments {needed})",
                specs.len(),
                needed - 1,
                backbone.num_segments()
            )));
        }
        Ok(Self {
            heads: specs
                .iter()
                .map(|s| s.settings()?.head(backbone, device))
                .collect::<crate::Result<_>>()?,
        })
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

/// One example of a [`MultiTaskData`]: the task it was drawn for, and its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiTaskExample {
    /// Index of the task.
    pub task: usize,
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

/// The data side of [`MultiTask`]: each example drawn from one of the tasks started by the
/// current step, in proportion to their weights.
pub struct MultiTaskData {
    tasks: Vec<Box<dyn TokenTask>>,
    specs: Vec<TaskSpec>,
    step: AtomicUsize,
    pad: u32,
}

impl std::fmt::Debug for MultiTaskData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiTaskData")
            .field("specs", &self.specs)
            .field("step", &self.step)
            .finish()
    }
}

impl MultiTaskData {
    /// Each task of `specs` over `documents`, sequences of at most `seq_len` tokens.
    pub fn new(
        specs: &[TaskSpec],
        documents: &Documents,
        tokenizer: &Tokenizer,
        seq_len: usize,
    ) -> crate::Result<Self> {
        Self::from_tasks(
            specs,
            specs
                .iter()
                .map(|s| s.settings()?.task(documents, tokenizer, seq_len))
                .collect::<crate::Result<_>>()?,
            tokenizer.special().pad,
        )
    }

    /// The mix of ready-made `tasks`, one per spec, padded with `pad`.
    pub fn from_tasks(
        specs: &[TaskSpec],
        tasks: Vec<Box<dyn TokenTask>>,
        pad: u32,
    ) -> crate::Result<Self> {
        if specs.len() != tasks.len() || specs.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{} task specs for {} tasks",
                specs.len(),
                tasks.len()
            )));
        }
        Ok(Self {
            tasks,
            specs: specs.to_vec(),
            step: AtomicUsize::new(0),
            pad,
        })
    }

    /// The task a uniform draw `u` in [0, 1) picks among those started by `step`.
    pub fn pick(&self, u: f64, step: usize) -> usize {
        let weights: Vec<f64> = self
            .specs
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

    fn set_step(&self, step: usize) {
        self.step.store(step, Ordering::Relaxed);
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> crate::Result<MultiTaskExample> {
        let task = self.pick(rng.random(), self.step.load(Ordering::Relaxed));
        let data = &self.tasks[task];
        let mut tokens = data.example(index % data.num_examples(), rng)?;
        for s in &mut tokens.segment_ids {
            *s += 2 * task as u32;
        }
        Ok(MultiTaskExample { task, tokens })
    }

    fn collate(
        &self,
        examples: &[MultiTaskExample],
        device: &Device,
    ) -> crate::Result<MultiTaskBatch> {
        // Token tasks all pad the same way, so the parts collate here, from borrowed examples.
        let step = self.step.load(Ordering::Relaxed);
        let started: f64 = self
            .specs
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
                    share: self.specs[task].weight / started,
                });
            }
        }
        if parts.is_empty() {
            return Err(Error::InvalidConfig("cannot collate an empty batch".into()));
        }
        Ok(MultiTaskBatch { parts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tokenized::numbered_document;
    use crate::util::rng::example_rng;

    fn specs(json: &str) -> Vec<TaskSpec> {
        parse_tasks(json).unwrap()
    }

    #[test]
    fn a_file_parses_with_defaults() {
        let _draws = crate::util::random::hold();
        let tasks = specs(
            r#"[{"objective": "mlm"}, {"objective": "sop", "weight": 0.5, "start_step": 10}]"#,
        );
        let summary: Vec<_> = tasks
            .iter()
            .map(|t| (t.objective.name(), t.weight, t.start_step))
            .collect();
        assert_eq!(summary, [("mlm", 1.0, 0), ("sop", 0.5, 10)]);
        // A task's settings in full, as config.json writes them.
        let json = serde_json::to_string(&tasks).unwrap();
        let again = specs(&json);
        assert_eq!(serde_json::to_string(&again).unwrap(), json);
    }

    #[test]
    fn errors_name_the_line_at_fault() {
        let _draws = crate::util::random::hold();
        let line_of = |json: &str| match parse_tasks(json) {
            Err(Error::ConfigFile { line, reason, .. }) => (line, reason),
            other => panic!("{other:?}"),
        };
        let (line, reason) =
            line_of("[\n  {\"objective\": \"mlm\"},\n  {\"objective\": \"xlnet\"}\n]");
        assert_eq!(line, 3, "{reason}");
        assert!(reason.contains("xlnet"), "{reason}");
        let (line, _) = line_of("[\n  {\"objective\": \"mlm\",\n   \"weight\": -1}\n]");
        assert_eq!(line, 3);
        let (line, _) = line_of("[\n  {\"objective\": \"mlm\"\n  {\"objective\": \"sop\"}\n]");
        assert_eq!(line, 3, "not valid JSON");
        let (line, _) = line_of("[\n  {\"objective\": \"mlm\", \"wieght\": 2}\n]");
        assert_eq!(line, 2, "unknown field");
        assert!(parse_tasks("[]").is_err());
        assert!(parse_tasks(r#"[{"objective": "mlm", "start_step": 5}]"#).is_err());
    }

    fn data(json: &str) -> MultiTaskData {
        let docs = Documents::from(vec![numbered_document(
            "d",
            1000,
            &[5, 7, 4, 9, 6, 8, 7, 5],
            2,
        )]);
        MultiTaskData::new(&specs(json), &docs, &Tokenizer::bundled().unwrap(), 16).unwrap()
    }

    #[test]
    fn tasks_join_at_their_start_step_and_are_drawn_by_weight() {
        let _draws = crate::util::random::hold();
        let d =
            data(r#"[{"objective": "mlm", "weight": 3}, {"objective": "nsp", "start_step": 5}]"#);
        let draw = |step: usize| {
            d.set_step(step);
            let n = 4000;
            let hits = (0..n)
                .filter(|&i| {
                    let e = d.example(i % d.num_examples(), &mut example_rng(0, i as u64, 0));
                    e.unwrap().task == 1
                })
                .count();
            hits as f64 / n as f64
        };
        assert_eq!(draw(0), 0.0, "nsp drawn before its start");
        let share = draw(5);
        assert!((share - 0.25).abs() < 0.03, "nsp share {share}");
    }

    #[test]
    fn each_task_reads_its_own_segment_ids() {
        let _draws = crate::util::random::hold();
        let d = data(r#"[{"objective": "mlm"}, {"objective": "nsp"}]"#);
        for i in 0..40 {
            let e = d
                .example(i % d.num_examples(), &mut example_rng(0, 0, i as u64))
                .unwrap();
            let want = [2 * e.task as u32, 2 * e.task as u32 + 1];
            assert!(
                e.tokens.segment_ids.iter().all(|s| want.contains(s)),
                "{e:?}"
            );
        }
    }

    #[test]
    fn a_batch_splits_by_task_and_the_loss_weighs_tasks_by_examples() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let d = data(r#"[{"objective": "mlm"}, {"objective": "clm"}]"#);
        let examples: Vec<_> = (0..8)
            .map(|i| {
                d.example(i % d.num_examples(), &mut example_rng(1, 0, i as u64))
                    .unwrap()
            })
            .collect();
        let batch = d.collate(&examples, &device).unwrap();
        let counts: usize = batch.parts.iter().map(|p| p.rows.len()).sum();
        assert_eq!(counts, 8);
        let backbone = crate::blocks::TransformerEncoderConfig::new(
            Tokenizer::bundled().unwrap().vocab_size(),
            16,
            1,
            2,
            32,
        )
        .with_num_segments(4)
        .with_dropout(0.0)
        .init(&device)
        .unwrap();
        let specs = specs(r#"[{"objective": "mlm"}, {"objective": "clm"}]"#);
        let model = MultiTask::new(&backbone, &specs, &device).unwrap();
        let out = model.forward(&backbone, batch.clone());
        // Each task's mean loss over its own targets, weighted by its share of the draws.
        let expected: f32 = batch
            .parts
            .iter()
            .map(|p| {
                let alone = model.heads[p.task].forward(&backbone, p.tokens.clone());
                let mean = alone.loss.normalized(&p.tokens.weights());
                assert_eq!(p.share, 0.5);
                mean.into_scalar::<f32>() * 0.5
            })
            .sum();
        let got = out.loss.normalized(&batch.weights()).into_scalar::<f32>();
        assert!((got - expected).abs() < 1e-4);
        // Too few segment embeddings for two tasks.
        let narrow = crate::blocks::TransformerEncoderConfig::new(50, 16, 1, 2, 32)
            .init(&device)
            .unwrap();
        assert!(MultiTask::new(&narrow, &specs, &device).is_err());
    }
}
