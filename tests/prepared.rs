//! Prepared datasets against the in-memory path: the same examples from the same corpus, a
//! split that stays put as a corpus grows, a killed preparation resumed byte for byte, and bad
//! input refused or counted.

mod common;

use std::path::Path;

use pretext::Error;
use pretext::Tokenizer;
use pretext::corpus::{Corpus, DocumentBoundary, bundled_data_dir};
use pretext::data::PairKind;
use pretext::data::Task;
use pretext::dataset::prepare::{PrepareOptions, prepare, prepare_corpus};
use pretext::dataset::{Documents, Prepared, TokenStore};
use pretext::noise::MlmMasking;
use pretext::noise::bart::BartNoise;
use pretext::objectives::PairTaskConfig;
use pretext::objectives::{BartTask, MlmTask, SentencePairTask};
use pretext::recipe::DataSource;
use pretext::util::rng::example_rng;

fn quiet() -> PrepareOptions {
    PrepareOptions {
        progress: false,
        ..PrepareOptions::default()
    }
}

/// Example `i` of both tasks, for a spread of indexes and two epochs, are equal.
fn same_examples<T: Task>(memory: &T, prepared: &T, what: &str)
where
    T::Example: PartialEq + std::fmt::Debug,
{
    let n = memory.num_examples();
    assert_eq!(n, prepared.num_examples(), "{what}: example counts");
    for i in (0..n).step_by(n / 300 + 1).chain([n - 1]) {
        for epoch in 0..2 {
            let a = memory
                .example(i, &mut example_rng(7, epoch, i as u64))
                .unwrap();
            let b = prepared
                .example(i, &mut example_rng(7, epoch, i as u64))
                .unwrap();
            assert_eq!(a, b, "{what}: example {i} of epoch {epoch}");
        }
    }
}

#[test]
fn a_prepared_bundled_corpus_gives_the_in_memory_examples() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let dir = common::temp_dir("prepared-bundled");
    let corpus = pretext::dataset::bundled::pretraining_corpus().unwrap();
    prepare_corpus(&corpus, "bundled", &dir, &tokenizer, &quiet()).unwrap();
    // The default run's data path, and a run's on the prepared directory.
    let (memory, memory_valid) = DataSource::default().documents(&tokenizer, false).unwrap();
    let source = DataSource {
        dir: Some(dir.clone()),
        ..DataSource::default()
    };
    let (prepared, prepared_valid) = source.documents(&tokenizer, false).unwrap();
    assert_eq!(memory.len(), prepared.len());
    assert_eq!(memory_valid.len(), prepared_valid.len());
    for d in (0..memory.len()).step_by(37) {
        assert_eq!(memory.document(d), prepared.document(d), "document {d}");
    }
    let masking = MlmMasking::default();
    same_examples(
        &MlmTask::new(&memory, &tokenizer, masking, 128).unwrap(),
        &MlmTask::new(&prepared, &tokenizer, masking, 128).unwrap(),
        "mlm",
    );
    same_examples(
        &MlmTask::new(&memory_valid, &tokenizer, masking, 128).unwrap(),
        &MlmTask::new(&prepared_valid, &tokenizer, masking, 128).unwrap(),
        "mlm validation",
    );
    let pairs = |kind| PairTaskConfig {
        kind,
        masking: Some(masking),
    };
    for kind in [PairKind::NextSentence, PairKind::SentenceOrder] {
        same_examples(
            &SentencePairTask::new(&memory, &tokenizer, pairs(kind), 128).unwrap(),
            &SentencePairTask::new(&prepared, &tokenizer, pairs(kind), 128).unwrap(),
            kind.name(),
        );
    }
    let noise = BartNoise::preset("bart").unwrap();
    same_examples(
        &BartTask::new(&memory, &tokenizer, noise, 128).unwrap(),
        &BartTask::new(&prepared, &tokenizer, noise, 128).unwrap(),
        "bart",
    );
    // A second opening reads the indexes cached by the first, with the same result.
    let (again, _) = source.documents(&tokenizer, false).unwrap();
    same_examples(
        &MlmTask::new(&prepared, &tokenizer, masking, 128).unwrap(),
        &MlmTask::new(&again, &tokenizer, masking, 128).unwrap(),
        "mlm from the cached index",
    );
    assert!(dir.join("index").read_dir().unwrap().count() >= 3);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Copies `count` Brown files into `dir`.
fn brown_files(dir: &Path, skip: usize, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(bundled_data_dir().join("brown"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files.iter().skip(skip).take(count) {
        std::fs::copy(file, dir.join(file.file_name().unwrap())).unwrap();
    }
}

fn held_out(dir: &Path, tokenizer: &Tokenizer) -> Vec<String> {
    let (_, valid) = Prepared::open(dir, tokenizer)
        .unwrap()
        .split(0.2, 0)
        .unwrap();
    (0..valid.len())
        .map(|d| valid.name(d).to_string())
        .collect()
}

#[test]
fn the_split_is_by_document_and_stays_put_when_files_are_added() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let root = common::temp_dir("prepared-split");
    let input = root.join("texts");
    brown_files(&input, 0, 30);
    let out = root.join("prepared");
    prepare(&input, &out, &tokenizer, &quiet()).unwrap();
    let before = held_out(&out, &tokenizer);
    assert!(!before.is_empty() && before.len() < 30);
    let (train, valid) = Prepared::open(&out, &tokenizer)
        .unwrap()
        .split(0.2, 0)
        .unwrap();
    assert_eq!(train.len() + valid.len(), 30);
    // The same split as the in-memory corpus's.
    let corpus = Corpus::from_dir(&input, DocumentBoundary::File).unwrap();
    let (_, corpus_valid) = corpus.split(0.2, 0).unwrap();
    let names: Vec<String> = corpus_valid.documents.into_iter().map(|d| d.name).collect();
    assert_eq!(names, before);
    // More files: prepared again (the sources changed), and no old document changes side.
    brown_files(&input, 30, 30);
    prepare(&input, &out, &tokenizer, &quiet()).unwrap();
    let after = held_out(&out, &tokenizer);
    assert!(after.len() > before.len());
    let old: Vec<&String> = after.iter().filter(|n| before.contains(n)).collect();
    assert_eq!(
        old.len(),
        before.len(),
        "a held-out document moved to train"
    );
    let manifest = Prepared::open(&out, &tokenizer).unwrap().manifest().clone();
    assert_eq!(manifest.documents, 60);
    assert_eq!(manifest.provenance.unwrap().sources, 60);
    std::fs::remove_dir_all(root).unwrap();
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// JSON lines of the Brown files, one document a line; line `bad` (if any) has a number for
/// its text, padded to the length of the line it replaces.
fn jsonl(count: usize, bad: Option<usize>) -> String {
    let corpus =
        Corpus::from_dir(bundled_data_dir().join("brown"), DocumentBoundary::File).unwrap();
    let mut out = String::new();
    for (i, doc) in corpus.documents.iter().take(count).enumerate() {
        let line = serde_json::json!({ "text": doc.sentences.join(" ") }).to_string();
        if Some(i) == bad {
            let broken = format!("{{\"text\": {}}}", "1".repeat(line.len() - 10));
            assert_eq!(broken.len(), line.len());
            out.push_str(&broken);
        } else {
            out.push_str(&line);
        }
        out.push('\n');
    }
    out
}

#[test]
fn a_preparation_stopped_part_way_resumes_to_the_same_bytes() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let root = common::temp_dir("prepared-resume");
    let small_batches = PrepareOptions {
        batch_bytes: 64 << 10,
        ..quiet()
    };
    // In one go.
    let whole = root.join("whole.jsonl");
    std::fs::write(&whole, jsonl(120, None)).unwrap();
    let once = root.join("once");
    prepare(&whole, &once, &tokenizer, &small_batches).unwrap();
    // Stopped by a broken line near the end, after several batches were written; then the
    // line is mended (same size, so the same sources) and the preparation run again.
    let input = root.join("input");
    std::fs::create_dir_all(&input).unwrap();
    let file = input.join("whole.jsonl");
    std::fs::write(&file, jsonl(120, Some(100))).unwrap();
    let out = root.join("resumed");
    let err = prepare(&file, &out, &tokenizer, &small_batches).unwrap_err();
    assert!(
        matches!(&err, Error::Dataset { reason, .. } if reason.contains("line 101")),
        "{err}"
    );
    assert!(
        out.join("progress.json").exists(),
        "no checkpoint was written"
    );
    assert!(!out.join("dataset.json").exists());
    let checkpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("progress.json")).unwrap()).unwrap();
    let written = checkpoint["writer"]["documents"].as_u64().unwrap();
    assert!(
        (50..=100).contains(&written),
        "{written} documents checkpointed"
    );
    // A kill can also leave bytes written after the last checkpoint.
    let mut tokens = std::fs::read(out.join("tokens.bin")).unwrap();
    tokens.extend_from_slice(&[7; 100]);
    std::fs::write(out.join("tokens.bin"), &tokens).unwrap();
    std::fs::write(&file, jsonl(120, None)).unwrap();
    // Proof that the resumed run keeps what was checkpointed rather than starting over: a
    // copy whose first id was changed keeps the change.
    let marked = root.join("marked");
    std::fs::create_dir_all(&marked).unwrap();
    for (name, bytes) in files_of(&out) {
        std::fs::write(marked.join(name), bytes).unwrap();
    }
    let mut first = tokens.clone();
    first[0] ^= 1;
    std::fs::write(marked.join("tokens.bin"), first).unwrap();
    prepare(&file, &marked, &tokenizer, &small_batches).unwrap();
    assert_ne!(
        std::fs::read(marked.join("tokens.bin")).unwrap()[0],
        std::fs::read(once.join("tokens.bin")).unwrap()[0],
        "the resumed preparation started over"
    );
    let manifest = prepare(&file, &out, &tokenizer, &small_batches).unwrap();
    assert!(!out.join("progress.json").exists());
    // The manifests name the input differently (a file, a folder's file); the data agree.
    let data = |dir: &Path| {
        files_of(dir)
            .into_iter()
            .filter(|(n, _)| n.ends_with(".bin"))
            .collect::<Vec<_>>()
    };
    assert_eq!(data(&once), data(&out), "resumed shards differ");
    assert_eq!(manifest.documents, 120);
    // Run again: reused, not redone.
    let modified = std::fs::metadata(out.join("tokens.bin"))
        .unwrap()
        .modified()
        .unwrap();
    prepare(&file, &out, &tokenizer, &small_batches).unwrap();
    let again = std::fs::metadata(out.join("tokens.bin"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(modified, again, "a finished preparation was redone");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn bad_input_is_counted_or_refused() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let root = common::temp_dir("prepared-bad");
    // A line that is not UTF-8 is skipped and counted, with its place.
    let input = root.join("texts");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.txt"), "Good text here. More of it.\n").unwrap();
    std::fs::write(
        input.join("b.txt"),
        b"A fine line.\nA bad \xff line.\nAnother fine line.\n",
    )
    .unwrap();
    let out = root.join("out");
    let manifest = prepare(&input, &out, &tokenizer, &quiet()).unwrap();
    assert_eq!(manifest.skipped.lines, 1);
    assert!(
        manifest.skipped.first[0].contains("b.txt"),
        "{:?}",
        manifest.skipped
    );
    assert_eq!(manifest.documents, 2);
    let prepared = Prepared::open(&out, &tokenizer).unwrap();
    let b = prepared.store().document(1);
    let text = b
        .sentences
        .iter()
        .map(|s| tokenizer.decode(&s.ids).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("fine") && text.contains("another") && !text.contains("bad"));
    // No text at all.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("blank.txt"), "  \n\n").unwrap();
    assert!(matches!(
        prepare(&empty, &root.join("out-empty"), &tokenizer, &quiet()),
        Err(Error::EmptyCorpus(_))
    ));
    // Another tokenizer's run.
    let other = tokenizer.clone().with_sentinels(4).unwrap();
    assert!(matches!(
        Prepared::open(&out, &other),
        Err(Error::TokenizerMismatch { .. })
    ));
    // A truncated shard.
    let sentences = out.join("sentences.bin");
    let len = std::fs::metadata(&sentences).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&sentences)
        .unwrap()
        .set_len(len - 8)
        .unwrap();
    assert!(matches!(
        Prepared::open(&out, &tokenizer),
        Err(Error::Dataset { path, .. }) if path.ends_with("sentences.bin")
    ));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_store_in_memory_and_a_prepared_one_read_alike() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let (_, docs, _) = common::real_text();
    let dir = common::temp_dir("prepared-alike");
    let written: Vec<_> = (0..docs.len()).map(|d| docs.document(d)).collect();
    pretext::dataset::prepared::write(&dir, written.clone(), &tokenizer).unwrap();
    let prepared = Prepared::open(&dir, &tokenizer).unwrap();
    let memory = TokenStore::from_documents(&written);
    assert_eq!(prepared.store().num_tokens(), memory.num_tokens());
    let all = Documents::from(written.as_slice());
    for d in 0..all.len() {
        assert_eq!(prepared.store().document(d), memory.document(d));
    }
    std::fs::remove_dir_all(dir).unwrap();
}
