//! Responses scored token by token: prompts (left padded, as generation runs them) followed by
//! the responses sampled after them (right padded), run through a causal backbone in one pass,
//! and the log-probability of every response token read where it was predicted. PPO scores
//! its rollouts under the policy, the reference and the value head this way; the evaluation
//! of a policy measures its KL to a reference with it.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::blocks::{
    AttentionMask, EncoderBackbone, LmHead, StackInput, TransformerEncoder, states_at,
};
use crate::error::{Error, Result};
use crate::generate::CausalLm;

/// Prompts and their responses as one batch, with the flat positions that predict each
/// response token.
#[derive(Debug, Clone)]
pub struct ResponseBatch {
    /// Token ids `[rows, prompt + response]`: each prompt left padded to the longest, each
    /// response right padded to the longest.
    pub ids: Tensor<2, Int>,
    /// Positions `[rows, len]`, each row counting from its first real token.
    pub positions: Tensor<2, Int>,
    /// Left-to-right attention with the left padding hidden.
    pub mask: AttentionMask,
    /// Flat index (`row · len + column`) of the state that predicts each response token, the
    /// tokens of row 0 first `[tokens]`.
    pub at: Tensor<1, Int>,
    /// The response tokens in the same order `[tokens]`.
    pub targets: Tensor<1, Int>,
    /// Each row's response length.
    pub lengths: Vec<usize>,
}

impl ResponseBatch {
    /// The batch of `prompts` (token ids, the start token included) and `responses`, padded
    /// with `pad`. Every prompt and every response needs at least one token: a response's
    /// first token is predicted from its prompt's last.
    pub fn new(
        prompts: &[&[u32]],
        responses: &[&[u32]],
        pad: u32,
        device: &Device,
    ) -> Result<Self> {
        if prompts.len() != responses.len() || prompts.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{} prompts for {} responses: each response needs its prompt",
                prompts.len(),
                responses.len()
            )));
        }
        if let Some(i) =
            (0..prompts.len()).find(|&i| prompts[i].is_empty() || responses[i].is_empty())
        {
            return Err(Error::InvalidConfig(format!(
                "row {i} has an empty prompt or response: nothing predicts its first token"
            )));
        }
        let rows = prompts.len();
        let prompt_len = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
        let response_len = responses.iter().map(|r| r.len()).max().unwrap_or(0);
        let len = prompt_len + response_len;
        let mut ids = vec![i64::from(pad); rows * len];
        let mut positions = vec![0i64; rows * len];
        let mut at = Vec::new();
        let mut targets = Vec::new();
        let mut pads = Vec::with_capacity(rows);
        for (r, (prompt, response)) in prompts.iter().zip(responses).enumerate() {
            let left = prompt_len - prompt.len();
            pads.push(left);
            let row = &mut ids[r * len..(r + 1) * len];
            for (t, &id) in prompt.iter().chain(response.iter()).enumerate() {
                row[left + t] = i64::from(id);
            }
            for (t, p) in positions[r * len..(r + 1) * len].iter_mut().enumerate() {
                *p = t.saturating_sub(left) as i64;
            }
            for (j, &id) in response.iter().enumerate() {
                at.push((r * len + prompt_len + j - 1) as i64);
                targets.push(i64::from(id));
            }
        }
        let n = at.len();
        Ok(Self {
            ids: Tensor::from_data(TensorData::new(ids, [rows, len]), device),
            positions: Tensor::from_data(TensorData::new(positions, [rows, len]), device),
            mask: AttentionMask::cached_causal(&pads, 0, len, device),
            at: Tensor::from_data(TensorData::new(at, [n]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n]), device),
            lengths: responses.iter().map(|r| r.len()).collect(),
        })
    }

    /// The backbone's states `[tokens, width]` at the positions that predict the response
    /// tokens, and the log-probability `[tokens]` of each response token under
    /// `softmax(logits / temperature)` of `head`.
    pub fn score(
        &self,
        encoder: &TransformerEncoder,
        head: &LmHead,
        temperature: f64,
    ) -> (Tensor<2>, Tensor<1>) {
        let (hidden, distributions) = self.distributions(encoder, head, temperature);
        let n = self.at.dims()[0];
        let logprobs = distributions
            .gather(1, self.targets.clone().reshape([n, 1]))
            .reshape([n]);
        (states_at(hidden, self.at.clone()), logprobs)
    }

    /// The backbone's states `[rows, len, width]`, and the log-probabilities `[tokens,
    /// vocab]` of `softmax(logits / temperature)` of `head` over the whole vocabulary at each
    /// position that predicts a response token.
    pub fn distributions(
        &self,
        encoder: &TransformerEncoder,
        head: &LmHead,
        temperature: f64,
    ) -> (Tensor<3>, Tensor<2>) {
        let segments = (encoder.num_segments() > 0).then(|| self.ids.zeros_like());
        let (ids, positions) = (self.ids.clone(), self.positions.clone());
        let input = StackInput::new(ids)
            .at(positions)
            .with_segments(segments)
            .with_mask(Some(&self.mask));
        let hidden = encoder.forward(input);
        let logits = head.forward_at(hidden.clone(), self.at.clone(), encoder.token_embedding());
        (hidden, log_softmax(logits.div_scalar(temperature), 1))
    }

    /// `flat` (one value per response token, as [`score`](Self::score) orders them) cut into
    /// one `Vec` per row.
    pub fn split_rows(&self, flat: Tensor<1>) -> Vec<Vec<f32>> {
        let values = crate::util::floats(flat);
        let mut rows = Vec::with_capacity(self.lengths.len());
        let mut from = 0;
        for &n in &self.lengths {
            rows.push(values[from..from + n].to_vec());
            from += n;
        }
        rows
    }
}

/// The log-probability of every token of each response after its prompt under `model`
/// (`softmax(logits / temperature)`), `batch` rows at a time: what a frozen reference gives
/// PPO's KL penalty, and what measures a policy's KL to it.
pub fn response_logprobs(
    model: &CausalLm,
    prompts: &[Vec<u32>],
    responses: &[Vec<u32>],
    temperature: f64,
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    per_token(model, prompts, responses, batch, |rows| {
        rows.score(&model.encoder, &model.head, temperature).1
    })
}

/// `value` (one number per response token) of each response after its prompt, the rows
/// batched `batch` at a time as `model` reads them.
fn per_token(
    model: &CausalLm,
    prompts: &[Vec<u32>],
    responses: &[Vec<u32>],
    batch: usize,
    value: impl Fn(&ResponseBatch) -> Tensor<1>,
) -> Result<Vec<Vec<f32>>> {
    let device = model.encoder.token_embedding().device();
    let pad = model.tokenizer.special().pad;
    let mut out = Vec::with_capacity(prompts.len());
    for (p, r) in prompts
        .chunks(batch.max(1))
        .zip(responses.chunks(batch.max(1)))
    {
        let p: Vec<&[u32]> = p.iter().map(Vec::as_slice).collect();
        let r: Vec<&[u32]> = r.iter().map(Vec::as_slice).collect();
        let rows = ResponseBatch::new(&p, &r, pad, &device)?;
        out.extend(rows.split_rows(value(&rows)));
    }
    Ok(out)
}

/// The KL of `policy` to `reference`, `KL(π(·|x, y<t) ‖ π_ref(·|x, y<t))`, at every token of
/// each response after its prompt, computed exactly from both distributions over the whole
/// vocabulary (`softmax(logits / temperature)`), `batch` rows at a time: never negative,
/// unlike the sampled `log π(y_t) − log π_ref(y_t)` that PPO's penalty estimates it with.
pub fn response_kl(
    policy: &CausalLm,
    reference: &CausalLm,
    prompts: &[Vec<u32>],
    responses: &[Vec<u32>],
    temperature: f64,
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    per_token(policy, prompts, responses, batch, |rows| {
        let (_, mine) = rows.distributions(&policy.encoder, &policy.head, temperature);
        let (_, theirs) = rows.distributions(&reference.encoder, &reference.head, temperature);
        let n = rows.at.dims()[0];
        // Rounding can leave a KL of identical distributions a hair below zero.
        (mine.clone().exp() * (mine - theirs))
            .sum_dim(1)
            .reshape([n])
            .clamp_min(0.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::SamplingConfig;

    #[test]
    fn scored_responses_match_what_generation_drew_them_with() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let model = crate::test_support::tiny_causal_lm(&device);
        let prompts = vec![vec![2, 10, 11, 12], vec![2, 13]];
        let sampling = SamplingConfig::new()
            .with_max_new_tokens(6)
            .with_temperature(0.7)
            .with_seed(3);
        let out = model.generate(&prompts, &sampling).unwrap();
        // One pass over prompt and response gives the log-probabilities the cached,
        // token-by-token generation drew with, whatever the padding of the other row.
        let scored = response_logprobs(&model, &prompts, &out.ids, 0.7, 8).unwrap();
        for (drawn, again) in out.logprobs.iter().zip(&scored) {
            assert_eq!(drawn.len(), again.len());
            for (a, b) in drawn.iter().zip(again) {
                assert!((a - b).abs() < 1e-4, "{drawn:?} {again:?}");
            }
        }
        // Row by row, alone, the same.
        let alone = response_logprobs(&model, &prompts[1..], &out.ids[1..], 0.7, 8).unwrap();
        for (a, b) in alone[0].iter().zip(&scored[1]) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn the_kl_is_exact_from_both_distributions_and_never_negative() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let policy = crate::test_support::tiny_causal_lm(&device);
        let reference = crate::test_support::tiny_causal_lm_seeded(&device, 22);
        let prompts = vec![vec![2, 10, 11, 12], vec![2, 13]];
        let responses = vec![vec![20, 21, 22], vec![30]];
        let kl = response_kl(&policy, &reference, &prompts, &responses, 0.7, 8).unwrap();
        assert_eq!(kl.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);
        assert!(kl.iter().flatten().all(|&k| k > 0.0), "{kl:?}");
        // The first token's KL is the expectation, over every token the policy could draw
        // there, of log π − log π_ref: each one-token response scored as the sampled
        // estimator scores it.
        let every: Vec<Vec<u32>> = (0..policy.tokenizer.vocab_size() as u32)
            .map(|v| vec![v])
            .collect();
        let prompt = vec![prompts[0].clone(); every.len()];
        let mine = response_logprobs(&policy, &prompt, &every, 0.7, 1024).unwrap();
        let theirs = response_logprobs(&reference, &prompt, &every, 0.7, 1024).unwrap();
        let expected: f64 = mine
            .iter()
            .zip(&theirs)
            .map(|(p, q)| {
                let (p, q) = (f64::from(p[0]), f64::from(q[0]));
                p.exp() * (p - q)
            })
            .sum();
        let got = f64::from(kl[0][0]);
        assert!(
            (got - expected).abs() < 1e-3 * expected,
            "{got} against {expected}"
        );
        // A model against itself: nothing, not a hair below it.
        let same = response_kl(&policy, &policy, &prompts, &responses, 0.7, 8).unwrap();
        assert!(
            same.iter().flatten().all(|&k| (0.0..1e-6).contains(&k)),
            "{same:?}"
        );
    }

    #[test]
    fn an_empty_response_is_an_error() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let err = ResponseBatch::new(&[&[2, 5]], &[&[]], 0, &device).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    }
}
