//! Judging a policy as the DPO paper's frontier does: one sampled response per held-out
//! prompt, scored by a gold judge (and, beside it, by the reward model the policy may have
//! been trained against, so that over-optimisation shows as the two parting), with the KL of
//! the policy to a reference along those samples, `Σ_t KL(π(·|x, y<t) ‖ π_ref(·|x, y<t))`,
//! each token's computed exactly from both distributions over the vocabulary (never
//! negative; the sampled `log π(y_t) − log π_ref(y_t)` goes below zero at small budgets).

use serde::Serialize;

use super::responses::response_kl;
use super::scorer::Scorer;
use crate::error::{Error, Result};
use crate::generate::{CausalLm, SamplingConfig};

/// One held-out prompt's sample and its scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgedSample {
    /// The prompt.
    pub prompt: String,
    /// The response, special tokens left out.
    pub text: String,
    /// The gold judge's score.
    pub gold: f32,
    /// The reward model's score, when one was given.
    pub reward: Option<f32>,
    /// `Σ_t KL(π(·|x, y<t) ‖ π_ref(·|x, y<t))` over the response's tokens.
    pub kl: f32,
    /// Whether the response reached the end-of-text token.
    pub finished: bool,
}

/// Means over the held-out prompts, and the samples they come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyScore {
    /// Mean gold score.
    pub gold: f64,
    /// Mean reward-model score, when one was given.
    pub reward: Option<f64>,
    /// Mean sequence KL to the reference.
    pub kl: f64,
    /// Share of responses that reached the end-of-text token.
    pub finished: f64,
    /// Every sample, in the prompts' order.
    pub samples: Vec<JudgedSample>,
}

/// Samples one response to each of `prompts` from `policy` as `sampling` says (`batch` at a
/// time), and scores them with `gold`, with `reward` if given, and by their KL to
/// `reference` along them. The samples must follow the policy's own distribution, the one
/// the KL is of: greedy decoding or top-k / top-p truncation is [`Error::InvalidConfig`].
pub fn evaluate(
    policy: &CausalLm,
    reference: &CausalLm,
    prompts: &[String],
    sampling: &SamplingConfig,
    gold: &dyn Scorer,
    reward: Option<&dyn Scorer>,
    batch: usize,
) -> Result<PolicyScore> {
    if sampling.greedy || sampling.top_k != 0 || sampling.top_p < 1.0 {
        return Err(Error::InvalidConfig(
            "the KL to the reference is measured along samples of the policy's own distribution: \
             sample without greedy decoding, top-k or top-p"
                .into(),
        ));
    }
    if prompts.is_empty() {
        return Err(Error::EmptyCorpus("no prompt to evaluate on".into()));
    }
    let mut samples = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(batch.max(1)) {
        let ids: Vec<Vec<u32>> = chunk
            .iter()
            .map(|t| policy.prompt_ids(t))
            .collect::<Result<_>>()?;
        let drawn = policy.generate(&ids, sampling)?;
        let temperature = sampling.temperature;
        let kls = response_kl(policy, reference, &ids, &drawn.ids, temperature, batch)?;
        let texts = drawn
            .ids
            .iter()
            .map(|r| policy.tokenizer.decode(r))
            .collect::<Result<Vec<_>>>()?;
        let pairs: Vec<(&str, &str)> = chunk
            .iter()
            .map(String::as_str)
            .zip(texts.iter().map(String::as_str))
            .collect();
        let golds = gold.score(&pairs)?;
        let rewards = reward.map(|r| r.score(&pairs)).transpose()?;
        for (i, (prompt, text)) in chunk.iter().zip(texts).enumerate() {
            let kl = kls[i].iter().sum();
            samples.push(JudgedSample {
                gold: golds[i],
                reward: rewards.as_ref().map(|r| r[i]),
                kl,
                finished: drawn.finished[i],
                prompt: prompt.clone(),
                text,
            });
        }
    }
    let n = samples.len() as f64;
    let mean = |f: &dyn Fn(&JudgedSample) -> f64| samples.iter().map(f).sum::<f64>() / n;
    Ok(PolicyScore {
        gold: mean(&|s| f64::from(s.gold)),
        reward: reward.map(|_| mean(&|s| f64::from(s.reward.unwrap_or(0.0)))),
        kl: mean(&|s| f64::from(s.kl)),
        finished: mean(&|s| f64::from(u8::from(s.finished))),
        samples,
    })
}
