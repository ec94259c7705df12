//! PPO for language models, InstructGPT's third step, as TRL's `PPOTrainer` runs it: each
//! step samples responses to a batch of prompts from the policy ([`crate::generate`]), scores
//! them at their end with a reward model (or any [`Scorer`]), penalises every token by its KL to a frozen
//! reference (the starting policy), estimates advantages with GAE against a value head, and
//! then takes several epochs of clipped policy and value updates over minibatches of those
//! rollouts. The arithmetic is [`crate::align::ppo_math`]'s.
//!
//! The value head is a linear map on the policy's own backbone, **initialised to zero**, as in
//! OpenAI's `lm-human-preferences`: InstructGPT and TRL's example instead start a separate
//! value model from the reward model, which on a CPU doubles the cost of every forward and
//! backward pass, and a reward model's head cannot be moved onto the policy's backbone (it
//! reads another model's states). Zero values make the first advantages the returns
//! themselves, whitened.
//!
//! Every random draw derives from the seed and the step (the prompts of a step, each prompt's
//! sampling stream, each epoch's minibatch order), so the step is the whole random state: a
//! checkpoint holds the policy and value head, the optimizer and the step, and a resumed run
//! replays the rollouts and updates of an uninterrupted one exactly.
//!
//! ```no_run
//! use pretext::align::{PpoConfig, PpoOptions, ppo};
//! use pretext::burn::prelude::*;
//! use pretext::align::RewardModel;
//! # fn main() -> pretext::Result<()> {
//! let reward = RewardModel::load("runs/reward".as_ref(), &Device::flex())?;
//! let prompts = vec!["Continue in the style of Shakespeare: the jury said Answer:".to_string()];
//! let config = PpoConfig { kl_coef: 0.1, ..PpoConfig::default() };
//! let options = PpoOptions::new("runs/ppo", Device::flex().autodiff());
//! let report = ppo("runs/sft".as_ref(), &reward, &prompts, &config, &options)?;
//! let sampling = pretext::generate::SamplingConfig::new();
//! println!("{}", report.policy.complete(&[&prompts[0]], &sampling)?[0].text);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::responses::{ResponseBatch, response_logprobs};
use super::scorer::Scorer;
use crate::align::ppo_math::{
    KlEstimator, check_kl_coef, gae, policy_loss, token_rewards, value_loss, whiten,
};
use crate::blocks::{EncoderBackbone, LmHead, TransformerEncoder};
use crate::error::{Error, Result};
use crate::generate::{CausalLm, SamplingConfig};
use crate::train::{LogRecord, MetricValue, Sampler, Spine, StepDone, TrainConfig, TrainState};
use crate::util::rng::{example_rng, splitmix64};

/// The file of a PPO run directory that names its policy, reward model and settings.
pub const PPO_FILE: &str = "ppo.json";

/// Settings of a PPO run; the defaults are TRL's `PPOConfig`'s unless said otherwise.
///
/// As TRL's `PPOConfig` extends `TrainingArguments`, the loop's own settings are a
/// [`TrainConfig`]'s, with other defaults: `steps` counts rollout batches (default 100) of
/// `batch_size` prompts (default 32); the `learning_rate` (default 1e-5: TRL's 3e-6 is tuned
/// for models of 160 M parameters and more, and small models move faster) warms up over
/// `warmup_fraction` (default 0) of all updates, `steps × num_ppo_epochs × num_mini_batches`,
/// then decays linearly; `weight_decay` defaults to 0, `log_every` to 1 and
/// `checkpoint_every` to 10. PPO has no validation split (`valid_every` and `valid_batches`
/// do not apply) and splits its batch by `num_mini_batches` (`grad_accumulation` and
/// `shards` must stay 1).
///
/// ```
/// use pretext::align::PpoConfig;
/// use pretext::train::TrainConfig;
///
/// let defaults = PpoConfig::default();
/// let config = PpoConfig {
///     train: TrainConfig { steps: 200, learning_rate: 3e-5, ..defaults.train },
///     kl_coef: 0.1,
///     ..defaults
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// The loop's settings (see above).
    pub train: TrainConfig,
    /// Passes over each rollout batch. Default 4.
    pub num_ppo_epochs: usize,
    /// Minibatches per pass, one optimizer update each. Default 1.
    pub num_mini_batches: usize,
    /// Most tokens sampled per response (TRL's `response_length`). Default 16.
    pub response_length: usize,
    /// Sampling temperature; the same divides the logits whenever a response is scored.
    /// Default 0.7.
    pub temperature: f64,
    /// Weight of the per-token KL penalty to the reference (β). Default 0.05.
    pub kl_coef: f64,
    /// How the per-token KL is estimated. Default k1.
    pub kl_estimator: KlEstimator,
    /// Clip range of the probability ratio. Default 0.2.
    pub cliprange: f64,
    /// Clip range of the value predictions around the rollout's. Default 0.2.
    pub cliprange_value: f64,
    /// Weight of the value loss. Default 0.1.
    pub vf_coef: f64,
    /// Discount. Default 1.
    pub gamma: f64,
    /// GAE's λ. Default 0.95.
    pub lam: f64,
    /// Subtracted from a response's score when it never reached the end-of-text token.
    /// Default 1 (TRL's `missing_eos_penalty` has none by default; `lm-human-preferences`
    /// scores such responses −1).
    pub missing_eos_penalty: f64,
    /// The reward model's scores are used as `(score − reward_mean) / reward_std`: set them to
    /// its mean and spread on the starting policy's samples so that β keeps one meaning
    /// (`lm-human-preferences` normalises so). Default 0.
    pub reward_mean: f64,
    /// See `reward_mean`. Default 1.
    pub reward_std: f64,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            train: TrainConfig::new(100, 32)
                .with_learning_rate(1e-5)
                .with_warmup_fraction(0.0)
                .with_weight_decay(0.0)
                .with_log_every(1)
                .with_checkpoint_every(10),
            num_ppo_epochs: 4,
            num_mini_batches: 1,
            response_length: 16,
            temperature: 0.7,
            kl_coef: 0.05,
            kl_estimator: KlEstimator::K1,
            cliprange: 0.2,
            cliprange_value: 0.2,
            vf_coef: 0.1,
            gamma: 1.0,
            lam: 0.95,
            missing_eos_penalty: 1.0,
            reward_mean: 0.0,
            reward_std: 1.0,
        }
    }
}

impl PpoConfig {
    /// Checks counts, rates and coefficients.
    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        for (name, value) in [
            ("train.grad_accumulation", self.train.grad_accumulation),
            ("train.shards", self.train.shards),
        ] {
            if value != 1 {
                return Err(Error::InvalidConfig(format!(
                    "{name} must be 1 in PPO, which splits its batch by num_mini_batches"
                )));
            }
        }
        for (name, value) in [
            ("num_ppo_epochs", self.num_ppo_epochs),
            ("num_mini_batches", self.num_mini_batches),
            ("response_length", self.response_length),
        ] {
            if value == 0 {
                return Err(Error::InvalidConfig(format!("{name} must be positive")));
            }
        }
        if self.num_mini_batches > self.train.batch_size {
            return Err(Error::InvalidConfig(format!(
                "{} minibatches of a batch of {} prompts leave some empty",
                self.num_mini_batches, self.train.batch_size
            )));
        }
        check_kl_coef(self.kl_coef)?;
        for (name, value) in [
            ("temperature", self.temperature),
            ("cliprange", self.cliprange),
            ("cliprange_value", self.cliprange_value),
            ("reward_std", self.reward_std),
        ] {
            crate::error::check_positive(name, value)?;
        }
        crate::error::check_weight("vf_coef", self.vf_coef)?;
        crate::error::check_weight("missing_eos_penalty", self.missing_eos_penalty)?;
        for (name, value) in [("gamma", self.gamma), ("lam", self.lam)] {
            crate::error::check_rate(name, value)?;
        }
        if !self.reward_mean.is_finite() {
            return Err(Error::InvalidConfig(format!(
                "reward_mean must be a number, not {}",
                self.reward_mean
            )));
        }
        Ok(())
    }

    /// The first field that a resumed run may not change, with both values; the step budget
    /// and the output cadence may change.
    fn differs_from(&self, saved: &PpoConfig) -> Option<String> {
        let value = |c: &PpoConfig| serde_json::to_value(c).expect("a config serialises");
        crate::train::resume_difference(&value(saved), &value(self), "train")
            .map(|(k, then, now)| format!("{k}: {then} in the checkpoint, {now} now"))
    }
}

/// Where a PPO run writes and on which device it trains.
#[derive(Debug, Clone)]
pub struct PpoOptions {
    /// The run directory: `ppo.json`, `metrics.jsonl`, `checkpoint/`.
    pub out: PathBuf,
    /// Continue the run in `out` from its checkpoint.
    pub resume: bool,
    /// The autodiff device the policy trains on; sampling and scoring run on its inner device.
    pub device: Device,
}

impl PpoOptions {
    /// A fresh run in `out` on the autodiff `device`.
    pub fn new(out: impl Into<PathBuf>, device: Device) -> Self {
        Self {
            out: out.into(),
            resume: false,
            device,
        }
    }
}

/// What `ppo.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PpoRunFile {
    policy: PathBuf,
    reward: String,
    config: PpoConfig,
}

/// The module PPO trains: the policy's backbone and LM head, and a value head on the same
/// backbone.
#[derive(Module, Debug)]
pub struct PolicyValue {
    /// The policy's backbone, shared with the value head.
    pub encoder: TransformerEncoder,
    /// The policy's LM head.
    pub head: LmHead,
    /// The value head: the backbone's state to one value, zero-initialised.
    pub value: Linear,
}

impl PolicyValue {
    /// `model`'s backbone (its dropout turned off) and head, with a zero value head.
    pub fn new(model: CausalLm, device: &Device) -> Self {
        let value = LinearConfig::new(model.encoder.hidden_size(), 1)
            .with_initializer(Initializer::Zeros)
            .init(device);
        Self {
            encoder: model.encoder.without_dropout(),
            head: model.head,
            value,
        }
    }

    /// Each response token's log-probability and value `[tokens]` (see
    /// [`ResponseBatch::score`]).
    fn forward(&self, batch: &ResponseBatch, temperature: f64) -> (Tensor<1>, Tensor<1>) {
        let (states, logprobs) = batch.score(&self.encoder, &self.head, temperature);
        let n = states.dims()[0];
        (logprobs, self.value.forward(states).reshape([n]))
    }
}

/// What a finished PPO run returns.
#[derive(Debug)]
pub struct PpoReport {
    /// The trained policy, on the inner (non-autodiff) device.
    pub policy: CausalLm,
    /// Every record written to `metrics.jsonl` by this call.
    pub history: Vec<LogRecord>,
    /// Where the run stands.
    pub state: TrainState,
}

/// One step's rollouts and what was computed from them, one entry per response, with the
/// rollout metrics under TRL's names.
struct Rollouts {
    metrics: BTreeMap<String, f64>,
    prompts: Vec<Vec<u32>>,
    responses: Vec<Vec<u32>>,
    logprobs: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    advantages: Vec<Vec<f32>>,
    returns: Vec<Vec<f32>>,
}

/// Trains the causal model of run `policy` (a pretext `clm`, `sft` or `dpo` run, a GPT-2
/// directory, or a PPO run) with PPO against `reward` (a [`RewardModel`] on the inner
/// device, say) on `prompts`, writing to `options.out`.
///
/// [`RewardModel`]: crate::align::RewardModel
///
/// A reward model whose tokenizer reads text otherwise than the policy's is
/// [`Error::TokenizerMismatch`]; a prompt too long for `response_length` more tokens is
/// [`Error::PromptTooLong`] (its `line` the prompt's place from 1); resuming with settings that
/// differ in more than the step budget and output cadence is [`Error::InvalidConfig`] naming
/// the first differing field.
pub fn ppo(
    policy: &Path,
    reward: &dyn Scorer,
    prompts: &[String],
    config: &PpoConfig,
    options: &PpoOptions,
) -> Result<PpoReport> {
    config.validate()?;
    let device = &options.device;
    if !device.is_autodiff() {
        return Err(Error::InvalidConfig(
            "PPO trains on an autodiff device: pass `device.autodiff()`".into(),
        ));
    }
    if prompts.is_empty() {
        return Err(Error::EmptyCorpus(
            "no prompt to sample responses to".into(),
        ));
    }
    let inner = device.clone().inner();
    let start = load_policy(policy, device)?;
    reward.check_tokenizer(&start.tokenizer)?;
    let reference = load_policy(policy, &inner)?;
    let max = start.encoder.max_positions();
    let prompt_ids = prompts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let ids = start.prompt_ids(text)?;
            if ids.len() + config.response_length > max {
                return Err(Error::PromptTooLong {
                    line: i + 1,
                    len: ids.len(),
                    max: max - config.response_length,
                });
            }
            Ok(ids)
        })
        .collect::<Result<Vec<_>>>()?;
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let run_file = PpoRunFile {
        policy: std::path::absolute(policy).map_err(|e| Error::io(policy, e))?,
        reward: reward.name(),
        config: config.clone(),
    };
    let pad = start.tokenizer.special().pad;
    // The policy as it stands, on the inner device, samples; its weights are swapped in at
    // every step.
    let mut current = reference.clone();
    if options.resume {
        let saved = read_run_file(out)?;
        let differs = match saved.reward != run_file.reward {
            true => Some(format!(
                "reward: {} in the checkpoint, {} now",
                saved.reward, run_file.reward
            )),
            false => config.differs_from(&saved.config),
        };
        if let Some(field) = differs {
            return Err(Error::InvalidConfig(format!(
                "the run in {} was started with other settings; {field}",
                out.display()
            )));
        }
    }
    let train = &config.train;
    let updates = config.num_ppo_epochs * config.num_mini_batches;
    let model = PolicyValue::new(start, device);
    let (spine, mut model) = Spine::start(model, train, Some(out), options.resume)?;
    let mut spine = spine.updates_per_step(updates);
    write_run_file(out, &run_file)?;
    let mut sampler = Sampler::new(train.seed, prompts.len());
    while let Some(step) = spine.begin_step() {
        let started = Instant::now();
        let picks: Vec<usize> = (0..train.batch_size)
            .map(|k| sampler.get((step * train.batch_size + k) as u64).1)
            .collect();
        // Sample with the policy as it stands, on the inner device: no graph is needed.
        let inference = model.valid();
        current.encoder = inference.encoder.clone();
        current.head = inference.head.clone();
        let batch_prompts: Vec<Vec<u32>> = picks.iter().map(|&i| prompt_ids[i].clone()).collect();
        let sampling = SamplingConfig::new()
            .with_max_new_tokens(config.response_length)
            .with_temperature(config.temperature)
            .with_seed(splitmix64(train.seed ^ splitmix64(step as u64)));
        let drawn = current.generate(&batch_prompts, &sampling)?;
        let texts: Vec<&str> = picks.iter().map(|&i| prompts[i].as_str()).collect();
        let rollouts = rollouts(
            &inference,
            &reference,
            reward,
            &texts,
            batch_prompts,
            drawn,
            config,
        )?;
        let mut losses = Vec::new();
        let mut stats: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut lr = 0.0;
        let per_minibatch = train.batch_size.div_ceil(config.num_mini_batches);
        for epoch in 0..config.num_ppo_epochs {
            let mut order: Vec<usize> = (0..train.batch_size).collect();
            {
                use rand::seq::SliceRandom;
                order.shuffle(&mut example_rng(
                    train.seed ^ PPO_STREAM,
                    step as u64,
                    epoch as u64,
                ));
            }
            for (k, rows) in order.chunks(per_minibatch).enumerate() {
                lr = spine.lr(epoch * config.num_mini_batches + k);
                let minibatch = minibatch_loss(&model, &rollouts, rows, pad, config, device)?;
                losses.push(minibatch.value);
                for (name, value) in minibatch.stats {
                    stats.entry(name).or_default().push(value);
                }
                let grads = GradientsParams::from_grads(minibatch.loss.backward(), &model);
                model = spine.update(model, grads, minibatch.value, lr)?;
            }
        }
        let mut metrics: Vec<MetricValue> = rollouts
            .metrics
            .iter()
            .map(|(name, &value)| MetricValue::mean(name.clone(), value))
            .collect();
        for (name, values) in stats {
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            metrics.push(MetricValue::mean(name, mean));
        }
        let eps = train.batch_size as f64 / started.elapsed().as_secs_f64();
        metrics.push(MetricValue::mean("eps", eps));
        metrics.push(MetricValue::last(
            "episode",
            ((step + 1) * train.batch_size) as f64,
        ));
        let done = StepDone {
            loss: losses.iter().sum::<f64>() / losses.len() as f64,
            tokens: rollouts.responses.iter().map(Vec::len).sum(),
            metrics,
        };
        spine.end_step(&model, done, lr, |_, _, _| Ok(None))?;
    }
    let (history, state) = spine.finish();
    let trained = model.valid();
    current.encoder = trained.encoder;
    current.head = trained.head;
    Ok(PpoReport {
        policy: current,
        history,
        state,
    })
}

/// Salt of the minibatch order's stream, apart from the sampler's and the rollouts'.
const PPO_STREAM: u64 = 0x5050_4f5f_6d62;

/// Rows scored at a time outside the updates.
const SCORE_BATCH: usize = 64;

/// Scores one step's responses (`drawn` after `prompts`, the ids of `texts`): the policy's
/// log-probabilities and values and the reference's log-probabilities, in one pass each; the
/// reward model's scores; the per-token rewards, advantages (whitened over the batch) and
/// returns; and the rollout metrics under TRL's names.
fn rollouts(
    policy: &PolicyValue,
    reference: &CausalLm,
    reward: &dyn Scorer,
    texts: &[&str],
    prompts: Vec<Vec<u32>>,
    drawn: crate::generate::Generated,
    config: &PpoConfig,
) -> Result<Rollouts> {
    let tokenizer = &reference.tokenizer;
    let device = policy.encoder.token_embedding().device();
    let pad = tokenizer.special().pad;
    let responses = drawn.ids;
    // The policy runs over the responses once more, although sampling returned each token's
    // log-probability: the value head needs this pass anyway, and log-probabilities from the
    // same whole-sequence pass the updates make keep the first ratio at exactly 1.
    let mut logprobs = Vec::with_capacity(responses.len());
    let mut values = Vec::with_capacity(responses.len());
    for (p, r) in prompts
        .chunks(SCORE_BATCH)
        .zip(responses.chunks(SCORE_BATCH))
    {
        let p: Vec<&[u32]> = p.iter().map(Vec::as_slice).collect();
        let r: Vec<&[u32]> = r.iter().map(Vec::as_slice).collect();
        let batch = ResponseBatch::new(&p, &r, pad, &device)?;
        let (lp, v) = policy.forward(&batch, config.temperature);
        logprobs.extend(batch.split_rows(lp));
        values.extend(batch.split_rows(v));
    }
    let reference_logprobs = response_logprobs(
        reference,
        &prompts,
        &responses,
        config.temperature,
        SCORE_BATCH,
    )?;
    let answers = responses
        .iter()
        .map(|ids| tokenizer.decode(ids))
        .collect::<Result<Vec<_>>>()?;
    let pairs: Vec<(&str, &str)> = texts
        .iter()
        .copied()
        .zip(answers.iter().map(String::as_str))
        .collect();
    let raw = reward.score(&pairs)?;
    let rows = responses.len() as f64;
    let (mut kl_sum, mut entropy, mut score_sum, mut length) = (0.0, 0.0, 0.0, 0.0);
    let mut advantages = Vec::with_capacity(responses.len());
    let mut returns = Vec::with_capacity(responses.len());
    for i in 0..responses.len() {
        let mut score = (f64::from(raw[i]) - config.reward_mean) / config.reward_std;
        if !drawn.finished[i] {
            score -= config.missing_eos_penalty;
        }
        let (rewards, kl) = token_rewards(
            &logprobs[i],
            &reference_logprobs[i],
            score as f32,
            config.kl_coef as f32,
            config.kl_estimator,
        );
        let (a, r) = gae(&rewards, &values[i], config.gamma as f32, config.lam as f32);
        advantages.push(a);
        returns.push(r);
        kl_sum += kl.iter().map(|&k| f64::from(k)).sum::<f64>();
        entropy -= logprobs[i].iter().map(|&l| f64::from(l)).sum::<f64>();
        score_sum += score;
        length += responses[i].len() as f64;
    }
    // Whiten the advantages over every token of the batch.
    let mut flat: Vec<f32> = advantages.iter().flatten().copied().collect();
    whiten(&mut flat);
    let mut at = 0;
    for row in &mut advantages {
        let n = row.len();
        row.copy_from_slice(&flat[at..at + n]);
        at += n;
    }
    let kl = kl_sum / rows;
    let non_score = -config.kl_coef * kl;
    let scores = score_sum / rows;
    let eos_count = drawn.finished.iter().filter(|&&f| f).count() as f64;
    let metrics = [
        ("objective/kl", kl),
        ("objective/entropy", entropy / rows),
        ("objective/non_score_reward", non_score),
        ("objective/rlhf_reward", non_score + scores),
        ("objective/scores", scores),
        ("val/num_eos_tokens", eos_count),
        ("response_length", length / rows),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    Ok(Rollouts {
        metrics,
        prompts,
        responses,
        logprobs,
        values,
        advantages,
        returns,
    })
}

/// One minibatch's loss, to differentiate, and its value and diagnostics.
struct MinibatchLoss {
    loss: Tensor<1>,
    value: f64,
    stats: Vec<(&'static str, f64)>,
}

/// The loss of one minibatch (`rows` of the rollouts) under the current model.
fn minibatch_loss(
    model: &PolicyValue,
    rollouts: &Rollouts,
    rows: &[usize],
    pad: u32,
    config: &PpoConfig,
    device: &Device,
) -> Result<MinibatchLoss> {
    let prompts: Vec<&[u32]> = rows
        .iter()
        .map(|&r| rollouts.prompts[r].as_slice())
        .collect();
    let responses: Vec<&[u32]> = rows
        .iter()
        .map(|&r| rollouts.responses[r].as_slice())
        .collect();
    let batch = ResponseBatch::new(&prompts, &responses, pad, device)?;
    let (logprobs, values) = model.forward(&batch, config.temperature);
    let flat = |of: &Vec<Vec<f32>>| -> Tensor<1> {
        let v: Vec<f32> = rows.iter().flat_map(|&r| of[r].iter().copied()).collect();
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), device)
    };
    let old = flat(&rollouts.logprobs);
    let ratio = (logprobs.clone() - old.clone()).detach().exp();
    let (pg, clipfrac, approxkl) =
        policy_loss(logprobs, old, flat(&rollouts.advantages), config.cliprange);
    let (vf, vf_clipfrac) = value_loss(
        values,
        flat(&rollouts.values),
        flat(&rollouts.returns),
        config.cliprange_value,
    );
    let loss = pg.clone() + vf.clone().mul_scalar(config.vf_coef);
    let number = |t: Tensor<1>| f64::from(t.into_scalar::<f32>());
    let ratio_mean = number(ratio.clone().mean());
    let ratio_var = number((ratio.sub_scalar(ratio_mean)).powi_scalar(2).mean());
    let stats = vec![
        ("policy/approxkl_avg", number(approxkl)),
        ("policy/clipfrac_avg", number(clipfrac)),
        ("loss/policy_avg", number(pg.detach())),
        ("loss/value_avg", number(vf.detach())),
        ("val/clipfrac_avg", number(vf_clipfrac)),
        ("val/ratio", ratio_mean),
        ("val/ratio_var", ratio_var),
    ];
    Ok(MinibatchLoss {
        value: number(loss.clone().detach()),
        loss,
        stats,
    })
}

fn read_run_file(dir: &Path) -> Result<PpoRunFile> {
    let path = dir.join(PPO_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
        path: path.clone(),
        reason: e.to_string(),
    })
}

fn write_run_file(dir: &Path, file: &PpoRunFile) -> Result<()> {
    let json = serde_json::to_string_pretty(file).expect("a run file serialises");
    crate::util::atomic_file::write(&dir.join(PPO_FILE), json)
}

/// The causal model in `dir` on `device`: a PPO run's policy (from its checkpoint, on the
/// model it started from), or whatever [`CausalLm::load`] reads.
pub fn load_policy(dir: &Path, device: &Device) -> Result<CausalLm> {
    if !dir.join(PPO_FILE).is_file() {
        return CausalLm::load(dir, device);
    }
    let run = read_run_file(dir)?;
    let start = load_policy(&run.policy, device)?;
    let (tokenizer, bos, eos) = (start.tokenizer.clone(), start.bos, start.eos);
    let trained = crate::recipe::read_checkpoint(dir, PolicyValue::new(start, device))?;
    Ok(CausalLm {
        tokenizer,
        encoder: trained.encoder,
        head: trained.head,
        bos,
        eos,
    })
}
