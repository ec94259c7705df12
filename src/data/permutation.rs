//! Examples and batches for permuted language modelling (XLNet, MPNet): a content stream, a
//! query stream, and the ranks the two-stream attention mask is built from on the device.
//!
//! Ranks are doubled so that one comparison decides everything
//! ([`AttentionMask::by_rank`](crate::blocks::AttentionMask::by_rank)): the target predicted
//! `k`-th has content rank `2k` and its query rank `2k − 1`, so a query sees the content of
//! the targets before it and not its own; context keys rank −2 and context rows −1, so the
//! context sees itself and every row sees the context; padding keys rank above everything.
//! MPNet's appended `[MASK]` slots are keys of rank `2k` under the flipped rule: a row sees the
//! slots of the targets after it (its own too, for a query).

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::noise::FactorizationOrder;

/// Key rank of padding: above every row (and within any integer element type).
const PADDING_RANK: i64 = 1 << 30;

/// One permuted-LM example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermutationExample {
    /// The sequence, special tokens included: the content stream.
    pub ids: Vec<u32>,
    /// The factorization order over `ids`.
    pub order: FactorizationOrder,
    /// The query stream's input token for each target, in prediction order (`[MASK]` for
    /// XLNet; MPNet's 80/10/10 mix).
    pub query_ids: Vec<u32>,
    /// MPNet's position compensation: the query tokens also join the content stream at their
    /// targets' positions, so that each prediction sees where the later ones are.
    pub compensate: bool,
}

/// A padded batch of [`PermutationExample`]s.
#[derive(Debug, Clone)]
pub struct PermutationBatch {
    /// `[batch, content]` content-stream ids (MPNet's slots after the sequence).
    pub content_ids: Tensor<2, Int>,
    /// `[batch, content]` their positions.
    pub content_positions: Tensor<2, Int>,
    /// `[batch, queries]` query-stream ids.
    pub query_ids: Tensor<2, Int>,
    /// `[batch, queries]` the positions the queries predict.
    pub query_positions: Tensor<2, Int>,
    /// `[batch, content + queries]` rank of each row (content rows, then query rows).
    pub row_ranks: Tensor<2, Int>,
    /// `[batch, content]` rank of each key.
    pub key_ranks: Tensor<2, Int>,
    /// `[batch, content]` MPNet's slot keys, when any example has them.
    pub slots: Option<Tensor<2, Bool>>,
    /// Flat indices (`b * queries + k`) of the real queries.
    pub target_positions: Tensor<1, Int>,
    /// The ids they predict.
    pub target_ids: Tensor<1, Int>,
    /// Real tokens of the sequences (slots and queries not counted).
    pub num_tokens: usize,
}

impl PermutationBatch {
    /// Pads `examples` and moves them to `device`.
    pub fn collate(examples: &[PermutationExample], pad_id: u32, device: &Device) -> Result<Self> {
        let batch = examples.len();
        if batch == 0 {
            return Err(Error::EmptyBatch);
        }
        let slots_of = |e: &PermutationExample| if e.compensate { e.query_ids.len() } else { 0 };
        let (mut content, mut queries) = (0, 0);
        for (b, e) in examples.iter().enumerate() {
            if e.order.order.len() != e.ids.len() || e.query_ids.len() != e.order.num_predict {
                return Err(Error::InvalidConfig(format!(
                    "example {b}: {} ids, an order over {} positions, {} query ids for {} \
                     targets",
                    e.ids.len(),
                    e.order.order.len(),
                    e.query_ids.len(),
                    e.order.num_predict
                )));
            }
            content = content.max(e.ids.len() + slots_of(e));
            queries = queries.max(e.query_ids.len());
        }
        let rows = content + queries;
        let any_slots = examples.iter().any(|e| e.compensate);

        let mut content_ids = vec![i64::from(pad_id); batch * content];
        let mut content_positions = vec![0i64; batch * content];
        let mut key_ranks = vec![PADDING_RANK; batch * content];
        let mut slots = vec![false; batch * content];
        let mut row_ranks = vec![-1i64; batch * rows];
        let mut query_ids = vec![i64::from(pad_id); batch * queries];
        let mut query_positions = vec![0i64; batch * queries];
        let mut target_positions = Vec::new();
        let mut target_ids = Vec::new();
        let mut num_tokens = 0;
        for (b, e) in examples.iter().enumerate() {
            let (c, r, q) = (b * content, b * rows, b * queries);
            let n = e.ids.len();
            num_tokens += n;
            for (t, &id) in e.ids.iter().enumerate() {
                content_ids[c + t] = i64::from(id);
                content_positions[c + t] = t as i64;
                key_ranks[c + t] = -2;
            }
            for (k, (&pos, &query)) in e.order.targets().iter().zip(&e.query_ids).enumerate() {
                let (pos, rank) = (pos as usize, 2 * k as i64);
                key_ranks[c + pos] = rank;
                row_ranks[r + pos] = rank;
                row_ranks[r + content + k] = rank - 1;
                query_ids[q + k] = i64::from(query);
                query_positions[q + k] = pos as i64;
                target_positions.push((q + k) as i64);
                target_ids.push(i64::from(e.ids[pos]));
                if e.compensate {
                    let slot = c + n + k;
                    content_ids[slot] = i64::from(query);
                    content_positions[slot] = pos as i64;
                    key_ranks[slot] = rank;
                    slots[slot] = true;
                }
            }
        }
        let ints = |v: Vec<i64>, width: usize| -> Tensor<2, Int> {
            Tensor::from_data(TensorData::new(v, [batch, width]), device)
        };
        let n = target_ids.len();
        Ok(Self {
            content_ids: ints(content_ids, content),
            content_positions: ints(content_positions, content),
            query_ids: ints(query_ids, queries),
            query_positions: ints(query_positions, queries),
            row_ranks: ints(row_ranks, rows),
            key_ranks: ints(key_ranks, content),
            slots: any_slots
                .then(|| Tensor::from_data(TensorData::new(slots, [batch, content]), device)),
            target_positions: Tensor::from_data(TensorData::new(target_positions, [n]), device),
            target_ids: Tensor::from_data(TensorData::new(target_ids, [n]), device),
            num_tokens,
        })
    }
}

impl super::Batch for PermutationBatch {
    fn num_tokens(&self) -> usize {
        self.num_tokens
    }

    /// Its real queries.
    fn weights(&self) -> super::Weights {
        let targets = self.target_ids.dims()[0] as f64;
        super::Weights::of(super::TARGETS, targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::AttentionMask;
    use crate::util::ints;

    fn example(compensate: bool) -> PermutationExample {
        // [CLS] a b c [SEP]: predict c, then a.
        PermutationExample {
            ids: vec![2, 10, 11, 12, 3],
            order: FactorizationOrder {
                order: vec![0, 2, 4, 3, 1],
                num_predict: 2,
            },
            query_ids: vec![4, 4],
            compensate,
        }
    }

    fn allowed(batch: &PermutationBatch) -> Vec<Vec<bool>> {
        let [b, rows] = batch.row_ranks.dims();
        let keys = batch.key_ranks.dims()[1];
        let mask = AttentionMask::by_rank(
            batch.row_ranks.clone(),
            batch.key_ranks.clone(),
            batch.slots.clone(),
        );
        let blocked: Vec<bool> = mask
            .blocked([b, 1, rows, keys])
            .into_data()
            .try_to_vec()
            .unwrap();
        blocked
            .chunks(keys)
            .map(|row| row.iter().map(|&x| !x).collect())
            .collect()
    }

    #[test]
    fn xlnet_masks_follow_the_order() {
        let device = Device::flex();
        let batch = PermutationBatch::collate(&[example(false)], 0, &device).unwrap();
        let a = allowed(&batch);
        let (t, f) = (true, false);
        // Keys: [CLS] a b c [SEP]; rows: the five content rows, then the queries for c and a.
        assert_eq!(a[0], vec![t, f, t, f, t], "context sees only the context");
        assert_eq!(a[3], vec![t, f, t, t, t], "c's content sees itself");
        assert_eq!(
            a[1],
            vec![t, t, t, t, t],
            "a's content sees c, predicted before it"
        );
        assert_eq!(a[5], vec![t, f, t, f, t], "c's query sees the context only");
        assert_eq!(a[6], vec![t, f, t, t, t], "a's query sees c, not itself");
        let targets = ints(batch.target_ids);
        assert_eq!(targets, vec![12, 10]);
        let positions = ints(batch.query_positions);
        assert_eq!(positions, vec![3, 1]);
    }

    #[test]
    fn mpnet_slots_show_later_positions() {
        let device = Device::flex();
        let batch = PermutationBatch::collate(&[example(true)], 0, &device).unwrap();
        let a = allowed(&batch);
        let (t, f) = (true, false);
        // Keys: [CLS] a b c [SEP] slot(c) slot(a).
        assert_eq!(a[0], vec![t, f, t, f, t, t, t], "context sees every slot");
        assert_eq!(a[3], vec![t, f, t, t, t, f, t], "c's content sees a's slot");
        assert_eq!(
            a[1],
            vec![t, t, t, t, t, f, f],
            "a, predicted last, sees no slot"
        );
        assert_eq!(a[7], vec![t, f, t, f, t, t, t], "c's query sees both slots");
        assert_eq!(
            a[8],
            vec![t, f, t, t, t, f, t],
            "a's query sees c and its own slot"
        );
        let positions = ints(batch.content_positions);
        assert_eq!(positions, vec![0, 1, 2, 3, 4, 3, 1]);
    }

    #[test]
    fn padding_is_never_seen() {
        let device = Device::flex();
        let mut short = example(false);
        short.ids.truncate(4);
        short.order = FactorizationOrder {
            order: vec![0, 3, 2, 1],
            num_predict: 1,
        };
        short.query_ids.truncate(1);
        let batch = PermutationBatch::collate(&[example(false), short], 0, &device).unwrap();
        let a = allowed(&batch);
        // The second example's rows start after the first's 7; its key 4 is padding.
        assert!(a[7..].iter().all(|row| !row[4]));
        assert_eq!(batch.target_ids.dims(), [3]);
        assert_eq!(batch.num_tokens, 9);
    }

    #[test]
    fn inconsistent_examples_are_rejected() {
        let device = Device::flex();
        let mut bad = example(false);
        bad.query_ids.pop();
        assert!(matches!(
            PermutationBatch::collate(&[bad], 0, &device),
            Err(Error::InvalidConfig(_))
        ));
    }
}
