//! One seed makes a run started from code repeat itself: `TrainConfig::seed_device` draws the
//! weights from the run's seed, and the batches and dropout masks follow the same seed.

mod common;

use burn::prelude::*;
use burn::tensor::Distribution;
use pretext::blocks::EncoderBackbone;
use pretext::train::Trainer;

/// The initial token embeddings and the train losses of a 5-step tiny MLM run with `seed`,
/// after `draws` unrelated draws from the device (which the seed must wash out).
fn run(seed: u64, draws: usize) -> (Vec<f32>, Vec<f64>) {
    let (tokenizer, train, valid) = common::real_text();
    let config = common::quick_config(5).with_seed(seed);
    let device = Device::flex().autodiff();
    for _ in 0..draws {
        let _draws = pretext::util::random::hold();
        let _ = Tensor::<1>::random([3], Distribution::Default, &device);
    }
    let model = {
        let _draws = config.seed_device(&device);
        let backbone = common::tiny_encoder(&tokenizer).init(&device).unwrap();
        let model = common::with_mlm(backbone, &device);
        pretext::util::random::materialize(&model);
        model
    };
    let weights = model
        .backbone
        .token_embedding()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let report = Trainer::new(model, &config)
        .fit(
            &common::mlm_task(&tokenizer, &train, 64),
            &common::mlm_task(&tokenizer, &valid, 64),
        )
        .unwrap();
    (weights, common::train_losses(&report.history))
}

#[test]
fn the_config_seed_fixes_the_weights_and_the_losses() {
    let (weights, losses) = run(7, 0);
    let (weights_again, losses_again) = run(7, 3);
    assert_eq!(weights, weights_again, "same seed, other initial weights");
    assert_eq!(losses.len(), 5);
    assert_eq!(losses, losses_again, "same seed, other losses");

    let (other_weights, other_losses) = run(8, 0);
    assert_ne!(weights, other_weights, "another seed drew the same weights");
    assert_ne!(losses, other_losses);
}
