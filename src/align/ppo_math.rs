//! The arithmetic of PPO for language models, as TRL's `PPOTrainer` (and the
//! `summarize_from_feedback_details` code it descends from) computes it: per-token rewards
//! from a KL penalty against a frozen reference plus the reward model's score at the end of
//! each response, generalised advantage estimation, whitening, and the clipped policy and
//! value losses with their diagnostics. The rollout loop that feeds them is built on
//! [`crate::generate`].
//!
//! Rollout quantities live on the host, one `Vec` per response (responses differ in length);
//! the losses take flat tensors over the tokens of a minibatch.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// How the per-token KL to the reference is estimated from log-probabilities of sampled tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    /// `log π − log π_ref`: unbiased, may be negative token by token.
    K1,
    /// `(r − 1) − log r` with `r = π_ref / π`: unbiased and never negative.
    K3,
}

impl KlEstimator {
    /// The estimate for one token from the policy's and the reference's log-probabilities.
    pub fn estimate(self, logprob: f32, reference: f32) -> f32 {
        let log_ratio = reference - logprob;
        match self {
            Self::K1 => -log_ratio,
            Self::K3 => log_ratio.exp() - 1.0 - log_ratio,
        }
    }
}

/// Checks a KL coefficient, which must be 0 or more.
pub fn check_kl_coef(kl_coef: f64) -> Result<()> {
    crate::error::check_weight("the KL coefficient", kl_coef)
}

/// One response's per-token rewards: `−kl_coef · KL` at every token, plus `score` (the reward
/// model's, less the missing-EOS penalty where it applies) at the last; and the KL estimates.
pub fn token_rewards(
    logprobs: &[f32],
    reference: &[f32],
    score: f32,
    kl_coef: f32,
    estimator: KlEstimator,
) -> (Vec<f32>, Vec<f32>) {
    let kl: Vec<f32> = logprobs
        .iter()
        .zip(reference)
        .map(|(&p, &r)| estimator.estimate(p, r))
        .collect();
    let mut rewards: Vec<f32> = kl.iter().map(|k| -kl_coef * k).collect();
    if let Some(last) = rewards.last_mut() {
        *last += score;
    }
    (rewards, kl)
}

/// Generalised advantage estimation over one response: advantages and returns (advantage +
/// value) from per-token `rewards` and `values`, the value after the last token taken as 0.
pub fn gae(rewards: &[f32], values: &[f32], gamma: f32, lambda: f32) -> (Vec<f32>, Vec<f32>) {
    let n = rewards.len();
    let mut advantages = vec![0.0; n];
    let mut running = 0.0;
    for t in (0..n).rev() {
        let next = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + gamma * next - values[t];
        running = delta + gamma * lambda * running;
        advantages[t] = running;
    }
    let returns = advantages.iter().zip(values).map(|(a, v)| a + v).collect();
    (advantages, returns)
}

/// `values` shifted to mean 0 and scaled to variance 1 (the unbiased variance, as TRL's
/// `masked_whiten`), in place; fewer than two values are only centred.
pub fn whiten(values: &mut [f32]) {
    let n = values.len() as f64;
    if n == 0.0 {
        return;
    }
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let scale = if n > 1.0 {
        let var = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        1.0 / (var + 1e-8).sqrt()
    } else {
        1.0
    };
    for v in values {
        *v = ((f64::from(*v) - mean) * scale) as f32;
    }
}

/// The clipped policy loss over tokens `[n]`: `mean(max(−A·ρ, −A·clip(ρ, 1 ± clip)))` with
/// `ρ = exp(log π − log π_old)`; and `policy/clipfrac` (the share of tokens where clipping
/// bound) and `policy/approxkl` (`mean((log π − log π_old)²) / 2`), detached.
pub fn policy_loss(
    logprobs: Tensor<1>,
    old_logprobs: Tensor<1>,
    advantages: Tensor<1>,
    clip: f64,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let diff = logprobs - old_logprobs;
    let ratio = diff.clone().exp();
    let unclipped = advantages.clone().neg() * ratio.clone();
    let clipped = advantages.neg() * ratio.clamp(1.0 - clip, 1.0 + clip);
    let clipfrac = clipped
        .clone()
        .greater(unclipped.clone())
        .float()
        .mean()
        .detach();
    let loss = unclipped.max_pair(clipped).mean();
    let approxkl = (diff.clone() * diff).mean().mul_scalar(0.5).detach();
    (loss, clipfrac, approxkl)
}

/// The clipped value loss over tokens `[n]`: `½ · mean(max((v − R)², (clip(v, v_old ± clip) −
/// R)²))`; and `val/clipfrac`, detached.
pub fn value_loss(
    values: Tensor<1>,
    old_values: Tensor<1>,
    returns: Tensor<1>,
    clip: f64,
) -> (Tensor<1>, Tensor<1>) {
    let low = old_values.clone().sub_scalar(clip);
    let high = old_values.add_scalar(clip);
    let clipped = values.clone().max_pair(low).min_pair(high);
    let plain = (values - returns.clone()).powi_scalar(2);
    let bounded = (clipped - returns).powi_scalar(2);
    let clipfrac = bounded
        .clone()
        .greater(plain.clone())
        .float()
        .mean()
        .detach();
    (plain.max_pair(bounded).mean().mul_scalar(0.5), clipfrac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    fn t(values: &[f32]) -> Tensor<1> {
        Tensor::from_floats(values, &Device::flex())
    }

    fn scalar(x: Tensor<1>) -> f32 {
        x.into_scalar::<f32>()
    }

    #[test]
    fn gae_on_five_steps_is_the_hand_computation() {
        let rewards = [0.0, 0.5, -0.2, 0.0, 1.0];
        let values = [0.1, 0.3, 0.2, 0.4, 0.5];
        let (gamma, lambda) = (0.9f32, 0.8f32);
        // Deltas r_t + γ v_{t+1} − v_t, the value after the end 0.
        let delta = [
            0.0 + 0.9 * 0.3 - 0.1,
            0.5 + 0.9 * 0.2 - 0.3,
            -0.2 + 0.9 * 0.4 - 0.2,
            0.0 + 0.9 * 0.5 - 0.4,
            1.0 - 0.5,
        ];
        let mut expected = [0.0f32; 5];
        expected[4] = delta[4];
        for t in (0..4).rev() {
            expected[t] = delta[t] + gamma * lambda * expected[t + 1];
        }
        let (advantages, returns) = gae(&rewards, &values, gamma, lambda);
        for t in 0..5 {
            assert!(close(advantages[t], expected[t]), "{t}: {advantages:?}");
            assert!(close(returns[t], expected[t] + values[t]));
        }
        // With γ = λ = 1 the advantage is the rest of the rewards less the value.
        let (advantages, _) = gae(&rewards, &values, 1.0, 1.0);
        assert!(close(advantages[0], 1.3 - 0.1));
    }

    #[test]
    fn rewards_are_the_kl_penalty_with_the_score_at_the_end() {
        let (rewards, kl) = token_rewards(
            &[-1.0, -2.0, -0.5],
            &[-1.5, -2.0, -0.25],
            2.0,
            0.1,
            KlEstimator::K1,
        );
        assert!(close(kl[0], 0.5) && close(kl[1], 0.0) && close(kl[2], -0.25));
        assert!(close(rewards[0], -0.05) && close(rewards[1], 0.0));
        assert!(close(rewards[2], 0.025 + 2.0));
        // k3 is never negative and 0 only where the two agree.
        let k3 = KlEstimator::K3;
        assert!(k3.estimate(-0.5, -0.25) > 0.0 && k3.estimate(-1.0, -1.5) > 0.0);
        assert_eq!(k3.estimate(-2.0, -2.0), 0.0);
        let r: f32 = (-0.25f32 - -0.5).exp();
        assert!(close(k3.estimate(-0.5, -0.25), r - 1.0 - 0.25));
    }

    #[test]
    fn whitened_values_have_mean_zero_and_unit_variance() {
        let mut v = [1.0, 2.0, 3.0, 4.0];
        whiten(&mut v);
        let mean: f32 = v.iter().sum::<f32>() / 4.0;
        let var: f32 = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 3.0;
        assert!(close(mean, 0.0) && close(var, 1.0), "{v:?}");
    }

    #[test]
    fn the_policy_equal_to_the_rollouts_has_ratio_one_and_no_kl() {
        let logprobs = t(&[-1.0, -2.0, -0.5]);
        let (loss, clipfrac, approxkl) =
            policy_loss(logprobs.clone(), logprobs, t(&[1.0, -2.0, 0.5]), 0.2);
        // ρ = 1: the loss is −mean(A).
        assert!(close(scalar(loss), -(1.0 - 2.0 + 0.5) / 3.0));
        assert_eq!(scalar(clipfrac), 0.0);
        assert_eq!(scalar(approxkl), 0.0);
        let (_, kl) = token_rewards(&[-1.0, -2.0], &[-1.0, -2.0], 0.0, 0.1, KlEstimator::K1);
        assert_eq!(kl, vec![0.0, 0.0]);
    }

    #[test]
    fn the_clipped_objective_is_the_hand_value() {
        // Ratios e^0.5 ≈ 1.649 (clipped to 1.2), e^-0.5 ≈ 0.607 (clipped to 0.8), e^0.1.
        let old = t(&[-1.0, -1.0, -1.0]);
        let new = t(&[-0.5, -1.5, -0.9]);
        let advantages = t(&[1.0, -1.0, 2.0]);
        let (loss, clipfrac, approxkl) = policy_loss(new, old, advantages, 0.2);
        // Per token max(−A ρ, −A clip(ρ)): −min(1.649, 1.2) = −1.2; max(0.607, 0.8) = 0.8;
        // −2 · min(1.105, 1.2) = −2.21.
        let expected = (-1.2 + 0.8 - 2.0 * 0.1f32.exp()) / 3.0;
        assert!(close(scalar(loss), expected), "{expected}");
        assert!(close(scalar(clipfrac), 2.0 / 3.0));
        assert!(close(scalar(approxkl), 0.5 * (0.25 + 0.25 + 0.01) / 3.0));
    }

    #[test]
    fn the_value_loss_clips_to_the_old_values() {
        // Old values 0, a clip of 0.2: a prediction of 1 counts as 0.2 when that is worse.
        let values = t(&[1.0, 0.1]);
        let old = t(&[0.0, 0.0]);
        let returns = t(&[2.0, 0.0]);
        let (loss, clipfrac) = value_loss(values, old, returns, 0.2);
        // Token 1: (1 − 2)² = 1 against (0.2 − 2)² = 3.24 → 3.24; token 2: 0.01 either way.
        assert!(close(scalar(loss), 0.5 * (3.24 + 0.01) / 2.0));
        assert!(close(scalar(clipfrac), 0.5));
    }

    #[test]
    fn a_negative_kl_coefficient_is_an_error() {
        assert!(matches!(check_kl_coef(-0.1), Err(Error::InvalidConfig(_))));
        assert!(check_kl_coef(0.0).is_ok());
    }
}
