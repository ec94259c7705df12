//! Fine-tuning a pretrained backbone on a downstream task: a [`SequenceClassifier`] on the
//! pooled `[CLS]` state or a [`TokenClassifier`] on every word, trained by the same loop as
//! pretraining (its own learning rate and
//! schedule through its own [`TrainConfig`](crate::train::TrainConfig)), and scored by accuracy
//! and macro-F1.
//!
//! - [`ClassificationTask`]: labelled texts as `[CLS] text [SEP]` batches.
//! - [`fine_tune`]: trains a head and its backbone, then scores the test split;
//!   [`evaluate`]: accuracy and macro-F1 over a whole split.
//! - [`TaggingTask`]: tagged sentences for a [`TokenClassifier`], each word's class on its
//!   first token.
//! - [`genre`]: the bundled Brown-corpus genre task and the documents it holds out of
//!   pretraining; [`spam`]: the bundled SpamAssassin e-mails, spam or ham; [`pos`]: Brown
//!   sentences tagged with universal parts of speech.
//!
//! A pretrained backbone is read with [`load_weights`](crate::train::checkpoint::load_weights).

pub mod genre;
pub mod pos;
pub mod spam;
mod tagging;

pub use crate::dataset::labelled::{LabelledData, LabelledText, Subset};

pub use tagging::{TaggedSentence, TaggedTokens, TaggingTask};

use std::path::Path;

use burn::module::ModuleDisplay;

use burn::prelude::*;

use crate::blocks::EncoderBackbone;
use crate::data::{Task, TokenBatch, TokenExample, TokenSource, TokenTaskOf};
use crate::error::{Error, Result};
use crate::noise::IGNORE_INDEX;
use crate::objectives::{SequenceClassifier, TokenClassifier};
use crate::tokenize::Tokenizer;
use crate::util::rng::ExampleRng;

/// Labelled texts, tokenized and framed as `[CLS] text [SEP]`, cut to the sequence length.
pub type ClassificationTask = TokenTaskOf<LabelledTokens>;

/// Labelled texts as framed token ids and labels: the examples of a [`ClassificationTask`].
#[derive(Debug, Clone)]
pub struct LabelledTokens(Vec<(Vec<u32>, u32)>);

impl ClassificationTask {
    /// `texts` over `tokenizer`, labels below `num_classes`, at most `seq_len` tokens each.
    pub fn new(
        texts: &[LabelledText],
        tokenizer: &Tokenizer,
        num_classes: usize,
        seq_len: usize,
    ) -> Result<Self> {
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
        Ok(Self::of(LabelledTokens(examples), special.pad))
    }
}

impl TokenSource for LabelledTokens {
    fn num_examples(&self) -> usize {
        self.0.len()
    }

    fn token_example(&self, index: usize, _rng: &mut ExampleRng) -> Result<TokenExample> {
        let (ids, label) = &self.0[index];
        let mut example = TokenExample::plain(ids.clone(), vec![IGNORE_INDEX; ids.len()]);
        example.label = Some(*label);
        Ok(example)
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
) -> Result<Scores>
where
    M: EncoderBackbone,
    H: Classifier,
    T: Task<Example = TokenExample, Batch = TokenBatch>,
{
    let (mut actual, mut predicted) = (Vec::new(), Vec::new());
    let mut rng = crate::util::rng::example_rng(0, 0, 0);
    let ints = |t: Tensor<1, Int>| crate::util::ints(t).into_iter().map(|c| c as u32);
    for start in (0..task.num_examples()).step_by(batch_size.max(1)) {
        let end = (start + batch_size.max(1)).min(task.num_examples());
        let examples = (start..end)
            .map(|i| task.example(i, &mut rng))
            .collect::<Result<Vec<_>>>()?;
        let batch = task.collate(&examples, device)?;
        let hidden = crate::objectives::encode_bidirectional(backbone, &batch);
        let (a, p) = head.predict(hidden, &batch);
        actual.extend(ints(a));
        predicted.extend(ints(p));
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
) -> Result<(crate::train::TrainReport<M, H>, Scores)>
where
    M: EncoderBackbone + Module + ModuleDisplay,
    H: Classifier + crate::objectives::Objective<M, Batch = TokenBatch>,
    T: Task<Example = TokenExample, Batch = TokenBatch>,
{
    let mut trainer =
        crate::train::Trainer::new(crate::pretrainer::Pretrainer::new(backbone, head), config)
            .device(device);
    if let Some(dir) = dir {
        trainer = trainer.output(dir);
    }
    let report = trainer.fit(train, valid)?;
    let model = report.model.valid();
    let inner = device.clone().inner();
    let scores = evaluate(&model.backbone, &model.objective, test, 64, &inner)?;
    Ok((report, scores))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::example_rng;

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
        let e = task.example(0, &mut example_rng(0, 0, 0)).unwrap();
        assert_eq!(e.input_ids.len(), 6);
        assert_eq!((e.input_ids[0], e.input_ids[5]), (s.cls, s.sep));
        assert_eq!(e.label, Some(1));
        let second = task.example(1, &mut example_rng(0, 0, 0)).unwrap();
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
