//! Preference data for a reward model (and DPO): JSON lines `{"prompt", "chosen",
//! "rejected"}`, the answer people preferred and the one they did not, with an optional
//! `"margin"` (how much better `chosen` is, TRL's per-pair margin), `"task"` and `"split"`
//! (`train`, `valid` or `test`; default `train`).
//!
//! The bundled `data/preferences.jsonl` (built by `scripts/build_preferences.py`, see
//! `data/README.md`) pairs the right answer of each bundled instruction with a spoiled one.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{LabelledData, Subset, json_lines, line_fault};
use crate::corpus::bundled_data_dir;

/// A prompt with a preferred and a dispreferred answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Preference {
    /// The task it belongs to (`default` when the line names none).
    pub task: String,
    /// The prompt.
    pub prompt: String,
    /// The preferred answer.
    pub chosen: String,
    /// The other answer; never equal to `chosen`.
    pub rejected: String,
    /// How far `chosen` should score above `rejected` (0 when the line gives none).
    pub margin: f64,
    /// Its line in the file, from 1, for errors that name it.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    prompt: String,
    chosen: String,
    rejected: String,
    #[serde(default)]
    margin: Option<f64>,
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    split: Option<String>,
}

/// The bundled preference pairs.
pub fn bundled_path() -> PathBuf {
    bundled_data_dir().join("preferences.jsonl")
}

/// The preference pairs of `path`, by split. A line missing a field, with an empty answer,
/// with `chosen` equal to `rejected`, a margin that is not finite or an unknown split is an
/// error naming the line; so is a file without a training pair.
pub fn load_from(path: &Path) -> crate::Result<LabelledData<Preference>> {
    let mut data = LabelledData::default();
    for (line, item) in json_lines::<Line>(path)? {
        let fault = |m: String| line_fault(path, line, m);
        if item.chosen.trim().is_empty() || item.rejected.trim().is_empty() {
            return Err(fault("an answer is empty".into()));
        }
        if item.chosen == item.rejected {
            return Err(fault(
                "chosen and rejected are the same answer: the pair teaches nothing".into(),
            ));
        }
        let margin = item.margin.unwrap_or(0.0);
        if !margin.is_finite() {
            return Err(fault(format!("margin {margin} is not a number")));
        }
        let split = Subset::parse(item.split.as_deref().unwrap_or("train")).map_err(fault)?;
        data.subset_mut(split).push(Preference {
            task: item.task.unwrap_or_else(|| "default".into()),
            prompt: item.prompt,
            chosen: item.chosen,
            rejected: item.rejected,
            margin,
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

    #[test]
    fn the_bundled_pairs_differ_and_cover_six_tasks() {
        let data = load_from(&bundled_path()).unwrap();
        assert_eq!(data.train.len(), 6 * 300);
        assert_eq!(data.test.len(), 6 * 100);
        let tasks: std::collections::BTreeSet<_> = data.valid.iter().map(|p| &p.task).collect();
        assert_eq!(tasks.len(), 6);
        assert!(data.train.iter().all(|p| p.chosen != p.rejected));
    }

    #[test]
    fn faulty_lines_are_named() {
        let path = std::env::temp_dir().join(format!("pretext-prefs-{}", std::process::id()));
        for (text, wanted) in [
            (
                "{\"prompt\": \"a\", \"chosen\": \"b\"}\n",
                "line 1: missing field `rejected`",
            ),
            (
                "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n\
                 {\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"b\"}\n",
                "line 2: chosen and rejected are the same",
            ),
            (
                "{\"prompt\": \"a\", \"chosen\": \"\", \"rejected\": \"c\"}\n",
                "line 1: an answer is empty",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = load_from(&path).unwrap_err();
            assert!(matches!(err, Error::Json { .. }), "{err}");
            assert!(err.to_string().contains(wanted), "{err} lacks {wanted}");
        }
        std::fs::remove_file(path).unwrap();
    }
}
