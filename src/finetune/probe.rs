//! The linear probe of a frozen encoder: multinomial logistic regression on its vectors,
//! each feature standardised by the training vectors' mean and deviation first (what MAE's
//! `BatchNorm1d(affine=False)` before the linear head does), fitted full-batch by Adam on the
//! cached vectors with an L2 penalty. On 60,000 vectors of 128 this takes seconds on a CPU,
//! which is why the probe is fitted on cached vectors rather than through the encoder.

use burn::prelude::*;

use crate::error::Result;

/// How the probe is fitted.
#[derive(Config, Debug)]
pub struct ProbeConfig {
    /// Full-batch Adam steps. Default 500.
    #[config(default = 500)]
    pub steps: usize,
    /// Adam's learning rate. Default 0.05.
    #[config(default = 0.05)]
    pub learning_rate: f64,
    /// L2 penalty on the weights, `λ/2 · |W|²` added to the mean loss. Default 1e-4.
    #[config(default = 1e-4)]
    pub l2: f64,
}

/// Test accuracy of a logistic regression fitted on `train` vectors `[n, d]` with labels
/// `train_labels` and scored on `test` `[m, d]` with `test_labels`.
pub fn linear_probe(
    train: Tensor<2>,
    train_labels: &[usize],
    test: Tensor<2>,
    test_labels: &[usize],
    config: &ProbeConfig,
) -> Result<f64> {
    let classes = super::classes_of("a probe", &train, train_labels, &test, test_labels)?;
    let ([n, d], [m, _]) = (train.dims(), test.dims());
    let device = train.device();
    let mean = train.clone().mean_dim(0);
    let std = (train.clone() - mean.clone())
        .powf_scalar(2.0)
        .mean_dim(0)
        .add_scalar(1e-6)
        .sqrt();
    let standard = |x: Tensor<2>| (x - mean.clone()) / std.clone();
    let (x, test) = (standard(train), standard(test));
    let one_hot = |labels: &[usize]| {
        let mut y = vec![0f32; labels.len() * classes];
        for (row, &c) in labels.iter().enumerate() {
            y[row * classes + c] = 1.0;
        }
        Tensor::<2>::from_data(TensorData::new(y, [labels.len(), classes]), &device)
    };
    let y = one_hot(train_labels);
    let mut w = Tensor::<2>::zeros([d, classes], &device);
    let mut b = Tensor::<1>::zeros([classes], &device);
    let mut adam_w = Adam::new(&w);
    let mut adam_b = Adam::new(&b);
    let xt = x.clone().transpose();
    for step in 1..=config.steps {
        // The mean cross-entropy's gradient in closed form: Xᵀ(softmax(XW + b) − Y) / n.
        let logits = x.clone().matmul(w.clone()) + b.clone().unsqueeze_dim(0);
        let error = (burn::tensor::activation::softmax(logits, 1) - y.clone()) / n as f64;
        let grad_w = xt.clone().matmul(error.clone()) + w.clone() * config.l2;
        let grad_b = error.sum_dim(0).reshape([classes]);
        w = adam_w.step(w, grad_w, step, config.learning_rate);
        b = adam_b.step(b, grad_b, step, config.learning_rate);
    }
    let predicted = (test.matmul(w) + b.unsqueeze_dim(0)).argmax(1);
    let predicted = crate::util::ints(predicted.reshape([m]));
    let right = predicted
        .iter()
        .zip(test_labels)
        .filter(|(p, t)| **p as usize == **t)
        .count();
    Ok(right as f64 / m as f64)
}

/// Adam's moments for one tensor (β 0.9, 0.999; ε 1e-8).
struct Adam<const D: usize> {
    first: Tensor<D>,
    second: Tensor<D>,
}

impl<const D: usize> Adam<D> {
    fn new(like: &Tensor<D>) -> Self {
        Self {
            first: like.zeros_like(),
            second: like.zeros_like(),
        }
    }

    /// `value` after one step against `grad` (step counted from 1).
    fn step(&mut self, value: Tensor<D>, grad: Tensor<D>, step: usize, lr: f64) -> Tensor<D> {
        let (beta1, beta2) = (0.9f64, 0.999f64);
        self.first = self.first.clone() * beta1 + grad.clone() * (1.0 - beta1);
        self.second = self.second.clone() * beta2 + grad.powf_scalar(2.0) * (1.0 - beta2);
        let first = self.first.clone() / (1.0 - beta1.powi(step as i32));
        let second = self.second.clone() / (1.0 - beta2.powi(step as i32));
        value - first / second.sqrt().add_scalar(1e-8) * lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::example_rng;
    use rand::RngExt;

    /// Points around three centres in 5 dimensions, scaled unevenly, with their labels.
    fn clusters(n: usize, seed: u64) -> (Tensor<2>, Vec<usize>) {
        let mut rng = example_rng(seed, 0, 0);
        let centres = [
            [2.0, 0.0, 0.0, 1.0, 0.0],
            [0.0, 2.0, 0.0, 0.0, 1.0],
            [0.0, 0.0, 2.0, 1.0, 1.0],
        ];
        let scale = [1.0, 10.0, 0.1, 1.0, 100.0];
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let c = i % 3;
            labels.push(c);
            for k in 0..5 {
                let noise: f32 = rng.random_range(-0.6..0.6);
                values.push((centres[c][k] + noise) * scale[k]);
            }
        }
        let x = Tensor::from_data(TensorData::new(values, [n, 5]), &Device::flex());
        (x, labels)
    }

    #[test]
    fn the_probe_separates_separable_classes_whatever_their_scales() {
        let (train, train_labels) = clusters(300, 1);
        let (test, test_labels) = clusters(90, 2);
        let config = ProbeConfig::new();
        let accuracy = linear_probe(train, &train_labels, test, &test_labels, &config).unwrap();
        assert!(accuracy > 0.97, "{accuracy}");
    }

    #[test]
    fn labels_that_do_not_match_the_vectors_are_refused() {
        let (train, labels) = clusters(30, 1);
        let config = ProbeConfig::new();
        let short = &labels[..29];
        assert!(linear_probe(train.clone(), short, train.clone(), &labels, &config).is_err());
        assert!(linear_probe(train.clone(), &labels, train, short, &config).is_err());
    }
}
