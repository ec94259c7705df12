//! End-to-end: each objective trains a tiny model on real bundled text and its loss falls.

mod common;

use burn::prelude::*;
use pretext::Pretrainer;
use pretext::noise::MlmMasking;
use pretext::objectives::{ClmConfig, ClmTask, MlmConfig, MlmTask};
use pretext::train::{Split, train};

fn train_losses(history: &[pretext::train::LogRecord]) -> Vec<f64> {
    history
        .iter()
        .filter(|r| r.split == Split::Train)
        .map(|r| r.loss)
        .collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[test]
fn mlm_loss_starts_near_ln_vocab_and_falls_on_real_text() {
    let (tokenizer, train_docs, valid_docs) = common::real_text();
    let device = Device::flex().autodiff();
    let backbone = common::tiny_backbone(&tokenizer, &device);
    let head = MlmConfig::new().init(&backbone, &device);
    let train_task = MlmTask::new(&train_docs, &tokenizer, MlmMasking::default(), 64).unwrap();
    let valid_task = MlmTask::new(&valid_docs, &tokenizer, MlmMasking::default(), 64).unwrap();
    let report = train(
        Pretrainer::new(backbone, head),
        &train_task,
        &valid_task,
        &common::quick_config(60),
        None,
        false,
        &device,
    )
    .unwrap();
    let losses = train_losses(&report.history);
    let ln_v = (tokenizer.vocab_size() as f64).ln();
    assert!(
        (losses[0] - ln_v).abs() < 0.3,
        "untrained loss {} vs ln V {ln_v}",
        losses[0]
    );
    let (head, tail) = (mean(&losses[..5]), mean(&losses[losses.len() - 5..]));
    assert!(
        tail < 0.85 * head,
        "MLM loss did not fall: {head} -> {tail}"
    );
    let valid = report
        .history
        .iter()
        .find(|r| r.split == Split::Valid)
        .unwrap();
    assert!(valid.metrics.contains_key("mlm_acc"));
    assert!(valid.loss < ln_v - 0.5, "validation loss {}", valid.loss);
}

#[test]
fn clm_loss_falls_on_real_text() {
    let (tokenizer, train_docs, valid_docs) = common::real_text();
    let device = Device::flex().autodiff();
    let backbone = common::tiny_backbone(&tokenizer, &device);
    let head = ClmConfig::new().init(&backbone, &device);
    let train_task = ClmTask::new(&train_docs, &tokenizer, 64).unwrap();
    let valid_task = ClmTask::new(&valid_docs, &tokenizer, 64).unwrap();
    let report = train(
        Pretrainer::new(backbone, head),
        &train_task,
        &valid_task,
        &common::quick_config(40),
        None,
        false,
        &device,
    )
    .unwrap();
    let losses = train_losses(&report.history);
    let (head, tail) = (mean(&losses[..5]), mean(&losses[losses.len() - 5..]));
    assert!(
        tail < 0.85 * head,
        "CLM loss did not fall: {head} -> {tail}"
    );
    let valid = report
        .history
        .iter()
        .find(|r| r.split == Split::Valid)
        .unwrap();
    assert!(valid.metrics["ppl"] < tokenizer.vocab_size() as f64 / 2.0);
}
