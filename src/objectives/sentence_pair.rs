//! Sentence-level objectives: next-sentence prediction (BERT) and sentence-order prediction
//! (ALBERT), one binary head on the pooled `[CLS]` state.
//!
//! Data: [`PairSampler`] pairs framed as `[CLS] A [SEP] B [SEP]` with segment ids, labelled
//! `1` = B is random (NSP) or A and B are swapped (SOP), `0` = in order; optionally masked for
//! MLM as well, so that `bert` (mlm + nsp) and `albert` (mlm + sop) read one batch. Model:
//! BERT's pooler (`tanh(dense(h[CLS]))`) then a `[hidden → 2]` classifier, softmax
//! cross-entropy averaged over the batch.

use burn::prelude::*;

use super::{SequenceClassifier, SequenceClassifierConfig};
use crate::blocks::EncoderBackbone;
use crate::data::{DEFAULT_SHORT_SEQ_PROB, PairKind, PairSampler};
use crate::data::{Task, TokenBatch, TokenExample};
use crate::dataset::Documents;
use crate::error::Result;
use crate::noise::{IGNORE_INDEX, MlmMasker, MlmMasking};
use crate::tokenize::{SpecialTokens, Tokenizer};
use crate::util::rng::ExampleRng;

/// The settings of `nsp` and `sop`: the pair head alone.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSettings {
    /// Next sentence or sentence order.
    pub kind: PairKind,
}

/// The settings of `bert` and `albert`: masked LM and a pair head over one pass.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BertSettings {
    /// Next sentence (BERT) or sentence order (ALBERT).
    pub kind: PairKind,
    /// The masking of the pairs for MLM.
    pub masking: MlmMasking,
    /// Weight of the pair loss against MLM's 1.
    pub pair_weight: f64,
}

/// Configuration of a [`PairHead`].
#[derive(Config, Debug)]
pub struct PairHeadConfig {
    /// NSP or SOP: names the metrics (`nsp_acc`, `nsp_loss` or `sop_acc`, `sop_loss`).
    pub kind: PairKind,
}

/// The NSP or SOP head: a two-class [`SequenceClassifier`] over the `[CLS]` state.
pub type PairHead = SequenceClassifier;

impl PairHeadConfig {
    /// Builds the head for `backbone`.
    pub fn init<M: EncoderBackbone>(&self, backbone: &M, device: &Device) -> PairHead {
        SequenceClassifierConfig::new(2, self.kind.name().to_string())
            .init(backbone, device)
            .expect("two classes, no dropout")
    }
}

/// The data side of [`PairHead`]: labelled sentence pairs, masked for MLM too when a mix
/// (`bert`, `albert`) asks for it.
#[derive(Debug, Clone)]
pub struct SentencePairTask {
    sampler: PairSampler,
    masker: Option<MlmMasker>,
    special: SpecialTokens,
}

/// What a [`SentencePairTask`] makes: pairs of one kind, masked for MLM too when a mix
/// (`bert`, `albert`) asks for it. A bare [`PairKind`] converts into one without masking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairTaskConfig {
    /// Next sentence or sentence order.
    pub kind: PairKind,
    /// The MLM masking of the pairs, if any.
    pub masking: Option<MlmMasking>,
}

impl From<PairKind> for PairTaskConfig {
    fn from(kind: PairKind) -> Self {
        Self {
            kind,
            masking: None,
        }
    }
}

impl SentencePairTask {
    /// `pairs.kind` pairs of at most `seq_len` tokens from `documents`, with BERT's share of
    /// shorter ones; masked with `pairs.masking` if given.
    pub fn new(
        documents: &Documents,
        tokenizer: &Tokenizer,
        pairs: impl Into<PairTaskConfig>,
        seq_len: usize,
    ) -> Result<Self> {
        let PairTaskConfig { kind, masking } = pairs.into();
        let sampler = PairSampler::new(
            documents.clone(),
            kind,
            seq_len,
            DEFAULT_SHORT_SEQ_PROB,
            tokenizer.special(),
        )?;
        Self::from_sampler(sampler, tokenizer, masking)
    }

    /// Pairs from a sampler configured by hand (another `short_seq_prob`, say).
    pub fn from_sampler(
        sampler: PairSampler,
        tokenizer: &Tokenizer,
        masking: Option<MlmMasking>,
    ) -> Result<Self> {
        Ok(Self {
            sampler,
            masker: masking
                .map(|m| MlmMasker::for_tokenizer(m, tokenizer))
                .transpose()?,
            special: tokenizer.special(),
        })
    }
}

impl Task for SentencePairTask {
    type Example = TokenExample;
    type Batch = TokenBatch;

    fn num_examples(&self) -> usize {
        self.sampler.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<TokenExample> {
        let pair = self.sampler.pair(index, rng);
        let (input_ids, targets) = match &self.masker {
            Some(masker) => {
                let masked = masker.mask(&pair.input_ids, &pair.word_starts, rng)?;
                (masked.input, masked.targets)
            }
            None => {
                let n = pair.input_ids.len();
                (pair.input_ids, vec![IGNORE_INDEX; n])
            }
        };
        Ok(TokenExample {
            input_ids,
            segment_ids: pair.segment_ids,
            targets,
            label: Some(u32::from(pair.label)),
            named: Default::default(),
        })
    }

    fn collate(&self, examples: &[TokenExample], device: &Device) -> Result<TokenBatch> {
        TokenBatch::collate(examples, self.special.pad, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::tokenized::numbered_document;
    use crate::util::rng::example_rng;

    #[test]
    fn examples_carry_the_pair_and_its_label_and_are_masked_only_when_asked() {
        let tokenizer = Tokenizer::bundled().unwrap();
        let docs: Documents = (0..4)
            .map(|d| numbered_document(&format!("d{d}"), 1000 + 100 * d, &[6, 7, 8, 5, 9], 1))
            .collect::<Vec<_>>()
            .into();
        let kind = PairKind::SentenceOrder;
        let plain = SentencePairTask::new(&docs, &tokenizer, kind, 24).unwrap();
        let masking = Some(MlmMasking::default());
        let masked =
            SentencePairTask::new(&docs, &tokenizer, PairTaskConfig { kind, masking }, 24).unwrap();
        let mut masked_targets = 0;
        for i in 0..plain.num_examples() {
            let rng = || example_rng(1, 0, i as u64);
            let pair = plain.sampler.pair(i, &mut rng());
            let e = plain.example(i, &mut rng()).unwrap();
            assert_eq!(e.label, Some(u32::from(pair.label)));
            assert_eq!(
                (&e.input_ids, &e.segment_ids),
                (&pair.input_ids, &pair.segment_ids)
            );
            assert!(e.targets.iter().all(|&t| t == IGNORE_INDEX));

            let m = masked.example(i, &mut rng()).unwrap();
            assert_eq!((m.label, &m.segment_ids), (e.label, &e.segment_ids));
            for (t, &target) in m.targets.iter().enumerate() {
                if target != IGNORE_INDEX {
                    assert_eq!(
                        target,
                        i64::from(e.input_ids[t]),
                        "target is not the original"
                    );
                    masked_targets += 1;
                }
            }
        }
        assert!(masked_targets > 0);
    }
}
