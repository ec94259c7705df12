//! A step's result does not depend on how its batch is split. The gradient of one batch equals
//! that of the same batch cut into 2, 3 or 4 shards, or into 2 accumulated micro-batches: for
//! MLM (whose parts mask different numbers of tokens), CLM over ragged sequences, and a
//! multi-task batch whose tasks carry very different target counts (MLM's masked tokens
//! against SOP's one label per pair). Averaging each part's own mean loss uniformly, as the
//! loop did before, does depend on it, which the tests show as well. Dropout is on throughout:
//! its masks follow the examples. And 20 steps of tiny MLM with dropout give the same losses on
//! 1 to 4 shards; ranks (here on threads, as [`LocalRank`]s) of one or two shards each train
//! the model one process with as many shards in all trains, and a run paused on ranks resumes
//! in one process, and the reverse.
//!
//! Alone in its test binary: weight initialisation draws from the backend's process-wide
//! generator, which tests running in parallel threads would otherwise share.

mod common;

use std::sync::Arc;

use burn::module::ModuleDisplay;
use burn::optim::GradientsParams;
use burn::prelude::*;
use pretext::Pretrainer;
use pretext::data::{Batch, Task, TokenExample};
use pretext::objectives::{ClmConfig, ClmTask, Objective};
use pretext::recipe::multitask::{mix_data, parse_tasks};
use pretext::train::grads::flatten;
use pretext::train::{Collective, LocalRank, Part, Shards, TrainConfig, Trainer, step_gradients};
use pretext::util::rng::example_rng;

const EXAMPLES: usize = 12;
const SEED: u64 = 11;

/// Every gradient of `model` in one vector (zeros for a parameter without one).
fn flat<M: Module>(model: &M, grads: &GradientsParams) -> Vec<f32> {
    flatten(model, grads).0
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `examples` cut into `micro` micro-batches, each into `shards` parts.
fn split<T: Task>(
    task: &T,
    examples: &[T::Example],
    micro: usize,
    shards: usize,
    device: &Device,
) -> Vec<Vec<Part<T::Batch>>>
where
    T::Example: Clone,
{
    let micro_size = examples.len().div_ceil(micro);
    let shard_size = micro_size.div_ceil(shards);
    examples
        .chunks(micro_size)
        .enumerate()
        .map(|(m, micro)| {
            micro
                .chunks(shard_size)
                .enumerate()
                .map(|(k, part)| Part {
                    batch: task.collate(part, device).unwrap(),
                    first_example: m * micro_size + k * shard_size,
                })
                .collect()
        })
        .collect()
}

/// Checks that every split of `examples` gives the whole batch's gradient, and that the old
/// reduction does not.
fn check_splits<M, O, T>(name: &str, model: &Pretrainer<M, O>, task: &T, examples: &[T::Example])
where
    M: Module + ModuleDisplay,
    O: Objective<M, Batch = T::Batch>,
    T: Task,
    T::Example: Clone,
{
    let device = Device::flex().autodiff();
    let gradient = |micro: usize, shards: usize| {
        let parts = split(task, examples, micro, shards, &device);
        let step = step_gradients(model, &Shards::new(shards).unwrap(), parts, SEED, &device);
        (step.loss, flat(model, &step.grads))
    };
    let (loss, whole) = gradient(1, 1);
    let scale = whole.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    assert!(scale > 1e-3, "{name}: the gradient is {scale}");
    for (micro, shards) in [(1, 2), (1, 3), (1, 4), (2, 1), (2, 2)] {
        let (l, g) = gradient(micro, shards);
        let diff = max_diff(&whole, &g);
        eprintln!(
            "{name}: {micro} micro-batches x {shards} shards: loss {l} vs {loss}, gradient off \
             by {diff:e} (largest {scale})"
        );
        assert!(
            (l - loss).abs() < 1e-5,
            "{name} {micro}x{shards}: loss {l} vs {loss}"
        );
        assert!(
            diff < 1e-5,
            "{name} {micro}x{shards}: gradient off by {diff}"
        );
    }
    // The old reduction: each of 3 shards' own mean loss, the three gradients averaged.
    let parts = split(task, examples, 1, 3, &device).remove(0);
    let one = Shards::new(1).unwrap();
    let mut old = vec![0.0f32; whole.len()];
    for part in &parts {
        let alone = step_gradients(model, &one, vec![vec![part.clone()]], SEED, &device);
        for (o, g) in old.iter_mut().zip(flat(model, &alone.grads)) {
            *o += g / parts.len() as f32;
        }
    }
    let off = max_diff(&whole, &old);
    eprintln!("{name}: the old reduction over 3 shards is off by {off:e}");
    assert!(
        off > 100.0 * 1e-5,
        "{name}: the old reduction is off by only {off}"
    );
}

/// The first `EXAMPLES` examples of `task`.
fn examples<T: Task>(task: &T) -> Vec<T::Example> {
    (0..EXAMPLES)
        .map(|i| task.example(i, &mut example_rng(3, 0, i as u64)).unwrap())
        .collect()
}

/// One test runs every case in turn: they share the backend's generator.
#[test]
fn a_steps_gradient_does_not_depend_on_how_its_batch_is_split() {
    let (tokenizer, train_docs, _) = common::real_text();
    let device = Device::flex().autodiff();

    let mlm_task = common::mlm_task(&tokenizer, &train_docs, 48);
    let mlm = common::tiny_mlm(&tokenizer, &device);
    let mlm_examples = examples(&mlm_task);
    let targets = |e: &TokenExample| e.targets.iter().filter(|&&t| t >= 0).count();
    let counts: Vec<usize> = mlm_examples.iter().map(targets).collect();
    assert!(counts.iter().min() < counts.iter().max(), "{counts:?}");
    check_splits("mlm", &mlm, &mlm_task, &mlm_examples);

    // CLM over sequences cut to lengths from 6 to 48 tokens.
    let clm_task = ClmTask::new(&train_docs, &tokenizer, 48).unwrap();
    let clm = common::seeded(&device, || {
        let backbone = common::tiny_encoder(&tokenizer).init(&device).unwrap();
        Pretrainer::new(backbone.clone(), ClmConfig::new().init(&backbone, &device))
    });
    let mut clm_examples = examples(&clm_task);
    for (i, e) in clm_examples.iter_mut().enumerate() {
        let len = 6 + (i * 23) % 43;
        e.input_ids.truncate(len);
        e.segment_ids.truncate(len);
        e.targets.truncate(len);
    }
    let lengths: Vec<usize> = clm_examples.iter().map(|e| e.input_ids.len()).collect();
    assert!(lengths.iter().min() < lengths.iter().max(), "{lengths:?}");
    check_splits("clm", &clm, &clm_task, &clm_examples);

    // Two tasks: MLM's masked tokens against SOP's one label per pair.
    let specs = parse_tasks(r#"[{"objective": "mlm"}, {"objective": "sop"}]"#).unwrap();
    let multi_task = mix_data(&specs, &train_docs, &tokenizer, 48).unwrap();
    let multi = common::tiny_multitask(&tokenizer, &specs, &device);
    let multi_examples = examples(&multi_task);
    let batch = multi_task
        .collate(&multi_examples, &Device::flex())
        .unwrap();
    let weights = batch.weights();
    let (mlm_targets, sop_labels) = (weights.get("task0/targets"), weights.get("task1/sequences"));
    assert!(
        mlm_targets > 3.0 * sop_labels && sop_labels > 0.0,
        "{weights:?}"
    );
    check_splits("multitask", &multi, &multi_task, &multi_examples);
}

#[test]
fn tiny_mlm_with_dropout_trains_the_same_on_any_number_of_shards() {
    let device = Device::flex().autodiff();
    let (model, train_task, valid_task) = common::tiny_mlm_with_dropout(&device);
    let losses = |shards: usize| {
        let config = common::quick_config(20).with_shards(shards);
        let report = Trainer::new(model.clone(), &config)
            .fit(&train_task, &valid_task)
            .unwrap();
        common::train_losses(&report.history)
    };
    let one = losses(1);
    assert_eq!(one.len(), 20);
    assert!(one[19] < one[0] - 0.5, "the loss should fall: {one:?}");
    for shards in 2..=4 {
        let other = losses(shards);
        for (step, (a, b)) in one.iter().zip(&other).enumerate() {
            assert!(
                (a - b).abs() < 1e-5,
                "step {}: {a} on 1 shard, {b} on {shards}",
                step + 1
            );
        }
    }
}

#[test]
fn ranks_train_the_model_one_process_with_as_many_shards_trains() {
    let device = Device::flex().autodiff();
    let (model, train_task, valid_task) = common::tiny_mlm_with_dropout(&device);
    let settings = |shards: usize| {
        common::quick_config(6)
            .with_shards(shards)
            .with_valid_every(3)
            .with_checkpoint_every(3)
    };
    // Losses and final parameters of one process, and of each rank of a run over `ranks`.
    let one_process = |config: &TrainConfig, dir: &std::path::Path, resume: bool| {
        let report = Trainer::new(model.clone(), config)
            .output(dir)
            .resume(resume)
            .fit(&train_task, &valid_task)
            .unwrap();
        common::outcome(&report)
    };
    let on_ranks = |ranks: usize, config: &TrainConfig, dir: &std::path::Path, resume: bool| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = LocalRank::all(ranks)
                .into_iter()
                .map(|rank| {
                    let replica = model.clone().fork(&device);
                    let (train, valid) = (&train_task, &valid_task);
                    scope.spawn(move || {
                        let ranks: Arc<dyn Collective> = Arc::new(rank);
                        let report = Trainer::new(replica, config)
                            .output(dir)
                            .resume(resume)
                            .ranks(ranks)
                            .fit(train, valid)
                            .unwrap();
                        common::outcome(&report)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    };
    let agree =
        |what: &str, (losses, params): &(Vec<f64>, Vec<f32>), want: &(Vec<f64>, Vec<f32>)| {
            assert_eq!(losses.len(), want.0.len(), "{what}");
            for (step, (a, b)) in losses.iter().zip(&want.0).enumerate() {
                assert!(
                    ((a - b) / b).abs() < 1e-6,
                    "{what}, step {}: loss {a} against {b}",
                    step + 1
                );
            }
            let diff = common::relative_diff(params, &want.1);
            eprintln!("{what}: parameters differ by {diff:e} (relative)");
            assert!(diff < 1e-6, "{what}: parameters differ by {diff}");
        };
    for (ranks, shards) in [(2, 1), (2, 2)] {
        let want = one_process(&settings(ranks * shards), &common::temp_dir("one"), false);
        assert!(want.0[5] < want.0[0], "the loss should fall: {:?}", want.0);
        let dir = common::temp_dir("ranks");
        let all = on_ranks(ranks, &settings(shards), &dir, false);
        for (rank, result) in all.iter().enumerate() {
            agree(
                &format!("{ranks} ranks x {shards} shards, rank {rank}"),
                result,
                &want,
            );
        }
        // Rank 0 alone wrote the log: one line a step and a validation every 3.
        let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        assert_eq!(log.lines().count(), 6 + 2, "{log}");
    }
    // Paused after 3 steps on 2 ranks, resumed in one process of 2 shards; and the reverse.
    let want = one_process(&settings(2), &common::temp_dir("straight"), false);
    let paused = |shards: usize| settings(shards).with_pause_after(Some(3));
    let dir = common::temp_dir("ranks-then-one");
    on_ranks(2, &paused(1), &dir, false);
    let (losses, params) = one_process(&settings(2), &dir, true);
    let resumed = ([&want.0[..3], &losses[..]].concat(), params);
    agree("2 ranks, then 1 process", &resumed, &want);
    let dir = common::temp_dir("one-then-ranks");
    one_process(&paused(2), &dir, false);
    for (rank, (losses, params)) in on_ranks(2, &settings(1), &dir, true)
        .into_iter()
        .enumerate()
    {
        let resumed = ([&want.0[..3], &losses[..]].concat(), params);
        agree(
            &format!("1 process, then 2 ranks (rank {rank})"),
            &resumed,
            &want,
        );
    }
}
