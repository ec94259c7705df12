//! What distillation reads of an encoder's layers: every layer's input and the last output
//! with the attention relations of the layers asked for, from the pass that computes the
//! output, and a student cut from a teacher's layers.

use burn::prelude::*;

use super::{TransformerEncoder, default_positions};
use crate::blocks::attention::Relations;
use crate::blocks::layer::EncoderLayer;
use crate::blocks::mask::AttentionMask;
use crate::error::{Error, Result};

/// What [`TransformerEncoder::encode_layers`] reads of one pass.
#[derive(Debug, Clone)]
pub struct LayerStates {
    /// The stack's output `[batch, len, hidden]`, as [`EncoderBackbone::encode`](super::EncoderBackbone::encode) gives it.
    pub hidden: Tensor<3>,
    /// The input of every layer, then the last layer's output: `depth + 1` states, the first
    /// the embeddings (projected where factorized), the last before a pre-norm stack's final
    /// norm, as Hugging Face's `hidden_states` lists them.
    pub states: Vec<Tensor<3>>,
    /// The relations of each layer, by depth, where they were asked for.
    pub relations: Vec<Option<Relations>>,
}

impl TransformerEncoder {
    /// One pass over `ids` with `segments` under `mask`, as [`EncoderBackbone::encode`](super::EncoderBackbone::encode) makes
    /// it, with what distillation reads of its layers: every layer's input and the last
    /// layer's output, and the [`Relations`] of the layers at `relations_at`.
    pub fn encode_layers(
        &self,
        ids: Tensor<2, Int>,
        segments: Option<Tensor<2, Int>>,
        mask: Option<&AttentionMask>,
        relations_at: &[usize],
    ) -> LayerStates {
        let [batch, len] = ids.dims();
        let at = default_positions(batch, len, &ids.device());
        let x = self.embeddings.forward(ids, segments);
        let positions = self.positions(&at, &at);
        let mut states = Vec::with_capacity(self.depth + 1);
        let mut relations = vec![None; self.depth];
        let hidden = self.stack_with(x, |depth, layer, x| {
            states.push(x.clone());
            let out = if relations_at.contains(&depth) {
                let (out, read) = layer.forward_with_relations(x, mask, &positions);
                relations[depth] = Some(read);
                out
            } else {
                layer.forward(x, mask, &positions)
            };
            if depth + 1 == self.depth {
                states.push(out.clone());
            }
            out
        });
        LayerStates {
            hidden,
            states,
            relations,
        }
    }

    /// This encoder with only its layers at `depths` (in that order), every other part kept:
    /// a student initialised from a teacher's layers, as DistilBERT takes every other one.
    pub fn keeping_layers(self, depths: &[usize]) -> Result<Self> {
        let shared = self.layers.len() != self.depth;
        let out_of_range = depths.iter().find(|&&d| d >= self.depth);
        if shared || depths.is_empty() || out_of_range.is_some() {
            return Err(Error::InvalidConfig(format!(
                "cannot keep layers {depths:?} of {} {}layers",
                self.depth,
                if shared { "shared " } else { "" }
            )));
        }
        let layers: Vec<EncoderLayer> = depths.iter().map(|&d| self.layers[d].clone()).collect();
        Ok(Self {
            depth: layers.len(),
            layers,
            ..self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{BlockConfig, EncoderBackbone, PositionEncoding, TransformerEncoderConfig};
    use crate::test_support::max_abs_diff;

    /// A seeded two-layer pre-norm rotary encoder (sharp attention) and ids of two rows, the
    /// second padded (id 0) after three tokens, with their padding mask.
    fn two_layers_and_padded_ids(
        device: &Device,
    ) -> (TransformerEncoder, Tensor<2, Int>, AttentionMask) {
        let block = BlockConfig::new(2, 32)
            .with_norm_first(true)
            .with_positions(PositionEncoding::Rotary { theta: 10_000.0 });
        let encoder = crate::util::random::init_seeded(device, 5, || {
            TransformerEncoderConfig::new(40, 16, 2, block)
                .with_dropout(0.0)
                .init(device)
                .unwrap()
        });
        let encoder = crate::test_support::scaled(encoder, 20.0);
        let ids = Tensor::<2, Int>::from_data([[2, 5, 9, 11, 3], [2, 7, 3, 0, 0]], device);
        let padding = ids.clone().equal_elem(0);
        (encoder, ids, AttentionMask::padding(padding))
    }

    #[test]
    fn relations_are_distributions_over_the_real_keys_beside_the_encoders_own_states() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (encoder, ids, mask) = two_layers_and_padded_ids(&device);
        let read = encoder.encode_layers(ids.clone(), None, Some(&mask), &[0, 1]);
        let plain = encoder.encode(ids.clone(), None, Some(&mask));
        assert!(max_abs_diff(read.hidden.clone(), plain) < 1e-6);
        // The embeddings, the first layer's output, the last's (before this pre-norm stack's
        // final norm).
        assert_eq!(read.states.len(), 3);
        let embedded = encoder.embeddings.forward(ids.clone(), None);
        assert!(max_abs_diff(read.states[0].clone(), embedded) < 1e-6);
        let norm = encoder.final_norm.as_ref().unwrap();
        assert!(max_abs_diff(norm.forward(read.states[2].clone()), read.hidden) < 1e-6);
        assert!(max_abs_diff(read.states[1].clone(), read.states[2].clone()) > 1e-2);
        for relations in read.relations.into_iter().map(Option::unwrap) {
            // TinyBERT's scores: the padded keys are zeroed, the rest give the distributions.
            let padded = relations.scores.clone().slice([1..2, 0..2, 0..5, 3..5]);
            assert_eq!(padded.abs().max().into_scalar::<f32>(), 0.0);
            let real = relations.scores.slice([0..1, 0..2, 0..5, 0..5]);
            let from_scores = burn::tensor::activation::log_softmax(real, 3);
            let attention = relations.attention.clone().slice([0..1, 0..2, 0..5, 0..5]);
            assert!(max_abs_diff(from_scores, attention) < 1e-5);
            for (name, log_probs) in [
                ("attention", relations.attention),
                ("values", relations.values),
            ] {
                assert_eq!(log_probs.dims(), [2, 2, 5, 5], "{name}");
                let probs = log_probs.exp();
                let sums = probs.clone().sum_dim(3);
                assert!(
                    max_abs_diff(sums.clone(), sums.ones_like()) < 1e-5,
                    "{name}"
                );
                // Row 1's padded keys (positions 3 and 4) get nothing, from every query.
                let padded = probs.clone().slice([1..2, 0..2, 0..5, 3..5]);
                assert!(padded.max().into_scalar::<f32>() < 1e-12, "{name}");
                // And the distributions are not uniform: there is something to distil.
                let spread = probs.max().into_scalar::<f32>();
                assert!(spread > 0.4, "{name}: largest weight {spread}");
            }
        }
        // Relations only where asked for.
        let last = encoder.encode_layers(ids, None, Some(&mask), &[1]);
        assert!(last.relations[0].is_none() && last.relations[1].is_some());
    }

    #[test]
    fn keeping_every_layer_in_order_changes_nothing_and_fewer_do() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (encoder, ids, mask) = two_layers_and_padded_ids(&device);
        let base = encoder.encode(ids.clone(), None, Some(&mask));
        let all = encoder.clone().keeping_layers(&[0, 1]).unwrap();
        assert!(max_abs_diff(base.clone(), all.encode(ids.clone(), None, Some(&mask))) < 1e-6);
        let last = encoder.clone().keeping_layers(&[1]).unwrap();
        assert_eq!(last.num_layers(), 1);
        assert!(max_abs_diff(base, last.encode(ids, None, Some(&mask))) > 1e-2);
        for wrong in [&[][..], &[2][..]] {
            let err = encoder.clone().keeping_layers(wrong).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
        }
    }
}
