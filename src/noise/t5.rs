//! T5's span corruption (`t5/data/preprocessors.py`): a random noise mask of whole spans, the
//! input with each noise span replaced by one sentinel, and the target with each kept span
//! replaced by one, so that the two interleave back into the text.
//!
//! Rounding follows the reference: Python's and TensorFlow's `round` send halves to the even
//! neighbour, so this uses [`f64::round_ties_even`]. The end-of-sequence token is the caller's
//! to append, as seqio does.

use crate::error::{Error, Result, check_rate};
use crate::util::rng::{ExampleRng, choose};

/// T5's defaults: 15 % of the tokens are noise, in spans of 3 on average.
pub const DEFAULT_NOISE_DENSITY: f64 = 0.15;
/// See [`DEFAULT_NOISE_DENSITY`].
pub const DEFAULT_MEAN_SPAN_LENGTH: f64 = 3.0;

fn round(x: f64) -> usize {
    x.round_ties_even().max(0.0) as usize
}

fn check(noise_density: f64, mean_span_length: f64) -> Result<()> {
    check_rate("noise_density", noise_density)?;
    if !(mean_span_length >= 1.0 && mean_span_length.is_finite()) {
        return Err(Error::InvalidConfig(format!(
            "the mean noise span length must be at least 1, got {mean_span_length}"
        )));
    }
    Ok(())
}

/// `random_spans_helper`: the longest raw text (`tokens_length`) whose corrupted input —
/// kept tokens, one sentinel per span, one end-of-sequence — fits `inputs_length`, and the
/// length of its target. Returns `(tokens_length, targets_length)`.
pub fn span_corruption_lengths(
    inputs_length: usize,
    noise_density: f64,
    mean_span_length: f64,
) -> Result<(usize, usize)> {
    check(noise_density, mean_span_length)?;
    if inputs_length < 2 {
        return Err(Error::InvalidConfig(format!(
            "an input of {inputs_length} tokens leaves no room for text and end-of-sequence"
        )));
    }
    let encoded = |tokens: usize| {
        let noise = round(tokens as f64 * noise_density);
        let spans = round(noise as f64 / mean_span_length);
        (tokens - noise + spans + 1, noise + spans + 1)
    };
    let mut tokens = inputs_length - 1;
    while encoded(tokens + 1).0 <= inputs_length {
        tokens += 1;
    }
    let (inputs, mut targets) = encoded(tokens);
    // The reference's hack to keep targets no longer than inputs at density 0.5.
    if noise_density == 0.5 && targets > inputs {
        tokens -= 1;
        targets -= 1;
    }
    Ok((tokens, targets))
}

/// `random_spans_noise_mask`: `true` for noise. `round(length · density)` noise tokens (at
/// least 1, at most `length − 1`) in `round(noise / mean)` spans; the mask alternates kept and
/// noise spans, starting with kept text and ending with noise, their lengths uniformly random
/// compositions. A density of 0 gives no noise. Unlike the reference, spans are capped at the
/// number of kept tokens too (HF's fix), so that every gap between noise spans is real text.
pub fn random_spans_noise_mask(
    length: usize,
    noise_density: f64,
    mean_span_length: f64,
    rng: &mut ExampleRng,
) -> Result<Vec<bool>> {
    check(noise_density, mean_span_length)?;
    if noise_density == 0.0 || length == 0 {
        return Ok(vec![false; length]);
    }
    let n = length.max(2);
    let (noise, spans) = noise_and_spans(n, noise_density, mean_span_length);
    let kept = n - noise;
    let noise_lengths = random_composition(noise, spans, rng);
    let kept_lengths = random_composition(kept, spans, rng);
    let mut mask = Vec::with_capacity(n);
    for (k, m) in kept_lengths.into_iter().zip(noise_lengths) {
        mask.extend(std::iter::repeat_n(false, k));
        mask.extend(std::iter::repeat_n(true, m));
    }
    mask.truncate(length);
    Ok(mask)
}

/// Noise tokens and noise spans of a text of `n >= 2` tokens (density above 0).
fn noise_and_spans(n: usize, noise_density: f64, mean_span_length: f64) -> (usize, usize) {
    let noise = round(n as f64 * noise_density).clamp(1, n - 1);
    let spans = round(noise as f64 / mean_span_length).clamp(1, noise.min(n - noise));
    (noise, spans)
}

/// The sentinels span corruption of a text of `length` tokens uses: one per noise span.
pub fn num_noise_spans(length: usize, noise_density: f64, mean_span_length: f64) -> Result<usize> {
    check(noise_density, mean_span_length)?;
    if noise_density == 0.0 || length == 0 {
        return Ok(0);
    }
    Ok(noise_and_spans(length.max(2), noise_density, mean_span_length).1)
}

/// A uniformly random way to write `n` as `parts` positive numbers, in order.
fn random_composition(n: usize, parts: usize, rng: &mut ExampleRng) -> Vec<usize> {
    let mut cuts: Vec<usize> = choose(n - 1, parts - 1, rng)
        .into_iter()
        .map(|c| c + 1)
        .collect();
    cuts.extend([0, n]);
    cuts.sort_unstable();
    cuts.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Input and target of span corruption: in the input each noise span becomes the next
/// sentinel, in the target each kept span does (`noise_span_to_unique_sentinel` and
/// `nonnoise_span_to_unique_sentinel`), so that sentinel `k` of the input is followed in the
/// target by what it hides. `sentinels[k]` is the id of the `k`-th (T5 counts down from the
/// vocabulary's last id); there must be one per span.
pub fn corrupt_spans(
    tokens: &[u32],
    noise: &[bool],
    sentinels: &[u32],
) -> Result<(Vec<u32>, Vec<u32>)> {
    if tokens.len() != noise.len() {
        return Err(Error::InvalidConfig(format!(
            "{} tokens but a noise mask of {}",
            tokens.len(),
            noise.len()
        )));
    }
    Ok((
        collapse_runs(tokens, noise, true, sentinels)?,
        collapse_runs(tokens, noise, false, sentinels)?,
    ))
}

/// `tokens` with each run of positions whose mask is `hidden` replaced by the next sentinel.
fn collapse_runs(
    tokens: &[u32],
    mask: &[bool],
    hidden: bool,
    sentinels: &[u32],
) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut runs = 0;
    for (i, (&id, &m)) in tokens.iter().zip(mask).enumerate() {
        if m != hidden {
            out.push(id);
        } else if i == 0 || mask[i - 1] != m {
            let sentinel = sentinels.get(runs).ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "more than {} spans to replace but only {} sentinel tokens",
                    runs,
                    sentinels.len()
                ))
            })?;
            out.push(*sentinel);
            runs += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::example_rng;

    #[test]
    fn lengths_match_the_reference_table() {
        for (inputs, tokens, targets) in [(512, 568, 114), (256, 284, 58), (128, 141, 29)] {
            assert_eq!(
                span_corruption_lengths(inputs, 0.15, 3.0).unwrap(),
                (tokens, targets),
                "inputs_length {inputs}"
            );
        }
        assert!(span_corruption_lengths(1, 0.15, 3.0).is_err());
        assert!(span_corruption_lengths(128, 1.5, 3.0).is_err());
        assert!(span_corruption_lengths(128, 0.15, 0.0).is_err());
    }

    #[test]
    fn the_mask_has_the_exact_noise_and_spans_and_ends_in_noise() {
        for seed in 0..200 {
            let length = 20 + (seed as usize % 50);
            let mask =
                random_spans_noise_mask(length, 0.15, 3.0, &mut example_rng(seed, 0, 0)).unwrap();
            assert_eq!(mask.len(), length);
            let noise = mask.iter().filter(|&&m| m).count();
            let expected = round(length as f64 * 0.15).clamp(1, length - 1);
            assert_eq!(noise, expected);
            let spans = (0..length)
                .filter(|&i| mask[i] && (i == 0 || !mask[i - 1]))
                .count();
            assert_eq!(spans, round(expected as f64 / 3.0).clamp(1, expected));
            assert!(!mask[0] && mask[length - 1]);
        }
        let none = random_spans_noise_mask(10, 0.0, 3.0, &mut example_rng(0, 0, 0)).unwrap();
        assert_eq!(none, vec![false; 10]);
    }

    #[test]
    fn input_and_target_interleave_back_into_the_text() {
        let tokens: Vec<u32> = (100..160).collect();
        let sentinels: Vec<u32> = (0..30).map(|k| 999 - k).collect();
        for seed in 0..50 {
            let mask =
                random_spans_noise_mask(60, 0.15, 3.0, &mut example_rng(seed, 0, 0)).unwrap();
            let (inputs, targets) = corrupt_spans(&tokens, &mask, &sentinels).unwrap();
            let spans = inputs.iter().filter(|&&id| id >= 970).count();
            let noise = mask.iter().filter(|&&m| m).count();
            assert_eq!(inputs.len(), 60 - noise + spans);
            assert_eq!(targets.len(), noise + spans);
            assert_eq!(targets[0], 999, "the target opens with the first sentinel");
            // Replace each sentinel of the input by what follows it in the target.
            let mut rebuilt = Vec::new();
            for &id in &inputs {
                if id >= 970 {
                    let at = targets.iter().position(|&t| t == id).unwrap() + 1;
                    rebuilt.extend(targets[at..].iter().take_while(|&&t| t < 970));
                } else {
                    rebuilt.push(id);
                }
            }
            assert_eq!(rebuilt, tokens);
        }
        let mask = [false, true, false, true];
        assert!(corrupt_spans(&[1, 2, 3, 4], &mask, &[9]).is_err());
    }
}
