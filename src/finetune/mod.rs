//! Fine-tuning a pretrained backbone on a downstream task: a [`SequenceClassifier`] on the
//! pooled `[CLS]` state or a [`TokenClassifier`] on every word, trained by the same loop as
//! pretraining (its own learning rate and
//! schedule through its own [`TrainConfig`](crate::train::TrainConfig)), and scored by accuracy
//! and macro-F1.
//!
//! - [`ClassificationTask`]: labelled texts as `[CLS] text [SEP]` batches.
//! - [`fine_tune`]: trains a head and its backbone, then scores the test split;
//!   [`evaluate`]: accuracy and macro-F1 over a whole split; [`logits`]: the head's logits
//!   for a task's first examples.
//! - [`TaggingTask`]: tagged sentences for a [`TokenClassifier`], each word's class on its
//!   first token.
//! - [`FineTuned`]: a tuned encoder and head with their labels and tokenizer, saved in the
//!   run's directory and read back to export or tune further.
//! - [`knn`]: the k-nearest-neighbour probe of a frozen encoder's vectors; [`probe`]: the
//!   linear probe (logistic regression on them).
//! - [`images`]: a Vision Transformer's vectors of images, and its fine-tuning with an
//!   [`ImageClassifier`](crate::objectives::ImageClassifier), scored by accuracy.
//! - [`genre`]: the bundled Brown-corpus genre task and the documents it holds out of
//!   pretraining; [`spam`]: the bundled SpamAssassin e-mails, spam or ham; [`pos`]: Brown
//!   sentences tagged with universal parts of speech.
//!
//! A pretrained backbone is read with [`load_weights`](crate::train::checkpoint::load_weights).

pub mod genre;
pub mod images;
pub mod knn;
pub mod pos;
pub mod probe;
mod saved;
pub mod spam;
mod tagging;

pub use crate::dataset::labelled::{LabelledData, LabelledText, Subset, TaggedSentence};

pub use saved::{CLASSIFIER_FILE, ClassifierCard, FineTuned, HeadConfig};
pub use tagging::{TaggedTokens, TaggingTask};

use std::path::Path;

use burn::module::ModuleDisplay;

use burn::prelude::*;

use crate::blocks::EncoderBackbone;
use crate::data::{Task, TokenBatch, TokenExample, TokenSource, TokenTaskOf, body_len};
use crate::error::{Error, Result};
use crate::noise::IGNORE_INDEX;
use crate::objectives::{SequenceClassifier, TokenClassifier};
use crate::tokenize::Tokenizer;
use crate::util::rng::ExampleRng;

/// Labelled texts, tokenized and framed as `[CLS] text [SEP]` (a pair as
/// `[CLS] A [SEP] B [SEP]`, B in segment 1), cut to the sequence length.
pub type ClassificationTask = TokenTaskOf<LabelledTokens>;

/// Labelled texts as framed token ids, where segment B starts (the length for a single text)
/// and labels: the examples of a [`ClassificationTask`].
#[derive(Debug, Clone)]
pub struct LabelledTokens(Vec<(Vec<u32>, usize, u32)>);

impl ClassificationTask {
    /// `texts` over `tokenizer`, labels below `num_classes`, at most `seq_len` tokens each; a
    /// pair too long is cut longest first, as `transformers`' default truncation does.
    pub fn new(
        texts: &[LabelledText],
        tokenizer: &Tokenizer,
        num_classes: usize,
        seq_len: usize,
    ) -> Result<Self> {
        if texts.is_empty() {
            return Err(Error::EmptyCorpus("no labelled text to classify".into()));
        }
        if let Some(bad) = texts.iter().find(|t| t.label as usize >= num_classes) {
            return Err(Error::InvalidConfig(format!(
                "a text of {} has label {}, but the task has {num_classes} classes",
                bad.document, bad.label
            )));
        }
        let strings: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
        let seconds: Vec<&str> = texts.iter().filter_map(|t| t.pair.as_deref()).collect();
        let mut seconds = tokenizer.encode_batch(&seconds)?.into_iter();
        let special = tokenizer.special();
        let mut examples = Vec::with_capacity(texts.len());
        for (first, t) in tokenizer.encode_batch(&strings)?.into_iter().zip(texts) {
            let second = t.pair.as_ref().and_then(|_| seconds.next());
            // A pair has one more [SEP].
            let room = body_len(seq_len.saturating_sub(usize::from(second.is_some())))?;
            let (mut a, mut b) = (first.ids, second.map_or_else(Vec::new, |e| e.ids));
            let (keep_a, keep_b) = longest_first(a.len(), b.len(), room);
            a.truncate(keep_a);
            b.truncate(keep_b);
            let mut ids = [&[special.cls][..], &a, &[special.sep]].concat();
            let b_start = ids.len();
            if t.pair.is_some() {
                ids.extend(b.iter().chain([&special.sep]));
            }
            examples.push((ids, b_start, t.label));
        }
        Ok(Self::of(LabelledTokens(examples), special.pad))
    }
}

/// How many tokens of a first and a second text of lengths `a` and `b` to keep within `room`:
/// a short text is kept whole and the other cut; two long ones share the room (the first
/// keeps the odd token).
fn longest_first(a: usize, b: usize, room: usize) -> (usize, usize) {
    let half = room.div_ceil(2);
    if a + b <= room {
        (a, b)
    } else if a <= half {
        (a, room - a)
    } else if b <= room / 2 {
        (room - b, b)
    } else {
        (half, room - half)
    }
}

impl TokenSource for LabelledTokens {
    fn num_examples(&self) -> usize {
        self.0.len()
    }

    fn token_example(&self, index: usize, _rng: &mut ExampleRng) -> Result<TokenExample> {
        let (ids, b_start, label) = &self.0[index];
        let mut example = TokenExample::plain(ids.clone(), vec![IGNORE_INDEX; ids.len()]);
        example.segment_ids[*b_start..].fill(1);
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
    /// The logits `[n, classes]` of what the head scores in `batch` (its sequences, or its
    /// labelled tokens), from the backbone's states `hidden`.
    fn logits(&self, hidden: Tensor<3>, batch: &TokenBatch) -> Tensor<2>;
    /// The true classes `[n]` of what the head scores in `batch`.
    fn actual(&self, batch: &TokenBatch) -> Tensor<1, Int>;
    /// The true and the predicted classes `([n], [n])` of what the head scores in `batch`.
    fn predict(&self, hidden: Tensor<3>, batch: &TokenBatch) -> (Tensor<1, Int>, Tensor<1, Int>) {
        let actual = self.actual(batch);
        let n = actual.dims()[0];
        (actual, self.logits(hidden, batch).argmax(1).reshape([n]))
    }
}

impl Classifier for SequenceClassifier {
    fn num_classes(&self) -> usize {
        SequenceClassifier::num_classes(self)
    }

    fn logits(&self, hidden: Tensor<3>, _batch: &TokenBatch) -> Tensor<2> {
        SequenceClassifier::logits(self, hidden)
    }

    /// # Panics
    ///
    /// If `batch` carries no sequence labels.
    fn actual(&self, batch: &TokenBatch) -> Tensor<1, Int> {
        batch
            .labels
            .clone()
            .expect("a sequence task's batches carry labels")
    }
}

impl Classifier for TokenClassifier {
    fn num_classes(&self) -> usize {
        TokenClassifier::num_classes(self)
    }

    fn logits(&self, hidden: Tensor<3>, batch: &TokenBatch) -> Tensor<2> {
        self.logits_at(hidden, batch.target_positions.clone())
    }

    fn actual(&self, batch: &TokenBatch) -> Tensor<1, Int> {
        batch.target_ids.clone()
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

/// `head`'s logits on `backbone` for the first `n` examples of `task` (fewer if it has
/// fewer), on `device`: what two forms of one model (adapted and merged, say) are held
/// against each other on.
pub fn logits<M, H, T>(
    backbone: &M,
    head: &H,
    task: &T,
    n: usize,
    device: &Device,
) -> Result<Tensor<2>>
where
    M: EncoderBackbone,
    H: Classifier,
    T: Task<Example = TokenExample, Batch = TokenBatch>,
{
    let mut rng = crate::util::rng::example_rng(0, 0, 0);
    let examples = (0..n.min(task.num_examples()))
        .map(|i| task.example(i, &mut rng))
        .collect::<Result<Vec<_>>>()?;
    let batch = task.collate(&examples, device)?;
    let hidden = crate::objectives::encode_bidirectional(backbone, &batch);
    Ok(head.logits(hidden, &batch))
}

/// Checks that the `train` `[n, d]` and `test` `[m, d]` vectors a probe (`what`, in the error)
/// scores have a label each and that neither side is empty; returns the number of classes
/// (one more than the largest label).
fn classes_of(
    what: &str,
    train: &Tensor<2>,
    train_labels: &[usize],
    test: &Tensor<2>,
    test_labels: &[usize],
) -> Result<usize> {
    let ([n, _], [m, _]) = (train.dims(), test.dims());
    if n != train_labels.len() || m != test_labels.len() || n == 0 || m == 0 {
        return Err(Error::InvalidConfig(format!(
            "{what} needs a label per vector and vectors on both sides: {n} training vectors \
             with {} labels, {m} test vectors with {}",
            train_labels.len(),
            test_labels.len()
        )));
    }
    Ok(train_labels
        .iter()
        .chain(test_labels)
        .max()
        .map_or(0, |&c| c + 1))
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
                pair: None,
                label: 1,
            },
            LabelledText {
                document: "b".into(),
                text: "Short.".into(),
                pair: None,
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

    #[test]
    fn a_pair_is_two_segments_cut_longest_first() {
        let tokenizer = Tokenizer::bundled().unwrap();
        let s = tokenizer.special();
        let (a, b) = (
            "A man plays a guitar.",
            "Someone is making music outside on a sunny day, and people in the park stop to listen.",
        );
        let ids = |t: &str| tokenizer.encode(t).unwrap().ids;
        let (a_ids, b_ids) = (ids(a), ids(b));
        let pair = LabelledText {
            document: "p".into(),
            text: a.into(),
            pair: Some(b.into()),
            label: 0,
        };
        let whole = a_ids.len() + b_ids.len() + 3;
        let task = ClassificationTask::new(&[pair.clone()], &tokenizer, 2, whole).unwrap();
        let e = task.example(0, &mut example_rng(0, 0, 0)).unwrap();
        let expected = [&[s.cls][..], &a_ids, &[s.sep], &b_ids, &[s.sep]].concat();
        assert_eq!(e.input_ids, expected);
        let b_start = a_ids.len() + 2;
        assert!(e.segment_ids[..b_start].iter().all(|&g| g == 0));
        assert!(e.segment_ids[b_start..].iter().all(|&g| g == 1));
        // Four tokens too many: the longer text (B) loses them.
        assert!(b_ids.len() > a_ids.len() + 4);
        let task = ClassificationTask::new(&[pair], &tokenizer, 2, whole - 4).unwrap();
        let cut = task.example(0, &mut example_rng(0, 0, 0)).unwrap();
        assert_eq!(cut.input_ids[..b_start], expected[..b_start]);
        assert_eq!(cut.input_ids.len(), whole - 4);
        assert_eq!(longest_first(10, 10, 7), (4, 3));
        assert_eq!(longest_first(2, 10, 7), (2, 5));
        assert_eq!(longest_first(10, 2, 7), (5, 2));
        assert_eq!(longest_first(3, 4, 7), (3, 4));
    }
}
