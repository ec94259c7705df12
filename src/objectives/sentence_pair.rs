//! Sentence-level objectives: next-sentence prediction (BERT) and sentence-order prediction
//! (ALBERT), one binary head on the pooled `[CLS]` state.
//!
//! Data: [`PairSampler`] pairs framed as `[CLS] A [SEP] B [SEP]` with segment ids, labelled
//! `1` = B is random (NSP) or A and B are swapped (SOP), `0` = in order; optionally masked for
//! MLM as well, so that `bert` (mlm + nsp) and `albert` (mlm + sop) read one batch. Model:
//! BERT's pooler (`tanh(dense(h[CLS]))`) then a `[hidden → 2]` classifier, softmax
//! cross-entropy averaged over the batch.

use burn::prelude::*;

use super::multitask::{TaskHead, TokenTask};
use super::{MlmConfig, SequenceClassifier, SequenceClassifierConfig};
use crate::blocks::{EncoderBackbone, TransformerEncoder};
use crate::data::{Documents, Task, TokenBatch, TokenExample};
use crate::noise::{IGNORE_INDEX, MaskUnit, MlmMasker, MlmMasking};
use crate::data::{DEFAULT_SHORT_SEQ_PROB, PairKind, PairSampler};
use crate::util::rng::ExampleRng;
use crate::objectives::Mix;
use crate::preset::Preset;
use crate::recipe::registry::in_setting;
use crate::recipe::{ObjectiveRecipe, ObjectiveSettings, Recipe, TokenTaskSettings};
use crate::tokenize::{SpecialTokens, Tokenizer};

/// Updates of a sentence-level recipe: one label per pair takes longer to learn from than a
/// token objective's many.
const PAIR_STEPS: usize = 1000;

/// The recipe settings of `nsp` and `sop`: the pair head alone.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRecipe {
    /// Next sentence or sentence order.
    pub kind: PairKind,
}

/// The recipe settings of `bert` and `albert`: masked LM and a pair head over one pass.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BertRecipe {
    /// Next sentence (BERT) or sentence order (ALBERT).
    pub kind: PairKind,
    /// The masking of the pairs for MLM.
    pub masking: MlmMasking,
    /// Weight of the pair loss against MLM's 1.
    pub pair_weight: f64,
}

fn pair_recipe(kind: PairKind, preset: Preset) -> crate::Result<Recipe> {
    let objective = match kind {
        PairKind::NextSentence => ObjectiveRecipe::Nsp(PairRecipe { kind }),
        PairKind::SentenceOrder => ObjectiveRecipe::Sop(PairRecipe { kind }),
    };
    let mut recipe = Recipe::new(objective, preset)?;
    recipe.train.steps = PAIR_STEPS;
    Ok(recipe)
}

/// `nsp`'s recipe: BERT's next-sentence pairs, 1000 updates.
pub fn nsp_recipe(preset: Preset) -> crate::Result<Recipe> {
    pair_recipe(PairKind::NextSentence, preset)
}

/// `sop`'s recipe: ALBERT's sentence-order pairs, 1000 updates.
pub fn sop_recipe(preset: Preset) -> crate::Result<Recipe> {
    pair_recipe(PairKind::SentenceOrder, preset)
}

/// `bert`'s recipe: masked LM (80/10/10 on single tokens) + next-sentence prediction, 1:1,
/// 1000 updates.
pub fn bert_recipe(preset: Preset) -> crate::Result<Recipe> {
    let settings = BertRecipe {
        kind: PairKind::NextSentence,
        masking: MlmMasking::default(),
        pair_weight: 1.0,
    };
    let mut recipe = Recipe::new(ObjectiveRecipe::Bert(settings), preset)?;
    recipe.train.steps = PAIR_STEPS;
    Ok(recipe)
}

/// `albert`'s recipe: masked LM over n-grams of up to 3 words + sentence order, on a
/// factorized embedding (width 128, or half the model's if less) and one shared layer, 1000
/// updates. The pair loss weighs 5 rather than ALBERT's 1: at 1:1, SOP stays at chance through
/// a 1000-step `mini` run (0.54), at 5 it learns (0.58) at some cost to MLM.
pub fn albert_recipe(preset: Preset) -> crate::Result<Recipe> {
    let settings = BertRecipe {
        kind: PairKind::SentenceOrder,
        masking: MlmMasking::default().with_unit(MaskUnit::ALBERT),
        pair_weight: 5.0,
    };
    let mut recipe = Recipe::new(ObjectiveRecipe::Albert(settings), preset)?;
    recipe.train.steps = PAIR_STEPS;
    recipe.encoder.embedding_size = Some(128.min(recipe.encoder.hidden_size / 2));
    recipe.encoder.share_layers = true;
    Ok(recipe)
}

impl ObjectiveSettings for PairRecipe {
    fn token_task(&self) -> Option<&dyn TokenTaskSettings> {
        Some(self)
    }
}

impl TokenTaskSettings for PairRecipe {
    fn head(&self, backbone: &TransformerEncoder, device: &Device) -> crate::Result<TaskHead> {
        Ok(TaskHead::Pair(
            PairHeadConfig::new(self.kind).init(backbone, device),
        ))
    }

    fn task(
        &self,
        documents: &Documents,
        tokenizer: &Tokenizer,
        seq_len: usize,
    ) -> crate::Result<Box<dyn TokenTask>> {
        Ok(Box::new(SentencePairTask::new(
            documents, tokenizer, self.kind, seq_len, None,
        )?))
    }
}

impl BertRecipe {
    fn mix<M: EncoderBackbone>(
        &self,
        backbone: &M,
        device: &Device,
    ) -> crate::Result<Mix<super::Mlm, PairHead>> {
        let mlm = MlmConfig::new().init(backbone, device);
        let pair = PairHeadConfig::new(self.kind).init(backbone, device);
        in_setting(Mix::new(mlm, 1.0, pair, self.pair_weight), "pair_weight")
    }
}

impl ObjectiveSettings for BertRecipe {
    fn check(&self, _: &Recipe, _: &Tokenizer) -> crate::Result<()> {
        in_setting(self.masking.validate(), "masking")?;
        in_setting(
            crate::error::check_weight("pair_weight", self.pair_weight),
            "pair_weight",
        )
    }

    fn token_task(&self) -> Option<&dyn TokenTaskSettings> {
        Some(self)
    }
}

impl TokenTaskSettings for BertRecipe {
    fn head(&self, backbone: &TransformerEncoder, device: &Device) -> crate::Result<TaskHead> {
        Ok(TaskHead::MlmPair(self.mix(backbone, device)?))
    }

    fn task(
        &self,
        documents: &Documents,
        tokenizer: &Tokenizer,
        seq_len: usize,
    ) -> crate::Result<Box<dyn TokenTask>> {
        Ok(Box::new(SentencePairTask::new(
            documents,
            tokenizer,
            self.kind,
            seq_len,
            Some(self.masking),
        )?))
    }
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

impl SentencePairTask {
    /// `kind` pairs of at most `seq_len` tokens from `documents`, with BERT's share of shorter
    /// ones; masked with `masking` if given.
    pub fn new(
        documents: &Documents,
        tokenizer: &Tokenizer,
        kind: PairKind,
        seq_len: usize,
        masking: Option<MlmMasking>,
    ) -> crate::Result<Self> {
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
    ) -> crate::Result<Self> {
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

    fn example(&self, index: usize, rng: &mut ExampleRng) -> crate::Result<TokenExample> {
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

    fn collate(&self, examples: &[TokenExample], device: &Device) -> crate::Result<TokenBatch> {
        TokenBatch::collate(examples, self.special.pad, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tokenized::numbered_document;
    use crate::util::rng::example_rng;

    #[test]
    fn examples_carry_the_pair_and_its_label_and_are_masked_only_when_asked() {
        let tokenizer = Tokenizer::bundled().unwrap();
        let docs: Documents = (0..4)
            .map(|d| numbered_document(&format!("d{d}"), 1000 + 100 * d, &[6, 7, 8, 5, 9], 1))
            .collect::<Vec<_>>()
            .into();
        let kind = PairKind::SentenceOrder;
        let plain = SentencePairTask::new(&docs, &tokenizer, kind, 24, None).unwrap();
        let masked =
            SentencePairTask::new(&docs, &tokenizer, kind, 24, Some(MlmMasking::default()))
                .unwrap();
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
