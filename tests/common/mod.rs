//! Shared set-up of the integration tests: a slice of the bundled corpus and a tiny model.

#![allow(dead_code)]

use burn::prelude::*;
use pretext::blocks::{TransformerEncoder, TransformerEncoderConfig};
use pretext::corpus::{Corpus, DocumentBoundary, bundled_data_dir};
use pretext::dataset::Documents;
use pretext::noise::MlmMasking;
use pretext::objectives::{Mlm, MlmConfig, MlmTask, MultiTask};
use pretext::recipe::TaskSpec;
use pretext::recipe::multitask::mix_heads;
use pretext::train::TrainConfig;
use pretext::{Preset, Pretrainer, Tokenizer};

/// The first `n` bundled Shakespeare plays, one document each.
pub fn plays(n: usize) -> Corpus {
    let mut corpus = Corpus::from_dir(
        bundled_data_dir().join("shakespeare"),
        DocumentBoundary::File,
    )
    .expect("bundled Shakespeare");
    corpus.documents.truncate(n);
    corpus
}

/// The mean of `xs`.
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The means of the first and of the last `window` values of `xs`: how the learning tests
/// compare the start of a run with its end, a step's noise averaged out.
pub fn ends(xs: &[f64], window: usize) -> (f64, f64) {
    assert!(
        xs.len() >= 2 * window,
        "{} values, {window} a side",
        xs.len()
    );
    (mean(&xs[..window]), mean(&xs[xs.len() - window..]))
}

/// The bundled tokenizer and a few real documents, tokenized: `(tokenizer, train, valid)`.
pub fn real_text() -> (Tokenizer, Documents, Documents) {
    let tokenizer = Tokenizer::bundled().expect("bundled tokenizer");
    let mut corpus = plays(6);
    let valid = Corpus {
        documents: corpus.documents.split_off(5),
    };
    (
        tokenizer.clone(),
        Documents::tokenize(&corpus, &tokenizer).unwrap(),
        Documents::tokenize(&valid, &tokenizer).unwrap(),
    )
}

/// BERT-masked segments of at most `seq_len` tokens from `docs`.
pub fn mlm_task(tokenizer: &Tokenizer, docs: &Documents, seq_len: usize) -> MlmTask {
    MlmTask::new(docs, tokenizer, MlmMasking::default(), seq_len).unwrap()
}

/// A 2-layer, width-64 encoder over the bundled vocabulary.
pub fn tiny_encoder(tokenizer: &Tokenizer) -> TransformerEncoderConfig {
    Preset::Tiny.encoder(tokenizer.vocab_size())
}

/// The seed a test draws from, `base` unless `PRETEXT_TEST_SEED=k` moves every test's seeds
/// by `1000 k`: how the margins of the learning tests are measured over seeds (the fused
/// kernels' switch, `PRETEXT_FUSED=0`, moves rounding as another CPU does).
pub fn seed(base: u64) -> u64 {
    let offset: u64 = std::env::var("PRETEXT_TEST_SEED")
        .ok()
        .map(|k| k.parse().expect("PRETEXT_TEST_SEED is a number"))
        .unwrap_or(0);
    base + 1000 * offset
}

/// `build`'s model with every initial value drawn, at once, from the stream seeded with the
/// test seed: the same weights whatever the other tests of the binary draw meanwhile.
pub fn seeded<M: burn::module::Module>(device: &Device, build: impl FnOnce() -> M) -> M {
    pretext::util::random::init_seeded(device, seed(7), build)
}

/// Builds the tiny encoder on `device`, seeded.
pub fn tiny_backbone(tokenizer: &Tokenizer, device: &Device) -> TransformerEncoder {
    seeded(device, || tiny_encoder(tokenizer).init(device).unwrap())
}

/// `backbone` paired with an MLM head.
pub fn with_mlm(
    backbone: TransformerEncoder,
    device: &Device,
) -> Pretrainer<TransformerEncoder, Mlm> {
    let head = MlmConfig::new().init(&backbone, device);
    Pretrainer::new(backbone, head)
}

/// The tiny encoder with an MLM head, seeded.
pub fn tiny_mlm(tokenizer: &Tokenizer, device: &Device) -> Pretrainer<TransformerEncoder, Mlm> {
    seeded(device, || {
        with_mlm(tiny_encoder(tokenizer).init(device).unwrap(), device)
    })
}

/// The tiny encoder, seeded, with a segment pair per task of `specs`, and their heads.
pub fn tiny_multitask(
    tokenizer: &Tokenizer,
    specs: &[TaskSpec],
    device: &Device,
) -> Pretrainer<TransformerEncoder, MultiTask> {
    seeded(device, || {
        let backbone = tiny_encoder(tokenizer)
            .with_num_segments(2 * specs.len())
            .init(device)
            .unwrap();
        let head = mix_heads(specs, &backbone, device).unwrap();
        Pretrainer::new(backbone, head)
    })
}

/// A short quiet run.
pub fn quick_config(steps: usize) -> TrainConfig {
    TrainConfig::new(steps, 8)
        .with_seed(seed(42))
        .with_learning_rate(2e-3)
        .with_log_every(1)
        .with_valid_every(steps)
        .with_valid_batches(2)
        .with_progress(false)
}

/// A fresh temporary directory for `name`, of its own on every call: tests running at once
/// (or one helper called by two of them) never share one.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pretext-{name}-{}-{call}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The train-split losses of a run's history, step by step.
pub fn train_losses(history: &[pretext::train::LogRecord]) -> Vec<f64> {
    history
        .iter()
        .filter(|r| r.split == pretext::train::Split::Train)
        .map(|r| r.loss)
        .collect()
}

/// A folder of six Shakespeare plays under `dir`: real text, read in a second.
pub fn small_corpus(dir: &std::path::Path) -> std::path::PathBuf {
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let plays = bundled_data_dir().join("shakespeare");
    let mut files: Vec<_> = std::fs::read_dir(&plays)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files.iter().take(6) {
        std::fs::copy(file, corpus.join(file.file_name().unwrap())).unwrap();
    }
    corpus
}

/// `recipe` cut to `steps` quiet steps that log every step and validate at the end on
/// `valid_batches` batches: what the recipe tests run.
pub fn quiet(
    mut recipe: pretext::recipe::Recipe,
    steps: usize,
    valid_batches: usize,
) -> pretext::recipe::Recipe {
    recipe.train.steps = steps;
    recipe.train.seed = seed(recipe.train.seed);
    recipe.train.valid_every = steps;
    recipe.train.valid_batches = valid_batches;
    recipe.train.log_every = 1;
    recipe.train.progress = false;
    recipe
}

/// A 10-step tiny causal run in `dir/clm` on a small corpus: what SFT and DPO tests start from.
pub fn clm_run(dir: &std::path::Path) -> std::path::PathBuf {
    clm_run_of(dir, 10)
}

/// A tiny causal run of `steps` steps in `dir/clm` on a small corpus.
pub fn clm_run_of(dir: &std::path::Path, steps: usize) -> std::path::PathBuf {
    use pretext::recipe::{Recipe, RunOptions};
    let mut clm = quiet(Recipe::named("clm", Preset::Tiny).unwrap(), steps, 1);
    clm.data.dir = Some(small_corpus(dir));
    clm.data.valid_fraction = 0.2;
    let out = dir.join("clm");
    clm.run(&RunOptions::new(&out, Device::flex().autodiff()))
        .unwrap();
    out
}

/// Every parameter of `model` in one vector, in the order the model visits them.
pub fn parameters<M: Module>(model: &M) -> Vec<f32> {
    struct Values(Vec<f32>);
    impl burn::module::ModuleVisitor for Values {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend(data.try_to_vec::<f32>().unwrap());
        }
    }
    let mut values = Values(Vec::new());
    model.visit(&mut values);
    values.0
}

/// The largest difference of `a` and `b`, relative to the largest magnitude in `b`.
pub fn relative_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    f64::from(diff / scale)
}

/// The tiny encoder with an MLM head and dropout 0.1, seeded, and its MLM tasks (sequences of
/// 48 tokens) on the few real documents of [`real_text`]: `(model, train, valid)`.
pub fn tiny_mlm_with_dropout(
    device: &Device,
) -> (Pretrainer<TransformerEncoder, Mlm>, MlmTask, MlmTask) {
    let (tokenizer, train_docs, valid_docs) = real_text();
    let config = tiny_encoder(&tokenizer).with_dropout(0.1);
    let model = seeded(device, || with_mlm(config.init(device).unwrap(), device));
    (
        model,
        mlm_task(&tokenizer, &train_docs, 48),
        mlm_task(&tokenizer, &valid_docs, 48),
    )
}

/// A run's train losses and final parameters: what two ways of training one model must agree
/// on.
pub fn outcome<M, O>(report: &pretext::train::TrainReport<M, O>) -> (Vec<f64>, Vec<f32>)
where
    M: burn::module::Module + burn::module::ModuleDisplay,
    O: burn::module::Module + burn::module::ModuleDisplay,
{
    (train_losses(&report.history), parameters(&report.model))
}

/// Low-rank adapters on every linear map of the layers (attention's four, the feed-forward's
/// two): with the embeddings and a tied LM head frozen, all that a LoRA run of a causal model
/// trains.
pub fn lora_on_every_linear_map() -> pretext::lora::LoraConfig {
    let targets = [
        "query",
        "key",
        "value",
        "attention.output",
        "ffn.up",
        "ffn.down",
    ];
    pretext::lora::LoraConfig::new().with_targets(targets.map(String::from).to_vec())
}
