//! Fine-tuning: the genre task's held-out documents never reach pretraining, a saved backbone
//! loads whole into the fine-tuning model and a mismatched one is refused, and a classifier
//! fine-tunes on real labelled passages.

mod common;

use std::collections::BTreeSet;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use pretext::blocks::TransformerEncoder;
use pretext::blocks::{BlockConfig, EncoderBackbone, TransformerEncoderConfig};
use pretext::data::{Task, TokenBatch, TokenExample};
use pretext::dataset::bundled::{held_out_documents, pretraining_corpus};
use pretext::dataset::labelled_files::{LabelledFiles, LabelledKind};
use pretext::finetune::genre;
use pretext::finetune::{ClassificationTask, Classifier, Scores, TaggingTask, fine_tune, pos};
use pretext::objectives::{Objective, SequenceClassifierConfig, TokenClassifierConfig};
use pretext::train::checkpoint::load_weights;
use pretext::train::checkpoint::save_weights;
use pretext::{Error, Pretrainer, Tokenizer};

#[test]
fn held_out_genre_documents_never_reach_pretraining() {
    let held_out = held_out_documents().unwrap();
    let data = genre::load(100).unwrap();
    let docs = |texts: &[pretext::finetune::LabelledText]| -> BTreeSet<String> {
        texts.iter().map(|t| t.document.clone()).collect()
    };
    let (train_docs, valid_docs, test_docs) =
        (docs(&data.train), docs(&data.valid), docs(&data.test));
    assert!(valid_docs.is_subset(&held_out) && test_docs.is_subset(&held_out));
    assert!(train_docs.is_disjoint(&held_out));
    assert_eq!(valid_docs.len() + test_docs.len(), held_out.len());
    let pretraining: BTreeSet<String> = pretraining_corpus()
        .unwrap()
        .documents
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert!(
        pretraining.is_disjoint(&held_out),
        "a held-out document is pretrained on"
    );
    // Everything else is still there: the genre train documents and Shakespeare.
    assert!(train_docs.is_subset(&pretraining));
    assert!(pretraining.iter().any(|n| n.starts_with("shakespeare/")));
    assert_eq!(data.labels.len(), 15);
}

/// Every float parameter of `module`, flattened, in visiting order.
fn params<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct Values(Vec<Vec<f32>>);
    impl ModuleVisitor for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.push(data.try_to_vec().unwrap());
        }
    }
    let mut visitor = Values(Vec::new());
    module.visit(&mut visitor);
    visitor.0
}

#[test]
fn a_saved_backbone_loads_whole_and_a_mismatched_one_is_refused() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = Device::flex();
    let config = common::tiny_encoder(&tokenizer);
    let pretrained =
        pretext::util::random::init_seeded(&device, 1, || config.init(&device).unwrap());
    let dir = common::temp_dir("finetune-load");
    let path = dir.join("encoder.bpk");
    save_weights(&pretrained, &path).unwrap();

    let fresh = pretext::util::random::init_seeded(&device, 2, || config.init(&device).unwrap());
    let loaded = load_weights(&path, fresh.clone()).unwrap();
    assert_eq!(loaded.num_params(), pretrained.num_params());
    // Parameter by parameter: every tensor of the loaded backbone is the saved one. The tiny
    // encoder has 37: token, position and segment tables and the LayerNorm's scale and shift
    // (5), and per layer the weights and biases of four attention and two feed-forward linears
    // and of two LayerNorms (16, twice). The 27 randomly initialised ones (the tables, and the
    // linears' weights and biases) differ from the fresh model's; the 10 LayerNorm tensors
    // start as ones and zeros in both.
    let (saved, fresh_values, mapped) = (params(&pretrained), params(&fresh), params(&loaded));
    assert_eq!(mapped.len(), 37);
    assert_eq!(mapped, saved);
    let replaced = mapped
        .iter()
        .zip(&fresh_values)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(replaced, 27);
    // Every parameter comes from the file: the outputs are the pretrained model's.
    let ids = Tensor::<2, Int>::from_ints([[2, 40, 41, 3]], &device);
    let out = |m: &pretext::blocks::TransformerEncoder| m.valid().encode(ids.clone(), None, None);
    assert!(
        (out(&loaded) - out(&pretrained))
            .abs()
            .max()
            .into_scalar::<f32>()
            < 1e-6
    );
    assert!(
        (out(&fresh) - out(&pretrained))
            .abs()
            .max()
            .into_scalar::<f32>()
            > 1e-3
    );
    // The head is built fresh: it is not in the file, and it has the task's classes.
    let head = SequenceClassifierConfig::new(15, "genre".into())
        .init(&loaded, &device)
        .unwrap();
    assert_eq!(head.num_classes(), 15);

    for other in [
        TransformerEncoderConfig::new(tokenizer.vocab_size() + 1, 64, 2, BlockConfig::new(2, 256)),
        TransformerEncoderConfig::new(tokenizer.vocab_size(), 32, 2, BlockConfig::new(2, 256)),
        TransformerEncoderConfig::new(tokenizer.vocab_size(), 64, 3, BlockConfig::new(2, 256)),
    ] {
        let err = load_weights(&path, other.init(&device).unwrap()).unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Fine-tunes the head `make_head` builds on the tiny backbone for 60 steps over `train_task`;
/// returns the train losses and the scores on `valid_task`.
fn fine_tune_tiny<H, T>(
    steps: usize,
    make_head: impl FnOnce(&TransformerEncoder, &Device) -> H,
    train_task: &T,
    valid_task: &T,
) -> (Vec<f64>, Scores)
where
    H: Classifier + Objective<TransformerEncoder, Batch = TokenBatch>,
    Pretrainer<TransformerEncoder, H>: Module,
    T: Task<Example = TokenExample, Batch = TokenBatch>,
{
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = Device::flex().autodiff();
    let (backbone, head) = common::seeded(&device, || {
        let backbone = common::tiny_encoder(&tokenizer).init(&device).unwrap();
        let head = make_head(&backbone, &device);
        (backbone, head)
    });
    let (report, scores) = fine_tune(
        backbone,
        head,
        [train_task, valid_task, valid_task],
        &common::quick_config(steps),
        None,
        &device,
    )
    .unwrap();
    let losses = common::train_losses(&report.history);
    (losses, scores)
}

/// Steps of the genre fine-tuning, and what its mean loss over ten steps falls to, at most (the
/// closing note of issue 42 has the worst value over seeds).
const GENRE_STEPS: usize = 150;
const GENRE_LOSS_FALL: f64 = 0.9;

#[test]
fn a_classifier_fine_tunes_on_genre_passages() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let data = genre::load(100).unwrap();
    let classes = data.labels.len();
    let few = |texts: &[pretext::finetune::LabelledText], n: usize| -> Vec<_> {
        let step = (texts.len() / n).max(1);
        texts.iter().step_by(step).take(n).cloned().collect()
    };
    let train_task =
        ClassificationTask::new(&few(&data.train, 256), &tokenizer, classes, 64).unwrap();
    let valid = few(&data.valid, 64);
    let valid_task = ClassificationTask::new(&valid, &tokenizer, classes, 64).unwrap();
    let (losses, scores) = fine_tune_tiny(
        GENRE_STEPS,
        |backbone, device| {
            SequenceClassifierConfig::new(classes, "genre".into())
                .with_dropout(0.1)
                .init(backbone, device)
                .unwrap()
        },
        &train_task,
        &valid_task,
    );
    // The first and the last ten steps' mean, not one batch against another.
    let (head_loss, tail_loss) = common::ends(&losses, 10);
    let mut counts = vec![0usize; classes];
    for text in &valid {
        counts[text.label as usize] += 1;
    }
    let majority = *counts.iter().max().unwrap() as f64 / valid.len() as f64;
    eprintln!(
        "genre loss {head_loss:.3} -> {tail_loss:.3}, accuracy {:.3} (majority {majority:.3}), \
         macro-F1 {:.3}",
        scores.accuracy, scores.macro_f1
    );
    assert!(
        tail_loss < GENRE_LOSS_FALL * head_loss,
        "fine-tuning loss {head_loss} -> {tail_loss}"
    );
    assert_eq!(scores.examples, valid_task.num_examples());
    // A tiny encoder from random weights fits its 256 training passages (the loss above) but
    // does not generalise past the commonest genre in 150 steps (over 5 seeds its validation
    // accuracy sat between 0.14 and 0.22 against a majority share of 0.16-0.19), so the bar
    // here is uniform guessing's 1/15, which a head answering a rare class, or cut off from
    // its labels, stays under. The tagging test below shows a classifier generalising.
    assert!(
        scores.accuracy > 1.0 / classes as f64,
        "accuracy {} against chance {}",
        scores.accuracy,
        1.0 / classes as f64
    );
}

#[test]
fn a_token_classifier_fine_tunes_on_tagged_sentences() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let data = pos::load().unwrap();
    let classes = data.labels.len();
    let train_task = TaggingTask::new(&data.train[..256], &tokenizer, classes, 64).unwrap();
    let valid_task = TaggingTask::new(&data.valid, &tokenizer, classes, 64).unwrap();
    let (losses, scores) = fine_tune_tiny(
        60,
        |backbone, device| {
            TokenClassifierConfig::new(classes, "pos".into())
                .init(backbone, device)
                .unwrap()
        },
        &train_task,
        &valid_task,
    );
    let (first, last) = common::ends(&losses, 10);
    eprintln!(
        "tagging loss {first:.3} -> {last:.3}, accuracy {:.3}",
        scores.accuracy
    );
    assert!(last < 0.8 * first, "tagging loss {first} -> {last}");
    // Every word of the validation sentences is scored (none is cut at 64 tokens here).
    let words: usize = data.valid.iter().map(|s| s.words.len()).sum();
    assert!(scores.examples > words * 9 / 10 && scores.examples <= words);
    // Nouns are a quarter of the words: a tagger that learned something beats always-NOUN.
    let nouns = data
        .valid
        .iter()
        .flat_map(|s| &s.tags)
        .filter(|&&t| t == 6)
        .count();
    assert!(
        scores.accuracy > nouns as f64 / words as f64,
        "accuracy {} against {nouns} nouns of {words} words",
        scores.accuracy
    );
}

/// A committed labelled file of tests/fixtures/labelled/ (built by
/// scripts/build_labelled_fixtures.py).
fn labelled(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/labelled")
        .join(name)
}

/// How far the fine-tuning loss on one's own files falls, at least, in 60 steps: over 5 seeds
/// the mean of the last ten steps was at most 0.47 of the first ten's (topic pairs), 0.03
/// for the CoNLL names.
const OWN_LOSS_FALL: f64 = 0.8;

#[test]
fn a_classifier_fine_tunes_on_labelled_files_of_ones_own() {
    let tokenizer = Tokenizer::bundled().unwrap();
    // Topics as CSV (quoted commas and quotes) with a test file; topic pairs as JSON lines,
    // their validation held out of the training file.
    let csv = LabelledFiles::new(labelled("topics.csv")).with_test(labelled("topics-test.csv"));
    let pairs = LabelledFiles::new(labelled("pairs.jsonl"));
    for (files, classes, steps) in [(csv, 3, 60), (pairs, 3, 60)] {
        assert_eq!(files.kind().unwrap(), LabelledKind::Texts);
        let data = files.texts().unwrap();
        assert_eq!(data.labels.len(), classes);
        let test = if data.test.is_empty() {
            &data.valid
        } else {
            &data.test
        };
        assert!(!data.valid.is_empty() && !test.is_empty());
        let train_task = ClassificationTask::new(&data.train, &tokenizer, classes, 48).unwrap();
        let test_task = ClassificationTask::new(test, &tokenizer, classes, 48).unwrap();
        let (losses, scores) = fine_tune_tiny(
            steps,
            |backbone, device| {
                SequenceClassifierConfig::new(classes, "own".into())
                    .init(backbone, device)
                    .unwrap()
            },
            &train_task,
            &test_task,
        );
        let (first, last) = common::ends(&losses, 10);
        eprintln!(
            "{}: loss {first:.3} -> {last:.3}, accuracy {:.3} over {}",
            files.train.display(),
            scores.accuracy,
            scores.examples
        );
        assert!(last < OWN_LOSS_FALL * first, "loss {first} -> {last}");
        assert_eq!(scores.examples, test.len());
    }
}

#[test]
fn a_token_classifier_fine_tunes_on_a_conll_file() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let files = LabelledFiles::new(labelled("names.conll"));
    assert_eq!(files.kind().unwrap(), LabelledKind::Tags);
    let data = files.tagged().unwrap();
    assert_eq!(data.labels, ["B-LOC", "B-PER", "O"]);
    let classes = data.labels.len();
    let train_task = TaggingTask::new(&data.train, &tokenizer, classes, 32).unwrap();
    let valid_task = TaggingTask::new(&data.valid, &tokenizer, classes, 32).unwrap();
    let (losses, scores) = fine_tune_tiny(
        60,
        |backbone, device| {
            TokenClassifierConfig::new(classes, "names".into())
                .init(backbone, device)
                .unwrap()
        },
        &train_task,
        &valid_task,
    );
    let (first, last) = common::ends(&losses, 10);
    let words: usize = data.valid.iter().map(|s| s.words.len()).sum();
    let outside = data
        .valid
        .iter()
        .flat_map(|s| &s.tags)
        .filter(|&&t| t == 2)
        .count();
    eprintln!(
        "names: loss {first:.3} -> {last:.3}, accuracy {:.3} (all-O {:.3})",
        scores.accuracy,
        outside as f64 / words as f64
    );
    assert!(last < OWN_LOSS_FALL * first, "loss {first} -> {last}");
    assert_eq!(scores.examples, words);
}

#[test]
fn a_saved_fine_tuned_classifier_reads_back_the_same_and_refuses_damage() {
    use pretext::blocks::{AttentionMask, PoolerActivation};
    use pretext::finetune::{ClassifierCard, FineTuned, HeadConfig};
    use pretext::hf::ClassifierHead;
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = Device::flex();
    let config = common::tiny_encoder(&tokenizer);
    let head_config = SequenceClassifierConfig::new(3, "topics".into())
        .with_pooler_activation(PoolerActivation::Gelu);
    let encoder = common::tiny_backbone(&tokenizer, &device);
    let classifier = common::seeded(&device, || head_config.init(&encoder, &device).unwrap());
    let (head, classifier) = (
        HeadConfig::Sequence(head_config),
        ClassifierHead::Sequence(classifier),
    );
    let labels: Vec<String> = ["animals", "food", "weather"].map(String::from).to_vec();
    let tuned = FineTuned {
        card: ClassifierCard {
            encoder: config,
            head,
            labels: labels.clone(),
            seq_len: 32,
        },
        encoder,
        head: classifier,
        tokenizer,
    };
    let dir = common::temp_dir("fine-tuned-saved");
    tuned.save(&dir).unwrap();
    assert!(FineTuned::is_saved(&dir));
    let back = FineTuned::load(&dir, &device).unwrap();
    assert_eq!(back.card.labels, labels);
    let logits = |model: &FineTuned| {
        let ids = Tensor::<2, Int>::from_data([[2, 500, 900, 1200, 3]], &device);
        let mask = AttentionMask::padding(ids.clone().equal_elem(0));
        let hidden = model.encoder.encode(ids, None, Some(&mask));
        match &model.head {
            ClassifierHead::Sequence(head) => {
                assert_eq!(head.pooler_activation(), PoolerActivation::Gelu);
                head.logits(hidden).into_data().try_to_vec::<f32>().unwrap()
            }
            ClassifierHead::Token(_) => panic!("a sequence head was saved"),
        }
    };
    assert_eq!(logits(&back), logits(&tuned));
    // A truncated head file is a typed error naming it, as is a description whose label count
    // is not the head's.
    let head_file = dir.join("head.bpk");
    let bytes = std::fs::read(&head_file).unwrap();
    std::fs::write(&head_file, &bytes[..bytes.len() / 2]).unwrap();
    let err = FineTuned::load(&dir, &device).unwrap_err();
    assert!(err.to_string().contains("head.bpk"), "{err}");
    std::fs::write(&head_file, &bytes).unwrap();
    let card_file = dir.join(pretext::finetune::CLASSIFIER_FILE);
    let card = std::fs::read_to_string(&card_file).unwrap();
    std::fs::write(
        &card_file,
        card.replace("\"weather\"", "\"weather\", \"sport\""),
    )
    .unwrap();
    let err = FineTuned::load(&dir, &device).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("4 label names"), "{err}");
}
