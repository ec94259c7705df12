//! Dropout whose random draws are cheap on the CPU and reproducible from a seed.
//!
//! burn's dropout samples a Bernoulli per element through a ChaCha generator on one thread,
//! which took ~14 % of a CPU training step of the reference model. On the `flex` CPU backend
//! this one draws its keep mask from xoshiro256++, 16 bits per element; on other backends it
//! uses burn's sampler on the device. Either way the draws follow [`seed_dropout`], which the
//! training loop calls every step so that a resumed run drops the same units.
//! Dropout is active only on an autodiff device (training), as burn's is.

use std::cell::RefCell;

use burn::prelude::*;
use burn::tensor::Distribution;
use rand::{Rng, SeedableRng};

use crate::noise::ExampleRng;

thread_local! {
    // One stream per thread, so that shards running at once each draw their own, seeded, masks.
    static CPU_RNG: RefCell<Option<ExampleRng>> = const { RefCell::new(None) };
}

/// Seeds every dropout draw that follows: on `device`, and on the CPU path for the calling
/// thread. On the CPU backend the device's own stream is left alone: dropout does not draw
/// from it there, and another run in the same process may be initializing a model from it.
pub fn seed_dropout(device: &Device, seed: u64) {
    if *device != Device::flex() {
        device.seed(seed);
    }
    CPU_RNG.with(|rng| *rng.borrow_mut() = Some(ExampleRng::seed_from_u64(seed)));
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

    /// Applies dropout to `x` when it lives on an autodiff device.
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
        let n = shape.num_elements();
        let scale = (1.0 / keep) as f32;
        // Drop when a uniform 16-bit draw falls below prob * 2^16.
        let cut = (self.prob * 65536.0).round() as u64;
        let mut mask = vec![0f32; n];
        CPU_RNG.with(|rng| {
            let mut rng = rng.borrow_mut();
            let rng = rng.get_or_insert_with(|| ExampleRng::seed_from_u64(0));
            for chunk in mask.chunks_mut(4) {
                let bits = rng.next_u64();
                for (j, m) in chunk.iter_mut().enumerate() {
                    if (bits >> (16 * j)) & 0xffff >= cut {
                        *m = scale;
                    }
                }
            }
        });
        x * Tensor::from_data(TensorData::new(mask, shape), &device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_given_share_keeps_the_mean_and_is_off_outside_training() {
        let device = Device::flex().autodiff();
        seed_dropout(&device, 3);
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
}
