//! Preference data for a reward model (and DPO), one JSON object a line in either of two
//! forms:
//!
//! - a pair `{"prompt", "chosen", "rejected"}`: the answer people preferred and the one they
//!   did not, with an optional `"margin"` (how much better `chosen` is, TRL's per-pair margin);
//! - a ranking `{"prompt", "ranked": [best, …, worst]}`: K ≥ 2 distinct answers to one prompt
//!   as labelers ranked them (InstructGPT, Ouyang et al. 2022, §3.5), which holds C(K, 2)
//!   comparisons.
//!
//! Both take an optional `"task"` and `"split"` (`train`, `valid` or `test`; default
//! `train`). [`load_rankings`] reads every line as a [`Ranking`] (a pair is a ranking of two),
//! which the reward model scores as one group; [`load_from`] reads every line as the
//! [`Preference`] pairs it holds, which DPO trains on.
//!
//! The bundled `data/preferences.jsonl` (built by `scripts/build_preferences.py`, see
//! `data/README.md`) pairs the right answer of each bundled instruction with a spoiled one.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::labelled::{LabelledData, Subset, json_lines, line_fault};
use crate::corpus::bundled_data_dir;
use crate::error::Result;

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

/// A prompt with K ≥ 2 distinct answers ranked best first: a pair line is a ranking of two.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// The task it belongs to (`default` when the line names none).
    pub task: String,
    /// The prompt.
    pub prompt: String,
    /// The answers, best first; at least two, none empty, no two equal.
    pub answers: Vec<String>,
    /// How far each answer should score above every answer ranked below it: a pair line's
    /// `margin`, 0 for a ranked line (which has none).
    pub margin: f64,
    /// Its line in the file, from 1, for errors that name it.
    pub line: usize,
}

impl Ranking {
    /// Its C(K, 2) comparisons as preference pairs, in [`comparisons`] order, each with the
    /// ranking's margin and line.
    pub fn preferences(&self) -> impl Iterator<Item = Preference> + '_ {
        comparisons(self.answers.len()).map(|(better, worse)| Preference {
            task: self.task.clone(),
            prompt: self.prompt.clone(),
            chosen: self.answers[better].clone(),
            rejected: self.answers[worse].clone(),
            margin: self.margin,
            line: self.line,
        })
    }
}

/// The C(k, 2) comparisons of `k` answers ranked best first, as (better, worse) indices in
/// order: (0, 1), (0, 2), …, (0, k − 1), (1, 2), …, (k − 2, k − 1).
pub fn comparisons(k: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..k).flat_map(move |better| (better + 1..k).map(move |worse| (better, worse)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    prompt: String,
    chosen: Option<String>,
    rejected: Option<String>,
    ranked: Option<Vec<String>>,
    margin: Option<f64>,
    task: Option<String>,
    split: Option<String>,
}

/// A line's answers best first, each with the name errors call it by, and its margin; or
/// what is wrong with the line's form.
fn answers(
    chosen: Option<String>,
    rejected: Option<String>,
    ranked: Option<Vec<String>>,
    margin: Option<f64>,
) -> Result<(Vec<(String, String)>, f64), String> {
    match (chosen, rejected, ranked) {
        (Some(chosen), Some(rejected), None) => Ok((
            vec![("chosen".into(), chosen), ("rejected".into(), rejected)],
            margin.unwrap_or(0.0),
        )),
        (None, None, Some(ranked)) => {
            if margin.is_some() {
                return Err(
                    "`margin` belongs to a chosen/rejected pair, not to a `ranked` line".into(),
                );
            }
            if ranked.len() < 2 {
                return Err(format!(
                    "`ranked` holds {} answer(s): a ranking needs 2 or more",
                    ranked.len()
                ));
            }
            let named = ranked
                .into_iter()
                .enumerate()
                .map(|(i, answer)| (format!("ranked answer {}", i + 1), answer))
                .collect();
            Ok((named, 0.0))
        }
        (_, _, Some(_)) => Err("the line both ranks answers (`ranked`) and pairs them \
                                (`chosen`, `rejected`): give one form"
            .into()),
        (None, None, None) => Err("missing field `ranked` (or `chosen` and `rejected`)".into()),
        (None, Some(_), None) => Err("missing field `chosen`".into()),
        (Some(_), None, None) => Err("missing field `rejected`".into()),
    }
}

/// The bundled preference pairs.
pub fn bundled_path() -> PathBuf {
    bundled_data_dir().join("preferences.jsonl")
}

/// The rankings of `path`, by split, a pair line a ranking of two (chosen first). A line
/// missing a field, with both forms or neither, a `ranked` list of fewer than two answers, an
/// empty answer, two equal answers, a margin that is not finite or on a `ranked` line, or an
/// unknown split is an error naming the line; so is a file without a training line.
pub fn load_rankings(path: &Path) -> Result<LabelledData<Ranking>> {
    let mut data = LabelledData::default();
    for (line, item) in json_lines::<Line>(path)? {
        let fault = |m: String| line_fault(path, line, m);
        let (answers, margin) =
            answers(item.chosen, item.rejected, item.ranked, item.margin).map_err(fault)?;
        if let Some((name, _)) = answers.iter().find(|(_, a)| a.trim().is_empty()) {
            return Err(fault(format!("an answer is empty ({name})")));
        }
        for (i, (first, answer)) in answers.iter().enumerate() {
            if let Some((second, _)) = answers[i + 1..].iter().find(|(_, a)| a == answer) {
                return Err(fault(format!(
                    "{first} and {second} are the same answer: comparing them teaches nothing"
                )));
            }
        }
        if !margin.is_finite() {
            return Err(fault(format!("margin {margin} is not a number")));
        }
        let split = Subset::parse(item.split.as_deref().unwrap_or("train")).map_err(fault)?;
        data.subset_mut(split).push(Ranking {
            task: item.task.unwrap_or_else(|| "default".into()),
            prompt: item.prompt,
            answers: answers.into_iter().map(|(_, a)| a).collect(),
            margin,
            line,
        });
    }
    data.check_has_train(path)?;
    Ok(data)
}

/// The preference pairs of `path`, by split: each pair line, and the C(K, 2) (better, worse)
/// pairs of each ranked line in [`comparisons`] order, every pair keeping its line. Faulty
/// lines are errors as [`load_rankings`] names them.
pub fn load_from(path: &Path) -> Result<LabelledData<Preference>> {
    let rankings = load_rankings(path)?;
    let pairs = |set: &[Ranking]| set.iter().flat_map(Ranking::preferences).collect();
    Ok(LabelledData {
        train: pairs(&rankings.train),
        valid: pairs(&rankings.valid),
        test: pairs(&rankings.test),
        labels: rankings.labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    use crate::test_support::temp_file as file;

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
        let pair = "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n";
        for (text, wanted) in [
            (
                "{\"prompt\": \"a\", \"chosen\": \"b\"}\n".to_string(),
                "line 1: missing field `rejected`",
            ),
            (
                format!("{pair}{{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"b\"}}\n"),
                "line 2: chosen and rejected are the same answer",
            ),
            (
                "{\"prompt\": \"a\", \"chosen\": \"\", \"rejected\": \"c\"}\n".into(),
                "line 1: an answer is empty (chosen)",
            ),
            (
                "{\"prompt\": \"a\"}\n".into(),
                "line 1: missing field `ranked` (or `chosen` and `rejected`)",
            ),
            (
                format!("{pair}{{\"prompt\": \"a\", \"ranked\": [\"b\"]}}\n"),
                "line 2: `ranked` holds 1 answer(s): a ranking needs 2 or more",
            ),
            (
                "{\"prompt\": \"a\", \"ranked\": [\"b\", \"c\", \"d\", \"c\"]}\n".into(),
                "line 1: ranked answer 2 and ranked answer 4 are the same answer",
            ),
            (
                "{\"prompt\": \"a\", \"ranked\": [\"b\", \" \", \"d\"]}\n".into(),
                "line 1: an answer is empty (ranked answer 2)",
            ),
            (
                format!(
                    "{pair}{pair}{{\"prompt\": \"a\", \"ranked\": [\"b\", \"c\"], \"chosen\": \"b\", \"rejected\": \"c\"}}\n"
                ),
                "line 3: the line both ranks answers (`ranked`) and pairs them",
            ),
            (
                "{\"prompt\": \"a\", \"ranked\": [\"b\", \"c\"], \"margin\": 1.0}\n".into(),
                "line 1: `margin` belongs to a chosen/rejected pair",
            ),
        ] {
            let path = file("prefs-faults", &text);
            let err = load_rankings(&path).unwrap_err();
            assert!(matches!(err, Error::Json { .. }), "{err}");
            assert!(err.to_string().contains(wanted), "{err} lacks {wanted}");
            // DPO's pairs come from the same lines, and fail on them the same way.
            assert_eq!(load_from(&path).unwrap_err().to_string(), err.to_string());
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn a_pair_line_is_a_ranking_of_two_and_a_ranked_line_keeps_its_order() {
        let path = file(
            "prefs-rankings",
            "{\"prompt\": \"p\", \"chosen\": \"b\", \"rejected\": \"c\", \"margin\": 0.5}\n\
             \n\
             {\"prompt\": \"q\", \"ranked\": [\"x\", \"y\", \"z\"], \"task\": \"t\", \"split\": \"valid\"}\n",
        );
        let data = load_rankings(&path).unwrap();
        std::fs::remove_file(path).unwrap();
        assert_eq!(
            data.train,
            [Ranking {
                task: "default".into(),
                prompt: "p".into(),
                answers: vec!["b".into(), "c".into()],
                margin: 0.5,
                line: 1,
            }]
        );
        assert_eq!(
            data.valid,
            [Ranking {
                task: "t".into(),
                prompt: "q".into(),
                answers: vec!["x".into(), "y".into(), "z".into()],
                margin: 0.0,
                line: 3,
            }]
        );
    }

    #[test]
    fn load_from_expands_a_ranking_of_three_into_its_three_pairs_best_first() {
        let path = file(
            "prefs-expand",
            "{\"prompt\": \"p\", \"chosen\": \"b\", \"rejected\": \"c\", \"margin\": 0.5}\n\
             {\"prompt\": \"q\", \"ranked\": [\"x\", \"y\", \"z\"]}\n",
        );
        let data = load_from(&path).unwrap();
        std::fs::remove_file(path).unwrap();
        let pairs: Vec<_> = data
            .train
            .iter()
            .map(|p| {
                (
                    p.prompt.as_str(),
                    p.chosen.as_str(),
                    p.rejected.as_str(),
                    p.margin,
                    p.line,
                )
            })
            .collect();
        assert_eq!(
            pairs,
            [
                ("p", "b", "c", 0.5, 1),
                ("q", "x", "y", 0.0, 2),
                ("q", "x", "z", 0.0, 2),
                ("q", "y", "z", 0.0, 2),
            ]
        );
        assert!(data.valid.is_empty() && data.test.is_empty());
    }

    #[test]
    fn comparisons_are_every_better_worse_pair_once() {
        assert_eq!(comparisons(2).collect::<Vec<_>>(), [(0, 1)]);
        assert_eq!(
            comparisons(4).collect::<Vec<_>>(),
            [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
        );
        assert_eq!(comparisons(1).count(), 0);
    }
}
