//! A training step over ranks (see [`Collective`]): what the ranks add up, and the checks that
//! they still train one model.
//!
//! Each rank builds and runs only its share of a step's parts, but every number the step's
//! result depends on is summed over all of them: the loss units' totals before any part runs
//! (so that each part's loss is divided by the whole step's counts), then the gradients, the
//! loss, the tokens and the metrics. Every rank then clips and steps the same gradient, so the
//! replicas stay equal; a checksum of the parameters, compared at the start and at every
//! validation, shows that they do.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

use super::collective::Collective;
use super::grads;
use super::log::MetricValue;
use crate::error::{Error, Result};
use crate::objectives::{Reduce, Weights};

/// The step's loss-unit totals: every rank's own, added up.
pub(crate) fn global_totals(ranks: &dyn Collective, local: &Weights) -> Weights {
    if ranks.size() == 1 {
        return local.clone();
    }
    let mine = encode(local.iter().map(|(unit, n)| (unit.to_string(), vec![n])));
    let mut totals = Weights::default();
    for theirs in ranks.gather(&mine) {
        for (unit, values) in decode(&theirs) {
            totals.add(&Weights::of(&unit, values[0]));
        }
    }
    totals
}

/// The step's gradient: every rank's own, added up. A parameter keeps no gradient only when
/// no rank has one for it (AdamW then leaves it alone, as in one process).
pub(crate) fn sum_gradients<M: Module>(
    ranks: &dyn Collective,
    model: &M,
    grads: GradientsParams,
) -> GradientsParams {
    if ranks.size() == 1 {
        return grads;
    }
    let (mut values, present) = grads::flatten(model, &grads);
    let mut holders: Vec<f64> = present.iter().map(|&p| f64::from(u8::from(p))).collect();
    ranks.sum_f64(&mut holders);
    ranks.sum_f32(&mut values);
    let present: Vec<bool> = holders.iter().map(|&n| n > 0.0).collect();
    grads::unflatten(model, &values, &present)
}

/// The step's loss and tokens: every rank's share, added up.
pub(crate) fn sum_loss(ranks: &dyn Collective, loss: f64, tokens: usize) -> (f64, usize) {
    let mut both = [loss, tokens as f64];
    ranks.sum_f64(&mut both);
    (both[0], both[1] as usize)
}

/// Every rank's metric values, in rank order: what one process running all the parts logs.
pub(crate) fn gather_metrics(ranks: &dyn Collective, local: Vec<MetricValue>) -> Vec<MetricValue> {
    if ranks.size() == 1 {
        return local;
    }
    // A reduction travels as its index in this one table.
    const REDUCES: [Reduce; 4] = [Reduce::Mean, Reduce::ExpMean, Reduce::Sum, Reduce::Last];
    let code = |reduce| {
        REDUCES
            .iter()
            .position(|&r| r == reduce)
            .expect("every reduction") as f64
    };
    let mine = encode(
        local
            .into_iter()
            .map(|m| (m.name, vec![m.sum, m.count, code(m.reduce)])),
    );
    ranks
        .gather(&mine)
        .iter()
        .flat_map(|theirs| decode(theirs))
        .map(|(name, v)| MetricValue {
            name,
            sum: v[0],
            count: v[1],
            reduce: REDUCES[v[2] as usize],
        })
        .collect()
}

/// Fails unless every rank was started with rank 0's `settings` (the run's configuration, as
/// text).
pub(crate) fn check_same_settings(ranks: &dyn Collective, settings: &str) -> Result<()> {
    agree(ranks, settings.as_bytes(), || {
        "it was started with other training settings".into()
    })
}

/// Fails, naming the first rank whose `mine` differs from rank 0's and saying `how`.
fn agree(ranks: &dyn Collective, mine: &[u8], how: impl FnOnce() -> String) -> Result<()> {
    let all = ranks.gather(mine);
    match all.iter().position(|theirs| theirs != &all[0]) {
        Some(rank) => Err(Error::RanksDisagree { rank, what: how() }),
        None => Ok(()),
    }
}

/// Fails unless every rank's replica of `model` has rank 0's parameters, compared by a checksum
/// (their sum and sum of squares), after `step` steps.
pub(crate) fn check_replicas<M: Module>(
    ranks: &dyn Collective,
    model: &M,
    step: usize,
) -> Result<()> {
    if ranks.size() == 1 {
        return Ok(());
    }
    let mut sums = Checksum([0.0; 2]);
    model.visit(&mut sums);
    let mine: Vec<u8> = sums.0.iter().flat_map(|v| v.to_le_bytes()).collect();
    agree(ranks, &mine, || {
        format!(
            "its parameters differ after step {step} (the ranks' builds or backends differ, \
             or a checkpoint they resumed from does)"
        )
    })
}

/// Sum and sum of squares of every float parameter, in f64.
struct Checksum([f64; 2]);

impl ModuleVisitor for Checksum {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param
            .val()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("a parameter reads back as f32");
        for v in values {
            let v = f64::from(v);
            self.0[0] += v;
            self.0[1] += v * v;
        }
    }
}

/// Named lists of numbers as bytes: a line each, the name, a tab, the numbers' bits in hex.
fn encode(records: impl Iterator<Item = (String, Vec<f64>)>) -> Vec<u8> {
    let mut text = String::new();
    for (name, values) in records {
        text.push_str(&name);
        for v in values {
            text.push_str(&format!("\t{:x}", v.to_bits()));
        }
        text.push('\n');
    }
    text.into_bytes()
}

/// What [`encode`] wrote.
fn decode(bytes: &[u8]) -> Vec<(String, Vec<f64>)> {
    let text = std::str::from_utf8(bytes).expect("a rank sent its own encoding");
    text.lines()
        .map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next().unwrap_or_default().to_string();
            let values = fields
                .map(|hex| f64::from_bits(u64::from_str_radix(hex, 16).expect("hex bits")))
                .collect();
            (name, values)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::on_local_ranks;
    use crate::train::collective::Solo;

    #[test]
    fn totals_add_units_that_only_some_ranks_have() {
        let totals = on_local_ranks(3, |ranks| {
            let local = match ranks.rank() {
                0 => Weights::of("targets", 5.0),
                1 => Weights::of("targets", 2.0).and("sequences", 4.0),
                _ => Weights::default(),
            };
            global_totals(ranks, &local)
        });
        for t in &totals {
            assert_eq!((t.get("targets"), t.get("sequences")), (7.0, 4.0));
        }
    }

    #[test]
    fn metrics_come_back_from_every_rank_in_rank_order_and_exactly() {
        let gathered = on_local_ranks(2, |ranks| {
            let r = ranks.rank() as f64;
            let local = vec![MetricValue {
                name: format!("acc{r}"),
                sum: 0.1 + r,
                count: 3.0,
                reduce: if r == 0.0 {
                    Reduce::Mean
                } else {
                    Reduce::ExpMean
                },
            }];
            gather_metrics(ranks, local)
        });
        for all in &gathered {
            assert_eq!(all.len(), 2);
            assert_eq!((all[0].name.as_str(), all[0].sum), ("acc0", 0.1));
            assert_eq!((all[1].name.as_str(), all[1].sum), ("acc1", 1.1));
            assert_eq!(
                (all[0].reduce, all[1].reduce),
                (Reduce::Mean, Reduce::ExpMean)
            );
        }
    }

    #[test]
    fn a_replica_that_drifted_is_caught() {
        let _draws = crate::util::random::hold();
        use burn::nn::{Linear, LinearConfig};
        let device = Device::flex();
        let model: Linear = LinearConfig::new(4, 3).init(&device);
        // Rank 1's bias moved by one part in a million.
        let mut drifted = model.clone();
        drifted.bias = drifted
            .bias
            .map(|b| b.map(|t| t.mul_scalar(1.0 + 1e-6).add_scalar(1e-6)));
        let results = on_local_ranks(2, |ranks| {
            let replica = if ranks.rank() == 1 { &drifted } else { &model };
            check_replicas(ranks, replica, 40)
        });
        for result in results {
            let Err(Error::RanksDisagree { rank: 1, what }) = result else {
                panic!("the drift went unseen: {result:?}");
            };
            assert!(what.contains("after step 40"), "{what}");
        }
        let same = on_local_ranks(2, |ranks| check_replicas(ranks, &model, 40));
        assert!(same.iter().all(Result::is_ok));
    }

    #[test]
    fn a_rank_with_other_settings_is_named() {
        let results = on_local_ranks(3, |ranks| {
            let settings = if ranks.rank() == 2 { "b" } else { "a" };
            check_same_settings(ranks, settings)
        });
        for result in results {
            assert!(matches!(result, Err(Error::RanksDisagree { rank: 2, .. })));
        }
        assert!(check_same_settings(&Solo, "a").is_ok());
    }
}
