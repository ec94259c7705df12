//! UniLM: one shared Transformer trained as a bidirectional, a left-to-right, a right-to-left
//! and a sequence-to-sequence language model, by changing only its self-attention mask. The
//! targets are cloze-style masked tokens throughout (BERT's 80/10/10).
//!
//! Each batch draws one mask type, in shares that default to the UniLM paper's (1/3
//! bidirectional, 1/3 sequence-to-sequence, 1/6 each way left-to-right and right-to-left). The
//! draw is the first example's, so it is seeded like every other and a resumed run replays it.
//! Inputs are `[CLS] A [SEP] B [SEP]` with A and B cut from one segment at a sentence boundary
//! (or a word start when it has one sentence); segment ids tell the mask types apart as the
//! reference loader's `new_segment_ids` do: A/B 0/1 bidirectional, 2 left-to-right, 3
//! right-to-left, 4/5 source/target sequence-to-sequence. The backbone therefore needs 6
//! segment embeddings.
//!
//! UniLM's pretraining code was never released; the masks follow the paper and the released
//! sequence-to-sequence loader (`seq2seq_loader.py`).

use burn::prelude::*;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{EncoderHead, Objective, ObjectiveOutput, Weights, encode};
use crate::blocks::{AttentionMask, EncoderBackbone};
use crate::data::{Batch, Segment, Segments, Task, TokenBatch, TokenExample, pack_segments};
use crate::dataset::Documents;
use crate::error::{Error, Result};
use crate::noise::{MlmMasker, MlmMasking};
use crate::objectives::{Mlm, MlmConfig};
use crate::tokenize::{SpecialTokens, Tokenizer};
use crate::util::rng::{ExampleRng, pick_weighted};

/// Segment ids UniLM uses: 0–5.
pub const UNILM_SEGMENTS: usize = 6;

/// The self-attention mask of a UniLM batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnilmMask {
    /// Every token sees every token (BERT).
    Bidirectional,
    /// A token sees itself and the tokens before it (GPT).
    LeftToRight,
    /// A token sees itself and the tokens after it.
    RightToLeft,
    /// Source tokens see the source; target tokens see the source and the target up to
    /// themselves.
    Seq2Seq,
}

impl UnilmMask {
    /// Every mask type, in the order of [`UnilmShares`].
    pub const ALL: [Self; 4] = [
        Self::Bidirectional,
        Self::LeftToRight,
        Self::RightToLeft,
        Self::Seq2Seq,
    ];

    /// The segment ids of source (`[CLS] A [SEP]`) and target (`B [SEP]`) tokens.
    pub fn segments(self) -> [u32; 2] {
        match self {
            Self::Bidirectional => [0, 1],
            Self::LeftToRight => [2, 2],
            Self::RightToLeft => [3, 3],
            Self::Seq2Seq => [4, 5],
        }
    }
}

/// How often each mask type is drawn; the shares sum to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnilmShares {
    /// Bidirectional. Default 1/3.
    pub bidirectional: f64,
    /// Left-to-right. Default 1/6.
    pub left_to_right: f64,
    /// Right-to-left. Default 1/6.
    pub right_to_left: f64,
    /// Sequence-to-sequence. Default 1/3.
    pub seq2seq: f64,
}

impl Default for UnilmShares {
    fn default() -> Self {
        Self {
            bidirectional: 1.0 / 3.0,
            left_to_right: 1.0 / 6.0,
            right_to_left: 1.0 / 6.0,
            seq2seq: 1.0 / 3.0,
        }
    }
}

impl UnilmShares {
    fn as_array(&self) -> [f64; 4] {
        [
            self.bidirectional,
            self.left_to_right,
            self.right_to_left,
            self.seq2seq,
        ]
    }

    /// Checks that the shares are probabilities summing to 1.
    pub fn validate(&self) -> Result<()> {
        let shares = self.as_array();
        for (share, mask) in shares.iter().zip(UnilmMask::ALL) {
            if !(0.0..=1.0).contains(share) {
                return Err(Error::InvalidConfig(format!(
                    "the share of {mask:?} masks must lie in [0, 1], got {share}"
                )));
            }
        }
        let total: f64 = shares.iter().sum();
        if (total - 1.0).abs() > 1e-6 {
            return Err(Error::InvalidConfig(format!(
                "UniLM's mask-type shares must sum to 1, got {total} ({shares:?})"
            )));
        }
        Ok(())
    }

    /// The mask type a uniform draw `u` in [0, 1) picks.
    pub fn pick(&self, u: f64) -> UnilmMask {
        UnilmMask::ALL[pick_weighted(&self.as_array(), u)]
    }
}

/// UniLM's objective: a cloze MLM head under the batch's mask type.
#[derive(Module, Debug)]
pub struct Unilm {
    mlm: Mlm,
}

/// Configuration of [`Unilm`]: nothing to set, its cloze head is MLM's.
#[derive(Config, Debug)]
pub struct UnilmConfig {}

impl UnilmConfig {
    /// The head for `backbone`, which must have [`UNILM_SEGMENTS`] segment embeddings.
    pub fn init<M: EncoderBackbone>(&self, backbone: &M, device: &Device) -> Result<Unilm> {
        if backbone.num_segments() < UNILM_SEGMENTS {
            return Err(Error::InvalidConfig(format!(
                "UniLM tells its mask types apart by segment ids 0 to 5; the backbone has {} \
                 segment embeddings (build it with num_segments {UNILM_SEGMENTS})",
                backbone.num_segments()
            )));
        }
        Ok(Unilm {
            mlm: MlmConfig::new().init(backbone, device),
        })
    }
}

impl Unilm {
    /// The attention mask of `batch`: its mask type, and padding.
    pub fn mask(batch: &UnilmBatch) -> AttentionMask {
        let tokens = &batch.tokens;
        let len = tokens.input_ids.dims()[1];
        let device = tokens.input_ids.device();
        let padding = AttentionMask::padding(tokens.padding.clone());
        match batch.mask {
            UnilmMask::Bidirectional => padding,
            UnilmMask::LeftToRight => AttentionMask::causal(len, &device).or(padding),
            UnilmMask::RightToLeft => AttentionMask::anti_causal(len, &device).or(padding),
            UnilmMask::Seq2Seq => AttentionMask::prefix(batch.source_lens.clone(), len).or(padding),
        }
    }
}

impl<M: EncoderBackbone> Objective<M> for Unilm {
    type Batch = UnilmBatch;

    fn forward(&self, backbone: &M, batch: UnilmBatch) -> ObjectiveOutput {
        let hidden = encode(backbone, &batch.tokens, &Self::mask(&batch));
        self.mlm.score(backbone, hidden, &batch.tokens)
    }
}

/// One UniLM example: a masked pair, the length of its source part and the draw that picks
/// the mask type when it opens a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct UnilmExample {
    /// `[CLS] A [SEP] B [SEP]`, masked (segment ids are set per batch).
    pub tokens: TokenExample,
    /// Length of `[CLS] A [SEP]`.
    pub source_len: usize,
    /// Uniform in [0, 1).
    pub draw: f64,
}

/// A padded batch of [`UnilmExample`]s under one mask type.
#[derive(Debug, Clone)]
pub struct UnilmBatch {
    /// The masked tokens, segment ids set for the mask type.
    pub tokens: TokenBatch,
    /// `[batch]` source lengths (the prefix of the sequence-to-sequence mask).
    pub source_lens: Tensor<1, Int>,
    /// The batch's mask type.
    pub mask: UnilmMask,
}

impl Batch for UnilmBatch {
    fn num_tokens(&self) -> usize {
        self.tokens.num_tokens
    }

    fn weights(&self) -> Weights {
        self.tokens.weights()
    }
}

/// The data side of [`Unilm`].
#[derive(Debug, Clone)]
pub struct UnilmTask {
    segments: Segments,
    masker: MlmMasker,
    shares: UnilmShares,
    special: SpecialTokens,
}

impl UnilmTask {
    /// Pairs of at most `seq_len` tokens from `documents`, masked with `settings.masking`,
    /// mask types drawn in `settings.shares`.
    pub fn new(
        documents: &Documents,
        tokenizer: &Tokenizer,
        settings: &UnilmSettings,
        seq_len: usize,
    ) -> Result<Self> {
        let UnilmSettings { masking, shares } = settings.clone();
        shares.validate()?;
        let room = seq_len.checked_sub(3).filter(|&n| n > 0).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "a sequence length of {seq_len} leaves no room for text besides [CLS] and two \
                 [SEP]"
            ))
        })?;
        Ok(Self {
            segments: pack_segments(documents, room)?,
            masker: MlmMasker::for_tokenizer(masking, tokenizer)?,
            shares,
            special: tokenizer.special(),
        })
    }
}

impl Task for UnilmTask {
    type Example = UnilmExample;
    type Batch = UnilmBatch;

    fn num_examples(&self) -> usize {
        self.segments.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<UnilmExample> {
        let sentences = &self.segments.sentences(index);
        let text = Segment::concat(sentences);
        // A ends at a sentence boundary, or at a word start inside a lone sentence.
        let cut = if sentences.len() > 1 {
            let k = rng.random_range(1..sentences.len());
            sentences[..k].iter().map(|s| s.ids.len()).sum()
        } else {
            let starts: Vec<usize> = (1..text.ids.len())
                .filter(|&i| text.word_starts[i])
                .collect();
            if starts.is_empty() {
                text.ids.len()
            } else {
                starts[rng.random_range(0..starts.len())]
            }
        };
        // `[CLS] A B [SEP]`, then the `[SEP]` after A.
        let (mut ids, mut word_starts) = text.framed(self.special.cls, self.special.sep);
        ids.insert(cut + 1, self.special.sep);
        word_starts.insert(cut + 1, true);
        let masked = self.masker.mask(&ids, &word_starts, rng)?;
        Ok(UnilmExample {
            tokens: TokenExample::plain(masked.input, masked.targets),
            source_len: cut + 2,
            draw: rng.random(),
        })
    }

    fn collate(&self, examples: &[UnilmExample], device: &Device) -> Result<UnilmBatch> {
        let first = examples.first().ok_or(Error::EmptyBatch)?;
        let mask = self.shares.pick(first.draw);
        let tokens: Vec<&TokenExample> = examples.iter().map(|e| &e.tokens).collect();
        let mut tokens = TokenBatch::collate(&tokens, self.special.pad, device)?;
        // The mask type decides the segment ids: source ones up to each source length,
        // target ones after (padding included, which nothing attends to).
        let [source, target] = mask.segments().map(i64::from);
        let len = tokens.input_ids.dims()[1];
        let segments: Vec<i64> = examples
            .iter()
            .flat_map(|e| (0..len).map(move |t| if t < e.source_len { source } else { target }))
            .collect();
        tokens.segment_ids =
            Tensor::from_data(TensorData::new(segments, [examples.len(), len]), device);
        let lens: Vec<i64> = examples.iter().map(|e| e.source_len as i64).collect();
        let n = lens.len();
        Ok(UnilmBatch {
            tokens,
            source_lens: Tensor::from_data(TensorData::new(lens, [n]), device),
            mask,
        })
    }
}

/// The settings of `unilm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnilmSettings {
    /// The cloze masking.
    pub masking: MlmMasking,
    /// How often each attention mask is drawn.
    pub shares: UnilmShares,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockConfig;
    use crate::blocks::TransformerEncoderConfig;
    use crate::dataset::tokenized::numbered_document;
    use crate::noise::IGNORE_INDEX;
    use crate::util::rng::example_rng;

    fn task(shares: UnilmShares) -> UnilmTask {
        let docs = Documents::from(vec![numbered_document("d", 1000, &[5, 7, 4, 9, 6, 8], 2)]);
        let settings = UnilmSettings {
            masking: MlmMasking::default(),
            shares,
        };
        UnilmTask::new(&docs, &Tokenizer::bundled().unwrap(), &settings, 16).unwrap()
    }

    /// A batch of two hand-made examples (`[CLS] a b [SEP] c [SEP]` and one a token shorter)
    /// under `mask`.
    fn batch(mask: UnilmMask, device: &Device) -> UnilmBatch {
        let only = |m: UnilmMask| {
            let mut shares = [0.0; 4];
            shares[UnilmMask::ALL.iter().position(|&x| x == m).unwrap()] = 1.0;
            UnilmShares {
                bidirectional: shares[0],
                left_to_right: shares[1],
                right_to_left: shares[2],
                seq2seq: shares[3],
            }
        };
        let example = |ids: Vec<u32>, source_len| {
            let mut targets = vec![IGNORE_INDEX; ids.len()];
            targets[1] = i64::from(ids[1]);
            let tokens = TokenExample::plain(ids, targets);
            UnilmExample {
                tokens,
                source_len,
                draw: 0.5,
            }
        };
        task(only(mask))
            .collate(
                &[
                    example(vec![2, 10, 11, 3, 12, 3], 4),
                    example(vec![2, 10, 3, 12, 3], 3),
                ],
                device,
            )
            .unwrap()
    }

    fn blocked(mask: UnilmMask, device: &Device) -> Vec<bool> {
        let b = batch(mask, device);
        Unilm::mask(&b)
            .blocked([2, 1, 6, 6])
            .into_data()
            .try_to_vec()
            .unwrap()
    }

    #[test]
    fn each_mask_type_is_the_matrix_the_paper_defines() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (o, x) = (false, true);
        // Second example: 5 tokens and one padding key.
        #[rustfmt::skip]
        let bidirectional = [
            [o, o, o, o, o, o].repeat(6),
            [o, o, o, o, o, x].repeat(6),
        ]
        .concat();
        assert_eq!(blocked(UnilmMask::Bidirectional, &device), bidirectional);
        let causal: Vec<bool> = (0..6).flat_map(|i| (0..6).map(move |j| j > i)).collect();
        let padded = |m: &[bool]| -> Vec<bool> {
            m.chunks(6)
                .flat_map(|row| {
                    let mut r = row.to_vec();
                    r[5] = true;
                    r
                })
                .collect()
        };
        assert_eq!(
            blocked(UnilmMask::LeftToRight, &device),
            [causal.clone(), padded(&causal)].concat()
        );
        let anti: Vec<bool> = (0..6).flat_map(|i| (0..6).map(move |j| j < i)).collect();
        assert_eq!(
            blocked(UnilmMask::RightToLeft, &device),
            [anti.clone(), padded(&anti)].concat()
        );
        // Sequence to sequence: sources of 4 and 3 tokens.
        let s2s = |p: usize| -> Vec<bool> {
            (0..6)
                .flat_map(|i| (0..6).map(move |j| j >= p && j > i))
                .collect()
        };
        assert_eq!(
            blocked(UnilmMask::Seq2Seq, &device),
            [s2s(4), padded(&s2s(3))].concat()
        );
    }

    #[test]
    fn segment_ids_name_the_mask_type() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        for mask in UnilmMask::ALL {
            let b = batch(mask, &device);
            assert_eq!(b.mask, mask);
            let ids = crate::util::ints(b.tokens.segment_ids);
            let [s, t] = mask.segments().map(i64::from);
            assert_eq!(&ids[..6], &[s, s, s, s, t, t], "{mask:?}");
        }
    }

    #[test]
    fn the_model_obeys_each_mask() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let backbone = TransformerEncoderConfig::new(50, 32, 2, BlockConfig::new(4, 64))
            .with_num_segments(UNILM_SEGMENTS)
            .with_dropout(0.0)
            .init(&device)
            .unwrap();
        for mask in UnilmMask::ALL {
            let base = batch(mask, &device);
            let hidden = |b: &UnilmBatch| {
                encode(&backbone, &b.tokens, &Unilm::mask(b)).slice([0..1, 0..6, 0..32])
            };
            let h = hidden(&base);
            // Perturb the first example's token at `pos`; which rows change?
            let changed_rows = |pos: usize| -> Vec<bool> {
                let mut b = base.clone();
                b.tokens.input_ids = b.tokens.input_ids.slice_assign(
                    [0..1, pos..pos + 1],
                    Tensor::<2, Int>::from_ints([[40]], &device),
                );
                let d = (hidden(&b) - h.clone()).abs().max_dim(2);
                let d: Vec<f32> = d.into_data().try_to_vec().unwrap();
                d.iter().map(|&x| x > 1e-4).collect()
            };
            let (t, f) = (true, false);
            match mask {
                UnilmMask::Bidirectional => assert_eq!(changed_rows(4), [t; 6]),
                UnilmMask::LeftToRight => assert_eq!(changed_rows(2), [f, f, t, t, t, t]),
                UnilmMask::RightToLeft => assert_eq!(changed_rows(2), [t, t, t, f, f, f]),
                UnilmMask::Seq2Seq => {
                    // Target token 4: the source and the earlier target do not see it.
                    assert_eq!(changed_rows(4), [f, f, f, f, t, t]);
                    // Source token 1: everyone sees it.
                    assert_eq!(changed_rows(1), [t; 6]);
                }
            }
        }
    }

    #[test]
    fn mask_types_follow_their_shares() {
        let _draws = crate::util::random::hold();
        let t = task(UnilmShares::default());
        let mut counts = [0usize; 4];
        let draws = 6000;
        for i in 0..draws {
            let e = t
                .example(i % t.num_examples(), &mut example_rng(0, i as u64, 0))
                .unwrap();
            let mask = t.shares.pick(e.draw);
            counts[UnilmMask::ALL.iter().position(|&m| m == mask).unwrap()] += 1;
        }
        for (count, share) in counts.iter().zip(UnilmShares::default().as_array()) {
            let seen = *count as f64 / draws as f64;
            assert!((seen - share).abs() < 0.02, "{counts:?}");
        }
    }

    #[test]
    fn pairs_are_cls_a_sep_b_sep_within_the_length() {
        let _draws = crate::util::random::hold();
        let t = task(UnilmShares::default());
        let s = Tokenizer::bundled().unwrap().special();
        for i in 0..t.num_examples() {
            let e = t.example(i, &mut example_rng(1, 0, i as u64)).unwrap();
            let ids = &e.tokens.input_ids;
            let targets = &e.tokens.targets;
            let original = |k: usize| {
                if targets[k] == IGNORE_INDEX {
                    ids[k]
                } else {
                    targets[k] as u32
                }
            };
            assert!(ids.len() <= 16);
            assert_eq!(original(0), s.cls);
            assert_eq!(original(e.source_len - 1), s.sep);
            assert_eq!(original(ids.len() - 1), s.sep);
            assert!(e.source_len >= 3 && e.source_len < ids.len());
        }
    }

    #[test]
    fn shares_that_do_not_sum_to_one_and_too_few_segments_are_rejected() {
        let _draws = crate::util::random::hold();
        for shares in [
            UnilmShares {
                seq2seq: 0.5,
                ..Default::default()
            },
            UnilmShares {
                bidirectional: -0.1,
                seq2seq: 0.5 + 0.1,
                ..Default::default()
            },
        ] {
            assert!(matches!(shares.validate(), Err(Error::InvalidConfig(_))));
        }
        let device = Device::flex();
        let two = TransformerEncoderConfig::new(50, 32, 1, BlockConfig::new(4, 64))
            .init(&device)
            .unwrap();
        assert!(matches!(
            UnilmConfig::new().init(&two, &device),
            Err(Error::InvalidConfig(_))
        ));
    }
}
