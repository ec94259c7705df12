//! Padding and stacking sequence-to-sequence examples (a source for the encoder, a target the
//! decoder predicts under teacher forcing) into tensors on a device.

use burn::prelude::*;

use super::Batch;
use crate::error::{Error, Result};

/// One example for an encoder-decoder objective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seq2SeqExample {
    /// The encoder's input (the corrupted text).
    pub source: Vec<u32>,
    /// The decoder's input under teacher forcing: at step `t`, the token before `targets[t]`.
    pub decoder_input: Vec<u32>,
    /// The position of each decoder input token; `None` = `0, 1, 2, …`.
    pub decoder_positions: Option<Vec<u32>>,
    /// What the decoder predicts at each step.
    pub targets: Vec<u32>,
    /// Source positions the decoder may not attend to (MASS hides the masked span), if any.
    pub hidden_from_decoder: Option<Vec<bool>>,
}

impl Seq2SeqExample {
    /// An example whose decoder input is the target shifted right behind `start` (fairseq's
    /// and T5's teacher forcing), at positions `0, 1, 2, …`.
    pub fn shifted(source: Vec<u32>, targets: Vec<u32>, start: u32) -> Self {
        let mut decoder_input = Vec::with_capacity(targets.len());
        decoder_input.push(start);
        decoder_input.extend_from_slice(&targets[..targets.len().saturating_sub(1)]);
        Self {
            source,
            decoder_input,
            decoder_positions: None,
            targets,
            hidden_from_decoder: None,
        }
    }
}

/// A padded batch of [`Seq2SeqExample`]s.
#[derive(Debug, Clone)]
pub struct Seq2SeqBatch {
    /// `[batch, source_len]` encoder input ids, padded with the pad id.
    pub source_ids: Tensor<2, Int>,
    /// `[batch, source_len]`, `true` at padding.
    pub source_padding: Tensor<2, Bool>,
    /// `[batch, source_len]`, `true` where the decoder may not attend: padding, and what an
    /// example hides from the decoder.
    pub memory_blocked: Tensor<2, Bool>,
    /// `[batch, target_len]` decoder input ids.
    pub decoder_ids: Tensor<2, Int>,
    /// `[batch, target_len]` decoder positions, when the examples give them.
    pub decoder_positions: Option<Tensor<2, Int>>,
    /// Flat indices (`b * target_len + t`) of the decoder steps that carry a target.
    pub target_positions: Tensor<1, Int>,
    /// The ids to predict at `target_positions`.
    pub target_ids: Tensor<1, Int>,
    /// Real tokens on both sides (source and decoder input).
    pub num_tokens: usize,
    /// Number of targets.
    pub num_targets: usize,
}

impl Batch for Seq2SeqBatch {
    fn num_tokens(&self) -> usize {
        self.num_tokens
    }

    /// Its decoder targets.
    fn weights(&self) -> super::Weights {
        super::Weights::of(super::TARGETS, self.num_targets as f64)
    }
}

/// Right-pads `rows` to their longest with `pad`, row-major.
fn pad_rows<T: Copy>(rows: impl Iterator<Item = Vec<T>>, len: usize, pad: T) -> Vec<T> {
    rows.flat_map(|mut r| {
        r.resize(len, pad);
        r
    })
    .collect()
}

impl Seq2SeqBatch {
    /// Pads `examples` (sources and targets each to their longest) and moves them to
    /// `device`. Either every example gives decoder positions or none does.
    pub fn collate(examples: &[Seq2SeqExample], pad_id: u32, device: &Device) -> Result<Self> {
        let batch = examples.len();
        let source_len = examples.iter().map(|e| e.source.len()).max().unwrap_or(0);
        let target_len = examples.iter().map(|e| e.targets.len()).max().unwrap_or(0);
        if batch == 0 || source_len == 0 || target_len == 0 {
            return Err(Error::InvalidConfig(
                "cannot collate a batch without source or target tokens".into(),
            ));
        }
        let with_positions = examples
            .iter()
            .filter(|e| e.decoder_positions.is_some())
            .count();
        if with_positions != 0 && with_positions != batch {
            return Err(Error::InvalidConfig(format!(
                "{with_positions} of {batch} examples give decoder positions; all or none must"
            )));
        }
        for (b, e) in examples.iter().enumerate() {
            let n = e.targets.len();
            let positions = e.decoder_positions.as_ref().map_or(n, Vec::len);
            let hidden = e
                .hidden_from_decoder
                .as_ref()
                .map_or(e.source.len(), Vec::len);
            if e.decoder_input.len() != n || positions != n || hidden != e.source.len() {
                return Err(Error::InvalidConfig(format!(
                    "example {b} has {n} targets but {} decoder inputs and {positions} \
                     positions, or {} source tokens but {hidden} visibility flags",
                    e.decoder_input.len(),
                    e.source.len()
                )));
            }
        }
        let ints = |v: &[u32]| v.iter().map(|&x| i64::from(x)).collect::<Vec<i64>>();
        let pad = i64::from(pad_id);
        let source = pad_rows(examples.iter().map(|e| ints(&e.source)), source_len, pad);
        let padding = pad_rows(
            examples.iter().map(|e| vec![false; e.source.len()]),
            source_len,
            true,
        );
        let blocked = pad_rows(
            examples.iter().map(|e| {
                e.hidden_from_decoder
                    .clone()
                    .unwrap_or_else(|| vec![false; e.source.len()])
            }),
            source_len,
            true,
        );
        let decoder = pad_rows(
            examples.iter().map(|e| ints(&e.decoder_input)),
            target_len,
            pad,
        );
        let positions = (with_positions == batch).then(|| {
            pad_rows(
                examples
                    .iter()
                    .map(|e| ints(e.decoder_positions.as_deref().unwrap_or_default())),
                target_len,
                0,
            )
        });
        let mut flat = Vec::new();
        let mut targets = Vec::new();
        for (b, e) in examples.iter().enumerate() {
            flat.extend((0..e.targets.len()).map(|t| (b * target_len + t) as i64));
            targets.extend(e.targets.iter().map(|&t| i64::from(t)));
        }
        let n = targets.len();
        let tensor2 =
            |v: Vec<i64>, len| Tensor::from_data(TensorData::new(v, [batch, len]), device);
        let bools =
            |v: Vec<bool>| Tensor::from_data(TensorData::new(v, [batch, source_len]), device);
        Ok(Self {
            source_ids: tensor2(source, source_len),
            source_padding: bools(padding),
            memory_blocked: bools(blocked),
            decoder_ids: tensor2(decoder, target_len),
            decoder_positions: positions.map(|p| tensor2(p, target_len)),
            target_positions: Tensor::from_data(TensorData::new(flat, [n]), device),
            target_ids: Tensor::from_data(TensorData::new(targets, [n]), device),
            num_tokens: examples
                .iter()
                .map(|e| e.source.len() + e.decoder_input.len())
                .sum(),
            num_targets: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::ints;

    #[test]
    fn collate_pads_both_sides_and_lists_every_target_step() {
        let device = Device::flex();
        let a = Seq2SeqExample::shifted(vec![2, 4, 3], vec![2, 10, 11, 3], 3);
        assert_eq!(a.decoder_input, vec![3, 2, 10, 11]);
        let mut b = Seq2SeqExample::shifted(vec![2, 12, 13, 14, 3], vec![2, 12, 3], 3);
        b.hidden_from_decoder = Some(vec![false, true, false, false, false]);
        let batch = Seq2SeqBatch::collate(&[a, b], 0, &device).unwrap();
        assert_eq!(
            ints(batch.source_ids),
            vec![2, 4, 3, 0, 0, 2, 12, 13, 14, 3]
        );
        assert_eq!(ints(batch.decoder_ids), vec![3, 2, 10, 11, 3, 2, 12, 0]);
        let blocked: Vec<bool> = batch.memory_blocked.into_data().try_to_vec().unwrap();
        assert_eq!(
            blocked,
            vec![
                false, false, false, true, true, false, true, false, false, false
            ]
        );
        let flat = ints(batch.target_positions);
        assert_eq!(flat, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!((batch.num_tokens, batch.num_targets), (3 + 4 + 5 + 3, 7));
        assert!(batch.decoder_positions.is_none());
    }

    #[test]
    fn inconsistent_examples_are_errors() {
        let device = Device::flex();
        let a = Seq2SeqExample::shifted(vec![2, 3], vec![5, 3], 3);
        let mut b = a.clone();
        b.decoder_positions = Some(vec![0, 1]);
        assert!(Seq2SeqBatch::collate(&[a.clone(), b], 0, &device).is_err());
        let mut c = a.clone();
        c.decoder_input.pop();
        assert!(Seq2SeqBatch::collate(&[c], 0, &device).is_err());
        assert!(Seq2SeqBatch::collate(&[], 0, &device).is_err());
    }
}
