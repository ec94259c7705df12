//! Dropout whose masks are a function of the example, not of where the example runs.
//!
//! burn's dropout samples a Bernoulli per element through a ChaCha generator on one thread,
//! which took ~14 % of a CPU training step of the reference model. On the `flex` CPU backend
//! this one hashes each element's coordinates instead: the keep bit of element `(i, j…)` of the
//! `c`-th dropout of a forward pass is 16 bits of a counter-based hash of
//! `(seed, c, example of row i, j…)`. So an example sees the same masks whichever shard,
//! thread or micro-batch it lands in and however long its batch is padded, and a run's result
//! does not depend on the number of cores (the training loop seeds every step with
//! [`seed_dropout`]). The first dimension of every tensor dropped out must be the batch's.
//!
//! On other backends (GPUs) the mask comes from burn's sampler on the device, seeded per step
//! and shard: a run repeats itself on the same devices, but another split draws other masks.
//! Dropout is active only on an autodiff device (training), as burn's is.

use std::cell::RefCell;

use burn::prelude::*;
use burn::tensor::Distribution;
use rayon::prelude::*;

use crate::util::rng::splitmix64;

/// What the next dropout draws from, per thread (shards running at once each keep their own).
#[derive(Debug, Clone, Default)]
struct Draws {
    seed: u64,
    /// Dropouts applied since the seed (or since the rows were last set).
    calls: u64,
    /// The example each batch row holds: `rows[i]`, or `first + i` when `rows` is empty.
    first: u64,
    rows: Vec<u64>,
}

impl Draws {
    fn example(&self, row: usize) -> u64 {
        self.rows
            .get(row)
            .copied()
            .unwrap_or(self.first + row as u64)
    }
}

thread_local! {
    static DRAWS: RefCell<Draws> = RefCell::new(Draws::default());
}

/// Seeds every dropout draw that follows on this thread (and on `device`, where it samples on
/// the device), with row `i` of the next batches holding example `first_example + i` of the
/// step. On the CPU backend the device's own stream is left alone: dropout does not draw from
/// it there, and another run in the same process may be initializing a model from it.
pub fn seed_dropout(device: &Device, seed: u64, first_example: usize) {
    if *device != Device::flex() {
        device.seed(splitmix64(seed ^ first_example as u64));
    }
    DRAWS.with(|d| {
        *d.borrow_mut() = Draws {
            seed,
            calls: 0,
            first: first_example as u64,
            rows: Vec::new(),
        }
    });
}

/// Runs `f` on a batch made of some rows of the current one: its row `i` holds what row
/// `rows[i]` held. Dropouts inside count from 0 again, so a sub-batch draws the same masks for
/// its examples whatever else shares its batch (the tasks of a multi-task batch).
pub fn with_dropout_rows<R>(rows: &[usize], f: impl FnOnce() -> R) -> R {
    let outer = DRAWS.with(|d| {
        let mut d = d.borrow_mut();
        let inner = Draws {
            seed: d.seed,
            calls: 0,
            first: 0,
            rows: rows.iter().map(|&r| d.example(r)).collect(),
        };
        std::mem::replace(&mut *d, inner)
    });
    let result = f();
    DRAWS.with(|d| *d.borrow_mut() = outer);
    result
}

/// Zeroes each element with probability `prob` during training and scales the rest by
/// `1 / (1 - prob)`.
#[derive(Module, Debug)]
pub struct Dropout {
    prob: f64,
}

impl Dropout {
    /// A dropout with drop probability `prob` (checked by the configs that build it).
    pub fn new(prob: f64) -> Self {
        Self { prob }
    }

    /// Applies dropout to `x` (its first dimension the batch's) when it lives on an autodiff
    /// device.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let device = x.device();
        if self.prob <= 0.0 || !device.is_autodiff() {
            return x;
        }
        let keep = 1.0 - self.prob;
        if device != Device::flex() {
            let mask = x.random_like(Distribution::Bernoulli(keep));
            return x * mask.div_scalar(keep);
        }
        let shape = x.shape();
        let dims = shape.dims::<D>();
        let mask = DRAWS.with(|d| {
            let mut d = d.borrow_mut();
            d.calls += 1;
            keep_mask(&d, &dims, self.prob)
        });
        x * Tensor::from_data(TensorData::new(mask, shape), &device)
    }
}

/// The mask of the current dropout call over a tensor of `dims`: `1 / (1 − prob)` where kept,
/// 0 where dropped, each element's bit hashed from its example and coordinates.
fn keep_mask(draws: &Draws, dims: &[usize], prob: f64) -> Vec<f32> {
    let scale = (1.0 / (1.0 - prob)) as f32;
    // Drop when a uniform 16-bit draw falls below prob * 2^16.
    let cut = (prob * 65536.0).round() as u64;
    let width = *dims.last().expect("dropout of a tensor of rank 1 or more");
    let n: usize = dims.iter().product();
    let mut mask = vec![0f32; n];
    if width == 0 {
        return mask;
    }
    let call = splitmix64(draws.seed ^ splitmix64(draws.calls));
    let lines_per_row = n / width / dims[0].max(1);
    mask.par_chunks_mut(width)
        .enumerate()
        .for_each(|(line, out)| {
            let row = line / lines_per_row.max(1);
            // The line's key: its example, then its coordinates in the middle dimensions.
            let mut key = splitmix64(call ^ draws.example(row));
            let mut rest = line % lines_per_row.max(1);
            for &dim in dims[1..dims.len() - 1].iter().rev() {
                key = splitmix64(key ^ (rest % dim) as u64);
                rest /= dim;
            }
            for (chunk, group) in out.chunks_mut(4).enumerate() {
                let bits = splitmix64(key.wrapping_add(chunk as u64));
                for (j, m) in group.iter_mut().enumerate() {
                    if (bits >> (16 * j)) & 0xffff >= cut {
                        *m = scale;
                    }
                }
            }
        });
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_given_share_keeps_the_mean_and_is_off_outside_training() {
        let device = Device::flex().autodiff();
        seed_dropout(&device, 3, 0);
        let x = Tensor::<2>::ones([200, 500], &device);
        let y = Dropout::new(0.1).forward(x.clone());
        let zeros = y
            .clone()
            .equal_elem(0.0)
            .float()
            .mean()
            .into_scalar::<f32>();
        assert!((zeros - 0.1).abs() < 0.005, "dropped share {zeros}");
        let mean = y.mean().into_scalar::<f32>();
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        let plain = Tensor::<2>::ones([10, 10], &Device::flex());
        let same = Dropout::new(0.5).forward(plain.clone());
        assert_eq!(same.sum().into_scalar::<f32>(), 100.0);
    }

    /// The mask of the first dropout over `[rows, len, 8]` ones, its rows holding examples
    /// `first..`.
    fn mask(first: usize, rows: usize, len: usize) -> Vec<Vec<f32>> {
        let device = Device::flex().autodiff();
        seed_dropout(&device, 5, first);
        let y = Dropout::new(0.3).forward(Tensor::<3>::ones([rows, len, 8], &device));
        let values: Vec<f32> = y.into_data().convert::<f32>().try_to_vec().unwrap();
        values.chunks(len * 8).map(<[f32]>::to_vec).collect()
    }

    #[test]
    fn an_example_sees_the_same_mask_whatever_its_row_and_padding() {
        // Examples 0..4 in one batch of length 6; examples 2..4 alone, padded to 9.
        let together = mask(0, 4, 6);
        let apart = mask(2, 2, 9);
        for (k, row) in apart.iter().enumerate() {
            // Position t, feature j sits at t * 8 + j whatever the padded length.
            assert_eq!(row[..6 * 8], together[2 + k][..], "example {}", 2 + k);
        }
        assert_ne!(together[0], together[1], "examples draw their own masks");
        // A sub-batch of rows keeps its examples' masks.
        let device = Device::flex().autodiff();
        seed_dropout(&device, 5, 0);
        let picked = with_dropout_rows(&[3, 1], || {
            Dropout::new(0.3).forward(Tensor::<3>::ones([2, 6, 8], &device))
        });
        let picked: Vec<f32> = picked.into_data().convert::<f32>().try_to_vec().unwrap();
        assert_eq!(picked[..48], together[3][..]);
        assert_eq!(picked[48..], together[1][..]);
    }
}
