//! A run paused at a checkpoint and resumed gives the same next losses as an uninterrupted run,
//! with accumulated micro-batches each split into shards run at once: for MLM, for ELECTRA
//! (whose replacements are sampled) and for a multi-task mix whose second task joins midway.
//! The resumed half runs data-parallel over two devices (the CPU twice, the only device at
//! hand), so the per-device path must also replay the run that shared one device. MLM resumes
//! midway through a batch-size ramp too.
//!
//! The models are built through `common::seeded`, which holds the backend's process-wide
//! random stream from the seed until every initial value is drawn.

mod common;

use burn::module::ModuleDisplay;
use burn::prelude::*;
use pretext::Pretrainer;
use pretext::blocks::TransformerEncoder;
use pretext::data::Task;
use pretext::noise::MlmMasking;
use pretext::objectives::{ElectraConfig, ElectraTask, Objective};
use pretext::recipe::multitask::{mix_data, mix_heads, parse_tasks};
use pretext::train::{BatchRamp, Split, TrainConfig, Trainer};

/// Trains 12 steps straight, then 5 steps paused and resumed from the checkpoint into a model
/// initialised otherwise (`other`) on two devices, and checks that both give the same losses
/// step by step; under a batch `ramp`, if one is given. Returns the tokens the run trained on.
fn check_resume<M, O, T>(
    name: &str,
    ramp: Option<BatchRamp>,
    fresh: impl Fn() -> Pretrainer<M, O>,
    other: impl Fn() -> Pretrainer<M, O>,
    train_task: &T,
    valid_task: &T,
) -> u64
where
    M: Module + ModuleDisplay,
    O: Objective<M, Batch = T::Batch>,
    T: Task,
{
    let device = Device::flex().autodiff();
    let config: TrainConfig = common::quick_config(12)
        .with_checkpoint_every(0)
        .with_grad_accumulation(2)
        .with_shards(2)
        .with_batch_ramp(ramp);
    let losses = |history: &[pretext::train::LogRecord]| -> Vec<(usize, f64)> {
        history
            .iter()
            .filter(|r| r.split == Split::Train)
            .map(|r| (r.step, r.loss))
            .collect()
    };

    let straight_dir = common::temp_dir(&format!("resume-straight-{name}"));
    let straight = Trainer::new(fresh(), &config)
        .output(&straight_dir)
        .device(&device)
        .fit(train_task, valid_task)
        .unwrap();

    let paused_dir = common::temp_dir(&format!("resume-paused-{name}"));
    let paused = config.clone().with_pause_after(Some(5));
    let first = Trainer::new(fresh(), &paused)
        .output(&paused_dir)
        .device(&device)
        .fit(train_task, valid_task)
        .unwrap();
    assert_eq!(first.state.step, 5);
    // Resuming with other settings would train another model: refused, naming the field.
    let err = Trainer::new(other(), &config.clone().with_learning_rate(1e-3))
        .output(&paused_dir)
        .resume(true)
        .device(&device)
        .fit(train_task, valid_task)
        .unwrap_err();
    assert!(err.to_string().contains("learning_rate"), "{name}: {err}");
    let resumed = Trainer::new(other(), &config)
        .output(&paused_dir)
        .resume(true)
        .devices(&[device.clone(), device.clone()])
        .fit(train_task, valid_task)
        .unwrap();

    let expected = losses(&straight.history);
    let got: Vec<(usize, f64)> = losses(&first.history)
        .into_iter()
        .chain(losses(&resumed.history))
        .collect();
    assert_eq!(expected.len(), 12, "{name}");
    assert_eq!(
        got.iter().map(|p| p.0).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    // Bit for bit, as the README says "exactly".
    for ((step, a), (_, b)) in expected.iter().zip(&got) {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{name}, step {step}: uninterrupted {a}, resumed {b}"
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
    straight.state.tokens_seen
}

#[test]
fn resume_replays_the_uninterrupted_run_exactly() {
    let (tokenizer, train_docs, valid_docs) = common::real_text();
    let device = Device::flex().autodiff();
    // A different initialisation proves the weights come from the checkpoint.
    let other_backbone = |segments: usize| {
        pretext::util::random::init_seeded(&device, 12345, || {
            common::tiny_encoder(&tokenizer)
                .with_num_segments(segments)
                .init(&device)
                .unwrap()
        })
    };

    let mlm = |docs| common::mlm_task(&tokenizer, docs, 48);
    let (mlm_train, mlm_valid) = (mlm(&train_docs), mlm(&valid_docs));
    // Paused at step 5 of a ramp over 9: the resumed run must find where its step starts.
    let tokens: Vec<u64> = [("mlm", None), ("mlm-ramp", Some(BatchRamp::new(3, 0.75)))]
        .into_iter()
        .map(|(name, ramp)| {
            check_resume(
                name,
                ramp,
                || common::tiny_mlm(&tokenizer, &device),
                || common::seeded(&device, || common::with_mlm(other_backbone(2), &device)),
                &mlm_train,
                &mlm_valid,
            )
        })
        .collect();
    // Steps of 3 examples rising to 16 draw fewer than 16 a step all along.
    assert!(
        tokens[1] < tokens[0] * 4 / 5,
        "ramp {} against {}",
        tokens[1],
        tokens[0]
    );

    // ELECTRA's replacements come from uniforms drawn in the data pipeline.
    let electra_task =
        |docs| ElectraTask::new(docs, &tokenizer, MlmMasking::electra(), 48).unwrap();
    let electra = |backbone: TransformerEncoder| {
        let head = ElectraConfig::new().init(&backbone, &device).unwrap();
        Pretrainer::new(backbone, head)
    };
    check_resume(
        "electra",
        None,
        || {
            common::seeded(&device, || {
                electra(common::tiny_encoder(&tokenizer).init(&device).unwrap())
            })
        },
        || common::seeded(&device, || electra(other_backbone(2))),
        &electra_task(&train_docs),
        &electra_task(&valid_docs),
    );

    // A task joining at step 3 of a multi-task mix: the resumed run must know the step.
    let specs =
        parse_tasks(r#"[{"objective": "mlm"}, {"objective": "clm", "start_step": 3}]"#).unwrap();
    let multi_task = |docs| mix_data(&specs, docs, &tokenizer, 48).unwrap();
    let multi = |backbone: TransformerEncoder| {
        let head = mix_heads(&specs, &backbone, &device).unwrap();
        Pretrainer::new(backbone, head)
    };
    check_resume(
        "multitask",
        None,
        || {
            common::seeded(&device, || {
                multi(
                    common::tiny_encoder(&tokenizer)
                        .with_num_segments(4)
                        .init(&device)
                        .unwrap(),
                )
            })
        },
        || common::seeded(&device, || multi(other_backbone(4))),
        &multi_task(&train_docs),
        &multi_task(&valid_docs),
    );
}
