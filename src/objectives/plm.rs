//! Permuted language modelling: XLNet, and MPNet's masked-and-permuted variant.
//!
//! Both predict the last tokens of a random factorization order through the query stream of a
//! [`TwoStreamBackbone`], with the LM head tied to the token table. They differ in the data:
//!
//! - **XLNet**: spans of up to 5 tokens, a sixth of the sequence predicted (K = 6); each query
//!   is `[MASK]` at its target's position and sees the context and the targets before it.
//! - **MPNet**: 15 % of the tokens predicted; the query tokens get BERT's 80/10/10 and are also
//!   appended to the content stream at their targets' positions ("position compensation"), so
//!   every prediction sees the positions of all tokens, as MPNet's `make_query_and_content_mask`
//!   arranges. MPNet's reference permutes padding along with the text; here padding takes no
//!   part.

use burn::prelude::*;

use super::{Objective, ObjectiveOutput, TARGETS, masked_cross_entropy};
use crate::blocks::{AttentionMask, LmHead, LmHeadConfig, StreamInput, TwoStreamBackbone};
use crate::data::body_len;
use crate::data::{PermutationBatch, PermutationExample, Segments, Task, pack_segments};
use crate::dataset::Documents;
use crate::error::Result;
use crate::noise::{MlmMasker, MlmMasking, PermutationMasking};
use crate::tokenize::{SpecialTokens, Tokenizer};
use crate::util::rng::ExampleRng;

/// Configuration of the [`PermutedLm`] head.
#[derive(Config, Debug)]
pub struct PermutedLmConfig {
    /// LayerNorm epsilon of the head. Default 1e-12.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
}

/// The permuted-LM objective: an LM head on the query stream, tied to the token table.
#[derive(Module, Debug)]
pub struct PermutedLm {
    head: LmHead,
}

impl PermutedLmConfig {
    /// Builds the head for `backbone`.
    pub fn init<M: TwoStreamBackbone>(&self, backbone: &M, device: &Device) -> PermutedLm {
        PermutedLm {
            head: LmHeadConfig::for_backbone(backbone)
                .with_layer_norm_eps(self.layer_norm_eps)
                .init(device),
        }
    }
}

impl PermutedLm {
    /// The two streams' hidden states `(content, query)` for `batch`.
    pub fn streams<M: TwoStreamBackbone>(
        backbone: &M,
        batch: &PermutationBatch,
    ) -> (Tensor<3>, Tensor<3>) {
        let stream = |ids: &Tensor<2, Int>, positions: &Tensor<2, Int>| StreamInput {
            ids: ids.clone(),
            positions: positions.clone(),
            // One segment, as the MLM examples have.
            segments: Some(ids.zeros_like()),
        };
        let mask = AttentionMask::by_rank(
            batch.row_ranks.clone(),
            batch.key_ranks.clone(),
            batch.slots.clone(),
        );
        backbone.encode_two_stream(
            stream(&batch.content_ids, &batch.content_positions),
            stream(&batch.query_ids, &batch.query_positions),
            &mask,
        )
    }
}

impl<M: TwoStreamBackbone> Objective<M> for PermutedLm {
    type Batch = PermutationBatch;

    fn forward(&self, backbone: &M, batch: PermutationBatch) -> ObjectiveOutput {
        let (_, query) = Self::streams(backbone, &batch);
        let at = batch.target_positions.clone();
        let logits = self.head.forward_at(query, at, backbone.token_embedding());
        let p = masked_cross_entropy(logits, batch.target_ids);
        ObjectiveOutput {
            metrics: vec![p.accuracy("plm_acc"), p.perplexity("plm_ppl")],
            loss: p.loss(TARGETS),
        }
    }
}

/// The data side of [`PermutedLm`]: segments with a factorization order each.
#[derive(Debug, Clone)]
pub struct PermutationTask {
    segments: Segments,
    masking: PermutationMasking,
    special: SpecialTokens,
    /// MPNet's 80/10/10 for the query tokens, which also fill its slots; `None` for XLNet.
    mpnet: Option<MlmMasker>,
}

impl PermutationTask {
    /// XLNet's task over segments of at most `seq_len` tokens (normally with
    /// [`PermutationMasking::XLNET`]).
    pub fn xlnet(
        documents: &Documents,
        tokenizer: &Tokenizer,
        masking: PermutationMasking,
        seq_len: usize,
    ) -> Result<Self> {
        let settings = PermutedSettings {
            masking,
            query_masking: None,
        };
        Self::new(documents, tokenizer, &settings, seq_len)
    }

    /// MPNet's task over segments of at most `seq_len` tokens (normally with
    /// [`PermutationMasking::MPNET`]).
    pub fn mpnet(
        documents: &Documents,
        tokenizer: &Tokenizer,
        masking: PermutationMasking,
        seq_len: usize,
    ) -> Result<Self> {
        let settings = PermutedSettings {
            masking,
            query_masking: Some(MlmMasking::default()),
        };
        Self::new(documents, tokenizer, &settings, seq_len)
    }

    /// The task over segments of at most `seq_len` tokens: MPNet's when
    /// `settings.query_masking` masks the query tokens, XLNet's when it is `None`.
    pub fn new(
        documents: &Documents,
        tokenizer: &Tokenizer,
        settings: &PermutedSettings,
        seq_len: usize,
    ) -> Result<Self> {
        let (masking, queries) = (settings.masking, settings.query_masking);
        masking.validate()?;
        Ok(Self {
            segments: pack_segments(documents, body_len(seq_len)?)?,
            masking,
            special: tokenizer.special(),
            mpnet: queries
                .map(|q| MlmMasker::for_tokenizer(q, tokenizer))
                .transpose()?,
        })
    }
}

impl Task for PermutationTask {
    type Example = PermutationExample;
    type Batch = PermutationBatch;

    fn num_examples(&self) -> usize {
        self.segments.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<PermutationExample> {
        let (ids, _) = self
            .segments
            .segment(index)
            .framed(self.special.cls, self.special.sep);
        let mut maskable = vec![true; ids.len()];
        maskable[0] = false;
        *maskable.last_mut().expect("framed") = false;
        let order = self.masking.sample(&maskable, rng)?;
        let query_ids = match &self.mpnet {
            None => vec![self.special.mask; order.num_predict],
            Some(masker) => order
                .targets()
                .iter()
                .map(|&pos| masker.replacement(ids[pos as usize], rng))
                .collect(),
        };
        Ok(PermutationExample {
            ids,
            order,
            query_ids,
            compensate: self.mpnet.is_some(),
        })
    }

    fn collate(
        &self,
        examples: &[PermutationExample],
        device: &Device,
    ) -> Result<PermutationBatch> {
        PermutationBatch::collate(examples, self.special.pad, device)
    }
}

/// The settings of `xlnet` and `mpnet`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermutedSettings {
    /// Which tokens are predicted, in spans of what length.
    pub masking: PermutationMasking,
    /// MPNet's masking of the query tokens, which also fill the content stream at their
    /// targets' positions; `None` for XLNet's `[MASK]` queries.
    pub query_masking: Option<MlmMasking>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockConfig;
    use crate::blocks::TransformerEncoderConfig;
    use crate::data::Batch;
    use crate::dataset::tokenized::numbered_document;
    use crate::util::rng::example_rng;

    /// The bundled tokenizer and one synthetic document of 20 sentences (ids from 1000).
    fn tiny_tokenizer_and_docs() -> (Tokenizer, Documents) {
        let lengths = [9, 14, 7, 12, 10, 8, 15, 11, 6, 13].repeat(2);
        (
            Tokenizer::bundled().unwrap(),
            vec![numbered_document("d", 1000, &lengths, 2)].into(),
        )
    }

    #[test]
    fn xlnet_queries_are_masks_and_mpnet_queries_mostly_so() {
        let _draws = crate::util::random::hold();
        let (tokenizer, docs) = tiny_tokenizer_and_docs();
        let mask = tokenizer.special().mask;
        let xlnet =
            PermutationTask::xlnet(&docs, &tokenizer, PermutationMasking::XLNET, 64).unwrap();
        let mpnet =
            PermutationTask::mpnet(&docs, &tokenizer, PermutationMasking::MPNET, 64).unwrap();
        let (mut masks, mut total) = (0, 0);
        for i in 0..xlnet.num_examples().min(50) {
            let e = xlnet.example(i, &mut example_rng(0, 0, i as u64)).unwrap();
            assert!(e.query_ids.iter().all(|&q| q == mask) && !e.compensate);
            let e = mpnet.example(i, &mut example_rng(0, 0, i as u64)).unwrap();
            assert!(e.compensate);
            masks += e.query_ids.iter().filter(|&&q| q == mask).count();
            total += e.query_ids.len();
        }
        let share = masks as f64 / total as f64;
        assert!((0.7..0.9).contains(&share), "[MASK] share {share}");
    }

    #[test]
    fn every_odd_and_even_length_trains_without_padding_taking_part() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (tokenizer, docs) = tiny_tokenizer_and_docs();
        let backbone =
            TransformerEncoderConfig::new(tokenizer.vocab_size(), 32, 2, BlockConfig::new(4, 64))
                .with_dropout(0.0)
                .init(&device)
                .unwrap();
        let head = PermutedLmConfig::new().init(&backbone, &device);
        let task =
            PermutationTask::xlnet(&docs, &tokenizer, PermutationMasking::XLNET, 64).unwrap();
        for len in [5usize, 6, 17, 18] {
            let mut e = task.example(0, &mut example_rng(1, 0, 0)).unwrap();
            e.ids.truncate(len);
            let maskable: Vec<bool> = (0..len).map(|i| i > 0 && i + 1 < len).collect();
            e.order = PermutationMasking::XLNET
                .sample(&maskable, &mut example_rng(2, 0, len as u64))
                .unwrap();
            e.query_ids = vec![tokenizer.special().mask; e.order.num_predict];
            // Padding the batch with a longer example must not change this one's loss.
            let longer = task.example(1, &mut example_rng(1, 0, 1)).unwrap();
            let alone = PermutationBatch::collate(&[e.clone()], 0, &device).unwrap();
            let padded = PermutationBatch::collate(&[e, longer], 0, &device).unwrap();
            let (_, q_alone) = PermutedLm::streams(&backbone, &alone);
            let (_, q_padded) = PermutedLm::streams(&backbone, &padded);
            let [_, n, w] = q_alone.dims();
            let diff = (q_alone - q_padded.slice([0..1, 0..n, 0..w]))
                .abs()
                .max()
                .into_scalar::<f32>();
            assert!(
                diff < 1e-4,
                "length {len}: padding changed the queries by {diff}"
            );
            let weights = alone.weights();
            let out = head.forward(&backbone, alone);
            let loss = out.loss.normalized(&weights).into_scalar::<f32>();
            assert!(loss.is_finite() && loss > 0.0);
        }
    }
}
