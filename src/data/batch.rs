//! Padding and stacking token-level examples into tensors on a device.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::noise::IGNORE_INDEX;

/// One example for an encoder objective: token-level targets, and a label for the whole
/// sequence where a sentence-level objective (NSP, SOP) needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExample {
    /// Input ids, special tokens included.
    pub input_ids: Vec<u32>,
    /// Segment (token type) id of each input token.
    pub segment_ids: Vec<u32>,
    /// Per position, the id to predict or [`IGNORE_INDEX`].
    pub targets: Vec<i64>,
    /// Class of the whole sequence, if the objective predicts one.
    pub label: Option<u32>,
    /// Targets of heads of one's own, by name: one value per input token (a per-token head's
    /// labels, [`IGNORE_INDEX`] where a token has none) or a single value (a per-sequence
    /// label). Collation keeps them as [`TokenBatch::named`], so that such a head reads the
    /// same batch as MLM and mixes with it over one encoder pass ([`crate::objectives::Mix`]).
    pub named: BTreeMap<String, Vec<i64>>,
}

impl TokenExample {
    /// One segment of `input_ids` with a target per position, no label and no named targets.
    pub fn plain(input_ids: Vec<u32>, targets: Vec<i64>) -> Self {
        Self {
            segment_ids: vec![0; input_ids.len()],
            input_ids,
            targets,
            label: None,
            named: BTreeMap::new(),
        }
    }
}

/// A padded batch of [`TokenExample`]s.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// `[batch, len]` input ids, padded with the pad id.
    pub input_ids: Tensor<2, Int>,
    /// `[batch, len]` segment ids.
    pub segment_ids: Tensor<2, Int>,
    /// `[batch, len]`, `true` at padding.
    pub padding: Tensor<2, Bool>,
    /// Flat indices (`b * len + t`) of the positions that carry a target.
    pub target_positions: Tensor<1, Int>,
    /// The ids to predict at `target_positions`.
    pub target_ids: Tensor<1, Int>,
    /// Number of real (non-padding) tokens.
    pub num_tokens: usize,
    /// Number of targets.
    pub num_targets: usize,
    /// `[batch]` sequence labels, when the examples carry them.
    pub labels: Option<Tensor<1, Int>>,
    /// The examples' [named targets](TokenExample::named), by name.
    pub named: BTreeMap<String, NamedTargets>,
}

/// One name's targets in a [`TokenBatch`].
///
/// They count as a loss unit of their own name ([`Batch::weights`](super::Batch::weights)):
/// a head's loss over them is `Loss::over(name, sum)`, divided by the step's number of values
/// that are not [`IGNORE_INDEX`].
#[derive(Debug, Clone)]
pub struct NamedTargets {
    /// `[batch, len]` for per-token targets (padding holds [`IGNORE_INDEX`]), `[batch, 1]`
    /// for per-sequence ones.
    pub values: Tensor<2, Int>,
    /// Values that are not [`IGNORE_INDEX`].
    pub count: usize,
}

impl TokenBatch {
    /// Pads `examples` (owned or borrowed) to the longest one and moves them to `device`.
    /// Either every example carries a label or none does, and the batch must have something to
    /// predict.
    pub fn collate<E: Borrow<TokenExample>>(
        examples: &[E],
        pad_id: u32,
        device: &Device,
    ) -> Result<Self> {
        let examples: Vec<&TokenExample> = examples.iter().map(Borrow::borrow).collect();
        let batch = examples.len();
        let len = examples
            .iter()
            .map(|e| e.input_ids.len())
            .max()
            .unwrap_or(0);
        if batch == 0 || len == 0 {
            return Err(Error::EmptyBatch);
        }
        let mut ids = vec![pad_id as i64; batch * len];
        let mut segments = vec![0i64; batch * len];
        let mut padding = vec![true; batch * len];
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        let mut num_tokens = 0;
        for (b, e) in examples.iter().enumerate() {
            if e.segment_ids.len() != e.input_ids.len() || e.targets.len() != e.input_ids.len() {
                return Err(Error::InvalidConfig(format!(
                    "example {b} has {} ids, {} segment ids and {} targets",
                    e.input_ids.len(),
                    e.segment_ids.len(),
                    e.targets.len()
                )));
            }
            num_tokens += e.input_ids.len();
            for (t, (&id, (&seg, &target))) in e
                .input_ids
                .iter()
                .zip(e.segment_ids.iter().zip(&e.targets))
                .enumerate()
            {
                let flat = b * len + t;
                ids[flat] = i64::from(id);
                segments[flat] = i64::from(seg);
                padding[flat] = false;
                if target != IGNORE_INDEX {
                    positions.push(flat as i64);
                    targets.push(target);
                }
            }
        }
        let labels: Vec<i64> = examples
            .iter()
            .filter_map(|e| e.label.map(i64::from))
            .collect();
        if !labels.is_empty() && labels.len() != batch {
            return Err(Error::InvalidConfig(format!(
                "{} of {batch} examples carry a sequence label; all or none must",
                labels.len()
            )));
        }
        let named = collate_named(&examples, len, device)?;
        if positions.is_empty() && labels.is_empty() && named.is_empty() {
            return Err(Error::InvalidConfig(
                "the batch has no position or label to predict".into(),
            ));
        }
        let n = positions.len();
        Ok(Self {
            input_ids: Tensor::from_data(TensorData::new(ids, [batch, len]), device),
            segment_ids: Tensor::from_data(TensorData::new(segments, [batch, len]), device),
            padding: Tensor::from_data(TensorData::new(padding, [batch, len]), device),
            target_positions: Tensor::from_data(TensorData::new(positions, [n]), device),
            target_ids: Tensor::from_data(TensorData::new(targets, [n]), device),
            num_tokens,
            num_targets: n,
            labels: (!labels.is_empty())
                .then(|| Tensor::from_data(TensorData::new(labels, [batch]), device)),
            named,
        })
    }

    /// The values of the named targets `name`, or an error naming what the batch has.
    pub fn named(&self, name: &str) -> Result<&Tensor<2, Int>> {
        self.named.get(name).map(|t| &t.values).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "the batch has no targets named {name:?} (it has {:?}); the task must fill \
                 TokenExample::named",
                self.named.keys().collect::<Vec<_>>()
            ))
        })
    }
}

/// Stacks the examples' named targets: per token (as long as the example) to `[batch, len]`
/// padded with [`IGNORE_INDEX`], or per sequence (one value) to `[batch, 1]`. Every example
/// must carry the same names, none of them a unit the batch already counts.
fn collate_named(
    examples: &[&TokenExample],
    len: usize,
    device: &Device,
) -> Result<BTreeMap<String, NamedTargets>> {
    let first = &examples[0].named;
    let mut named = BTreeMap::new();
    for name in first.keys() {
        if [super::TARGETS, super::SEQUENCES].contains(&name.as_str()) {
            return Err(Error::InvalidConfig(format!(
                "{name:?} cannot name targets: it is a unit every token batch counts"
            )));
        }
        let per_sequence = first[name].len() == 1 && examples[0].input_ids.len() != 1;
        let width = if per_sequence { 1 } else { len };
        let mut values = vec![IGNORE_INDEX; examples.len() * width];
        for (b, e) in examples.iter().enumerate() {
            let v = e.named.get(name).ok_or_else(|| {
                Error::InvalidConfig(format!("example {b} has no targets named {name:?}"))
            })?;
            let want = if per_sequence { 1 } else { e.input_ids.len() };
            if v.len() != want {
                return Err(Error::InvalidConfig(format!(
                    "example {b} has {} targets named {name:?} for {} ids: expected one per \
                     token or one per sequence, the same in every example",
                    v.len(),
                    e.input_ids.len()
                )));
            }
            values[b * width..b * width + v.len()].copy_from_slice(v);
        }
        let count = values.iter().filter(|&&v| v != IGNORE_INDEX).count();
        let data = TensorData::new(values, [examples.len(), width]);
        let values = Tensor::from_data(data, device);
        named.insert(name.clone(), NamedTargets { values, count });
    }
    if let Some((b, e)) = examples
        .iter()
        .enumerate()
        .find(|(_, e)| e.named.len() != first.len())
    {
        return Err(Error::InvalidConfig(format!(
            "example {b} has targets named {:?}, example 0 {:?}",
            e.named.keys().collect::<Vec<_>>(),
            first.keys().collect::<Vec<_>>()
        )));
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::ints;

    #[test]
    fn collate_pads_and_lists_targets() {
        let device = Device::flex();
        let examples = vec![
            TokenExample {
                input_ids: vec![2, 10, 11, 3],
                segment_ids: vec![0; 4],
                targets: vec![-100, 10, -100, -100],
                label: None,
                named: BTreeMap::new(),
            },
            TokenExample {
                input_ids: vec![2, 12, 3],
                segment_ids: vec![0; 3],
                targets: vec![-100, -100, 3],
                label: None,
                named: BTreeMap::new(),
            },
        ];
        let b = TokenBatch::collate(&examples, 0, &device).unwrap();
        assert_eq!(b.input_ids.dims(), [2, 4]);
        let ids = ints(b.input_ids);
        assert_eq!(ids, vec![2, 10, 11, 3, 2, 12, 3, 0]);
        let pos = ints(b.target_positions);
        assert_eq!(pos, vec![1, 6]);
        let pad: Vec<bool> = b.padding.into_data().try_to_vec().unwrap();
        assert_eq!(
            pad,
            vec![false, false, false, false, false, false, false, true]
        );
        assert_eq!((b.num_tokens, b.num_targets), (7, 2));
        assert!(b.labels.is_none());
    }

    #[test]
    fn labels_are_all_or_none_and_may_stand_alone() {
        let device = Device::flex();
        let example = |label| TokenExample {
            input_ids: vec![2, 10, 3],
            segment_ids: vec![0, 0, 1],
            targets: vec![IGNORE_INDEX; 3],
            label,
            named: BTreeMap::new(),
        };
        let b = TokenBatch::collate(&[example(Some(1)), example(Some(0))], 0, &device).unwrap();
        let labels = ints(b.labels.unwrap());
        assert_eq!((labels, b.num_targets), (vec![1, 0], 0));
        assert!(TokenBatch::collate(&[example(Some(1)), example(None)], 0, &device).is_err());
        assert!(TokenBatch::collate(&[example(None)], 0, &device).is_err());
    }

    #[test]
    fn named_targets_pad_per_token_and_stack_per_sequence() {
        let device = Device::flex();
        let example = |ids: Vec<u32>, flags: Vec<i64>, topic: i64| TokenExample {
            segment_ids: vec![0; ids.len()],
            targets: vec![IGNORE_INDEX; ids.len()],
            input_ids: ids,
            label: None,
            named: BTreeMap::from([("flags".into(), flags), ("topic".into(), vec![topic])]),
        };
        let b = TokenBatch::collate(
            &[
                example(vec![2, 10, 3], vec![-100, 1, -100], 4),
                example(vec![2, 3], vec![0, 0], 7),
            ],
            0,
            &device,
        )
        .unwrap();
        let ints = |t: &Tensor<2, Int>| t.to_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        assert_eq!(ints(b.named("flags").unwrap()), [-100, 1, -100, 0, 0, -100]);
        assert_eq!(ints(b.named("topic").unwrap()), [4, 7]);
        assert!(matches!(b.named("other"), Err(Error::InvalidConfig(_))));
        // Named targets alone are something to predict, and each is a unit of its own.
        assert_eq!(b.num_targets, 0);
        let weights = crate::data::Batch::weights(&b);
        assert_eq!((weights.get("flags"), weights.get("topic")), (3.0, 2.0));

        let short = example(vec![2, 10, 3], vec![1, 1], 4);
        let ok = example(vec![2, 10, 3], vec![1, 1, 1], 4);
        assert!(TokenBatch::collate(&[ok.clone(), short], 0, &device).is_err());
        let mut unnamed = ok.clone();
        unnamed.named.remove("topic");
        assert!(TokenBatch::collate(&[ok.clone(), unnamed], 0, &device).is_err());
        let mut reserved = ok;
        reserved.named.insert("targets".into(), vec![1]);
        assert!(TokenBatch::collate(&[reserved], 0, &device).is_err());
    }
}
