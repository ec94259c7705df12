//! Instruction data for supervised fine-tuning (SFT): prompt/completion pairs as JSON lines,
//! `{"prompt": …, "completion": …}`, with an optional `"rationale"` (worked reasoning trained
//! between the two: chain-of-thought data), `"task"` (a name to score by) and `"split"`
//! (`train`, `valid` or `test`; default `train`).
//!
//! The bundled `data/instructions.jsonl` (built by `scripts/build_instructions.py`, see
//! `data/README.md`) holds six tasks made from the bundled texts whose answers a program can
//! check: copy, reverse, last word, word count (with its working as the rationale), Brown genre
//! and Shakespeare's next line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::labelled::{LabelledData, Subset, json_lines, line_fault};
use crate::corpus::bundled_data_dir;
use crate::error::Result;

/// One prompt and the answer taught for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The task it belongs to (`default` when the line names none).
    pub task: String,
    /// The prompt.
    pub prompt: String,
    /// Worked reasoning between prompt and completion, trained like the completion.
    pub rationale: Option<String>,
    /// The answer; never empty.
    pub completion: String,
    /// Its line in the file, from 1, for errors that name it.
    pub line: usize,
}

impl Instruction {
    /// What the model is taught to produce after the prompt: the rationale (if any), then the
    /// completion.
    pub fn answer(&self) -> String {
        match &self.rationale {
            Some(rationale) => format!("{rationale} {}", self.completion),
            None => self.completion.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    prompt: String,
    completion: String,
    rationale: Option<String>,
    task: Option<String>,
    split: Option<String>,
}

/// The bundled instruction data.
pub fn bundled_path() -> PathBuf {
    bundled_data_dir().join("instructions.jsonl")
}

/// The bundled instruction data, by split.
pub fn load() -> Result<LabelledData<Instruction>> {
    load_from(&bundled_path())
}

/// The instructions of `path`, by split. A line without `prompt` or `completion`, with an
/// empty completion or an unknown split is an error naming the line; so is a file without a
/// single training pair. Validation and test may be empty.
pub fn load_from(path: &Path) -> Result<LabelledData<Instruction>> {
    let mut data = LabelledData::default();
    for (line, item) in json_lines::<Line>(path)? {
        let fault = |m: String| line_fault(path, line, m);
        if item.completion.trim().is_empty() {
            return Err(fault(
                "the completion is empty: there is nothing to learn".into(),
            ));
        }
        let split = Subset::parse(item.split.as_deref().unwrap_or("train")).map_err(fault)?;
        data.subset_mut(split).push(Instruction {
            task: item.task.unwrap_or_else(|| "default".into()),
            prompt: item.prompt,
            rationale: item.rationale.filter(|r| !r.trim().is_empty()),
            completion: item.completion,
            line,
        });
    }
    data.check_has_train(path)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    use crate::test_support::temp_file as file;

    #[test]
    fn the_bundled_pairs_have_six_tasks_in_three_splits() {
        let data = load().unwrap();
        let tasks: std::collections::BTreeSet<_> = data.test.iter().map(|i| &i.task).collect();
        assert_eq!(tasks.len(), 6, "{tasks:?}");
        assert_eq!(data.train.len(), 6 * 600);
        assert_eq!(data.valid.len(), 6 * 40);
        assert_eq!(data.test.len(), 6 * 100);
        let count = data.train.iter().find(|i| i.task == "count").unwrap();
        let words = count.answer().split_whitespace().count();
        assert!(count.rationale.is_some() && words > 3, "{count:?}");
        // No test prompt is also a training prompt.
        let train: std::collections::HashSet<_> = data.train.iter().map(|i| &i.prompt).collect();
        assert!(data.test.iter().all(|i| !train.contains(&i.prompt)));
    }

    #[test]
    fn faulty_lines_are_named() {
        for (text, wanted) in [
            (
                "{\"prompt\": \"a\"}\n",
                "line 1: missing field `completion`",
            ),
            (
                "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"completion\": \"b\"}\n",
                "line 2: missing field `prompt`",
            ),
            (
                "\n{\"prompt\": \"a\", \"completion\": \" \"}\n",
                "line 2: the completion is empty",
            ),
            (
                "{\"prompt\": \"a\", \"completion\": \"b\", \"split\": \"dev\"}\n",
                "line 1: split \"dev\"",
            ),
        ] {
            let path = file("instructions-bad", text);
            let err = load_from(&path).unwrap_err();
            assert!(matches!(err, Error::Json { .. }), "{err}");
            assert!(err.to_string().contains(wanted), "{err} lacks {wanted}");
        }
        let path = file(
            "instructions-no-train",
            "{\"prompt\": \"a\", \"completion\": \"b\", \"split\": \"test\"}\n",
        );
        assert!(matches!(load_from(&path), Err(Error::EmptyCorpus(_))));
    }
}
