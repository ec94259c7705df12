//! Factorization orders for permuted language modelling (XLNet, MPNet): which tokens are
//! predicted, and in which order.
//!
//! XLNet predicts only the last `1/K` tokens of a random factorization order ("partial
//! prediction"), chosen as spans of consecutive tokens. Every token before them in the order
//! (the context) is visible to every prediction and sees only other context tokens, which is
//! what the reference's `_local_perm` makes of the non-target tokens (rank −1); their order
//! among themselves therefore carries no information, and the order lists them in sequence
//! order. The targets follow in a uniformly random order.
//!
//! The selection differs from HF's `DataCollatorForPermutationLanguageModeling` in two ways
//! that are ours on purpose: the number of targets is exact (`round(share · maskable)`, at
//! least one) rather than whatever the span walk lands on, and any length works (HF requires an
//! even one). Spans are in tokens, as HF's collator (XLNet's own code meant words but masks
//! tokens too: its issue #220).

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::rng::ExampleRng;

/// How targets are chosen for permuted LM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermutationMasking {
    /// Share of the maskable tokens predicted (XLNet's `1/K`), in (0, 1].
    pub predict_share: f64,
    /// Longest span of consecutive targets; span lengths are uniform in `1..=max_span`.
    pub max_span: usize,
}

impl PermutationMasking {
    /// XLNet's (and HF's collator's) defaults: a sixth of the tokens (K = 6), spans of up to 5.
    pub const XLNET: Self = Self {
        predict_share: 1.0 / 6.0,
        max_span: 5,
    };

    /// MPNet's defaults: 15 % of the tokens, chosen one by one (`max_gram` 1).
    pub const MPNET: Self = Self {
        predict_share: 0.15,
        max_span: 1,
    };

    /// Checks the share and the span length.
    pub fn validate(&self) -> Result<()> {
        if !(self.predict_share > 0.0 && self.predict_share <= 1.0) {
            return Err(Error::InvalidConfig(format!(
                "predict_share is the share of tokens a permuted LM predicts and must lie in \
                 (0, 1], got {}",
                self.predict_share
            )));
        }
        if self.max_span == 0 {
            return Err(Error::InvalidConfig(
                "max_span must be at least 1 token".into(),
            ));
        }
        Ok(())
    }

    /// A factorization order over a sequence whose maskable tokens are marked in `maskable`
    /// (special tokens are not): the targets are spans of maskable tokens, `round(share · n)`
    /// of them in all (at least 1) for `n` maskable tokens.
    pub fn sample(&self, maskable: &[bool], rng: &mut ExampleRng) -> Result<FactorizationOrder> {
        self.validate()?;
        // Spans: each run of consecutive maskable tokens cut into pieces of random length.
        let mut spans: Vec<(u32, u32)> = Vec::with_capacity(maskable.len());
        let mut n = 0usize;
        let mut i = 0usize;
        while i < maskable.len() {
            if !maskable[i] {
                i += 1;
                continue;
            }
            let len = rng.random_range(1..=self.max_span);
            let end = (i + len).min(maskable.len());
            let end = (i..end).find(|&j| !maskable[j]).unwrap_or(end);
            spans.push((i as u32, end as u32));
            n += end - i;
            i = end;
        }
        if n == 0 {
            return Err(Error::TextTooShort {
                what: "permuted language modelling (no token can be predicted)",
                len: 0,
                min: 1,
            });
        }
        let budget = ((self.predict_share * n as f64).round() as usize).clamp(1, n);

        // Spans in random order (a partial Fisher–Yates) until the budget is spent; the last
        // one taken is cut to fit, keeping it contiguous.
        let mut predicted = vec![false; maskable.len()];
        let mut targets: Vec<u32> = Vec::with_capacity(budget);
        let mut k = 0;
        while targets.len() < budget {
            let j = rng.random_range(k..spans.len());
            spans.swap(k, j);
            let (start, end) = spans[k];
            let take = (end - start).min((budget - targets.len()) as u32);
            for pos in start..start + take {
                predicted[pos as usize] = true;
                targets.push(pos);
            }
            k += 1;
        }
        // The targets' own order is uniformly random.
        for a in (1..targets.len()).rev() {
            let b = rng.random_range(0..=a);
            targets.swap(a, b);
        }
        let mut order: Vec<u32> = Vec::with_capacity(maskable.len());
        order.extend((0..maskable.len() as u32).filter(|&p| !predicted[p as usize]));
        order.extend_from_slice(&targets);
        Ok(FactorizationOrder {
            order,
            num_predict: budget,
        })
    }
}

/// A factorization order: a permutation of a sequence's positions whose last `num_predict`
/// are predicted, each from the tokens before it in the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorizationOrder {
    /// Every position once: the context (in sequence order), then the targets in prediction
    /// order.
    pub order: Vec<u32>,
    /// How many positions at the end of `order` are predicted.
    pub num_predict: usize,
}

impl FactorizationOrder {
    /// The predicted positions, in prediction order.
    pub fn targets(&self) -> &[u32] {
        &self.order[self.order.len() - self.num_predict..]
    }

    /// The positions every prediction sees, in sequence order.
    pub fn context(&self) -> &[u32] {
        &self.order[..self.order.len() - self.num_predict]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::example_rng;

    /// `[CLS] n tokens [SEP]`.
    fn framed(n: usize) -> Vec<bool> {
        let mut m = vec![true; n + 2];
        m[0] = false;
        m[n + 1] = false;
        m
    }

    #[test]
    fn every_order_is_a_permutation_with_the_exact_budget() {
        for n in [1usize, 2, 3, 7, 8, 63, 64, 126] {
            let maskable = framed(n);
            for seed in 0..50 {
                let order = PermutationMasking::XLNET
                    .sample(&maskable, &mut example_rng(seed, 0, n as u64))
                    .unwrap();
                let mut sorted = order.order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n as u32 + 2).collect::<Vec<_>>(), "n {n}");
                let budget = ((n as f64 / 6.0).round() as usize).max(1);
                assert_eq!(order.num_predict, budget, "n {n}");
                assert!(
                    order.targets().iter().all(|&p| maskable[p as usize]),
                    "a special token is a target"
                );
                assert!(order.context().windows(2).all(|w| w[0] < w[1]));
            }
        }
    }

    /// Cuts the targets, sorted, into maximal runs of consecutive positions.
    fn runs(targets: &[u32]) -> Vec<usize> {
        let mut sorted = targets.to_vec();
        sorted.sort_unstable();
        let mut lengths = vec![1];
        for w in sorted.windows(2) {
            if w[1] == w[0] + 1 {
                *lengths.last_mut().unwrap() += 1;
            } else {
                lengths.push(1);
            }
        }
        lengths
    }

    #[test]
    fn targets_come_in_spans_of_consecutive_tokens() {
        let maskable = framed(126);
        let mut lengths = Vec::new();
        for seed in 0..200 {
            let order = PermutationMasking::XLNET
                .sample(&maskable, &mut example_rng(seed, 1, 0))
                .unwrap();
            lengths.extend(runs(order.targets()));
        }
        // Span lengths are uniform on 1..=5 (mean 3); adjacent spans may merge into longer
        // runs, so the mean run is at least that, and runs are rarely single tokens only.
        let mean = lengths.iter().sum::<usize>() as f64 / lengths.len() as f64;
        assert!((2.7..4.5).contains(&mean), "mean run {mean}");
    }

    #[test]
    fn spans_never_cross_a_special_token() {
        // [CLS] a b [SEP] c d [SEP], every maskable token predicted.
        let maskable = vec![false, true, true, false, true, true, false];
        let masking = PermutationMasking {
            predict_share: 1.0,
            max_span: 5,
        };
        for seed in 0..20 {
            let order = masking
                .sample(&maskable, &mut example_rng(seed, 0, 0))
                .unwrap();
            let mut targets = order.targets().to_vec();
            targets.sort_unstable();
            assert_eq!(targets, vec![1, 2, 4, 5]);
            assert_eq!(order.context(), &[0, 3, 6]);
        }
    }

    #[test]
    fn the_prediction_order_is_random() {
        let maskable = framed(60);
        let masking = PermutationMasking {
            predict_share: 1.0,
            max_span: 5,
        };
        let order = masking
            .sample(&maskable, &mut example_rng(0, 0, 0))
            .unwrap();
        let increasing = order.targets().windows(2).filter(|w| w[1] > w[0]).count();
        // A uniform order rises about half the time.
        assert!((15..45).contains(&increasing), "{increasing} rises of 59");
    }

    #[test]
    fn the_same_stream_gives_the_same_order() {
        let maskable = framed(40);
        let a = PermutationMasking::MPNET.sample(&maskable, &mut example_rng(9, 2, 4));
        let b = PermutationMasking::MPNET.sample(&maskable, &mut example_rng(9, 2, 4));
        assert_eq!(a.unwrap(), b.unwrap());
    }

    #[test]
    fn bad_settings_and_nothing_to_predict_are_typed_errors() {
        let rng = &mut example_rng(0, 0, 0);
        for share in [0.0, -0.1, 1.5, f64::NAN] {
            let m = PermutationMasking {
                predict_share: share,
                max_span: 5,
            };
            assert!(matches!(m.validate(), Err(Error::InvalidConfig(_))));
        }
        let m = PermutationMasking {
            predict_share: 0.2,
            max_span: 0,
        };
        assert!(matches!(
            m.sample(&framed(10), rng),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            PermutationMasking::XLNET.sample(&framed(0), rng),
            Err(Error::TextTooShort { .. })
        ));
    }
}
