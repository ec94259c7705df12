//! Generation from a causal language model: prompts of different lengths in one batch, left
//! padded (each row's positions start at its first real token, padding hidden as keys), the
//! prompt run in one pass (prefill) and then one token per step through a [`KvCache`]; greedy
//! or sampled ([`SamplingConfig`]), each row stopping at the end-of-text token, with the
//! log-probability of every token it drew.
//!
//! ```no_run
//! use pretext::burn::prelude::*;
//! use pretext::generate::{CausalLm, SamplingConfig};
//! # fn main() -> pretext::Result<()> {
//! let model = CausalLm::load("runs/clm".as_ref(), &Device::flex())?;
//! let sampling = SamplingConfig::new().with_max_new_tokens(20).with_top_p(0.9).with_seed(1);
//! for completion in model.complete(&["the jury said"], &sampling)? {
//!     println!("{}", completion.text);
//! }
//! # Ok(()) }
//! ```

mod sampling;

pub use sampling::SamplingConfig;

use std::path::Path;

use burn::prelude::*;
use serde::Serialize;

use crate::blocks::{
    AttentionMask, EncoderBackbone, KvCache, LmHead, StackInput, TransformerEncoder,
};
use crate::dataset::instructions::Instruction;
use crate::error::{Error, Result};
use crate::recipe::RunDir;
use crate::tokenize::Tokenizer;
use crate::util::rng::{example_rng, splitmix64};

/// A causal language model ready to generate: the backbone, its LM head and the tokens that
/// frame a text.
#[derive(Debug, Clone)]
pub struct CausalLm {
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The backbone, run left to right.
    pub encoder: TransformerEncoder,
    /// The LM head, tied to the backbone's token table.
    pub head: LmHead,
    /// The token put before every prompt: `[CLS]` for a pretext causal run (its texts were
    /// framed so in training) and its export, none for GPT-2.
    pub bos: Option<u32>,
    /// The end-of-text token that stops a row.
    pub eos: u32,
}

/// What [`CausalLm::generate`] returns, one entry per prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The new tokens, ending with the end-of-text token when the row stopped on it.
    pub ids: Vec<Vec<u32>>,
    /// Each new token's log-probability under the softmax of the logits divided by the
    /// temperature (before top-k and top-p).
    pub logprobs: Vec<Vec<f32>>,
    /// Whether the row stopped on the end-of-text token (false: it reached
    /// `max_new_tokens`).
    pub finished: Vec<bool>,
}

/// One prompt's completion as text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    /// The prompt.
    pub prompt: String,
    /// The new text, special tokens left out.
    pub text: String,
    /// The new token ids (the end-of-text token included when the row stopped on it).
    pub ids: Vec<u32>,
    /// Their log-probabilities (see [`Generated::logprobs`]).
    pub logprobs: Vec<f32>,
    /// Whether it stopped on the end-of-text token.
    pub finished: bool,
}

impl CausalLm {
    /// The model with its weights' matrices in int8 ([`crate::quantize::int8`]): about a
    /// quarter of the memory, the same speed on the CPU, log-probabilities close to the float
    /// ones.
    pub fn int8(self) -> Self {
        Self {
            encoder: crate::quantize::int8(self.encoder),
            head: crate::quantize::int8(self.head),
            ..self
        }
    }

    /// Loads `dir` onto `device`: a pretext run whose objective is `clm` or `sft` (from its
    /// checkpoint), or a Hugging Face GPT-2, Llama or Qwen2 directory.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        if crate::hf::is_model_dir(dir) {
            let family = crate::hf::HfConfig::read(dir)?.model_type;
            let (encoder, clm) = match family.as_str() {
                "gpt2" => {
                    let gpt2 = crate::hf::load_gpt2(dir, device)?;
                    (gpt2.encoder, gpt2.clm)
                }
                "llama" | "qwen2" => {
                    let llama = crate::hf::load_llama(dir, device)?;
                    (llama.encoder, llama.clm)
                }
                other => {
                    let what = format!("{} (a Hugging Face {other})", dir.display());
                    return Err(crate::error::Error::NoCausalPath(what));
                }
            };
            let tokenizer = Tokenizer::from_model_dir(dir)?;
            let eos = tokenizer.special().sep;
            // GPT-2's own tokenizer puts nothing before a text; a pretext export puts the
            // start token its run trained with.
            let bos = tokenizer.start_tokens()?.first().copied();
            return Ok(Self {
                tokenizer,
                encoder,
                head: clm.head().clone(),
                bos,
                eos,
            });
        }
        // Refuses anything but a causal run before any weight is read.
        crate::recipe::causal::gpt2_head(dir)?;
        let (encoder, clm) = crate::recipe::causal::causal_run(dir, device)?;
        let tokenizer = RunDir::open(dir)?.tokenizer()?;
        let special = tokenizer.special();
        Ok(Self {
            tokenizer,
            encoder,
            head: clm.head().clone(),
            bos: Some(special.cls),
            eos: special.sep,
        })
    }

    /// The ids a prompt text starts generation from: the start token (if the model has one)
    /// and the text's tokens.
    pub fn prompt_ids(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .bos
            .into_iter()
            .chain(self.tokenizer.encode(text)?.ids)
            .collect())
    }

    /// Completes each text of `prompts` (see [`generate`](Self::generate)).
    pub fn complete(&self, prompts: &[&str], sampling: &SamplingConfig) -> Result<Vec<Completion>> {
        let ids = prompts
            .iter()
            .map(|p| self.prompt_ids(p))
            .collect::<Result<Vec<_>>>()?;
        let out = self.generate(&ids, sampling)?;
        prompts
            .iter()
            .zip(out.ids)
            .zip(out.logprobs)
            .zip(out.finished)
            .map(|(((prompt, ids), logprobs), finished)| {
                Ok(Completion {
                    prompt: prompt.to_string(),
                    text: self.tokenizer.decode(&ids)?,
                    ids,
                    logprobs,
                    finished,
                })
            })
            .collect()
    }

    /// Exact-match accuracy per task (in the order tasks first appear): each prompt of `pairs`
    /// answered as `sampling` says (greedy, for a score), `batch` prompts at a time, and the
    /// answer, which must end with the end-of-text token, compared as text with the pair's
    /// rationale and completion as the tokenizer reads them (so case and spacing count only as
    /// far as the vocabulary keeps them). `on_answer` sees each pair, the answer given and whether it matched.
    pub fn exact_match(
        &self,
        pairs: &[Instruction],
        sampling: &SamplingConfig,
        batch: usize,
        mut on_answer: impl FnMut(&Instruction, &str, bool),
    ) -> Result<Vec<TaskScore>> {
        let mut scores: Vec<TaskScore> = Vec::new();
        for chunk in pairs.chunks(batch.max(1)) {
            let prompts: Vec<&str> = chunk.iter().map(|p| p.prompt.as_str()).collect();
            for (pair, completion) in chunk.iter().zip(self.complete(&prompts, sampling)?) {
                let wanted = self.tokenizer.encode(&pair.answer())?.ids;
                let given: Vec<u32> = completion
                    .ids
                    .iter()
                    .copied()
                    .take_while(|&id| id != self.eos)
                    .collect();
                let right = completion.finished
                    && self.tokenizer.decode(&given)? == self.tokenizer.decode(&wanted)?;
                on_answer(pair, &completion.text, right);
                let at = match scores.iter().position(|s| s.task == pair.task) {
                    Some(at) => at,
                    None => {
                        scores.push(TaskScore {
                            task: pair.task.clone(),
                            correct: 0,
                            total: 0,
                        });
                        scores.len() - 1
                    }
                };
                scores[at].total += 1;
                scores[at].correct += usize::from(right);
            }
        }
        Ok(scores)
    }

    /// Generates up to `sampling.max_new_tokens` tokens after each of `prompts` (token ids,
    /// the start token included), all in one batch.
    pub fn generate(&self, prompts: &[Vec<u32>], sampling: &SamplingConfig) -> Result<Generated> {
        sampling.validate()?;
        let vocab = self.encoder.vocab_size();
        let max = self.encoder.max_positions();
        for (i, prompt) in prompts.iter().enumerate() {
            if prompt.is_empty() {
                return Err(Error::InvalidConfig(format!(
                    "prompt {i} is empty: a model without a start token needs at least one token \
                     to continue"
                )));
            }
            if let Some(&id) = prompt.iter().find(|&&id| id as usize >= vocab) {
                return Err(Error::TokenOutOfRange { id, vocab });
            }
            if prompt.len() + sampling.max_new_tokens > max {
                return Err(Error::SequenceTooLong {
                    len: prompt.len() + sampling.max_new_tokens,
                    max,
                });
            }
        }
        let rows = prompts.len();
        let mut out = Generated {
            ids: vec![Vec::new(); rows],
            logprobs: vec![Vec::new(); rows],
            finished: vec![false; rows],
        };
        if rows == 0 || sampling.max_new_tokens == 0 {
            return Ok(out);
        }
        let mut rngs = streams(prompts, sampling.seed);
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let pads: Vec<usize> = prompts.iter().map(|p| longest - p.len()).collect();
        // Each row's tokens so far, left padded, and their positions (padding at 0).
        let mut ids: Vec<Vec<i64>> = prompts
            .iter()
            .zip(&pads)
            .map(|(p, &pad)| {
                let pad_id = i64::from(self.tokenizer.special().pad);
                std::iter::repeat_n(pad_id, pad)
                    .chain(p.iter().map(|&id| i64::from(id)))
                    .collect()
            })
            .collect();
        let device = self.encoder.token_embedding().device();
        let mut cache = KvCache::new();
        for _ in 0..sampling.max_new_tokens {
            if !sampling.use_cache {
                cache = KvCache::new();
            }
            let logits = self.next_logits(&ids, &pads, &mut cache, &device);
            for (b, row) in logits.chunks(vocab).enumerate() {
                let next = if out.finished[b] {
                    // A finished row keeps running as padding; what it reads is never used.
                    i64::from(self.tokenizer.special().pad)
                } else {
                    let (id, logprob) = sampling.next_token(row, &mut rngs[b]);
                    out.ids[b].push(id);
                    out.logprobs[b].push(logprob);
                    out.finished[b] = id == self.eos;
                    i64::from(id)
                };
                ids[b].push(next);
            }
            if out.finished.iter().all(|&f| f) {
                break;
            }
        }
        Ok(out)
    }

    /// The logits `[rows × vocab]` after the last token of every row: the positions not yet in
    /// `cache` run through the backbone and join it.
    fn next_logits(
        &self,
        ids: &[Vec<i64>],
        pads: &[usize],
        cache: &mut KvCache,
        device: &Device,
    ) -> Vec<f32> {
        let (rows, len, from) = (ids.len(), ids[0].len(), cache.len());
        let new = len - from;
        let flat: Vec<i64> = ids.iter().flat_map(|row| row[from..].to_vec()).collect();
        let positions: Vec<i64> = pads
            .iter()
            .flat_map(|&pad| (from..len).map(move |t| t.saturating_sub(pad) as i64))
            .collect();
        let shape = [rows, new];
        let input = Tensor::<2, Int>::from_data(TensorData::new(flat, shape), device);
        let positions = Tensor::<2, Int>::from_data(TensorData::new(positions, shape), device);
        let mask = AttentionMask::cached_causal(pads, from, new, device);
        let input = StackInput::new(input)
            .at(positions)
            .with_mask(Some(&mask))
            .with_cache(cache);
        let hidden = self.encoder.forward(input);
        let last: Vec<i64> = (0..rows).map(|b| (b * new + new - 1) as i64).collect();
        let last = Tensor::<1, Int>::from_data(TensorData::new(last, [rows]), device);
        crate::util::floats(
            self.head
                .forward_at(hidden, last, self.encoder.token_embedding()),
        )
    }
}

/// A task's exact-match score (see [`CausalLm::exact_match`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskScore {
    /// The task.
    pub task: String,
    /// Answers produced exactly.
    pub correct: usize,
    /// Pairs scored.
    pub total: usize,
}

impl TaskScore {
    /// `correct / total`.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.total.max(1) as f64
    }
}

/// One random stream per prompt, from the seed, the prompt's tokens and how many identical
/// prompts came before it, so that a prompt draws the same whatever else is in the batch.
fn streams(prompts: &[Vec<u32>], seed: u64) -> Vec<crate::util::rng::ExampleRng> {
    let mut seen = std::collections::HashMap::<&[u32], u64>::new();
    prompts
        .iter()
        .map(|prompt| {
            let tokens = prompt
                .iter()
                .fold(splitmix64(prompt.len() as u64), |h, &id| {
                    splitmix64(h ^ u64::from(id))
                });
            let repeat = seen.entry(prompt.as_slice()).or_default();
            let rng = example_rng(seed, tokens, *repeat);
            *repeat += 1;
            rng
        })
        .collect()
}
