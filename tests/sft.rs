//! Supervised fine-tuning through a recipe: SFT started from a pretext causal run learns (its
//! loss falls) and logs TRL's metrics, a paused SFT run resumed gives the losses of the run left
//! alone, packing trains, generation reads an SFT run back, and a start that is not a causal
//! model or data that are not there are typed errors before any training.

mod common;

use std::path::Path;

use burn::prelude::*;
use pretext::Preset;
use pretext::error::Error;
use pretext::generate::{CausalLm, SamplingConfig};
use pretext::recipe::{Recipe, RunOptions};
use pretext::train::Split;
use serde_json::Value;

fn records(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn train_losses(dir: &Path) -> Vec<f64> {
    records(dir)
        .iter()
        .filter(|r| r["split"] == "train")
        .map(|r| r["loss"].as_f64().unwrap())
        .collect()
}

/// `sft` from `init` for `steps` steps, logging every step.
fn sft(init: &Path, steps: usize) -> Recipe {
    let mut recipe = Recipe::named("sft", Preset::Tiny)
        .unwrap()
        .init_from(init)
        .unwrap();
    recipe = common::quiet(recipe, steps, 2);
    recipe.train.checkpoint_every = steps;
    recipe
}

/// The train losses of `recipe` run into `dir` paused after 12 steps, then resumed to its end.
fn paused_and_resumed(recipe: &Recipe, dir: &Path) -> Vec<f64> {
    let device = Device::flex().autodiff();
    let mut paused = recipe.clone();
    paused.train.pause_after = Some(12);
    paused.run(&RunOptions::new(dir, device.clone())).unwrap();
    assert_eq!(train_losses(dir).len(), 12);
    let mut options = RunOptions::new(dir, device);
    options.resume = true;
    recipe.run(&options).unwrap();
    train_losses(dir)
}

#[test]
fn sft_from_a_causal_run_learns_resumes_exactly_and_generates() {
    let dir = common::temp_dir("sft");
    let clm = common::clm_run(&dir);
    let device = Device::flex().autodiff();
    let recipe = sft(&clm, 24);
    assert_eq!(recipe.init.as_deref(), Some(clm.as_path()));
    let straight = dir.join("sft");
    recipe
        .run(&RunOptions::new(&straight, device.clone()))
        .unwrap();
    let losses = train_losses(&straight);
    assert_eq!(losses.len(), 24);
    let (head, tail) = common::ends(&losses, 4);
    eprintln!("sft straight: loss {head:.3} -> {tail:.3}");
    assert!(tail < head - 0.5, "the loss did not fall: {losses:?}");
    let last = records(&straight).into_iter().last().unwrap();
    assert_eq!(last["split"], "valid");
    for metric in ["mean_token_accuracy", "num_tokens"] {
        assert!(last[metric].as_f64().is_some(), "{metric} missing: {last}");
    }

    // Paused after 12 steps, then resumed: the same losses.
    assert_eq!(
        paused_and_resumed(&recipe, &dir.join("sft-resumed")),
        losses
    );

    // The run reads back as a causal LM and answers.
    let model = CausalLm::load(&straight, &Device::flex()).unwrap();
    let greedy = SamplingConfig::new()
        .with_greedy(true)
        .with_max_new_tokens(6);
    let out = model
        .complete(&["Repeat the words: the jury said Answer:"], &greedy)
        .unwrap();
    assert!(!out[0].ids.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

/// How far the packed and the whole-sequence runs' loss falls in 12 steps, at least (the
/// closing note of issue 42 has the worst value over seeds).
const SFT_FALL: f64 = 0.3;

#[test]
fn packed_sft_and_whole_sequence_loss_train() {
    let dir = common::temp_dir("sft-packed");
    let device = Device::flex().autodiff();
    for (name, packing, completion_only) in [("packed", true, true), ("whole", false, false)] {
        let mut recipe = Recipe::named("sft", Preset::Tiny).unwrap();
        recipe = common::quiet(recipe, 12, 1);
        let pretext::recipe::ObjectiveRecipe::Sft(settings) = &mut recipe.objective else {
            unreachable!()
        };
        settings.packing = packing;
        settings.completion_only = completion_only;
        let report = recipe
            .run(&RunOptions::new(dir.join(name), device.clone()))
            .unwrap();
        let valid: Vec<_> = report
            .history
            .iter()
            .filter(|r| r.split == Split::Valid)
            .collect();
        assert!(valid[0].loss.is_finite(), "{name}");
        // It trains: the mean of the last three steps' losses below the first three's.
        let losses = common::train_losses(&report.history);
        let (head, tail) = common::ends(&losses, 3);
        eprintln!("sft {name}: loss {head:.3} -> {tail:.3}");
        assert!(
            tail < head - SFT_FALL,
            "{name}: the loss did not fall: {losses:?}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sft_refuses_a_start_without_a_causal_head_and_missing_data() {
    let dir = common::temp_dir("sft-refused");
    std::fs::create_dir_all(&dir).unwrap();
    let mlm = Recipe::named("mlm", Preset::Tiny).unwrap();
    std::fs::write(dir.join("config.json"), mlm.to_json()).unwrap();
    let err = Recipe::named("sft", Preset::Tiny)
        .unwrap()
        .init_from(&dir)
        .unwrap_err();
    assert!(matches!(err, Error::NoCausalPath(_)), "{err}");
    let bert = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/bert");
    let err = Recipe::named("sft", Preset::Tiny)
        .unwrap()
        .init_from(&bert)
        .unwrap_err();
    assert!(matches!(err, Error::NoCausalPath(_)), "{err}");
    let mut recipe = Recipe::named("sft", Preset::Tiny).unwrap();
    recipe
        .set(
            "objective.settings.data",
            "\"/no/such/file.jsonl\"".parse().unwrap(),
        )
        .unwrap();
    let err = recipe.check().unwrap_err();
    assert!(
        matches!(&err, Error::Recipe { field, .. } if field == "objective.settings.data"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sft_starts_from_an_imported_gpt2() {
    let dir = common::temp_dir("sft-gpt2");
    let gpt2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/gpt2-bundled-vocab");
    let mut recipe = sft(&gpt2, 4);
    let pretext::recipe::ObjectiveRecipe::Sft(settings) = &mut recipe.objective else {
        unreachable!()
    };
    assert!(
        settings.gpt2_head,
        "GPT-2's head has no transform and no bias"
    );
    // Pairs short enough for the fixture's 40 positions.
    let data = dir.join("pairs.jsonl");
    let pairs: String = ["the jury", "it was", "a man said"]
        .iter()
        .map(|p| format!("{{\"prompt\": \"Repeat: {p}\", \"completion\": \"{p}\"}}\n"))
        .collect();
    std::fs::write(&data, pairs).unwrap();
    settings.data = Some(data);
    recipe.seq_len = 40;
    let out = dir.join("run");
    recipe
        .run(&RunOptions::new(&out, Device::flex().autodiff()))
        .unwrap();
    assert_eq!(train_losses(&out).len(), 4);
    // Still GPT-2's shape: it exports as GPT-2.
    assert_eq!(
        recipe.export_hf(&out, &dir.join("hf"), false).unwrap(),
        "GPT2LMHeadModel"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every float parameter of `module` by path, flattened.
fn by_path<M: burn::module::Module>(module: &M) -> Vec<(String, Vec<f32>)> {
    struct Values(Vec<(String, Vec<f32>)>, Vec<String>);
    impl burn::module::ModuleVisitor for Values {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.1.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.1.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.push((self.1.join("."), data.try_to_vec().unwrap()));
        }
    }
    let mut values = Values(Vec::new(), Vec::new());
    module.visit(&mut values);
    values.0
}

#[test]
fn sft_with_lora_learns_resumes_exactly_and_changes_only_the_adapted_weights() {
    let dir = common::temp_dir("sft-lora");
    let clm = common::clm_run(&dir);
    let device = Device::flex().autodiff();
    let mut recipe = sft(&clm, 24);
    // Every linear map of the layers: the tied LM head and the embeddings stay frozen, so the
    // adapters are all that learns.
    let lora = common::lora_on_every_linear_map();
    recipe.lora = Some(lora);
    recipe.train.learning_rate = 1e-2;
    let straight = dir.join("sft-lora");
    recipe
        .run(&RunOptions::new(&straight, device.clone()))
        .unwrap();
    let losses = train_losses(&straight);
    let (head, tail) = common::ends(&losses, 4);
    eprintln!("sft with LoRA: loss {head:.3} -> {tail:.3}");
    assert!(
        tail < head - LORA_SFT_FALL,
        "the loss did not fall: {losses:?}"
    );

    // The saved encoder has the adapters merged: its layers' weight matrices moved, nothing
    // else did.
    let read = |run: &Path| {
        pretext::recipe::TrainedEncoder::read(run, None, &Device::flex())
            .unwrap()
            .encoder
    };
    let (start, tuned) = (by_path(&read(&clm)), by_path(&read(&straight)));
    assert_eq!(start.len(), tuned.len());
    for ((path, before), (_, after)) in start.iter().zip(&tuned) {
        let adapted =
            path.starts_with("layers.") && path.ends_with(".weight") && !path.contains("norm");
        assert_eq!(before != after, adapted, "{path}");
    }
    let size = |file: &str| std::fs::metadata(straight.join(file)).unwrap().len();
    assert!(size("adapters.bpk") * 10 < size("encoder.bpk"));

    // Paused after 12 steps, then resumed: the same losses.
    assert_eq!(
        paused_and_resumed(&recipe, &dir.join("sft-lora-resumed")),
        losses
    );

    // Read back (its checkpoint adapted, then merged), it generates.
    let model = CausalLm::load(&straight, &Device::flex()).unwrap();
    let greedy = SamplingConfig::new()
        .with_greedy(true)
        .with_max_new_tokens(4);
    assert!(
        !model.complete(&["The jury said"], &greedy).unwrap()[0]
            .ids
            .is_empty()
    );

    // A target that names nothing is an error naming the field.
    let mut wrong = recipe.clone();
    wrong.lora = Some(pretext::lora::LoraConfig::new().with_targets(vec!["q_proj".into()]));
    let err = wrong
        .run(&RunOptions::new(
            dir.join("sft-wrong"),
            Device::flex().autodiff(),
        ))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Recipe { field, .. } if field == "lora"),
        "{err}"
    );
    assert!(err.to_string().contains("q_proj"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// How far the LoRA SFT run's loss falls in 24 steps, at least: with the embeddings and the
/// tied head frozen it falls less than a full run's; over `PRETEXT_TEST_SEED` 0–4 (and 0 with
/// `PRETEXT_FUSED=0`) it fell 0.19–0.42.
const LORA_SFT_FALL: f64 = 0.1;
