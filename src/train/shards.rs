//! Data parallelism inside one process: a batch split into shards whose forward and backward
//! passes run at once, each on its own thread with a one-thread compute pool, and either all on
//! one device (the CPU's cores) or one per device (several GPUs).
//!
//! burn's CPU backend spreads only its large matmuls over the cores, so one training step on two
//! cores keeps about 1.2 of them busy; two half-batches, each on one core, keep both busy. Each
//! shard runs on a fork of the model (the same parameter ids, fresh autodiff leaves): shards
//! sharing leaves would have their graphs merged into one graph behind one lock, and their
//! backward passes would take turns. Gradients come back keyed by parameter id, so they add up
//! on the original model as accumulated micro-batches do.
//!
//! On several devices each shard's replica and batch live on its own device, and its gradients
//! come back to the main device (the first), where the optimizer steps: burn's
//! `MultiDevice` strategy with the optimizer on the main device, for this crate's own loop.

use burn::module::ModuleDisplay;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::blocks::seed_dropout;
use crate::error::{Error, Result};
use crate::objectives::{Metric, Objective, Weights};
use crate::pretrainer::Pretrainer;

/// One part of a step's examples: its batch, and the position in the step of its first
/// example (which, with the step's seed, fixes the dropout masks its examples see).
#[derive(Debug, Clone)]
pub struct Part<B> {
    /// The part's batch.
    pub batch: B,
    /// The step's position of the batch's first example.
    pub first_example: usize,
}

/// What one shard's forward and backward give.
#[derive(Debug)]
pub struct ShardOutput {
    /// The shard's share of the step's loss: its loss sums over the step's totals, so the
    /// shares of a step add up to the step's loss.
    pub loss: f64,
    /// The shard's metrics.
    pub metrics: Vec<Metric>,
    /// Gradients of the shard's share of the loss, keyed by parameter id: the shards' add up
    /// to the gradient of the step's loss.
    pub grads: GradientsParams,
}

/// One-thread compute pools, one per shard, and the device of each shard.
pub struct Shards {
    pools: Vec<ThreadPool>,
    /// One per shard when the shards run on devices of their own; empty when every shard runs
    /// on the caller's device.
    devices: Vec<Device>,
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
        let pools = if n == 1 { Vec::new() } else { pools(n)? };
        Ok(Self {
            pools,
            devices: Vec::new(),
        })
    }

    /// One shard per device of `devices` (autodiff devices, at least one), each on its own
    /// thread. The first device is the main one: the model lives there, and every shard's
    /// gradients come back to it.
    pub fn on_devices(devices: Vec<Device>) -> Result<Self> {
        if devices.is_empty() {
            return Err(Error::InvalidConfig(
                "data parallelism needs a device".into(),
            ));
        }
        if let Some(device) = devices.iter().find(|d| !d.is_autodiff()) {
            return Err(Error::InvalidConfig(format!(
                "training needs autodiff devices: pass `device.autodiff()` for {device:?}"
            )));
        }
        Ok(Self {
            pools: pools(devices.len())?,
            devices,
        })
    }

    /// Number of shards (at least one).
    pub fn count(&self) -> usize {
        self.pools.len().max(1)
    }

    /// The device shard `k` runs on: its own, or `main` when the shards share one.
    pub fn device<'a>(&'a self, k: usize, main: &'a Device) -> &'a Device {
        self.devices.get(k).unwrap_or(main)
    }

    /// Forward and backward of `model` (on `device`) on each of `parts` (at most
    /// [`count`](Self::count)), part `k` on [`device(k)`](Self::device), with the step's
    /// dropout `seed` and each loss divided by the step's `totals`. The gradients come back on
    /// `device`.
    pub fn run<M, O>(
        &self,
        model: &Pretrainer<M, O>,
        parts: Vec<Part<O::Batch>>,
        seed: u64,
        totals: &Weights,
        device: &Device,
    ) -> Vec<ShardOutput>
    where
        M: Module + ModuleDisplay,
        O: Objective<M>,
    {
        assert!(
            parts.len() <= self.count(),
            "{} parts for {} shards",
            parts.len(),
            self.count(),
        );
        let run = |model: &Pretrainer<M, O>, part: Part<O::Batch>, device: &Device| {
            seed_dropout(device, seed, part.first_example);
            let output = model.forward(part.batch);
            let loss = output.loss.normalized(totals);
            ShardOutput {
                loss: f64::from(loss.clone().into_scalar::<f32>()),
                metrics: output.metrics,
                grads: GradientsParams::from_grads(loss.backward(), model),
            }
        };
        if self.pools.is_empty() || (parts.len() == 1 && self.device(0, device) == device) {
            return parts
                .into_iter()
                .map(|part| run(model, part, device))
                .collect();
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .into_iter()
                .zip(&self.pools)
                .enumerate()
                .map(|(k, (part, pool))| {
                    let shard_device = self.device(k, device);
                    let replica = model.clone().fork(shard_device);
                    let run = &run;
                    scope.spawn(move || {
                        pool.install(move || {
                            let mut output = run(&replica, part, shard_device);
                            if shard_device != device {
                                output.grads = output.grads.to_device(device, &replica);
                            }
                            output
                        })
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

impl Shards {
    /// `work` on each of `items` with a clone of `shared` (a model in inference mode), the
    /// items split into contiguous runs, one per shard's thread; the results come back in the
    /// items' order. With one shard, or shards on devices of their own (whose work stays on the
    /// main device here), everything runs on the calling thread.
    pub fn map<T, I, R>(
        &self,
        shared: &T,
        items: Vec<I>,
        work: impl Fn(&T, I) -> R + Sync,
    ) -> Vec<R>
    where
        T: Clone + Send,
        I: Send,
        R: Send,
    {
        if self.pools.is_empty() || !self.devices.is_empty() || items.len() < 2 {
            return items.into_iter().map(|item| work(shared, item)).collect();
        }
        let per_shard = items.len().div_ceil(self.pools.len());
        let mut items = items.into_iter();
        let runs: Vec<Vec<I>> = std::iter::from_fn(|| {
            let run: Vec<I> = items.by_ref().take(per_shard).collect();
            (!run.is_empty()).then_some(run)
        })
        .collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = runs
                .into_iter()
                .zip(&self.pools)
                .map(|(run, pool)| {
                    let (replica, work) = (shared.clone(), &work);
                    scope.spawn(move || {
                        pool.install(move || run.into_iter().map(|i| work(&replica, i)).collect())
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| -> Vec<R> {
                    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
                })
                .collect()
        })
    }
}

/// `n` one-thread pools, named after their shard.
fn pools(n: usize) -> Result<Vec<ThreadPool>> {
    (0..n)
        .map(|k| {
            ThreadPoolBuilder::new()
                .num_threads(1)
                .thread_name(move |_| format!("pretext-shard-{k}"))
                .build()
                .map_err(|e| Error::InvalidConfig(format!("cannot start shard {k}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::TransformerEncoder;
    use crate::data::{Batch, TokenBatch};
    use crate::objectives::{Mix, Mlm, PairHead};
    use crate::test_support::{pair_batch, tiny_parts};
    use crate::train::grads::{global_norm, max_relative_difference};

    /// The tiny MLM + NSP model and two parts that score apart.
    fn mix_and_two_parts(
        device: &Device,
    ) -> (
        Pretrainer<TransformerEncoder, Mix<Mlm, PairHead>>,
        Vec<Part<TokenBatch>>,
    ) {
        let (backbone, mlm, nsp) = tiny_parts(device);
        let model = Pretrainer::new(backbone, Mix::new(mlm, 1.0, nsp, 1.0).unwrap());
        let parts = [0, 5]
            .into_iter()
            .enumerate()
            .map(|(k, shift)| Part {
                batch: pair_batch(device, shift),
                first_example: 2 * k,
            })
            .collect();
        (model, parts)
    }

    fn totals(parts: &[Part<TokenBatch>]) -> Weights {
        let mut totals = Weights::default();
        for part in parts {
            totals.add(&part.batch.weights());
        }
        totals
    }

    #[test]
    fn shards_at_once_give_what_one_after_the_other_gives() {
        let _draws = crate::util::random::hold();
        let device = Device::flex().autodiff();
        let (model, parts) = mix_and_two_parts(&device);
        let totals = totals(&parts);
        let together = Shards::new(2)
            .unwrap()
            .run(&model, parts.clone(), 1, &totals, &device);
        let one = Shards::new(1).unwrap();
        assert_eq!(together.len(), 2);
        for (k, (shard, part)) in together.iter().zip(parts).enumerate() {
            let alone = one.run(&model, vec![part], 1, &totals, &device).remove(0);
            assert!((shard.loss - alone.loss).abs() < 1e-6, "shard {k} loss");
            assert!(
                global_norm(&model, &shard.grads) > 0.0,
                "shard {k}: no gradient"
            );
            // Tensor by tensor, element by element, not only their norm.
            let diff = max_relative_difference(&model, &shard.grads, &alone.grads);
            assert!(diff < 1e-5, "shard {k}: gradients differ by {diff}");
        }
        let gap = (together[0].loss - together[1].loss).abs();
        assert!(gap > 1e-5, "the two batches should score apart, got {gap}");
    }

    #[test]
    fn map_keeps_the_items_order_over_the_threads() {
        for (shards, items) in [(1, 5), (2, 5), (3, 7), (2, 1), (4, 2)] {
            let shards = Shards::new(shards).unwrap();
            let threads = std::sync::Mutex::new(std::collections::HashSet::new());
            let out = shards.map(&10, (0..items).collect(), |base, i| {
                threads.lock().unwrap().insert(std::thread::current().id());
                base + i
            });
            assert_eq!(out, (10..10 + items).collect::<Vec<_>>());
            let used = threads.into_inner().unwrap().len();
            assert_eq!(used, shards.count().min(items), "{shards:?}, {items} items");
        }
    }

    #[test]
    fn shards_on_devices_give_what_shards_on_one_device_give() {
        let _draws = crate::util::random::hold();
        // The CPU is one device, so this runs the per-device path (replicas forked to each
        // shard's device, gradients brought back) where the answer is known: it must match
        // the shards that share the device.
        let device = Device::flex().autodiff();
        let (model, parts) = mix_and_two_parts(&device);
        let totals = totals(&parts);
        let shared = Shards::new(2)
            .unwrap()
            .run(&model, parts.clone(), 1, &totals, &device);
        let own = Shards::on_devices(vec![device.clone(), device.clone()]).unwrap();
        assert_eq!(own.count(), 2);
        let per_device = own.run(&model, parts, 1, &totals, &device);
        for (k, (a, b)) in shared.iter().zip(&per_device).enumerate() {
            assert!((a.loss - b.loss).abs() < 1e-6, "shard {k} loss");
            assert!(
                global_norm(&model, &a.grads) > 0.0,
                "shard {k}: no gradient"
            );
            let diff = max_relative_difference(&model, &b.grads, &a.grads);
            assert!(diff < 1e-5, "shard {k}: gradients differ by {diff}");
        }
    }

    #[test]
    fn zero_shards_is_an_error() {
        let _draws = crate::util::random::hold();
        assert!(matches!(Shards::new(0), Err(Error::InvalidConfig(_))));
        assert!(matches!(
            Shards::on_devices(Vec::new()),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            Shards::on_devices(vec![Device::flex()]),
            Err(Error::InvalidConfig(_))
        ));
    }
}
