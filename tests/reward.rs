//! The reward model through a recipe: started from a pretext causal run's encoder, trained on
//! the bundled preference pairs, its loss falls below ln 2 and its held-out accuracy leaves
//! chance; bad settings are typed errors naming the field.

mod common;

use std::path::Path;

use burn::prelude::*;
use pretext::Preset;
use pretext::error::Error;
use pretext::recipe::{ObjectiveRecipe, Recipe, RunOptions};
use pretext::train::Split;

#[test]
fn a_reward_model_learns_the_bundled_preferences() {
    let dir = common::temp_dir("reward");
    let device = Device::flex().autodiff();
    let mut recipe = Recipe::named("reward", Preset::Tiny).unwrap();
    recipe.train.steps = 300;
    recipe.train.valid_every = 300;
    recipe.train.valid_batches = 8;
    recipe.train.log_every = 1;
    recipe.train.progress = false;
    let report = recipe
        .run(&RunOptions::new(dir.join("run"), device))
        .unwrap();
    let train: Vec<f64> = report
        .history
        .iter()
        .filter(|r| r.split == Split::Train)
        .map(|r| r.loss)
        .collect();
    let valid = report
        .history
        .iter()
        .rfind(|r| r.split == Split::Valid)
        .unwrap();
    let accuracy = valid.metrics["accuracy"];
    assert!(
        (train[0] - std::f64::consts::LN_2).abs() < 0.1,
        "a fresh head scores near 0: {train:?}"
    );
    eprintln!("validation loss {}, accuracy {accuracy}", valid.loss);
    assert!(
        valid.loss < std::f64::consts::LN_2 - 0.05,
        "validation loss {}",
        valid.loss
    );
    assert!(accuracy > 0.6, "held-out accuracy {accuracy}");
    for metric in ["margin", "mean_reward"] {
        assert!(valid.metrics.contains_key(metric), "{metric}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_reward_settings_are_named() {
    let mut recipe = Recipe::named("reward", Preset::Tiny).unwrap();
    let ObjectiveRecipe::Reward(settings) = &mut recipe.objective else {
        unreachable!()
    };
    settings.center_rewards_coefficient = -1.0;
    let err = recipe.check().unwrap_err();
    assert!(
        matches!(&err, Error::Recipe { field, .. } if field.ends_with("center_rewards_coefficient")),
        "{err}"
    );
    let ObjectiveRecipe::Reward(settings) = &mut recipe.objective else {
        unreachable!()
    };
    settings.center_rewards_coefficient = 0.0;
    settings.data = Some(Path::new("/no/such/pairs.jsonl").to_path_buf());
    let err = recipe.check().unwrap_err();
    assert!(
        matches!(&err, Error::Recipe { field, .. } if field == "objective.settings.data"),
        "{err}"
    );
}
