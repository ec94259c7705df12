//! How the next token is chosen from one row's logits: greedy, or a draw at a temperature from
//! the most likely tokens kept by top-k and then top-p, in the order `transformers` applies them
//! (temperature → top-k → top-p → softmax → draw).

use burn::config::Config;
use rand::RngExt;

use crate::error::{Error, Result};
use crate::util::rng::{ExampleRng, pick_weighted};

/// How [`CausalLm::generate`](super::CausalLm::generate) samples.
#[derive(Config, Debug, PartialEq)]
pub struct SamplingConfig {
    /// Most tokens added to each prompt. Default 64.
    #[config(default = 64)]
    pub max_new_tokens: usize,
    /// Always take the most likely token; temperature, top-k and top-p then choose nothing.
    /// Default false.
    #[config(default = false)]
    pub greedy: bool,
    /// Divides the logits before the softmax: below 1 sharpens, above 1 flattens. Must be
    /// positive. Default 1.
    #[config(default = 1.0)]
    pub temperature: f64,
    /// Draw only among the `top_k` most likely tokens (ties with the k-th kept); 0 keeps all.
    /// Default 0, as TRL's rollouts use (`transformers`' own default is 50).
    #[config(default = 0)]
    pub top_k: usize,
    /// Draw only among the smallest set of most likely tokens whose probability reaches
    /// `top_p` (nucleus sampling); in (0, 1], 1 keeps all. Default 1.
    #[config(default = 1.0)]
    pub top_p: f64,
    /// Seeds the draws. Each prompt has its own stream, from the seed, the prompt's tokens and
    /// how many identical prompts came before it in the call: a prompt's samples do not depend
    /// on which other prompts share its batch. Default 0.
    #[config(default = 0)]
    pub seed: u64,
    /// Keep earlier positions' keys and values between steps (the point of a cache). Off, each
    /// step runs the whole sequence again: slower by far, and there only to compare against.
    /// Default true.
    #[config(default = true)]
    pub use_cache: bool,
}

impl SamplingConfig {
    /// Checks the temperature and top-p.
    pub fn validate(&self) -> Result<()> {
        crate::error::check_positive("temperature", self.temperature)?;
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::InvalidConfig(format!(
                "top_p must lie in (0, 1], not {}",
                self.top_p
            )));
        }
        Ok(())
    }

    /// The next token for one row's `logits`, and its log-probability under the softmax of
    /// `logits / temperature`: the distribution before top-k and top-p, the one PPO scores a
    /// sample under (TRL's rollouts do the same).
    pub(crate) fn next_token(&self, logits: &[f32], rng: &mut ExampleRng) -> (u32, f32) {
        let scaled: Vec<f64> = logits
            .iter()
            .map(|&l| f64::from(l) / self.temperature)
            .collect();
        let (max, exps) = shifted_exps(&scaled);
        let log_norm = max + exps.iter().sum::<f64>().ln();
        let id = if self.greedy {
            // The first of equal maxima, as argmax gives it.
            scaled.iter().position(|&s| s == max).unwrap_or(0)
        } else {
            pick_weighted(&self.truncate(&scaled, exps), rng.random::<f64>())
        };
        (id as u32, (scaled[id] - log_norm) as f32)
    }

    /// The unnormalised probabilities `weights` (of `scaled` logits) of the tokens a draw may
    /// pick: the `top_k` most likely, then of those the most likely until their probability
    /// reaches `top_p`; zero elsewhere.
    fn truncate(&self, scaled: &[f64], mut weights: Vec<f64>) -> Vec<f64> {
        let n = weights.len();
        if (self.top_k == 0 || self.top_k >= n) && self.top_p >= 1.0 {
            return weights;
        }
        // Most likely first; equal ones by id, so the cut is deterministic.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scaled[b].total_cmp(&scaled[a]).then(a.cmp(&b)));
        let mut keep = n;
        if self.top_k > 0 && self.top_k < n {
            let kth = scaled[order[self.top_k - 1]];
            keep = order.iter().take_while(|&&i| scaled[i] >= kth).count();
        }
        if self.top_p < 1.0 {
            let total: f64 = order[..keep].iter().map(|&i| weights[i]).sum();
            let mut mass = 0.0;
            let mut nucleus = 0;
            for &i in &order[..keep] {
                mass += weights[i];
                nucleus += 1;
                if mass >= self.top_p * total {
                    break;
                }
            }
            keep = nucleus;
        }
        for &i in &order[keep..] {
            weights[i] = 0.0;
        }
        weights
    }
}

/// The largest of `scaled` and `exp(s − max)` of each: the softmax before its normalisation.
fn shifted_exps(scaled: &[f64]) -> (f64, Vec<f64>) {
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (max, scaled.iter().map(|s| (s - max).exp()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Logits whose softmax is `probs`.
    fn logits(probs: &[f64]) -> Vec<f64> {
        probs.iter().map(|p| p.ln()).collect()
    }

    fn kept(config: &SamplingConfig, probs: &[f64]) -> Vec<usize> {
        let scaled = logits(probs);
        let w = config.truncate(&scaled, shifted_exps(&scaled).1);
        (0..w.len()).filter(|&i| w[i] > 0.0).collect()
    }

    #[test]
    fn top_p_keeps_the_smallest_set_that_reaches_p() {
        let probs = [0.15, 0.5, 0.05, 0.3];
        let p = |top_p| SamplingConfig::new().with_top_p(top_p);
        assert_eq!(kept(&p(0.4), &probs), vec![1]);
        assert_eq!(kept(&p(0.7), &probs), vec![1, 3]);
        assert_eq!(kept(&p(0.9), &probs), vec![0, 1, 3]);
        assert_eq!(kept(&p(1.0), &probs), vec![0, 1, 2, 3]);
        // After top-k the nucleus is taken of what top-k kept, renormalised.
        let both = SamplingConfig::new().with_top_k(2).with_top_p(0.7);
        assert_eq!(kept(&both, &probs), vec![1, 3]);
        let both = SamplingConfig::new().with_top_k(2).with_top_p(0.6);
        assert_eq!(kept(&both, &probs), vec![1]);
    }

    #[test]
    fn top_k_keeps_the_k_most_likely_and_their_ties() {
        let k = |top_k| SamplingConfig::new().with_top_k(top_k);
        assert_eq!(kept(&k(1), &[0.1, 0.6, 0.3]), vec![1]);
        assert_eq!(kept(&k(2), &[0.1, 0.6, 0.3]), vec![1, 2]);
        assert_eq!(kept(&k(2), &[0.2, 0.4, 0.2, 0.2]), vec![0, 1, 2, 3]);
        assert_eq!(kept(&k(0), &[0.1, 0.6, 0.3]), vec![0, 1, 2]);
    }

    #[test]
    fn draws_follow_the_kept_distribution_and_report_its_log_probability() {
        let probs = [0.1f64, 0.6, 0.3];
        let logits: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
        let mut rng = ExampleRng::seed_from_u64(7);
        let config = SamplingConfig::new();
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            let (id, logprob) = config.next_token(&logits, &mut rng);
            counts[id as usize] += 1;
            assert!((f64::from(logprob) - probs[id as usize].ln()).abs() < 1e-5);
        }
        for (count, p) in counts.iter().zip(probs) {
            assert!((*count as f64 / 20_000.0 - p).abs() < 0.015, "{counts:?}");
        }
        // Top-k 1 is greedy whatever the draw; the log-probability stays the full softmax's.
        let k1 = SamplingConfig::new().with_top_k(1);
        let greedy = SamplingConfig::new().with_greedy(true);
        for _ in 0..100 {
            assert_eq!(
                k1.next_token(&logits, &mut rng),
                greedy.next_token(&logits, &mut rng)
            );
        }
        // At temperature 2 the log-probability is that of the flattened softmax.
        let hot = SamplingConfig::new()
            .with_greedy(true)
            .with_temperature(2.0);
        let (id, logprob) = hot.next_token(&logits, &mut rng);
        let flat: f64 = probs.iter().map(|p| p.sqrt()).sum();
        assert_eq!(id, 1);
        assert!((f64::from(logprob) - (0.6f64.sqrt() / flat).ln()).abs() < 1e-5);
    }

    #[test]
    fn bad_temperature_or_top_p_are_typed_errors() {
        for config in [
            SamplingConfig::new().with_temperature(0.0),
            SamplingConfig::new().with_temperature(-1.0),
            SamplingConfig::new().with_temperature(f64::NAN),
            SamplingConfig::new().with_top_p(0.0),
            SamplingConfig::new().with_top_p(1.5),
        ] {
            assert!(matches!(config.validate(), Err(Error::InvalidConfig(_))));
        }
        assert!(SamplingConfig::new().validate().is_ok());
    }
}
