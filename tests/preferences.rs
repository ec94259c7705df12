//! Learning from preferences through recipes. The reward model, trained on the bundled
//! preference pairs, starts near ln 2 and leaves chance on held-out pairs, and trains on
//! rankings of several answers beside pairs; DPO from a causal
//! run starts at exactly ln 2 with zero rewards (the policy is its reference) and learns the
//! pairs; bad settings are typed errors naming the field.

mod common;

use std::path::Path;

use burn::prelude::*;
use pretext::Preset;
use pretext::align::RewardModel;
use pretext::error::Error;
use pretext::recipe::{ObjectiveRecipe, Recipe, RunOptions};
use pretext::train::Split;

#[test]
fn a_reward_model_learns_the_bundled_preferences() {
    let dir = common::temp_dir("reward");
    let device = Device::flex().autodiff();
    let mut recipe = Recipe::named("reward", Preset::Tiny).unwrap();
    // All 240 held-out pairs: 64 would leave the accuracy ±6 % to chance.
    recipe = common::quiet(recipe, 300, 30);
    // Past one pass over the pairs (225 steps) a reward model overfits and its validation loss
    // climbs back (README): judge it at its best validation.
    recipe.train.valid_every = 50;
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
        .filter(|r| r.split == Split::Valid)
        .min_by(|a, b| a.loss.total_cmp(&b.loss))
        .unwrap();
    let accuracy = valid.metrics["accuracy"];
    // One batch of 8 pairs scatters by ±0.2 around ln 2 at the start (scores of a fresh head
    // have a spread of about 1); the first five, mostly untrained, average close to it.
    let start = train[..5].iter().sum::<f64>() / 5.0;
    assert!(
        (start - std::f64::consts::LN_2).abs() < 0.1,
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
fn a_reward_model_trains_on_rankings_beside_pairs() {
    let dir = common::temp_dir("reward-rankings");
    let words = [
        "the jury said",
        "it was late",
        "a quiet night",
        "one careful doctor",
    ];
    let mut lines = Vec::new();
    for (i, phrase) in words.iter().cycle().take(24).enumerate() {
        let prompt = format!("Repeat the words: {phrase} Answer:");
        let mut parts: Vec<&str> = phrase.split(' ').collect();
        let dropped = parts[1..].join(" ");
        parts.swap(0, 1);
        let swapped = parts.join(" ");
        let split = if i % 6 == 5 { "valid" } else { "train" };
        // Every third line a pair, the others rankings of three: right, swapped, dropped.
        let line = match i % 3 {
            0 => serde_json::json!({
                "prompt": prompt, "chosen": phrase, "rejected": dropped, "split": split,
            }),
            _ => serde_json::json!({
                "prompt": prompt, "ranked": [phrase, swapped, dropped], "split": split,
            }),
        };
        lines.push(line.to_string());
    }
    let data = dir.join("rankings.jsonl");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let mut recipe = Recipe::named("reward", Preset::Tiny).unwrap();
    let ObjectiveRecipe::Reward(settings) = &mut recipe.objective else {
        unreachable!()
    };
    settings.data = Some(data);
    recipe = common::quiet(recipe, 40, 1);
    let report = recipe
        .run(&RunOptions::new(dir.join("run"), Device::flex().autodiff()))
        .unwrap();
    let train = common::train_losses(&report.history);
    // A fresh head scores every answer near 0: each comparison, and so each ranking's mean
    // of them, costs about ln 2.
    assert!(
        (train[0] - std::f64::consts::LN_2).abs() < 0.1,
        "a fresh head scores near 0: {train:?}"
    );
    let last = train[train.len() - 5..].iter().sum::<f64>() / 5.0;
    assert!(last < train[0] - 0.1, "the rankings are learnt: {train:?}");
    let valid = report
        .history
        .iter()
        .rfind(|r| r.split == Split::Valid)
        .unwrap();
    for metric in ["accuracy", "margin", "mean_reward"] {
        assert!(valid.metrics[metric].is_finite(), "{metric}");
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

#[test]
fn dpo_starts_at_ln_2_and_learns_the_preferences() {
    let dir = common::temp_dir("dpo");
    let clm = common::clm_run(&dir);
    // Every weight, and low-rank adapters on the layers' linear maps alone (whose policy is
    // its reference at the start too: the adapters start at zero).
    let lora = common::lora_on_every_linear_map();
    // Accuracies over 64 validation pairs: the full runs' over PRETEXT_TEST_SEED 0-3 all
    // passed 0.6; the adapters' ranged over 0.59-0.72, so their bar is chance.
    let runs = [
        ("dpo", None, None, 0.6),
        ("dpo-lora", Some(lora), Some(1e-2), 0.5),
    ];
    for (name, lora, lr, accuracy) in runs {
        let mut recipe = Recipe::named("dpo", Preset::Tiny)
            .unwrap()
            .init_from(&clm)
            .unwrap();
        assert_eq!(recipe.encoder.dropout, 0.0);
        recipe = common::quiet(recipe, 60, 4);
        recipe.lora = lora;
        recipe.train.learning_rate = lr.unwrap_or(recipe.train.learning_rate);
        let device = Device::flex().autodiff();
        let report = recipe
            .run(&RunOptions::new(dir.join(name), device))
            .unwrap();
        let first = &report.history[0];
        assert_eq!(first.step, 1);
        // The policy is its reference at the first step: loss ln 2, every reward 0.
        assert!(
            (first.loss - std::f64::consts::LN_2).abs() < 1e-4,
            "{name}: {}",
            first.loss
        );
        assert!(first.metrics["rewards/margins"].abs() < 1e-3);
        let valid = report
            .history
            .iter()
            .rfind(|r| r.split == Split::Valid)
            .unwrap();
        eprintln!("{name} validation: {} {:?}", valid.loss, valid.metrics);
        assert!(
            valid.loss < std::f64::consts::LN_2,
            "{name}: {}",
            valid.loss
        );
        assert!(valid.metrics["rewards/accuracies"] > accuracy, "{name}");
        assert!(valid.metrics["rewards/margins"] > 0.0, "{name}");
        // It reads back as a causal LM.
        let model = pretext::generate::CausalLm::load(&dir.join(name), &Device::flex()).unwrap();
        assert!(model.bos.is_some());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_non_positive_beta_is_named() {
    let mut recipe = Recipe::named("dpo", Preset::Tiny).unwrap();
    recipe
        .set("objective.settings.beta", serde_json::json!(0.0))
        .unwrap();
    let err = recipe.check().unwrap_err();
    assert!(
        matches!(&err, Error::Recipe { field, .. } if field == "objective.settings.beta"),
        "{err}"
    );
}

#[test]
fn a_trained_reward_model_scores_answers_and_refuses_another_tokenizer() {
    let dir = common::temp_dir("reward-model");
    let mut recipe = Recipe::named("reward", Preset::Tiny).unwrap();
    recipe = common::quiet(recipe, 30, 1);
    recipe
        .run(&RunOptions::new(dir.join("run"), Device::flex().autodiff()))
        .unwrap();
    let model = RewardModel::load(&dir.join("run"), &Device::flex()).unwrap();
    let pairs = [
        ("Repeat the words: the jury said Answer:", "the jury said"),
        ("Repeat the words: the jury said Answer:", "the said jury"),
        (
            "What is the last word of: it was a long and quiet night Answer:",
            "night",
        ),
    ];
    let together = model.score(&pairs, 8).unwrap();
    let one_by_one = model.score(&pairs, 1).unwrap();
    assert_eq!(together.len(), 3);
    for (a, b) in together.iter().zip(&one_by_one) {
        assert!((a - b).abs() < 1e-5, "{together:?} {one_by_one:?}");
    }
    assert!(together.iter().all(|s| s.is_finite()));
    assert!(
        (together[0] - together[1]).abs() > 1e-6,
        "answers tell apart"
    );
    model.check_tokenizer(&model.tokenizer).unwrap();
    let gpt2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/gpt2-bundled-vocab");
    let other = pretext::Tokenizer::from_model_dir(&gpt2).unwrap();
    let err = model.check_tokenizer(&other).unwrap_err();
    assert!(matches!(err, Error::TokenizerMismatch { .. }), "{err}");
    // A run of another objective is not a reward model, and says so before any weight.
    let mlm = dir.join("mlm");
    std::fs::create_dir_all(&mlm).unwrap();
    let config = Recipe::named("mlm", Preset::Tiny).unwrap().to_json();
    std::fs::write(mlm.join("config.json"), config).unwrap();
    let err = RewardModel::load(&mlm, &Device::flex()).unwrap_err();
    assert!(
        matches!(&err, Error::Recipe { field, .. } if field == "objective"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
