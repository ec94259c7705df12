//! Data parallelism inside one process: a batch split into shards whose forward and backward
//! passes run at once, each on its own thread with a one-thread compute pool.
//!
//! burn's CPU backend spreads only its large matmuls over the cores, so one training step on two
//! cores keeps about 1.2 of them busy; two half-batches, each on one core, keep both busy. Each
//! shard runs on a fork of the model (the same parameter ids, fresh autodiff leaves): shards
//! sharing leaves would have their graphs merged into one graph behind one lock, and their
//! backward passes would take turns. Gradients come back keyed by parameter id, so they add up
//! on the original model as accumulated micro-batches do.

use burn::optim::GradientsParams;
use burn::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::blocks::seed_dropout;
use crate::error::{Error, Result};
use crate::objectives::{Metric, Objective};
use crate::pretrainer::Pretrainer;

/// What one shard's forward and backward give.
#[derive(Debug)]
pub struct ShardOutput {
    /// The shard's loss.
    pub loss: f64,
    /// The shard's metrics.
    pub metrics: Vec<Metric>,
    /// Gradients of the shard's loss, keyed by parameter id.
    pub grads: GradientsParams,
}

/// One-thread compute pools, one per shard.
pub struct Shards {
    pools: Vec<ThreadPool>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shards({})", self.count())
    }
}

impl Shards {
    /// Pools for `n` shards (`n >= 1`). With one shard, work runs on the calling thread and
    /// burn's kernels use every core they can.
    pub fn new(n: usize) -> Result<Self> {
        if n == 0 {
            return Err(Error::InvalidConfig("shards must be positive".into()));
        }
        let pools = if n == 1 {
            Vec::new()
        } else {
            (0..n)
                .map(|k| {
                    ThreadPoolBuilder::new()
                        .num_threads(1)
                        .thread_name(move |_| format!("pretext-shard-{k}"))
                        .build()
                        .map_err(|e| Error::InvalidConfig(format!("cannot start shard {k}: {e}")))
                })
                .collect::<Result<_>>()?
        };
        Ok(Self { pools })
    }

    /// Number of shards (at least one).
    pub fn count(&self) -> usize {
        self.pools.len().max(1)
    }

    /// Forward and backward of `model` on each of `batches` (at most [`count`](Self::count)),
    /// batch `k`'s dropout seeded with `dropout_seeds[k]`.
    pub fn run<M, O>(
        &self,
        model: &Pretrainer<M, O>,
        batches: Vec<O::Batch>,
        dropout_seeds: &[u64],
        device: &Device,
    ) -> Vec<ShardOutput>
    where
        M: Module,
        O: Objective<M>,
        Pretrainer<M, O>: Module,
    {
        assert!(
            batches.len() <= self.count() && batches.len() <= dropout_seeds.len(),
            "{} batches for {} shards and {} seeds",
            batches.len(),
            self.count(),
            dropout_seeds.len()
        );
        if self.pools.is_empty() || batches.len() == 1 {
            return batches
                .into_iter()
                .zip(dropout_seeds)
                .map(|(batch, &seed)| forward_backward(model, batch, seed, device))
                .collect();
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = batches
                .into_iter()
                .zip(dropout_seeds)
                .zip(&self.pools)
                .map(|((batch, &seed), pool)| {
                    let replica = model.clone().fork(device);
                    scope.spawn(move || {
                        pool.install(move || forward_backward(&replica, batch, seed, device))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }
}

fn forward_backward<M, O>(
    model: &Pretrainer<M, O>,
    batch: O::Batch,
    dropout_seed: u64,
    device: &Device,
) -> ShardOutput
where
    M: Module,
    O: Objective<M>,
    Pretrainer<M, O>: Module,
{
    seed_dropout(device, dropout_seed);
    let output = model.forward(batch);
    let loss = f64::from(output.loss.clone().into_scalar::<f32>());
    ShardOutput {
        loss,
        metrics: output.metrics,
        grads: GradientsParams::from_grads(output.loss.backward(), model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectives::Mix;
    use crate::test_support::{pair_batch, tiny_parts};
    use crate::train::grads::global_norm;

    #[test]
    fn shards_at_once_give_what_one_after_the_other_gives() {
        let device = Device::flex().autodiff();
        let (backbone, mlm, nsp) = tiny_parts(&device);
        let model = Pretrainer::new(backbone, Mix::new(mlm, 1.0, nsp, 1.0).unwrap());
        let batches = vec![pair_batch(&device, 0), pair_batch(&device, 5)];
        let seeds = [1, 2];
        let together = Shards::new(2)
            .unwrap()
            .run(&model, batches.clone(), &seeds, &device);
        let one = Shards::new(1).unwrap();
        assert_eq!(together.len(), 2);
        for (k, (shard, batch)) in together.iter().zip(batches).enumerate() {
            let alone = one.run(&model, vec![batch], &seeds[k..], &device).remove(0);
            assert!((shard.loss - alone.loss).abs() < 1e-6, "shard {k} loss");
            let (a, b) = (
                global_norm(&model, &shard.grads),
                global_norm(&model, &alone.grads),
            );
            assert!(a > 0.0 && (a - b).abs() < 1e-5 * b, "shard {k}: {a} vs {b}");
        }
        let gap = (together[0].loss - together[1].loss).abs();
        assert!(gap > 1e-5, "the two batches should score apart, got {gap}");
    }

    #[test]
    fn zero_shards_is_an_error() {
        assert!(matches!(Shards::new(0), Err(Error::InvalidConfig(_))));
    }
}
