//! Sequence-to-sequence denoising (BART, MASS, T5): the encoder reads a corrupted text, the
//! decoder predicts the original (or the part hidden from the encoder) token by token under
//! teacher forcing; greedy decoding reconstructs it at inference.
//!
//! One objective serves the three: they differ only in their data (see [`super::bart`],
//! [`super::mass`], [`super::t5`]). The output head is the tied [`LmHead`], evaluated at the
//! decoder steps that carry a target. Its dense + GELU + LayerNorm transform is BERT's, which
//! BART's plain tied projection does not have; it keeps one LM head for every objective.

use burn::prelude::*;

use super::{Objective, ObjectiveOutput, TARGETS, masked_cross_entropy};
use crate::blocks::{AttentionMask, KvCache, LmHead, LmHeadConfig, Seq2SeqBackbone};
use crate::data::Seq2SeqBatch;

/// Configuration of the [`Seq2Seq`] head.
#[derive(Config, Debug)]
pub struct Seq2SeqConfig {
    /// LayerNorm epsilon of the head. Default 1e-12.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
    /// BERT's dense + GELU + LayerNorm before the tied projection. Default true; BART's head
    /// has none.
    #[config(default = true)]
    pub transform: bool,
    /// A learned output bias. Default true; T5's head has none.
    #[config(default = true)]
    pub bias: bool,
    /// The output projection is the shared token table. Default true; T5 v1.1 has a table
    /// of its own.
    #[config(default = true)]
    pub tied: bool,
    /// A factor on the decoder's states before the projection. Default 1; T5 with its tied
    /// head: `width^-0.5`.
    #[config(default = 1.0)]
    pub scale: f64,
}

/// The denoising objective: an LM head over the decoder, tied to the shared token table.
#[derive(Module, Debug)]
pub struct Seq2Seq {
    head: LmHead,
}

impl Seq2SeqConfig {
    /// Builds the head for `backbone`.
    pub fn init<M: Seq2SeqBackbone>(&self, backbone: &M, device: &Device) -> Seq2Seq {
        Seq2Seq {
            head: LmHeadConfig::for_backbone(backbone)
                .with_layer_norm_eps(self.layer_norm_eps)
                .with_transform(self.transform)
                .with_bias(self.bias)
                .with_tied(self.tied)
                .with_scale(self.scale)
                .init(device),
        }
    }
}

impl Seq2Seq {
    /// The LM head.
    pub fn head(&self) -> &LmHead {
        &self.head
    }
}

impl<M: Seq2SeqBackbone> Objective<M> for Seq2Seq {
    type Batch = Seq2SeqBatch;

    fn forward(&self, backbone: &M, batch: Seq2SeqBatch) -> ObjectiveOutput {
        let (memory, memory_mask) = encode_source(backbone, &batch);
        let hidden = backbone.decode(
            batch.decoder_ids.clone(),
            batch.decoder_positions.clone(),
            memory,
            &memory_mask,
        );
        let at = batch.target_positions.clone();
        let logits = self.head.forward_at(hidden, at, backbone.token_embedding());
        let p = masked_cross_entropy(logits, batch.target_ids.clone());
        ObjectiveOutput {
            metrics: vec![p.accuracy("token_acc"), p.perplexity("ppl")],
            loss: p.loss(TARGETS),
        }
    }
}

/// The encoder's states for the batch's sources, and the mask the decoder reads them under.
fn encode_source<M: Seq2SeqBackbone>(
    backbone: &M,
    batch: &Seq2SeqBatch,
) -> (Tensor<3>, AttentionMask) {
    let padding = AttentionMask::padding(batch.source_padding.clone());
    let memory = backbone.encode(batch.source_ids.clone(), None, Some(&padding));
    (memory, AttentionMask::keys(batch.memory_blocked.clone()))
}

impl Seq2Seq {
    /// Greedy decoding of each source of `batch`: starting from the batch's first decoder
    /// input token (at its first decoder position), appends the most likely next token until
    /// `end` is produced (not included) or `max_len` tokens are out. Each step runs the
    /// decoder on the new token alone, reading earlier ones from a [`KvCache`].
    pub fn generate<M: Seq2SeqBackbone>(
        &self,
        backbone: &M,
        batch: &Seq2SeqBatch,
        max_len: usize,
        end: Option<u32>,
    ) -> Vec<Vec<u32>> {
        let (memory, memory_mask) = encode_source(backbone, batch);
        let [rows, _] = batch.decoder_ids.dims();
        let device = batch.decoder_ids.device();
        let mut ids = batch.decoder_ids.clone().slice([0..rows, 0..1]);
        let mut positions = match &batch.decoder_positions {
            Some(p) => p.clone().slice([0..rows, 0..1]),
            None => Tensor::zeros([rows, 1], &device),
        };
        let each_row = Tensor::<1, Int>::arange(0..rows as i64, &device);
        let mut cache = KvCache::new();
        let mut out = vec![Vec::new(); rows];
        let mut done = vec![false; rows];
        for _ in 0..max_len {
            let hidden = backbone.decode_cached(
                ids,
                positions.clone(),
                memory.clone(),
                &memory_mask,
                &mut cache,
            );
            let logits = self
                .head
                .forward_at(hidden, each_row.clone(), backbone.token_embedding());
            let next = logits.argmax(1).reshape([rows, 1]);
            for (b, id) in crate::util::ints(next.clone()).into_iter().enumerate() {
                let id = id as u32;
                if done[b] || Some(id) == end {
                    done[b] = true;
                } else {
                    out[b].push(id);
                }
            }
            if done.iter().all(|&d| d) {
                break;
            }
            ids = next;
            positions = positions.add_scalar(1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockConfig;
    use crate::blocks::{EncoderBackbone, EncoderDecoderConfig, TransformerEncoderConfig};
    use crate::data::Seq2SeqExample;

    #[test]
    fn greedy_decoding_follows_the_teacher_forced_argmax() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let encoder = TransformerEncoderConfig::new(30, 16, 1, BlockConfig::new(2, 32))
            .with_dropout(0.0)
            .with_num_segments(0);
        let (model, head) = crate::util::random::init_seeded(&device, 11, || {
            let model = EncoderDecoderConfig::new(encoder, 1).init(&device).unwrap();
            let head = Seq2SeqConfig::new().init(&model, &device);
            (model, head)
        });
        let source = vec![2, 7, 8, 9, 3];
        let start = Seq2SeqExample::shifted(source.clone(), vec![5], 3);
        let batch = Seq2SeqBatch::collate(&[start], 0, &device).unwrap();
        let generated = head.generate(&model, &batch, 4, None);
        assert_eq!(generated[0].len(), 4);
        // Teacher-forcing the generated tokens must give back the same argmax at every step.
        let forced = Seq2SeqExample::shifted(source, generated[0].clone(), 3);
        let batch = Seq2SeqBatch::collate(&[forced], 0, &device).unwrap();
        let (memory, mask) = encode_source(&model, &batch);
        let hidden = model.decode(batch.decoder_ids.clone(), None, memory, &mask);
        let logits = head.head.forward_at(
            hidden,
            batch.target_positions.clone(),
            model.token_embedding(),
        );
        let argmax = crate::util::ints(logits.argmax(1));
        let generated: Vec<i64> = generated[0].iter().map(|&t| i64::from(t)).collect();
        assert_eq!(argmax, generated);
        // Stopping at an end token: nothing after the first one it produced.
        let end = generated[1] as u32;
        let stopped = head.generate(&model, &batch, 4, Some(end));
        let expected: Vec<u32> = generated
            .iter()
            .map(|&t| t as u32)
            .take_while(|&t| t != end)
            .collect();
        assert_eq!(stopped[0], expected);
    }
}
