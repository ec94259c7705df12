//! Fine-tuning a pretrained backbone on a downstream task: a [`SequenceClassifier`] on the
//! pooled `[CLS]` state or a [`TokenClassifier`] on every word, trained by the same loop as pretraining (its own learning rate and
//! schedule through its own [`TrainConfig`](crate::train::TrainConfig)), and scored by accuracy
//! and macro-F1.
//!
//! - [`load_backbone`]: the weights a pretraining run saved (`OUT/backbone.bpk`) into a
//!   backbone of the same shape, with a typed error when the shapes differ.
//! - [`ClassificationTask`]: labelled texts as `[CLS] text [SEP]` batches.
//! - [`fine_tune`]: trains a head and its backbone, then scores the test split;
//!   [`evaluate`]: accuracy and macro-F1 over a whole split.
//! - [`TaggingTask`]: tagged sentences for a [`TokenClassifier`], each word's class on its
//!   first token.
//! - [`genre`]: the bundled Brown-corpus genre task and the documents it holds out of
//!   pretraining; [`spam`]: the bundled SpamAssassin e-mails, spam or ham; [`pos`]: Brown
//!   sentences tagged with universal parts of speech; [`instructions`]: prompt/completion pairs
//!   for supervised fine-tuning of a causal LM; [`preferences`]: preferred and dispreferred
//!   answers for a reward model.

pub mod genre;
pub mod instructions;
pub mod pos;
pub mod preferences;
pub mod spam;
mod tagging;

pub use tagging::{TaggedSentence, TaggingTask};

use std::path::Path;

use burn::module::ModuleDisplay;
use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;

use crate::blocks::EncoderBackbone;
use crate::data::{Task, TokenBatch, TokenExample};
use crate::error::Error;
use crate::noise::IGNORE_INDEX;
use crate::util::rng::ExampleRng;
use crate::objectives::{SequenceClassifier, TokenClassifier};
use crate::tokenize::Tokenizer;

/// A text with its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledText {
    /// The document it comes from (splits and leakage checks go by it).
    pub document: String,
    /// The text.
    pub text: String,
    /// Its class, below the task's number of classes.
    pub label: u32,
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
    pub fn tasks<K: Clone>(
        &self,
        make: impl Fn(&[T]) -> crate::Result<K>,
    ) -> crate::Result<(K, K)> {
        let train = make(&self.train)?;
        let valid = match self.valid.is_empty() {
            true => train.clone(),
            false => make(&self.valid)?,
        };
        Ok((train, valid))
    }

    /// An [`Error::EmptyCorpus`] naming `source` when it has no training item (a line whose
    /// split is `train`, or names none); validation and test may be empty.
    pub fn check_has_train(&self, source: &Path) -> crate::Result<()> {
        if self.train.is_empty() {
            return Err(Error::EmptyCorpus(format!(
                "{} has no training item (a line whose split is train, or has none)",
                source.display()
            )));
        }
        Ok(())
    }

    /// An [`Error::EmptyCorpus`] naming `source` when a subset is empty.
    pub fn check_nonempty(&self, source: &Path) -> crate::Result<()> {
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
pub(crate) fn check_data_file(path: &Path) -> crate::Result<()> {
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
fn json_lines<T: serde::de::DeserializeOwned>(path: &Path) -> crate::Result<Vec<(usize, T)>> {
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
fn line_fault(path: &Path, line: usize, message: String) -> Error {
    Error::Json {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    }
}

/// Labelled texts, tokenized and framed as `[CLS] text [SEP]`, cut to the sequence length.
#[derive(Debug, Clone)]
pub struct ClassificationTask {
    examples: Vec<(Vec<u32>, u32)>,
    pad: u32,
}

impl ClassificationTask {
    /// `texts` over `tokenizer`, labels below `num_classes`, at most `seq_len` tokens each.
    pub fn new(
        texts: &[LabelledText],
        tokenizer: &Tokenizer,
        num_classes: usize,
        seq_len: usize,
    ) -> crate::Result<Self> {
        if texts.is_empty() {
            return Err(Error::EmptyCorpus("no labelled text to classify".into()));
        }
        let room = crate::data::body_len(seq_len)?;
        if let Some(bad) = texts.iter().find(|t| t.label as usize >= num_classes) {
            return Err(Error::InvalidConfig(format!(
                "a text of {} has label {}, but the task has {num_classes} classes",
                bad.document, bad.label
            )));
        }
        let strings: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
        let special = tokenizer.special();
        let examples = tokenizer
            .encode_batch(&strings)?
            .into_iter()
            .zip(texts)
            .map(|(encoded, t)| {
                let body = &encoded.ids[..encoded.ids.len().min(room)];
                let mut ids = Vec::with_capacity(body.len() + 2);
                ids.push(special.cls);
                ids.extend_from_slice(body);
                ids.push(special.sep);
                (ids, t.label)
            })
            .collect();
        Ok(Self {
            examples,
            pad: special.pad,
        })
    }
}

impl Task for ClassificationTask {
    type Example = TokenExample;
    type Batch = TokenBatch;

    fn num_examples(&self) -> usize {
        self.examples.len()
    }

    fn example(&self, index: usize, _rng: &mut ExampleRng) -> crate::Result<TokenExample> {
        let (ids, label) = &self.examples[index];
        Ok(TokenExample {
            input_ids: ids.clone(),
            segment_ids: vec![0; ids.len()],
            targets: vec![IGNORE_INDEX; ids.len()],
            label: Some(*label),
            named: Default::default(),
        })
    }

    fn collate(&self, examples: &[TokenExample], device: &Device) -> crate::Result<TokenBatch> {
        TokenBatch::collate(examples, self.pad, device)
    }
}

/// Accuracy and macro-F1 of a classifier on a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Share of examples classified right.
    pub accuracy: f64,
    /// F1 averaged over the classes that occur as a label or a prediction.
    pub macro_f1: f64,
    /// Examples scored.
    pub examples: usize,
}

/// Accuracy and macro-F1 of `predicted` against `actual` over `num_classes` classes.
pub fn scores(actual: &[u32], predicted: &[u32], num_classes: usize) -> Scores {
    let mut tp = vec![0usize; num_classes];
    let mut fp = vec![0usize; num_classes];
    let mut fn_ = vec![0usize; num_classes];
    for (&a, &p) in actual.iter().zip(predicted) {
        if a == p {
            tp[a as usize] += 1;
        } else {
            fp[p as usize] += 1;
            fn_[a as usize] += 1;
        }
    }
    let f1s: Vec<f64> = (0..num_classes)
        .filter(|&c| tp[c] + fp[c] + fn_[c] > 0)
        .map(|c| 2.0 * tp[c] as f64 / (2 * tp[c] + fp[c] + fn_[c]) as f64)
        .collect();
    let n = actual.len();
    Scores {
        accuracy: tp.iter().sum::<usize>() as f64 / n.max(1) as f64,
        macro_f1: f1s.iter().sum::<f64>() / f1s.len().max(1) as f64,
        examples: n,
    }
}

/// A fine-tuned head that predicts classes: what [`evaluate`] scores.
pub trait Classifier {
    /// Number of classes.
    fn num_classes(&self) -> usize;
    /// The true and the predicted classes `([n], [n])` of what the head scores in `batch`
    /// (its sequences, or its labelled tokens), from the backbone's states `hidden`.
    fn predict(&self, hidden: Tensor<3>, batch: &TokenBatch) -> (Tensor<1, Int>, Tensor<1, Int>);
}

impl Classifier for SequenceClassifier {
    fn num_classes(&self) -> usize {
        SequenceClassifier::num_classes(self)
    }

    /// # Panics
    ///
    /// If `batch` carries no sequence labels.
    fn predict(&self, hidden: Tensor<3>, batch: &TokenBatch) -> (Tensor<1, Int>, Tensor<1, Int>) {
        let actual = batch
            .labels
            .clone()
            .expect("a sequence task's batches carry labels");
        let n = actual.dims()[0];
        (actual, self.logits(hidden).argmax(1).reshape([n]))
    }
}

impl Classifier for TokenClassifier {
    fn num_classes(&self) -> usize {
        TokenClassifier::num_classes(self)
    }

    fn predict(&self, hidden: Tensor<3>, batch: &TokenBatch) -> (Tensor<1, Int>, Tensor<1, Int>) {
        let n = batch.target_ids.dims()[0];
        let logits = self.logits_at(hidden, batch.target_positions.clone());
        (batch.target_ids.clone(), logits.argmax(1).reshape([n]))
    }
}

/// Scores `head` on `backbone` over every example of `task`, in batches of `batch_size`,
/// on `device` (pass modules in inference mode, `model.valid()`).
pub fn evaluate<M, H, T>(
    backbone: &M,
    head: &H,
    task: &T,
    batch_size: usize,
    device: &Device,
) -> crate::Result<Scores>
where
    M: EncoderBackbone,
    H: Classifier,
    T: Task<Example = TokenExample, Batch = TokenBatch>,
{
    let (mut actual, mut predicted) = (Vec::new(), Vec::new());
    let mut rng = crate::util::rng::example_rng(0, 0, 0);
    let ints = |t: Tensor<1, Int>| -> crate::Result<Vec<u32>> {
        let values: Vec<i64> = t
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .map_err(|e| Error::InvalidConfig(format!("reading predictions: {e:?}")))?;
        Ok(values.into_iter().map(|c| c as u32).collect())
    };
    for start in (0..task.num_examples()).step_by(batch_size.max(1)) {
        let end = (start + batch_size.max(1)).min(task.num_examples());
        let examples = (start..end)
            .map(|i| task.example(i, &mut rng))
            .collect::<crate::Result<Vec<_>>>()?;
        let batch = task.collate(&examples, device)?;
        let hidden = crate::objectives::encode_bidirectional(backbone, &batch);
        let (a, p) = head.predict(hidden, &batch);
        actual.extend(ints(a)?);
        predicted.extend(ints(p)?);
    }
    Ok(scores(&actual, &predicted, head.num_classes()))
}

/// Fine-tunes `head` on `backbone`: trains both over `train` with `config` (validating on
/// `valid`, logging into `dir` when given), then scores the result on `test`. Returns the
/// training report and the test scores.
pub fn fine_tune<M, H, T>(
    backbone: M,
    head: H,
    [train, valid, test]: [&T; 3],
    config: &crate::train::TrainConfig,
    dir: Option<&Path>,
    device: &Device,
) -> crate::Result<(crate::train::TrainReport<M, H>, Scores)>
where
    M: EncoderBackbone + Module + ModuleDisplay,
    H: Classifier + crate::objectives::Objective<M, Batch = TokenBatch>,
    T: Task<Example = TokenExample, Batch = TokenBatch>,
{
    let mut trainer =
        crate::train::Trainer::new(crate::Pretrainer::new(backbone, head), config).device(device);
    if let Some(dir) = dir {
        trainer = trainer.output(dir);
    }
    let report = trainer.fit(train, valid)?;
    let model = report.model.valid();
    let scores = evaluate(
        &model.backbone,
        &model.objective,
        test,
        64,
        &device.clone().inner(),
    )?;
    Ok((report, scores))
}

/// Shapes of every parameter of a module, in visiting order.
fn shapes<M: Module>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl ModuleVisitor for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.shape().dims::<D>().to_vec());
        }
    }
    let mut visitor = Shapes(Vec::new());
    module.visit(&mut visitor);
    visitor.0
}

/// Loads backbone weights saved by a pretraining run (`backbone.bpk`) into `template`, a
/// backbone of the configuration the run used. Weights of another vocabulary or size are a
/// typed error, not a silent reshape.
pub fn load_backbone<M: Module>(path: &Path, template: M) -> crate::Result<M> {
    let expected = shapes(&template);
    let loaded = crate::train::checkpoint::load_weights(path, template)?;
    let found = shapes(&loaded);
    if found != expected {
        let first = expected
            .iter()
            .zip(&found)
            .position(|(a, b)| a != b)
            .unwrap_or(expected.len().min(found.len()));
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            reason: format!(
                "its weights do not fit this backbone: parameter {first} is {:?} in the file \
                 and {:?} here ({} parameters against {}); was it pretrained with another \
                 vocabulary or size?",
                found.get(first),
                expected.get(first),
                found.len(),
                expected.len()
            ),
        });
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_averages_the_classes() {
        // Class 0: tp 2, fn 1; class 1: tp 1, fp 1; class 2 absent.
        let s = scores(&[0, 0, 0, 1], &[0, 0, 1, 1], 3);
        assert!((s.accuracy - 0.75).abs() < 1e-12);
        let f1_0 = 2.0 * 2.0 / (4.0 + 0.0 + 1.0);
        let f1_1 = 2.0 * 1.0 / (2.0 + 1.0 + 0.0);
        assert!((s.macro_f1 - (f1_0 + f1_1) / 2.0).abs() < 1e-12);
        let perfect = scores(&[2, 1], &[2, 1], 3);
        assert_eq!((perfect.accuracy, perfect.macro_f1), (1.0, 1.0));
    }

    #[test]
    fn texts_are_framed_cut_and_labelled() {
        let tokenizer = Tokenizer::bundled().unwrap();
        let s = tokenizer.special();
        let texts = [
            LabelledText {
                document: "a".into(),
                text: "The rain in Spain falls mainly on the plain, they say.".into(),
                label: 1,
            },
            LabelledText {
                document: "b".into(),
                text: "Short.".into(),
                label: 0,
            },
        ];
        let task = ClassificationTask::new(&texts, &tokenizer, 2, 6).unwrap();
        let e = task
            .example(0, &mut crate::util::rng::example_rng(0, 0, 0))
            .unwrap();
        assert_eq!(e.input_ids.len(), 6);
        assert_eq!((e.input_ids[0], e.input_ids[5]), (s.cls, s.sep));
        assert_eq!(e.label, Some(1));
        let second = task
            .example(1, &mut crate::util::rng::example_rng(0, 0, 0))
            .unwrap();
        assert_eq!(second.label, Some(0));
        assert!(matches!(
            ClassificationTask::new(&texts, &tokenizer, 1, 6),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            ClassificationTask::new(&[], &tokenizer, 2, 6),
            Err(Error::EmptyCorpus(_))
        ));
    }
}
