//! The README's library example: pretrain a small BERT-style model with masked LM on the
//! bundled corpus, in about 20 lines.
//!
//! `cargo run --release --example quickstart`

use pretext::burn::prelude::*;
use pretext::corpus::Corpus;
use pretext::dataset::Documents;
use pretext::noise::MlmMasking;
use pretext::objectives::{MlmConfig, MlmTask};
use pretext::train::{TrainConfig, Trainer};
use pretext::{Preset, Pretrainer, Tokenizer};

fn main() -> pretext::Result<()> {
    let tokenizer = Tokenizer::bundled()?;
    let (train_docs, valid_docs) = Corpus::bundled()?.split(0.05, 0)?;
    let train_docs = Documents::tokenize(&train_docs, &tokenizer)?;
    let valid_docs = Documents::tokenize(&valid_docs, &tokenizer)?;

    // The run's seed (default 42) draws the weights, the batches and the dropout masks.
    let config = TrainConfig::new(100, 16).with_learning_rate(2e-3);
    let device = Device::flex().autodiff();
    let _seeded = config.seed_device(&device);
    let backbone = Preset::Tiny.encoder(tokenizer.vocab_size()).init(&device)?;
    let mlm = MlmConfig::new().init(&backbone, &device);
    let masking = MlmMasking::default(); // 15 %, 80/10/10
    let train_task = MlmTask::new(&train_docs, &tokenizer, masking, 64)?;
    let valid_task = MlmTask::new(&valid_docs, &tokenizer, masking, 64)?;

    let model = Pretrainer::new(backbone, mlm);
    let report = Trainer::new(model, &config).fit(&train_task, &valid_task)?;
    println!("last validation: {:?}", report.history.last());
    Ok(())
}
