//! Supervised fine-tuning (SFT), the first step of InstructGPT's recipe: a causal LM taught to
//! answer prompts from prompt/completion pairs ([`crate::dataset::instructions`]).
//!
//! Data, as TRL's `SFTTrainer` makes it: each pair becomes `[CLS] prompt rationale completion
//! [SEP]` (the end-of-text token appended, so that the model learns to stop), shifted as causal
//! LM shifts it, with the loss on the answer's tokens only (rationale, completion and the end
//! of text; the prompt's and the padding's targets ignored), or on every token as an option. An
//! answer too long for the sequence is cut at its end. With packing, consecutive pairs share a
//! sequence, each at positions from 0 and attending only within itself, so that a packed batch
//! scores exactly what the same pairs score unpacked. Model: the backbone left to right and
//! [`Clm`]'s head, started from a pretext `clm` run or an imported GPT-2 (`init`).

use std::path::PathBuf;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Clm, Metric, Objective, ObjectiveOutput, TARGETS, Weights, encode, predict_tokens};
use crate::blocks::{AttentionMask, StackInput, TransformerEncoder};
use crate::data::{Batch, Task, TokenBatch, TokenExample};
use crate::dataset::instructions::{self, Instruction};
use crate::error::{Error, Result};
use crate::noise::IGNORE_INDEX;
use crate::tokenize::Tokenizer;
use crate::util::rng::ExampleRng;

/// The SFT objective: [`Clm`]'s head over the backbone run left to right, reporting TRL's
/// `mean_token_accuracy` and `num_tokens`.
#[derive(Module, Debug)]
pub struct Sft {
    clm: Clm,
}

impl Sft {
    /// SFT with `clm`'s head (a fresh one, or a trained causal LM's).
    pub fn new(clm: Clm) -> Self {
        Self { clm }
    }

    /// The causal LM head.
    pub fn clm(&self) -> &Clm {
        &self.clm
    }
}

impl Objective<TransformerEncoder> for Sft {
    type Batch = SftBatch;

    fn forward(&self, backbone: &TransformerEncoder, batch: SftBatch) -> ObjectiveOutput {
        let tokens = &batch.tokens;
        let hidden = match batch.packed {
            Some((positions, blocked)) => {
                let mask = AttentionMask::from_blocked(blocked);
                let input = StackInput::new(tokens.input_ids.clone())
                    .at(positions)
                    .with_segments(Some(tokens.segment_ids.clone()))
                    .with_mask(Some(&mask));
                backbone.forward(input)
            }
            None => {
                let len = tokens.input_ids.dims()[1];
                let mask = AttentionMask::causal(len, &tokens.input_ids.device())
                    .or(AttentionMask::padding(tokens.padding.clone()));
                encode(backbone, tokens, &mask)
            }
        };
        let p = predict_tokens(backbone, self.clm.head(), hidden, tokens);
        let device = p.count.device();
        let num_tokens = Tensor::from_floats([tokens.num_tokens as f32], &device);
        ObjectiveOutput {
            metrics: vec![
                p.accuracy("mean_token_accuracy"),
                Metric::sum("num_tokens", num_tokens),
            ],
            loss: p.loss(TARGETS),
        }
    }
}

/// One sequence of SFT data: tokens and targets, and each token's position (from 0 at the
/// start of every pair packed into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftExample {
    /// Inputs and targets; targets not trained on are [`IGNORE_INDEX`].
    pub tokens: TokenExample,
    /// Each input token's position.
    pub positions: Vec<u32>,
}

/// A batch of [`SftExample`]s.
#[derive(Debug, Clone)]
pub struct SftBatch {
    /// Tokens, padding and targets.
    pub tokens: TokenBatch,
    /// With packing: each token's position `[batch, len]`, and which keys each query may not
    /// see `[batch, len, len]` (later tokens, and tokens of another pair).
    pub packed: Option<(Tensor<2, Int>, Tensor<3, Bool>)>,
}

impl Batch for SftBatch {
    fn num_tokens(&self) -> usize {
        self.tokens.num_tokens
    }

    fn weights(&self) -> Weights {
        self.tokens.weights()
    }
}

/// How SFT turns pairs into sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SftFormat {
    /// Tokens per sequence.
    pub seq_len: usize,
    /// The loss on the answer only (true) or on every token.
    pub completion_only: bool,
    /// Several pairs per sequence.
    pub packing: bool,
}

/// The data side of [`Sft`]: instruction pairs as sequences.
#[derive(Debug, Clone)]
pub struct SftTask {
    examples: Vec<SftExample>,
    pad: u32,
    packing: bool,
    truncated: usize,
}

impl SftTask {
    /// `pairs` tokenized by `tokenizer` and laid out as `format` says. A prompt that leaves no
    /// room for its answer is an error naming its line.
    pub fn new(pairs: &[Instruction], tokenizer: &Tokenizer, format: SftFormat) -> Result<Self> {
        if pairs.is_empty() {
            return Err(Error::EmptyCorpus("no instruction pair to train on".into()));
        }
        let special = tokenizer.special();
        let mut truncated = 0;
        let mut singles = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let prompt = frame_prompt(tokenizer, &pair.prompt, format.seq_len, true, pair.line)?;
            let (answer, cut) = frame_answer(
                tokenizer,
                prompt.len(),
                &pair.answer(),
                format.seq_len,
                true,
            )?;
            truncated += usize::from(cut);
            singles.push(shifted(&prompt, &answer, format.completion_only));
        }
        let examples = if format.packing {
            pack(singles, format.seq_len)
        } else {
            singles
        };
        Ok(Self {
            examples,
            pad: special.pad,
            packing: format.packing,
            truncated,
        })
    }

    /// How many answers were cut to fit the sequence length.
    pub fn truncated(&self) -> usize {
        self.truncated
    }
}

/// `[CLS] prompt` as token ids: how SFT, DPO and the reward model start every sequence. A
/// sequence holds `seq_len` tokens, or one more when `shifted` (causal LM's inputs are all but
/// its last token); a prompt that leaves no room for an answer token and the end of text is
/// an error naming its `line`.
pub(crate) fn frame_prompt(
    tokenizer: &Tokenizer,
    prompt: &str,
    seq_len: usize,
    shifted: bool,
    line: usize,
) -> Result<Vec<u32>> {
    let mut ids = vec![tokenizer.special().cls];
    ids.extend(tokenizer.encode(prompt)?.ids);
    if ids.len() + 2 > seq_len + usize::from(shifted) {
        return Err(Error::PromptTooLong {
            line,
            len: ids.len(),
            max: seq_len,
        });
    }
    Ok(ids)
}

/// `answer [SEP]` as token ids after a framed prompt of `prompt_len` tokens, cut at its end
/// (and `true` returned) where the sequence would exceed its length (see [`frame_prompt`]).
pub(crate) fn frame_answer(
    tokenizer: &Tokenizer,
    prompt_len: usize,
    answer: &str,
    seq_len: usize,
    shifted: bool,
) -> Result<(Vec<u32>, bool)> {
    let mut ids = tokenizer.encode(answer)?.ids;
    ids.push(tokenizer.special().sep);
    let room = seq_len + usize::from(shifted) - prompt_len;
    let cut = ids.len() > room;
    ids.truncate(room);
    Ok((ids, cut))
}

/// `prompt` followed by `answer` as causal LM's inputs (all but the last token) and targets
/// (all but the first), the prompt's targets ignored when `completion_only`.
pub(crate) fn shifted(prompt: &[u32], answer: &[u32], completion_only: bool) -> SftExample {
    let all: Vec<u32> = prompt.iter().chain(answer).copied().collect();
    let n = all.len() - 1;
    let targets = (0..n)
        .map(|t| {
            // Target t is token t + 1; it belongs to the answer from index prompt.len().
            if completion_only && t + 1 < prompt.len() {
                IGNORE_INDEX
            } else {
                i64::from(all[t + 1])
            }
        })
        .collect();
    SftExample {
        tokens: TokenExample::plain(all[..n].to_vec(), targets),
        positions: (0..n as u32).collect(),
    }
}

/// Consecutive examples joined while they fit `seq_len` tokens.
fn pack(singles: Vec<SftExample>, seq_len: usize) -> Vec<SftExample> {
    let mut packs: Vec<SftExample> = Vec::new();
    for single in singles {
        match packs.last_mut() {
            Some(pack) if pack.positions.len() + single.positions.len() <= seq_len => {
                pack.tokens.input_ids.extend(single.tokens.input_ids);
                pack.tokens.segment_ids.extend(single.tokens.segment_ids);
                pack.tokens.targets.extend(single.tokens.targets);
                pack.positions.extend(single.positions);
            }
            _ => packs.push(single),
        }
    }
    packs
}

impl Task for SftTask {
    type Example = SftExample;
    type Batch = SftBatch;

    fn num_examples(&self) -> usize {
        self.examples.len()
    }

    fn example(&self, index: usize, _rng: &mut ExampleRng) -> Result<SftExample> {
        Ok(self.examples[index].clone())
    }

    fn collate(&self, examples: &[SftExample], device: &Device) -> Result<SftBatch> {
        let tokens: Vec<&TokenExample> = examples.iter().map(|e| &e.tokens).collect();
        let batch = TokenBatch::collate(&tokens, self.pad, device)?;
        let packed = self.packing.then(|| packed_layout(examples, device));
        Ok(SftBatch {
            tokens: batch,
            packed,
        })
    }
}

/// Positions `[batch, len]` and the blocked keys `[batch, len, len]` of packed examples: a
/// query sees the keys of its own pair up to itself. Padding (at the end) is a pair of its own.
fn packed_layout(examples: &[SftExample], device: &Device) -> (Tensor<2, Int>, Tensor<3, Bool>) {
    let batch = examples.len();
    let len = examples
        .iter()
        .map(|e| e.positions.len())
        .max()
        .unwrap_or(0);
    let mut positions = vec![0i64; batch * len];
    let mut blocked = vec![true; batch * len * len];
    for (b, e) in examples.iter().enumerate() {
        // Which pair each token belongs to: a new one wherever the position restarts.
        let mut pair = 0usize;
        let pairs: Vec<usize> = (0..len)
            .map(|t| match e.positions.get(t) {
                Some(0) if t > 0 => {
                    pair += 1;
                    pair
                }
                Some(_) => pair,
                None => usize::MAX,
            })
            .collect();
        for t in 0..len {
            positions[b * len + t] = e.positions.get(t).map_or(0, |&p| i64::from(p));
            for k in 0..=t {
                blocked[(b * len + t) * len + k] = pairs[k] != pairs[t];
            }
        }
    }
    (
        Tensor::from_data(TensorData::new(positions, [batch, len]), device),
        Tensor::from_data(TensorData::new(blocked, [batch, len, len]), device),
    )
}

/// The settings of `sft`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftSettings {
    /// The prompt/completion pairs (JSON lines); none: the bundled `data/instructions.jsonl`.
    pub data: Option<PathBuf>,
    /// The loss on the answer's tokens only (rationale, completion, end of text); false: on
    /// every token, the prompt's included. Default true.
    pub completion_only: bool,
    /// Several short pairs per sequence, positions and attention reset at each. Default false.
    pub packing: bool,
    /// GPT-2's head (the tied projection alone, no transform, no bias), as the causal model
    /// SFT starts from has it;
    /// the recipe's `init_from` sets it. Default false.
    pub gpt2_head: bool,
    /// The LM head has a table of its own, not the token table (Llama's `lm_head`), as the
    /// causal model SFT starts from has it; the recipe's `init_from` sets it. Default false.
    pub untied_head: bool,
}

impl Default for SftSettings {
    fn default() -> Self {
        Self {
            data: None,
            completion_only: true,
            packing: false,
            gpt2_head: false,
            untied_head: false,
        }
    }
}

impl SftSettings {
    /// The instruction file.
    pub fn data_path(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(instructions::bundled_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::EncoderBackbone;
    use crate::objectives::ClmConfig;
    use crate::util::rng::example_rng;

    fn pair(prompt: &str, completion: &str) -> Instruction {
        Instruction {
            task: "t".into(),
            prompt: prompt.into(),
            rationale: None,
            completion: completion.into(),
            line: 1,
        }
    }

    fn format(completion_only: bool, packing: bool) -> SftFormat {
        SftFormat {
            seq_len: 32,
            completion_only,
            packing,
        }
    }

    #[test]
    fn only_the_answer_and_its_end_are_targets() {
        let _draws = crate::util::random::hold();
        let tokenizer = Tokenizer::bundled().unwrap();
        let special = tokenizer.special();
        let p = pair("say the word", "yes");
        let task = SftTask::new(&[p.clone()], &tokenizer, format(true, false)).unwrap();
        let e = task.example(0, &mut example_rng(0, 0, 0)).unwrap();
        let prompt = tokenizer.encode(&p.prompt).unwrap().ids;
        let answer = tokenizer.encode("yes").unwrap().ids;
        let n = 1 + prompt.len() + answer.len();
        assert_eq!(e.tokens.input_ids.len(), n);
        assert_eq!(e.tokens.input_ids[0], special.cls);
        let trained: Vec<i64> = e
            .tokens
            .targets
            .iter()
            .copied()
            .filter(|&t| t != IGNORE_INDEX)
            .collect();
        let expected: Vec<i64> = answer
            .iter()
            .chain([&special.sep])
            .map(|&t| i64::from(t))
            .collect();
        assert_eq!(trained, expected);
        // The first target is the first answer token, read at the last prompt token.
        assert_eq!(e.tokens.targets[prompt.len()], expected[0]);
        // The whole sequence: every next token.
        let all = SftTask::new(&[p], &tokenizer, format(false, false)).unwrap();
        let e = all.example(0, &mut example_rng(0, 0, 0)).unwrap();
        assert!(e.tokens.targets.iter().all(|&t| t != IGNORE_INDEX));
    }

    #[test]
    fn prompt_labels_reach_the_loss_only_when_the_whole_sequence_is_trained() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (encoder, _, _) = crate::test_support::tiny_parts(&device);
        let tokenizer = Tokenizer::bundled().unwrap();
        let sft = Sft::new(ClmConfig::new().init(&encoder, &device));
        // The bundled vocabulary is larger than the tiny encoder's: map ids into its 40.
        let loss = |task: &SftTask, map: &dyn Fn(u32) -> u32| {
            let mut e = task.example(0, &mut example_rng(0, 0, 0)).unwrap();
            e.tokens.input_ids = e.tokens.input_ids.iter().map(|&i| map(i)).collect();
            for t in e.tokens.targets.iter_mut().filter(|t| **t != IGNORE_INDEX) {
                *t = i64::from(map(*t as u32));
            }
            let batch = task.collate(&[e], &device).unwrap();
            let weights = batch.weights();
            let out = sft.forward(&encoder, batch);
            out.loss.normalized(&weights).into_scalar::<f32>()
        };
        let ids = |p: &Instruction| {
            let task = SftTask::new(std::slice::from_ref(p), &tokenizer, format(true, false));
            task.unwrap()
        };
        let a = ids(&pair("say the word", "yes"));
        // Completion only, the prompt's tokens carry no label, so no value given to one can
        // reach the loss.
        let prompt = tokenizer.encode("say the word").unwrap().ids.len();
        let targets = &a.examples[0].tokens.targets;
        assert!(targets[..prompt].iter().all(|&t| t == IGNORE_INDEX));
        let whole = SftTask::new(
            &[pair("say the word", "yes")],
            &tokenizer,
            format(false, false),
        );
        let mut whole = whole.unwrap();
        for t in 0..prompt {
            // Under the whole-sequence loss the same labels count: give them other ids.
            whole.examples[0].tokens.targets[t] = 5 + t as i64;
        }
        let fold = |i: u32| i % 40;
        let original = SftTask::new(
            &[pair("say the word", "yes")],
            &tokenizer,
            format(false, false),
        );
        assert!((loss(&whole, &fold) - loss(&original.unwrap(), &fold)).abs() > 1e-4);
    }

    #[test]
    fn a_prompt_without_room_is_named_and_a_long_answer_is_cut() {
        let _draws = crate::util::random::hold();
        let tokenizer = Tokenizer::bundled().unwrap();
        let long = "word ".repeat(40);
        let mut p = pair(&long, "yes");
        p.line = 7;
        let err = SftTask::new(&[p], &tokenizer, format(true, false)).unwrap_err();
        assert!(matches!(err, Error::PromptTooLong { line: 7, .. }), "{err}");
        let task = SftTask::new(&[pair("say", &long)], &tokenizer, format(true, false)).unwrap();
        assert_eq!(task.truncated(), 1);
        let e = task.example(0, &mut example_rng(0, 0, 0)).unwrap();
        assert_eq!(e.tokens.input_ids.len(), 32);
    }

    #[test]
    fn packing_joins_pairs_with_positions_and_attention_reset() {
        let _draws = crate::util::random::hold();
        let tokenizer = Tokenizer::bundled().unwrap();
        let pairs = [pair("a b", "c"), pair("d", "e f"), pair("g h i", "j")];
        let task = SftTask::new(&pairs, &tokenizer, format(true, true)).unwrap();
        assert_eq!(task.num_examples(), 1);
        let e = task.example(0, &mut example_rng(0, 0, 0)).unwrap();
        let lens: Vec<usize> = pairs
            .iter()
            .map(|p| {
                let prompt = tokenizer.encode(&p.prompt).unwrap().ids.len();
                prompt + tokenizer.encode(&p.completion).unwrap().ids.len() + 1
            })
            .collect();
        let expected: Vec<u32> = lens.iter().flat_map(|&n| 0..n as u32).collect();
        assert_eq!(e.positions, expected);
        let device = Device::flex();
        let (positions, blocked) = packed_layout(&[e], &device);
        assert_eq!(positions.dims(), [1, expected.len()]);
        let blocked: Vec<bool> = blocked.into_data().try_to_vec().unwrap();
        let len = expected.len();
        let start = lens[0]; // first token of the second pair
        // It sees itself, not the first pair; the token after it sees both of them.
        assert!(!blocked[start * len + start]);
        assert!(blocked[start * len + start - 1]);
        assert!(!blocked[(start + 1) * len + start]);
        assert!(blocked[(start + 1) * len + start + 2]);
    }

    #[test]
    fn the_loss_is_the_hand_computed_mean_over_answer_tokens() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (encoder, _, _) = crate::test_support::tiny_parts(&device);
        let clm = ClmConfig::new().init(&encoder, &device);
        let sft = Sft::new(clm);
        // Two sequences over the 40-token vocabulary: prompt targets ignored.
        let example = |ids: Vec<u32>, targets: Vec<i64>| SftExample {
            positions: (0..ids.len() as u32).collect(),
            tokens: TokenExample::plain(ids, targets),
        };
        let examples = [
            example(vec![2, 5, 6, 7], vec![IGNORE_INDEX, IGNORE_INDEX, 7, 3]),
            example(vec![2, 9, 10], vec![IGNORE_INDEX, 10, 3]),
        ];
        let task = SftTask {
            examples: examples.to_vec(),
            pad: 0,
            packing: false,
            truncated: 0,
        };
        let batch = task.collate(&examples, &device).unwrap();
        let out = sft.forward(&encoder, batch.clone());
        // By hand: every row alone, all logits, the log-softmax at the targets.
        let mut nll = Vec::new();
        for e in &examples {
            let n = e.tokens.input_ids.len();
            let ids: Vec<i64> = e.tokens.input_ids.iter().map(|&i| i64::from(i)).collect();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), &device);
            let hidden = encoder.encode(
                ids.clone(),
                Some(ids.zeros_like()),
                Some(&AttentionMask::causal(n, &device)),
            );
            let all = Tensor::<1, Int>::arange(0..n as i64, &device);
            let logits =
                sft.clm
                    .head()
                    .forward_at(hidden, all, encoder.embeddings.tokens.weight.val());
            let rows = crate::util::floats(burn::tensor::activation::log_softmax(logits, 1));
            for (t, &target) in e.tokens.targets.iter().enumerate() {
                if target != IGNORE_INDEX {
                    nll.push(-rows[t * 40 + target as usize]);
                }
            }
        }
        let expected = nll.iter().sum::<f32>() / nll.len() as f32;
        let loss = out.loss.normalized(&batch.weights()).into_scalar::<f32>();
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
        // And the packed batch of the same two gives the same loss.
        let packed = SftTask {
            examples: pack(examples.to_vec(), 16),
            pad: 0,
            packing: true,
            truncated: 0,
        };
        assert_eq!(packed.num_examples(), 1);
        let one = packed.example(0, &mut example_rng(0, 0, 0)).unwrap();
        let batch = packed.collate(&[one], &device).unwrap();
        let out = sft.forward(&encoder, batch.clone());
        let packed_loss = out.loss.normalized(&batch.weights()).into_scalar::<f32>();
        assert!((packed_loss - loss).abs() < 1e-5);
    }
}
