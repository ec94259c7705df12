//! A run paused at a checkpoint and resumed gives the same next losses as an uninterrupted run,
//! with accumulated micro-batches each split into shards run at once.
//!
//! Alone in its test binary: weight initialisation draws from the backend's process-wide
//! generator, which tests running in parallel threads would otherwise share.

mod common;

use burn::prelude::*;
use pretext::noise::MlmMasking;
use pretext::objectives::MlmTask;
use pretext::train::{Split, TrainConfig, train};

#[test]
fn resume_replays_the_uninterrupted_run_exactly() {
    let (tokenizer, train_docs, valid_docs) = common::real_text();
    let device = Device::flex().autodiff();
    let train_task = MlmTask::new(&train_docs, &tokenizer, MlmMasking::default(), 48).unwrap();
    let valid_task = MlmTask::new(&valid_docs, &tokenizer, MlmMasking::default(), 48).unwrap();
    let fresh = || common::tiny_mlm(&tokenizer, &device);
    let config: TrainConfig = common::quick_config(12)
        .with_checkpoint_every(0)
        .with_grad_accumulation(2)
        .with_shards(2);
    let losses = |history: &[pretext::train::LogRecord]| -> Vec<(usize, f64)> {
        history
            .iter()
            .filter(|r| r.split == Split::Train)
            .map(|r| (r.step, r.loss))
            .collect()
    };

    let straight_dir = common::temp_dir("resume-straight");
    let straight = train(
        fresh(),
        &train_task,
        &valid_task,
        &config,
        Some(&straight_dir),
        false,
        &device,
    )
    .unwrap();

    let paused_dir = common::temp_dir("resume-paused");
    let paused = config.clone().with_pause_after(Some(5));
    let first = train(
        fresh(),
        &train_task,
        &valid_task,
        &paused,
        Some(&paused_dir),
        false,
        &device,
    )
    .unwrap();
    assert_eq!(first.state.step, 5);
    // A different initialisation proves the weights come from the checkpoint.
    device.seed(12345);
    let backbone = common::tiny_encoder(&tokenizer).init(&device).unwrap();
    let resumed = train(
        common::with_mlm(backbone, &device),
        &train_task,
        &valid_task,
        &config,
        Some(&paused_dir),
        true,
        &device,
    )
    .unwrap();

    let expected = losses(&straight.history);
    let got: Vec<(usize, f64)> = losses(&first.history)
        .into_iter()
        .chain(losses(&resumed.history))
        .collect();
    assert_eq!(expected.len(), 12);
    assert_eq!(
        got.iter().map(|p| p.0).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    for ((step, a), (_, b)) in expected.iter().zip(&got) {
        assert!(
            (a - b).abs() < 1e-5,
            "step {step}: uninterrupted {a}, resumed {b}"
        );
    }
    assert_eq!(resumed.state.tokens_seen, straight.state.tokens_seen);
    // The resumed run's metrics file holds each step once, as the uninterrupted one does.
    let lines = |dir: &std::path::Path| {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(lines(&paused_dir), lines(&straight_dir));
    std::fs::remove_dir_all(straight_dir).unwrap();
    std::fs::remove_dir_all(paused_dir).unwrap();
}
