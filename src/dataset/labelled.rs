//! Labelled datasets: a text (or pair) with its class, a sentence with a tag a word, the
//! train / valid / test subsets, and JSON-lines data files (instruction and preference pairs,
//! tagged sentences) read with errors that name the file and line.

use std::path::Path;

use crate::error::{Error, Result};

/// A text (or a pair of texts) with its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledText {
    /// The document it comes from (splits and leakage checks go by it).
    pub document: String,
    /// The text.
    pub text: String,
    /// The second text of a pair (entailment, paraphrase), read as segment B; `None` for a
    /// single text.
    pub pair: Option<String>,
    /// Its class, below the task's number of classes.
    pub label: u32,
}

/// A sentence with a class for each of its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedSentence {
    /// The document it comes from.
    pub document: String,
    /// Its words.
    pub words: Vec<String>,
    /// One class per word, below the task's number of classes.
    pub tags: Vec<u32>,
}

/// Which part of a labelled dataset an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subset {
    /// Fine-tuning data.
    Train,
    /// Model selection.
    Valid,
    /// The reported score.
    Test,
}

impl Subset {
    /// The bundled tasks' stratified split: within a class (or genre), in a fixed order, the
    /// item of rank `rank` goes to test when `rank % 10` is 0 or 5, to validation when it is
    /// 3, and to train otherwise (70 / 10 / 20).
    pub fn of_rank(rank: usize) -> Self {
        match rank % 10 {
            0 | 5 => Self::Test,
            3 => Self::Valid,
            _ => Self::Train,
        }
    }

    /// The subset a data file names: `train`, `valid` or `test`.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "train" => Ok(Self::Train),
            "valid" => Ok(Self::Valid),
            "test" => Ok(Self::Test),
            other => Err(format!("split {other:?} is not train, valid or test")),
        }
    }
}

/// A classification dataset: its class names and its three subsets of items `T` (labelled
/// texts, or tagged sentences).
#[derive(Debug, Clone)]
pub struct LabelledData<T = LabelledText> {
    /// Class names; a label indexes this list.
    pub labels: Vec<String>,
    /// Training items.
    pub train: Vec<T>,
    /// Validation items.
    pub valid: Vec<T>,
    /// Test items.
    pub test: Vec<T>,
}

impl<T> Default for LabelledData<T> {
    fn default() -> Self {
        Self {
            labels: Vec::new(),
            train: Vec::new(),
            valid: Vec::new(),
            test: Vec::new(),
        }
    }
}

impl<T> LabelledData<T> {
    /// The items of `subset`, to add to.
    pub fn subset_mut(&mut self, subset: Subset) -> &mut Vec<T> {
        match subset {
            Subset::Train => &mut self.train,
            Subset::Valid => &mut self.valid,
            Subset::Test => &mut self.test,
        }
    }

    /// The task `make` builds from the training items, and the one it builds from the
    /// validation items, or the training task again when there are none.
    pub fn tasks<K: Clone>(&self, make: impl Fn(&[T]) -> Result<K>) -> Result<(K, K)> {
        let train = make(&self.train)?;
        let valid = match self.valid.is_empty() {
            true => train.clone(),
            false => make(&self.valid)?,
        };
        Ok((train, valid))
    }

    /// An [`Error::EmptyCorpus`] naming `source` when it has no training item (a line whose
    /// split is `train`, or names none); validation and test may be empty.
    pub fn check_has_train(&self, source: &Path) -> Result<()> {
        if self.train.is_empty() {
            return Err(Error::EmptyCorpus(format!(
                "{} has no training item (a line whose split is train, or has none)",
                source.display()
            )));
        }
        Ok(())
    }

    /// An [`Error::EmptyCorpus`] naming `source` when a subset is empty.
    pub fn check_nonempty(&self, source: &Path) -> Result<()> {
        for (name, items) in [
            ("train", &self.train),
            ("valid", &self.valid),
            ("test", &self.test),
        ] {
            if items.is_empty() {
                return Err(Error::EmptyCorpus(format!(
                    "{} has no {name} items",
                    source.display()
                )));
            }
        }
        Ok(())
    }
}

/// Checks that a recipe's data file (`objective.settings.data`) is there, before any text is
/// read.
pub fn check_data_file(path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(Error::Recipe {
            field: "objective.settings.data".into(),
            reason: format!("{} is not a file", path.display()),
        });
    }
    Ok(())
}

/// The JSON objects of a data file, one a line (blank lines skipped), each with its line
/// number from 1; a line that does not parse is an [`Error::Json`] naming it.
pub(crate) fn json_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<(usize, T)>> {
    let text = crate::corpus::read_utf8(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map(|item| (i + 1, item))
                .map_err(|e| line_fault(path, i + 1, e.to_string()))
        })
        .collect()
}

/// An [`Error::Json`] at `line` of the data file `path`.
pub(crate) fn line_fault(path: &Path, line: usize, message: String) -> Error {
    Error::Json {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    }
}
