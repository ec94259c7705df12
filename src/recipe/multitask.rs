//! A multi-task mix as a recipe writes it (ERNIE 2.0's continual multi-task learning): which
//! token objectives, with which settings, how often and from which step. The heads, draws
//! and batches are [`crate::objectives::multitask`]'s.
//!
//! A mix can be written as JSON (`pretrain --objectives FILE`); a task names a registered
//! objective (its reference settings, so `albert`'s pair loss weighs 5) or gives it in full:
//!
//! ```
//! let tasks = pretext::recipe::multitask::parse_tasks(r#"[
//!     {"objective": "mlm", "weight": 1.0},
//!     {"objective": "sop", "weight": 0.5, "start_step": 200}
//! ]"#).unwrap();
//! assert_eq!(tasks[1].start_step, 200);
//! ```

use std::path::Path;

use burn::prelude::Device;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::registry::{self, OBJECTIVES, ObjectiveRecipe, ObjectiveSettings, TokenTaskSettings};
use super::{Recipe, Run, RunReport};
use crate::blocks::TransformerEncoder;
use crate::dataset::Documents;
use crate::error::{Error, Result};
use crate::objectives::multitask::{MultiTask, MultiTaskData, TaskDraw};
use crate::preset::Preset;
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
    pub fn named(name: &str) -> Result<Self> {
        Ok(Self {
            objective: task_objective_named(name)?,
            weight: 1.0,
            start_step: 0,
        })
    }

    fn settings(&self) -> Result<&dyn TokenTaskSettings> {
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
fn task_objective_named(name: &str) -> Result<ObjectiveRecipe> {
    let objective = (registry::find(name)?.recipe)(Preset::Mini)?.objective;
    token_task(&objective)?;
    Ok(objective)
}

/// `objective` as a task of a mix, or an error naming the objectives that can be one.
fn token_task(objective: &ObjectiveRecipe) -> Result<&dyn TokenTaskSettings> {
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
pub fn parse_tasks(json: &str) -> Result<Vec<TaskSpec>> {
    parse_tasks_from(json, Path::new("<string>"))
}

/// Reads and parses a JSON file of [`TaskSpec`]s.
pub fn read_tasks(path: &Path) -> Result<Vec<TaskSpec>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_tasks_from(&text, path)
}

fn parse_tasks_from(json: &str, path: &Path) -> Result<Vec<TaskSpec>> {
    serde_json::from_str::<TaskList>(json)
        .map(|list| list.0)
        .map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })
}

/// The settings of `multitask`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiTaskSettings {
    /// The tasks.
    pub tasks: Vec<TaskSpec>,
}

/// `multitask`'s recipe: mlm and sop, each drawn half the time from the first step.
pub fn recipe(preset: Preset) -> Result<Recipe> {
    recipe_of(
        vec![TaskSpec::named("mlm")?, TaskSpec::named("sop")?],
        preset,
    )
}

/// The recipe of a mix of `tasks` (as `pretrain --objectives FILE` reads them) at `preset`'s
/// size: an encoder with a pair of segment embeddings per task.
pub fn recipe_of(tasks: Vec<TaskSpec>, preset: Preset) -> Result<Recipe> {
    let segments = 2 * tasks.len();
    let mut recipe = Recipe::new(
        ObjectiveRecipe::Multitask(MultiTaskSettings { tasks }),
        preset,
    )?;
    recipe.encoder.num_segments = segments;
    Ok(recipe)
}

impl ObjectiveSettings for MultiTaskSettings {
    fn segments(&self) -> usize {
        2 * self.tasks.len()
    }

    fn check(&self, recipe: &Recipe, tokenizer: &Tokenizer) -> Result<()> {
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

    fn run(&self, run: &Run) -> Result<RunReport> {
        let backbone = run.encoder()?;
        let head = mix_heads(&self.tasks, &backbone, run.device())?;
        run.train(backbone, head, |docs| {
            mix_data(&self.tasks, docs, run.tokenizer, run.seq_len())
        })
    }
}

/// The heads of a mix of `tasks` over `backbone`.
pub fn mix_heads(
    tasks: &[TaskSpec],
    backbone: &TransformerEncoder,
    device: &Device,
) -> Result<MultiTask> {
    let heads = tasks
        .iter()
        .map(|s| s.settings()?.head(backbone, device))
        .collect::<Result<_>>()?;
    MultiTask::new(backbone, heads)
}

/// The data of a mix of `tasks` over `documents`, sequences of at most `seq_len` tokens.
pub fn mix_data(
    tasks: &[TaskSpec],
    documents: &Documents,
    tokenizer: &Tokenizer,
    seq_len: usize,
) -> Result<MultiTaskData> {
    let data = tasks
        .iter()
        .map(|s| s.settings()?.task(documents, tokenizer, seq_len))
        .collect::<Result<_>>()?;
    let draws: Vec<TaskDraw> = tasks
        .iter()
        .map(|s| TaskDraw {
            weight: s.weight,
            start_step: s.start_step,
        })
        .collect();
    MultiTaskData::new(data, &draws, tokenizer.special().pad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockConfig;
    use crate::data::Batch;
    use crate::data::Task;
    use crate::dataset::tokenized::numbered_document;
    use crate::objectives::Objective;
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
        mix_data(&specs(json), &docs, &Tokenizer::bundled().unwrap(), 16).unwrap()
    }

    #[test]
    fn tasks_join_at_their_start_step_and_are_drawn_by_weight() {
        let _draws = crate::util::random::hold();
        let d =
            data(r#"[{"objective": "mlm", "weight": 3}, {"objective": "nsp", "start_step": 5}]"#);
        let draw = |step: usize| {
            let n = 4000;
            let hits = (0..n)
                .filter(|&i| {
                    let mut rng = example_rng(0, i as u64, 0);
                    let e = d.example_at(i % d.num_examples(), step, &mut rng);
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
            BlockConfig::new(2, 32),
        )
        .with_num_segments(4)
        .with_dropout(0.0)
        .init(&device)
        .unwrap();
        let specs = specs(r#"[{"objective": "mlm"}, {"objective": "clm"}]"#);
        let model = mix_heads(&specs, &backbone, &device).unwrap();
        let out = model.forward(&backbone, batch.clone());
        // Each task's mean loss over its own targets, weighted by its share of the draws.
        let expected: f32 = batch
            .parts
            .iter()
            .map(|p| {
                let alone = model.head(p.task).forward(&backbone, p.tokens.clone());
                let mean = alone.loss.normalized(&p.tokens.weights());
                assert_eq!(p.share, 0.5);
                mean.into_scalar::<f32>() * 0.5
            })
            .sum();
        let got = out.loss.normalized(&batch.weights()).into_scalar::<f32>();
        assert!((got - expected).abs() < 1e-4);
        // Too few segment embeddings for two tasks.
        let narrow =
            crate::blocks::TransformerEncoderConfig::new(50, 16, 1, BlockConfig::new(2, 32))
                .init(&device)
                .unwrap();
        assert!(mix_heads(&specs, &narrow, &device).is_err());
    }
}
