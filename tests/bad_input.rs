//! Bad input gets a typed error, never a panic.

mod common;

use burn::prelude::*;
use pretext::corpus::{Corpus, DocumentBoundary};
use pretext::data::PairKind;
use pretext::dataset::Documents;
use pretext::noise::bart::BartNoise;
use pretext::noise::{MaskUnit, MlmMasker, MlmMasking, PermutationMasking};
use pretext::objectives::unilm::UnilmSettings;
use pretext::objectives::{
    BartTask, ElectraConfig, MassTask, Mix, MlmConfig, MlmTask, PairHeadConfig, PermutationTask,
    SentencePairTask, SpanCorruption, T5Task, UnilmShares, UnilmTask,
};
use pretext::pretrainer::check_compatible;
use pretext::train::Trainer;
use pretext::util::rng::example_rng;
use pretext::{Error, Preset, Tokenizer};

#[test]
fn hidden_size_not_divisible_by_heads() {
    let mut cfg = Preset::Tiny.encoder(100);
    cfg.block.num_heads = 3;
    let err = cfg.init(&Device::flex()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::HeadsDoNotDivide {
                hidden: 64,
                heads: 3
            }
        ),
        "{err}"
    );
}

#[test]
fn mask_rate_outside_the_unit_interval() {
    let tokenizer = Tokenizer::bundled().unwrap();
    for rate in [-0.1, 1.01, f64::NAN] {
        let masking = MlmMasking {
            mask_prob: rate,
            ..MlmMasking::default()
        };
        let err = MlmMasker::for_tokenizer(masking, &tokenizer).unwrap_err();
        assert!(
            matches!(
                err,
                Error::RateOutOfRange {
                    name: "mask_prob",
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn sequence_longer_than_the_position_table() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let backbone = common::tiny_backbone(&tokenizer, &Device::flex());
    let err = check_compatible(&tokenizer, &backbone, 129).unwrap_err();
    assert!(
        matches!(err, Error::SequenceTooLong { len: 129, max: 128 }),
        "{err}"
    );
    assert!(check_compatible(&tokenizer, &backbone, 128).is_ok());
}

#[test]
fn tokenizer_vocab_differs_from_the_model_vocab() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let backbone = Preset::Tiny.encoder(5000).init(&Device::flex()).unwrap();
    let err = check_compatible(&tokenizer, &backbone, 64).unwrap_err();
    assert!(
        matches!(
            err,
            Error::VocabMismatch {
                tokenizer: 8192,
                model: 5000
            }
        ),
        "{err}"
    );
}

#[test]
fn empty_corpus_files_and_folders() {
    let dir = common::temp_dir("empty-corpus");
    let err = Corpus::from_dir(&dir, DocumentBoundary::File).unwrap_err();
    assert!(matches!(err, Error::EmptyCorpus(_)), "{err}");
    std::fs::write(dir.join("blank.txt"), "\n   \n").unwrap();
    let err = Corpus::from_dir(&dir, DocumentBoundary::File).unwrap_err();
    assert!(matches!(err, Error::EmptyCorpus(_)), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn non_utf8_corpus_file() {
    let dir = common::temp_dir("latin1");
    std::fs::write(dir.join("a.txt"), "Good text.\n").unwrap();
    std::fs::write(dir.join("b.txt"), b"caf\xe9 au lait\n").unwrap();
    let err = Corpus::from_dir(&dir, DocumentBoundary::File).unwrap_err();
    assert!(
        matches!(err, Error::NotUtf8 { ref path, offset: 3 } if path.ends_with("b.txt")),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sentence_pairs_from_single_sentence_documents_or_too_short_sequences() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let single = Corpus::from_texts(
        [
            ("a", "The rain fell on the hills all night."),
            ("b", "Nobody in the village slept."),
        ],
        DocumentBoundary::File,
    )
    .unwrap();
    let docs = Documents::tokenize(&single, &tokenizer).unwrap();
    for kind in [PairKind::NextSentence, PairKind::SentenceOrder] {
        let err = SentencePairTask::new(&docs, &tokenizer, kind, 64).unwrap_err();
        assert!(matches!(err, Error::EmptyCorpus(_)), "{err}");
    }
    let (_, train_docs, _) = common::real_text();
    for seq_len in [0, 3, 4] {
        let err = SentencePairTask::new(&train_docs, &tokenizer, PairKind::NextSentence, seq_len)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{seq_len}: {err}");
    }
}

#[test]
fn denoising_rates_outside_the_unit_interval_or_a_non_positive_lambda() {
    let (tokenizer, docs, _) = common::real_text();
    let none = BartNoise::NONE;
    for noise in [
        BartNoise {
            infill: 1.3,
            ..none
        },
        BartNoise { mask: -0.2, ..none },
        BartNoise {
            permute: 2.0,
            ..none
        },
        BartNoise {
            rotate: -1.0,
            ..none
        },
    ] {
        let err = BartTask::new(&docs, &tokenizer, noise, 64).unwrap_err();
        assert!(
            matches!(err, Error::RateOutOfRange { .. }),
            "{noise:?}: {err}"
        );
    }
    for lambda in [0.0, -3.0, f64::INFINITY] {
        let noise = BartNoise {
            poisson_lambda: lambda,
            ..BartNoise::BART
        };
        let err = BartTask::new(&docs, &tokenizer, noise, 64).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{lambda}: {err}");
    }
    for share in [0.0, 1.5, f64::NAN] {
        let err = MassTask::new(&docs, &tokenizer, share, 64).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{share}: {err}");
    }
    let tokenizer = tokenizer.with_sentinels(100).unwrap();
    for corruption in [
        SpanCorruption {
            noise_density: 1.5,
            mean_span_length: 3.0,
        },
        SpanCorruption {
            noise_density: 0.15,
            mean_span_length: 0.0,
        },
    ] {
        assert!(
            T5Task::new(&docs, &tokenizer, corruption, 64).is_err(),
            "{corruption:?}"
        );
    }
}

#[test]
fn documents_too_short_to_mask_and_too_few_sentinels() {
    let tokenizer = Tokenizer::bundled().unwrap();
    // One-token documents: nothing for span corruption to both hide and keep.
    let words = Corpus::from_texts([("a", "Rain"), ("b", "Snow")], DocumentBoundary::File).unwrap();
    let short = Documents::tokenize(&words, &tokenizer).unwrap();
    let t5 = tokenizer.clone().with_sentinels(100).unwrap();
    let err = T5Task::new(&short, &t5, SpanCorruption::default(), 64).unwrap_err();
    assert!(matches!(err, Error::EmptyCorpus(_)), "{err}");
    // Sequences with no room for text besides [CLS] and [SEP].
    for seq_len in [0, 2] {
        let err = MassTask::new(&short, &tokenizer, 0.5, seq_len).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{seq_len}: {err}");
        let err = BartTask::new(&short, &tokenizer, BartNoise::BART, seq_len).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{seq_len}: {err}");
    }
    // The bundled vocabulary has no sentinels; 128-token inputs need 7.
    let (_, docs, _) = common::real_text();
    let err = T5Task::new(&docs, &tokenizer, SpanCorruption::default(), 128).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotEnoughSentinels {
                needed: 7,
                found: 0
            }
        ),
        "{err}"
    );
}

#[test]
fn electra_generator_larger_than_the_discriminator_or_negative_weight() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = Device::flex();
    let backbone = common::tiny_backbone(&tokenizer, &device);
    for config in [
        ElectraConfig::new().with_generator_size(2.0),
        ElectraConfig::new().with_generator_layers(1.5),
        ElectraConfig::new().with_disc_weight(-1.0),
        ElectraConfig::new().with_disc_weight(f64::NAN),
    ] {
        let err = config.init(&backbone, &device).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{config:?}: {err}");
    }
    // A generator 0.9 as wide as a 300-wide discriminator is 270 wide, with 270 / 64 = 4
    // heads, which do not divide it.
    let wide = pretext::blocks::TransformerEncoderConfig::new(
        tokenizer.vocab_size(),
        300,
        1,
        pretext::blocks::BlockConfig::new(3, 64),
    )
    .init(&device)
    .unwrap();
    let err = ElectraConfig::new()
        .with_generator_size(0.9)
        .init(&wide, &device)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::HeadsDoNotDivide {
                hidden: 270,
                heads: 4
            }
        ),
        "{err}"
    );
}

#[test]
fn permuted_lm_share_outside_the_unit_interval_span_zero_or_nothing_to_predict() {
    let (tokenizer, docs, _) = common::real_text();
    for masking in [
        PermutationMasking {
            predict_share: 0.0,
            max_span: 5,
        },
        PermutationMasking {
            predict_share: 1.2,
            max_span: 5,
        },
        PermutationMasking {
            predict_share: f64::NAN,
            max_span: 5,
        },
        PermutationMasking {
            predict_share: 0.2,
            max_span: 0,
        },
    ] {
        let err = PermutationTask::xlnet(&docs, &tokenizer, masking, 64).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{masking:?}: {err}");
        let err = PermutationTask::mpnet(&docs, &tokenizer, masking, 64).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{masking:?}: {err}");
    }
    // No room for text, or a sequence of special tokens only.
    let err = PermutationTask::xlnet(&docs, &tokenizer, PermutationMasking::XLNET, 2).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    let err = PermutationMasking::XLNET
        .sample(&[false, false], &mut example_rng(0, 0, 0))
        .unwrap_err();
    assert!(matches!(err, Error::TextTooShort { .. }), "{err}");
}

#[test]
fn span_masking_and_unilm_settings_out_of_range() {
    let (tokenizer, docs, _) = common::real_text();
    for unit in [
        MaskUnit::Span {
            p: 0.0,
            max_words: 10,
        },
        MaskUnit::Span {
            p: 1.0,
            max_words: 10,
        },
        MaskUnit::Span {
            p: 0.2,
            max_words: 0,
        },
        MaskUnit::NGram { max_n: 0 },
    ] {
        let masking = MlmMasking::default().with_unit(unit);
        let err = MlmTask::new(&docs, &tokenizer, masking, 64).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{unit:?}: {err}");
    }
    let shares = UnilmShares {
        seq2seq: 0.5,
        ..Default::default()
    };
    let settings = |shares| UnilmSettings {
        masking: MlmMasking::default(),
        shares,
    };
    let err = UnilmTask::new(&docs, &tokenizer, &settings(shares), 64).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    let err = UnilmTask::new(&docs, &tokenizer, &settings(UnilmShares::default()), 3).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
}

#[test]
fn an_objectives_file_that_is_not_json_or_names_an_unknown_objective() {
    let dir = std::env::temp_dir().join(format!("pretext-objectives-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text, bad_line) in [
        (
            "not_json",
            "[\n  {\"objective\": \"mlm\"\n  {\"objective\": \"sop\"}\n]\n",
            3,
        ),
        (
            "unknown",
            "[\n  {\"objective\": \"mlm\"},\n  {\"objective\": \"gpt5\"}\n]\n",
            3,
        ),
        (
            "negative",
            "[\n  {\"objective\": \"mlm\", \"weight\": -2}\n]\n",
            2,
        ),
    ] {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, text).unwrap();
        let err = pretext::recipe::multitask::read_tasks(&path).unwrap_err();
        match err {
            Error::ConfigFile { line, .. } => assert_eq!(line, bad_line, "{name}: {err}"),
            other => panic!("{name}: {other}"),
        }
    }
    let missing = pretext::recipe::multitask::read_tasks(&dir.join("absent.json"));
    assert!(matches!(missing, Err(Error::Io { .. })));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn objective_weights_negative_or_all_zero() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = Device::flex();
    let backbone = common::tiny_backbone(&tokenizer, &device);
    for (a, b) in [(1.0, -0.5), (0.0, 0.0), (f64::NAN, 1.0)] {
        let mlm = MlmConfig::new().init(&backbone, &device);
        let nsp = PairHeadConfig::new(PairKind::NextSentence).init(&backbone, &device);
        let err = Mix::new(mlm, a, nsp, b).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{a}, {b}: {err}");
    }
}

#[test]
fn tokenizer_file_without_the_special_tokens() {
    let dir = common::temp_dir("no-specials");
    // The bundled tokenizer with `removed` taken out of its vocabulary.
    let without = |removed: &str| {
        let mut json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(pretext::corpus::bundled_data_dir().join("tokenizer.json")).unwrap(),
        )
        .unwrap();
        json["added_tokens"] = serde_json::json!([]);
        json["model"]["vocab"]
            .as_object_mut()
            .unwrap()
            .remove(removed);
        let path = dir.join(format!(
            "tokenizer-{}.json",
            removed.trim_matches(['[', ']'])
        ));
        std::fs::write(&path, json.to_string()).unwrap();
        path
    };
    let err = Tokenizer::from_file(without("[SEP]")).unwrap_err();
    assert!(
        matches!(err, Error::MissingSpecialToken(ref t) if t == "sep"),
        "{err}"
    );
    // Without a mask token (as GPT-2's) it loads, and serves what does not mask.
    let path = without("[MASK]");
    assert!(!Tokenizer::from_file(&path).unwrap().has_mask());
    let source = pretext::recipe::TokenizerSource {
        file: Some(path),
        sentinels: 0,
    };
    let recipe = |name: &str| {
        pretext::Recipe::named(name, pretext::Preset::Tiny)
            .unwrap()
            .with_tokenizer(source.clone())
            .unwrap()
    };
    match recipe("mlm").check() {
        Err(Error::Recipe { field, reason }) => {
            assert_eq!(field, "tokenizer");
            assert!(reason.contains("mask"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    recipe("clm").check().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn truncated_and_missing_checkpoints() {
    let (tokenizer, train_docs, valid_docs) = common::real_text();
    let device = Device::flex().autodiff();
    let task = common::mlm_task(&tokenizer, &train_docs, 32);
    let valid = common::mlm_task(&tokenizer, &valid_docs, 32);
    let model = || common::tiny_mlm(&tokenizer, &device);
    let config = common::quick_config(2);
    let dir = common::temp_dir("truncated");
    let run = |config: &pretext::train::TrainConfig, resume: bool| {
        Trainer::new(model(), config)
            .output(&dir)
            .resume(resume)
            .device(&device)
            .fit(&task, &valid)
    };

    let err = run(&config, true).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");

    run(&config, false).unwrap();
    let weights = dir.join("checkpoint").join("model.bpk");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let mut config = config;
    config.steps = 4;
    let err = run(&config, true).unwrap_err();
    assert!(
        matches!(err, Error::Checkpoint { ref path, .. } if path.ends_with("model.bpk")),
        "{err}"
    );

    std::fs::write(dir.join("checkpoint").join("state.json"), "{\"step\": ").unwrap();
    let err = run(&config, true).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn no_device_more_devices_than_examples_or_a_device_without_autodiff() {
    let (tokenizer, train_docs, valid_docs) = common::real_text();
    let device = Device::flex().autodiff();
    let task = common::mlm_task(&tokenizer, &train_docs, 32);
    let valid = common::mlm_task(&tokenizer, &valid_docs, 32);
    let model = || common::tiny_mlm(&tokenizer, &device);
    let mut config = common::quick_config(2);
    config.batch_size = 2;
    let run = |devices: &[Device]| {
        Trainer::new(model(), &config)
            .devices(devices)
            .fit(&task, &valid)
            .unwrap_err()
    };
    let err = run(&[]);
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    let err = run(&[device.clone(), device.clone(), device.clone()]);
    assert!(
        matches!(err, Error::InvalidConfig(ref m) if m.contains("3 devices")),
        "{err}"
    );
    let err = run(&[device.clone(), Device::flex()]);
    assert!(
        matches!(err, Error::InvalidConfig(ref m) if m.contains("autodiff")),
        "{err}"
    );
}

#[test]
fn a_loss_that_stops_being_finite_is_an_error_naming_the_step() {
    let (tokenizer, train_docs, valid_docs) = common::real_text();
    let device = Device::flex().autodiff();
    let task = common::mlm_task(&tokenizer, &train_docs, 32);
    let valid = common::mlm_task(&tokenizer, &valid_docs, 32);
    // A learning rate of 1e30 moves every weight by ~1e30 in the first update: the next
    // forward pass overflows.
    let config = common::quick_config(5)
        .with_learning_rate(1e30)
        .with_warmup_fraction(0.0);
    let err = Trainer::new(common::tiny_mlm(&tokenizer, &device), &config)
        .fit(&task, &valid)
        .unwrap_err();
    match err {
        Error::Diverged { step, loss } => {
            assert_eq!(step, 2, "the first step trains on finite weights");
            assert!(!loss.is_finite(), "{loss}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_export_directory_that_cannot_take_the_model_is_refused_before_any_work() {
    use pretext::hf::check_export_dir;
    let dir = common::temp_dir("export-dir");
    // Absent, or empty: fine.
    check_export_dir(&dir.join("absent"), false).unwrap();
    check_export_dir(&dir, false).unwrap();
    // A file where the directory should be: named, never a raw `File exists`.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = check_export_dir(&file, true).unwrap_err();
    assert!(
        matches!(&err, Error::HfModel { reason, .. } if reason.contains("a file is there")),
        "{err}"
    );
    // Not empty: only with force.
    let err = check_export_dir(&dir, false).unwrap_err();
    assert!(
        matches!(&err, Error::HfModel { reason, .. } if reason.contains("--force")),
        "{err}"
    );
    check_export_dir(&dir, true).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_step_too_large_for_the_machines_memory_is_refused_before_any_text_is_read() {
    use pretext::recipe::{Recipe, RunOptions};
    let mut recipe = Recipe::named("mlm", Preset::Tiny).unwrap();
    // What a tiny run needs is far below any machine's memory.
    assert!(recipe.step_memory() < (1u64 << 30) as f64);
    recipe.encoder.max_positions = 100_000;
    recipe.seq_len = 100_000;
    let err = recipe.check_memory(24 << 30).unwrap_err();
    assert!(
        matches!(&err, Error::Recipe { field, reason } if field == "seq_len" && reason.contains("GiB")),
        "{err}"
    );
    // Many examples of a modest length: the batch is what to lower.
    let mut wide = Recipe::named("mlm", Preset::Tiny).unwrap();
    wide.train.batch_size = 1 << 20;
    let err = wide.check_memory(24 << 30).unwrap_err();
    assert!(
        matches!(&err, Error::Recipe { field, .. } if field == "train.batch_size"),
        "{err}"
    );
    // A run on this machine is refused before its directory or its text is touched: the data
    // folder is empty, which reading would have reported.
    if pretext::device::host_memory().is_some() {
        let dir = common::temp_dir("too-long");
        recipe.data.dir = Some(dir.join("data"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let options = RunOptions::new(dir.join("run"), Device::flex().autodiff());
        let err = recipe.run(&options).unwrap_err();
        assert!(
            matches!(&err, Error::Recipe { field, .. } if field == "seq_len"),
            "{err}"
        );
        assert!(!dir.join("run/config.json").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_corrupt_starting_checkpoint_is_refused_before_any_text_is_read() {
    use pretext::recipe::{Recipe, RunOptions};
    let dir = common::temp_dir("corrupt-init");
    let device = Device::flex().autodiff();
    // A finished two-step run to start from, its encoder.bpk then cut short.
    let mut first = Recipe::named("mlm", Preset::Tiny).unwrap();
    first.data.dir = Some(common::small_corpus(&dir));
    first.train.steps = 2;
    first.train.progress = false;
    first
        .run(&RunOptions::new(dir.join("first"), device.clone()))
        .unwrap();
    let weights = dir.join("first/encoder.bpk");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    // Continued pretraining from it, over an empty folder that reading would have reported.
    let mut next = Recipe::named("mlm", Preset::Tiny)
        .unwrap()
        .init_from(dir.join("first"))
        .unwrap();
    next.data.dir = Some(dir.join("empty"));
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let err = next
        .run(&RunOptions::new(dir.join("next"), device))
        .unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_quantized_model_given_to_training() {
    let (tokenizer, train_docs, valid_docs) = common::real_text();
    let device = Device::flex().autodiff();
    let model = pretext::quantize::int8(common::tiny_mlm(&tokenizer, &device));
    let task = common::mlm_task(&tokenizer, &train_docs, 48);
    let valid = common::mlm_task(&tokenizer, &valid_docs, 48);
    let err = Trainer::new(model, &common::quick_config(2))
        .fit(&task, &valid)
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig(m) if m.contains("quantized (int8)")),
        "{err}"
    );
}
