//! SimCLR (Chen et al. 2020), contrastive learning of image representations: two augmented
//! views of each image, the encoder's vector of each through a projection head, and NT-Xent,
//! which asks each view to pick its partner out of the other `2N − 2` views of the batch at a
//! temperature, as `google-research/simclr`'s `add_contrastive_loss` does. One fine-tunes the
//! encoder's vector, not the projection's.

use burn::nn::{Linear, Relu};
use burn::prelude::*;

use super::{Loss, Metric, Objective, ObjectiveOutput, Weights};
use crate::blocks::{VisionTransformer, normal_linear, unit_rows};
use crate::data::images::{ImageExample, ImageViews};
use crate::data::{Batch, Task};
use crate::error::{Error, Result};
use crate::util::rng::ExampleRng;

/// The unit of SimCLR's loss: the views of a batch, two an image.
pub const VIEWS: &str = "views";

/// SimCLR's projection head and temperature.
#[derive(Config, Debug)]
pub struct SimclrConfig {
    /// The temperature τ of NT-Xent. Default 0.2 (small batches do better above ImageNet's
    /// 0.1; CIFAR-10 used 0.5).
    #[config(default = 0.2)]
    pub temperature: f64,
    /// Width of the projection's output. Default 128 (SimCLR's).
    #[config(default = 128)]
    pub projection_size: usize,
    /// Whether an image's vector is the mean of its patches' states rather than `[CLS]`'s.
    /// Default false.
    #[config(default = false)]
    pub mean_pool: bool,
}

/// The projection head `width → width → projection_size` (ReLU between) and the loss's
/// settings; the encoder is the backbone it is handed.
#[derive(Module, Debug)]
pub struct Simclr {
    hidden: Linear,
    activation: Relu,
    output: Linear,
    #[module(skip)]
    temperature: f64,
    #[module(skip)]
    mean_pool: bool,
}

impl SimclrConfig {
    /// Checks the temperature and the projection's width.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::InvalidConfig(format!(
                "temperature {} must be a positive number",
                self.temperature
            )));
        }
        if self.projection_size == 0 {
            return Err(Error::InvalidConfig(
                "projection_size must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The projection head for `vit`.
    pub fn init(&self, vit: &VisionTransformer, device: &Device) -> Result<Simclr> {
        self.validate()?;
        let width = vit.hidden_size();
        Ok(Simclr {
            hidden: normal_linear(width, width, 0.02, device),
            activation: Relu::new(),
            output: normal_linear(width, self.projection_size, 0.02, device),
            temperature: self.temperature,
            mean_pool: self.mean_pool,
        })
    }
}

/// NT-Xent of `z` `[2N, d]`, the first `N` rows one view of each image and the last `N` the
/// other, L2-normalised here: per row, `−log` of the softmax of its partner's cosine over
/// every other row's, at `temperature`, `[2N]`; and whether the partner scored highest, as
/// 0 or 1 `[2N]`.
pub fn nt_xent(z: Tensor<2>, temperature: f64) -> (Tensor<1>, Tensor<1>) {
    let [rows, _] = z.dims();
    let n = rows / 2;
    let device = z.device();
    let z = unit_rows(z);
    let logits = z.clone().matmul(z.transpose()).div_scalar(temperature);
    // A view is never its own candidate (SimCLR subtracts 10⁹ on the diagonal).
    let own = Tensor::<2>::eye(rows, &device).bool();
    let logits = logits.mask_fill(own, -1.0e9);
    let partner: Vec<i64> = (0..rows).map(|i| ((i + n) % rows) as i64).collect();
    let partner = Tensor::<1, Int>::from_data(TensorData::new(partner, [rows]), &device);
    let log_probs = burn::tensor::activation::log_softmax(logits.clone(), 1);
    let picked = log_probs
        .gather(1, partner.clone().reshape([rows, 1]))
        .reshape([rows]);
    let best = logits.argmax(1).reshape([rows]);
    let right = best.equal(partner).float();
    (picked.neg(), right)
}

/// SimCLR's examples: two views of each image, drawn one after the other from its stream.
#[derive(Debug, Clone)]
pub struct SimclrTask {
    views: ImageViews,
}

/// Two views of one image.
#[derive(Debug, Clone)]
pub struct SimclrExample {
    /// The first view.
    pub first: ImageExample,
    /// The second view.
    pub second: ImageExample,
}

/// A batch of pairs of views: `[2N, 1, side, side]`, every first view, then every second.
#[derive(Debug, Clone)]
pub struct SimclrBatch {
    /// The views.
    pub images: Tensor<4>,
}

impl SimclrTask {
    /// Pairs of views of `views`' images (augment them: two identical views teach nothing).
    pub fn new(views: ImageViews) -> Self {
        Self { views }
    }
}

impl Task for SimclrTask {
    type Example = SimclrExample;
    type Batch = SimclrBatch;

    fn num_examples(&self) -> usize {
        self.views.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<SimclrExample> {
        let first = self.views.view(index, rng);
        let second = self.views.view(index, rng);
        Ok(SimclrExample { first, second })
    }

    fn collate(&self, examples: &[SimclrExample], device: &Device) -> Result<SimclrBatch> {
        let views: Vec<&ImageExample> = (examples.iter().map(|e| &e.first))
            .chain(examples.iter().map(|e| &e.second))
            .collect();
        Ok(SimclrBatch {
            images: self.views.stack(&views, device)?,
        })
    }
}

impl Batch for SimclrBatch {
    fn num_tokens(&self) -> usize {
        self.images.dims()[0]
    }

    fn weights(&self) -> Weights {
        Weights::of(VIEWS, self.images.dims()[0] as f64)
    }
}

impl Simclr {
    /// The projections `[2N, projection_size]` of the views' vectors.
    pub fn project(&self, vit: &VisionTransformer, images: Tensor<4>) -> Tensor<2> {
        let features = vit.features(images, self.mean_pool);
        self.output
            .forward(self.activation.forward(self.hidden.forward(features)))
    }
}

impl Objective<VisionTransformer> for Simclr {
    type Batch = SimclrBatch;

    fn forward(&self, vit: &VisionTransformer, batch: SimclrBatch) -> ObjectiveOutput {
        let z = self.project(vit, batch.images);
        let (losses, right) = nt_xent(z, self.temperature);
        let views = losses.dims()[0] as f64;
        let count = Tensor::<1>::from_floats([views as f32], &losses.device());
        let sum = losses.sum();
        ObjectiveOutput {
            metrics: vec![
                Metric::mean("nt_xent", sum.clone().detach(), count.clone()),
                Metric::mean("pair_acc", right.sum(), count),
            ],
            loss: Loss::over(VIEWS, sum),
        }
    }

    /// Every view's negatives are the batch's other views.
    fn couples_batch(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NT-Xent as the formula reads, one anchor at a time, in f64.
    fn naive(z: &[[f64; 3]], temperature: f64) -> Vec<f64> {
        let unit: Vec<Vec<f64>> = z
            .iter()
            .map(|v| {
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect();
        let sim = |i: usize, j: usize| -> f64 {
            unit[i]
                .iter()
                .zip(&unit[j])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / temperature
        };
        let rows = z.len();
        (0..rows)
            .map(|i| {
                let j = (i + rows / 2) % rows;
                let others: f64 = (0..rows).filter(|&k| k != i).map(|k| sim(i, k).exp()).sum();
                -(sim(i, j).exp() / others).ln()
            })
            .collect()
    }

    #[test]
    fn nt_xent_is_the_formula_on_hand_values() {
        let z = [
            [1.0, 0.0, 0.5],
            [0.2, 1.0, -0.3],
            [0.9, 0.1, 0.4],
            [-0.5, 0.8, 0.1],
        ];
        let device = Device::flex();
        let rows: Vec<f32> = z.iter().flatten().map(|&v| v as f32).collect();
        let tensor = Tensor::<1>::from_floats(rows.as_slice(), &device).reshape([4, 3]);
        for temperature in [0.1, 0.5, 1.0] {
            let (losses, right) = nt_xent(tensor.clone(), temperature);
            let got: Vec<f32> = losses.into_data().try_to_vec().unwrap();
            let want = naive(&z, temperature);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() < 1e-4 * w.abs().max(1.0),
                    "{got:?} {want:?}"
                );
            }
            // Every row's partner is its nearest neighbour here (cosines 0.99 and 0.66).
            let right: Vec<f32> = right.into_data().try_to_vec().unwrap();
            assert_eq!(right, [1.0; 4]);
        }
        // With the second views swapped, rows 0 and 2 pair with strangers.
        let swapped = Tensor::cat(
            vec![
                tensor.clone().slice([0..2, 0..3]),
                tensor.clone().slice([3..4, 0..3]),
                tensor.slice([2..3, 0..3]),
            ],
            0,
        );
        let (_, right) = nt_xent(swapped, 0.5);
        let right: Vec<f32> = right.into_data().try_to_vec().unwrap();
        assert_eq!(right, [0.0; 4]);
    }

    #[test]
    fn a_bad_temperature_is_refused() {
        for t in [0.0, -1.0, f64::NAN] {
            assert!(SimclrConfig::new().with_temperature(t).validate().is_err());
        }
        assert!(
            SimclrConfig::new()
                .with_projection_size(0)
                .validate()
                .is_err()
        );
    }
}
