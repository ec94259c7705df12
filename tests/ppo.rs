//! PPO from a tiny causal run: against a rule that likes one letter, the score of the policy's
//! samples rises while the KL to the start stays bounded; the first update's ratio is 1 (no
//! dropout, the reference equal to the policy); against a tiny reward model, a resumed run
//! replays the rollouts and updates of an uninterrupted one exactly; responses that never
//! reach the end of text are penalised, not a crash; bad settings are typed errors.

mod common;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use pretext::Preset;
use pretext::align::RewardModel;
use pretext::align::{PpoConfig, PpoOptions, Scorer, StyleScorer, load_policy, ppo};
use pretext::blocks::EncoderBackbone;
use pretext::error::Error;
use pretext::recipe::{Recipe, RunOptions};
use pretext::train::{LogRecord, TrainConfig};

/// A 100-step causal run (sure enough of its words for a few PPO steps to move it) and a
/// 30-step reward model started from it, under `dir`.
fn runs(dir: &Path) -> (PathBuf, PathBuf) {
    let clm = common::clm_run_of(dir, 100);
    let mut reward = Recipe::named("reward", Preset::Tiny)
        .unwrap()
        .init_from(&clm)
        .unwrap();
    reward = common::quiet(reward, 30, 1);
    let out = dir.join("reward");
    reward
        .run(&RunOptions::new(&out, Device::flex().autodiff()))
        .unwrap();
    (clm, out)
}

/// A scorer of one's own, dense enough for a few steps to show: the share of a response's
/// letters that are `e`.
struct LikesE;

impl Scorer for LikesE {
    fn score(&self, pairs: &[(&str, &str)]) -> pretext::Result<Vec<f32>> {
        Ok(pairs
            .iter()
            .map(|(_, response)| {
                let letters = response.chars().filter(|c| c.is_alphabetic()).count();
                let es = response.chars().filter(|&c| c == 'e').count();
                es as f32 / letters.max(1) as f32
            })
            .collect())
    }

    fn name(&self) -> String {
        "likes e".into()
    }
}

fn prompts() -> Vec<String> {
    let data = pretext::dataset::instructions::load().unwrap();
    data.valid
        .iter()
        .take(64)
        .map(|p| p.prompt.clone())
        .collect()
}

fn config(steps: usize) -> PpoConfig {
    let defaults = PpoConfig::default();
    PpoConfig {
        train: TrainConfig {
            steps,
            seed: common::seed(defaults.train.seed),
            batch_size: 16,
            learning_rate: 1e-3,
            progress: false,
            ..defaults.train
        },
        num_ppo_epochs: 4,
        num_mini_batches: 2,
        response_length: 6,
        temperature: 1.0,
        kl_coef: 0.05,
        ..defaults
    }
}

fn metric(records: &[LogRecord], name: &str) -> Vec<f64> {
    records.iter().map(|r| r.metrics[name]).collect()
}

/// A record without its timings, which differ run to run.
fn untimed(record: &LogRecord) -> String {
    let mut record = record.clone();
    record.tokens_per_s = 0.0;
    record.metrics.remove("eps");
    format!("{record:?}")
}

/// Steps and KL coefficient of the rule-scored run, and how far the share of `e`s rises at
/// least, from the first 10 steps' mean to the last 20's. At 40 steps and β = 0.05 the rise
/// was +0.028 to +0.030 on an Intel Xeon and +0.017 on a Zen 3 EPYC, against a bar of 0.02:
/// β held the score near 0.17. At β = 0.02 the score climbs to ~0.3 in 80 steps (the closing
/// note of issue 42 has the worst rise and KL over seeds and kernels).
const PPO_STEPS: usize = 80;
const PPO_KL: f64 = 0.02;
const PPO_RISE: f64 = 0.08;

#[test]
fn ppo_raises_the_score_of_a_rule() {
    let dir = common::temp_dir("ppo-rule");
    let policy = common::clm_run_of(&dir, 100);
    let prompts = prompts();
    let device = Device::flex().autodiff();

    let steps = PPO_STEPS;
    let whole = ppo(
        &policy,
        &LikesE,
        &prompts,
        &PpoConfig {
            missing_eos_penalty: 0.0,
            kl_coef: PPO_KL,
            ..config(steps)
        },
        &PpoOptions::new(dir.join("whole"), device.clone()),
    )
    .unwrap();
    let history = &whole.history;
    assert_eq!(history.len(), steps);
    // The policy is its own reference at the first rollout: the KL is 0.
    let first = &history[0].metrics;
    assert!(first["objective/kl"].abs() < 1e-3, "{first:?}");
    for name in [
        "objective/entropy",
        "objective/rlhf_reward",
        "objective/non_score_reward",
        "policy/approxkl_avg",
        "policy/clipfrac_avg",
        "val/clipfrac_avg",
        "val/ratio",
        "loss/value_avg",
        "eps",
        "episode",
    ] {
        assert!(first.contains_key(name), "{name} missing");
    }
    let scores = metric(history, "objective/scores");
    // Each step scores 16 responses of 6 tokens, so step to step the score scatters by ~0.03:
    // compare the first 10 steps with the last 20.
    let (early, late) = (
        common::mean(&scores[..10]),
        common::mean(&scores[steps - 20..]),
    );
    eprintln!(
        "scores {scores:?}\nkl {:?}\neos {:?}",
        metric(history, "objective/kl"),
        metric(history, "val/num_eos_tokens")
    );
    assert!(
        late > early + PPO_RISE,
        "the score rose from {early} to {late}"
    );
    let kl = metric(history, "objective/kl");
    // Bounded: 5.1 to 7.5 nats at the last step over the seeds and kernels tried (β = 0.01,
    // half the penalty, let it reach 12 and 24 on two seeds).
    assert!(kl[steps - 1] < 15.0, "KL stays bounded: {kl:?}");
    let ratio = metric(history, "val/ratio");
    eprintln!(
        "ratio furthest from 1 by {}",
        ratio.iter().map(|r| (r - 1.0).abs()).fold(0.0, f64::max)
    );
    assert!(ratio.iter().all(|r| (r - 1.0).abs() < 0.2), "{ratio:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ppo_resumes_exactly_and_penalises_unfinished_responses() {
    let dir = common::temp_dir("ppo-resume");
    let (policy, reward) = runs(&dir);
    let reward = RewardModel::load(&reward, &Device::flex()).unwrap();
    let prompts = prompts();
    let device = Device::flex().autodiff();

    // One epoch of one minibatch: the step's ratio is the first update's, before any change
    // to the weights, so the pass that scored the rollouts and the pass that updates agree.
    let first = ppo(
        &policy,
        &reward,
        &prompts,
        &PpoConfig {
            num_ppo_epochs: 1,
            num_mini_batches: 1,
            ..config(1)
        },
        &PpoOptions::new(dir.join("first"), device.clone()),
    )
    .unwrap();
    let first = &first.history[0].metrics;
    assert!((first["val/ratio"] - 1.0).abs() < 1e-6, "{first:?}");
    assert!(first["val/ratio_var"] < 1e-12, "{first:?}");
    assert!(first["policy/clipfrac_avg"] == 0.0, "{first:?}");

    // Against the reward model, interrupted after 3 steps, then resumed: the same records
    // and the same weights as an uninterrupted run.
    let steps = 6;
    let whole = ppo(
        &policy,
        &reward,
        &prompts,
        &config(steps),
        &PpoOptions::new(dir.join("whole-rm"), device.clone()),
    )
    .unwrap();
    let history = &whole.history;
    let halves = dir.join("halves");
    let mut paused = config(steps);
    paused.train.pause_after = Some(3);
    ppo(
        &policy,
        &reward,
        &prompts,
        &paused,
        &PpoOptions::new(&halves, device.clone()),
    )
    .unwrap();
    let resumed = ppo(
        &policy,
        &reward,
        &prompts,
        &config(steps),
        &PpoOptions {
            resume: true,
            ..PpoOptions::new(&halves, device.clone())
        },
    )
    .unwrap();
    assert_eq!(resumed.history.len(), steps - 3);
    for (a, b) in history[3..].iter().zip(&resumed.history) {
        assert_eq!(untimed(a), untimed(b));
    }
    let weights = |m: &pretext::generate::CausalLm| -> Vec<f32> {
        m.encoder
            .token_embedding()
            .into_data()
            .convert::<f32>()
            .try_to_vec()
            .unwrap()
    };
    assert_eq!(weights(&whole.policy), weights(&resumed.policy));
    // The run directory loads as a policy, the trained weights in it.
    let loaded = load_policy(&halves, &Device::flex()).unwrap();
    assert_eq!(weights(&loaded), weights(&whole.policy));

    // Resuming with another KL coefficient is refused and names it.
    let err = ppo(
        &policy,
        &reward,
        &prompts,
        &PpoConfig {
            kl_coef: 0.5,
            ..config(steps)
        },
        &PpoOptions {
            resume: true,
            ..PpoOptions::new(&halves, device.clone())
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig(m) if m.contains("kl_coef")),
        "{err}"
    );

    // Responses cut before the end of text lose the penalty, exactly: the first rollouts are
    // the same with and without it.
    let short = |penalty: f64, name: &str| {
        let config = PpoConfig {
            response_length: 2,
            missing_eos_penalty: penalty,
            ..config(1)
        };
        let out = PpoOptions::new(dir.join(name), device.clone());
        ppo(&policy, &reward, &prompts, &config, &out)
            .unwrap()
            .history[0]
            .metrics
            .clone()
    };
    let (free, penalised) = (short(0.0, "free"), short(3.0, "penalised"));
    let unfinished = 1.0 - penalised["val/num_eos_tokens"] / 16.0;
    assert!(
        unfinished > 0.0,
        "two tokens leave some responses unfinished"
    );
    let gap = free["objective/scores"] - penalised["objective/scores"];
    assert!(
        (gap - 3.0 * unfinished).abs() < 1e-4,
        "{gap} vs {unfinished}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_ppo_settings_are_typed_errors() {
    let device = Device::flex().autodiff();
    let dir = common::temp_dir("ppo-bad");
    let prompts = vec!["Repeat the words: the jury Answer:".to_string()];
    let nowhere = Path::new("/no/such/run");
    let (judge, _) = StyleScorer::bundled_shakespeare().unwrap();
    for (config, wanted) in [
        (
            PpoConfig {
                kl_coef: -0.1,
                ..PpoConfig::default()
            },
            "KL coefficient",
        ),
        (
            PpoConfig {
                num_mini_batches: 64,
                ..PpoConfig::default()
            },
            "minibatches",
        ),
        (
            PpoConfig {
                temperature: 0.0,
                ..PpoConfig::default()
            },
            "temperature",
        ),
    ] {
        let err = ppo(
            nowhere,
            &judge,
            &prompts,
            &config,
            &PpoOptions::new(dir.join("run"), device.clone()),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains(wanted)),
            "{err}"
        );
    }
    // A policy whose tokenizer reads text otherwise than the reward model's.
    let (_, reward) = runs(&dir);
    let reward = RewardModel::load(&reward, &Device::flex()).unwrap();
    let gpt2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/gpt2-bundled-vocab");
    let err = ppo(
        &gpt2,
        &reward,
        &prompts,
        &PpoConfig::default(),
        &PpoOptions::new(dir.join("run"), device.clone()),
    )
    .unwrap_err();
    assert!(matches!(err, Error::TokenizerMismatch { .. }), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
