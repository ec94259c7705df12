//! Per-token binary detection, the discriminative half of ELECTRA and of any objective that
//! flags tokens: a head scoring each token, its binary cross-entropy over the real tokens, and
//! the detection metrics (accuracy, precision, recall, AUC).

use burn::nn::{Gelu, Linear};
use burn::prelude::*;

use super::Metric;
use crate::blocks::{linear_3d, normal_linear};
use crate::kernels::gelu;

/// Configuration of a [`DetectionHead`].
#[derive(Config, Debug)]
pub struct DetectionHeadConfig {
    /// Width of the hidden states it reads.
    pub hidden_size: usize,
}

impl DetectionHeadConfig {
    /// The head, its weights drawn as BERT's (normal, σ 0.02).
    pub fn init(&self, device: &Device) -> DetectionHead {
        let h = self.hidden_size;
        DetectionHead {
            dense: normal_linear(h, h, 0.02, device),
            output: normal_linear(h, 1, 0.02, device),
        }
    }
}

/// A per-token binary head: dense + GELU, then one logit (ELECTRA's discriminator head,
/// `ElectraDiscriminatorPredictions` in Hugging Face's naming).
#[derive(Module, Debug)]
pub struct DetectionHead {
    dense: Linear,
    output: Linear,
}

impl DetectionHead {
    /// The logit `[batch, len]` of each token of `hidden` `[batch, len, hidden]`.
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<2> {
        let [rows, len, _] = hidden.dims();
        // Every token of the batch: the blocks' one-matmul Linear and fused GELU.
        let h = gelu(&Gelu::new(), linear_3d(&self.dense, hidden));
        linear_3d(&self.output, h).reshape([rows, len])
    }
}

/// Binary cross-entropy of `logits` against 0/1 `labels`, elementwise, in a stable form:
/// `max(x, 0) − x·y + ln(1 + e^(−|x|))`. Multiply by a 0/1 mask of the real tokens and sum
/// to get a loss over them ([`Loss::over`](super::Loss::over)).
pub fn binary_cross_entropy<const D: usize>(logits: Tensor<D>, labels: Tensor<D>) -> Tensor<D> {
    logits.clone().clamp_min(0.0) - logits.clone() * labels + logits.abs().neg().exp().log1p()
}

/// The detection metrics over the real tokens (`real` 1, padding 0), named `{prefix}_acc`,
/// `{prefix}_loss` (from `loss_sum`, the summed cross-entropy), `{prefix}_precision`,
/// `{prefix}_recall` and `{prefix}_auc`, and `share`, the share of positive labels. A token
/// is flagged when its logit is above 0 (probability 0.5). Precision and recall are absent
/// from a record where nothing was flagged or nothing was positive (see [`Metric`]).
pub fn detection_metrics(
    prefix: &str,
    share: &str,
    logits: Tensor<2>,
    labels: Tensor<2>,
    real: Tensor<2>,
    loss_sum: Tensor<1>,
) -> Vec<Metric> {
    // Padding is neither predicted nor counted.
    let predicted = logits.clone().greater_elem(0.0).float().mul(real.clone());
    let right = predicted
        .clone()
        .equal(labels.clone())
        .float()
        .mul(real.clone());
    let hits = predicted.clone().mul(labels.clone());
    let auc = detection_auc(
        &format!("{prefix}_auc"),
        logits,
        labels.clone(),
        real.clone(),
    );
    let count = real.sum();
    vec![
        auc,
        Metric::mean(&format!("{prefix}_acc"), right.sum(), count.clone()),
        Metric::mean(&format!("{prefix}_loss"), loss_sum, count.clone()),
        Metric::mean(share, labels.clone().sum(), count),
        Metric::mean(
            &format!("{prefix}_precision"),
            hits.clone().sum(),
            predicted.sum(),
        ),
        Metric::mean(&format!("{prefix}_recall"), hits.sum(), labels.sum()),
    ]
}

/// The AUC named `name`: the probability that a positive token scores above a negative one,
/// over the pairs of real tokens in the batch, pooled over batches by their number of pairs.
/// Unlike accuracy it does not depend on the 0.5 threshold, so it shows a detector that ranks
/// tokens well long before it dares to flag any of them (ELECTRA's reference reports it too).
pub fn detection_auc(name: &str, logits: Tensor<2>, labels: Tensor<2>, real: Tensor<2>) -> Metric {
    let n = logits.dims().iter().product::<usize>();
    let device = logits.device();
    // Padding sorts below every real token; its ranks are then subtracted.
    let scores = logits
        .reshape([n])
        .mask_fill(real.clone().reshape([n]).lower_elem(0.5), f32::MIN);
    let sorted = labels.clone().reshape([n]).gather(0, scores.argsort(0));
    let ranks = Tensor::<1, Int>::arange(1..n as i64 + 1, &device).float();
    let positives = labels.sum();
    let reals = real.sum();
    let padding = reals.clone().neg().add_scalar(n as f64);
    // Mann-Whitney: the positives' rank sum among real tokens, less its minimum.
    let wins = (sorted * ranks).sum()
        - positives.clone() * padding
        - positives.clone() * (positives.clone().add_scalar(1.0)).div_scalar(2.0);
    let pairs = positives.clone() * (reals - positives);
    Metric::mean(name, wins, pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_metrics_count_real_tokens_only() {
        let device = Device::flex();
        // Row 0: three real tokens, the last one padding (its logit says "replaced").
        // Row 1: four real tokens.
        let logits =
            Tensor::<2>::from_floats([[2.0, -1.0, 3.0, 5.0], [-2.0, 1.0, -0.5, -3.0]], &device);
        let replaced =
            Tensor::<2>::from_floats([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]], &device);
        let real = Tensor::<2>::from_floats([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]], &device);
        let loss_sum = Tensor::from_floats([3.5], &device);
        let metrics = detection_metrics("disc", "replaced_frac", logits, replaced, real, loss_sum);
        let value = |name: &str| {
            let m = metrics.iter().find(|m| m.name == name).unwrap();
            m.sum.clone().into_scalar::<f32>() / m.count.clone().into_scalar::<f32>()
        };
        // Predicted replaced at (0,0), (0,2), (1,1); replaced (0,0), (1,1), (1,2).
        assert_eq!(value("disc_acc"), 5.0 / 7.0);
        assert_eq!(value("disc_precision"), 2.0 / 3.0);
        assert_eq!(value("disc_recall"), 2.0 / 3.0);
        assert_eq!(value("replaced_frac"), 3.0 / 7.0);
        assert_eq!(value("disc_loss"), 0.5);
        // Replaced scores 2, 1, -0.5 against original -1, 3, -2, -3: 9 of 12 pairs in order.
        assert_eq!(value("disc_auc"), 0.75);
    }

    #[test]
    fn the_loss_is_the_stable_form_of_the_cross_entropy() {
        let device = Device::flex();
        let logits = Tensor::<1>::from_floats([-30.0, -2.0, 0.0, 0.5, 40.0], &device);
        for label in [0.0f32, 1.0] {
            let labels = logits.ones_like().mul_scalar(label);
            let got = crate::util::floats(binary_cross_entropy(logits.clone(), labels));
            for (x, got) in [-30.0f64, -2.0, 0.0, 0.5, 40.0].iter().zip(got) {
                // −ln σ(x) for a positive, −ln(1 − σ(x)) = ln(1 + eˣ) for a negative, naively
                // in f64.
                let want = if label == 1.0 {
                    (1.0 + (-x).exp()).ln()
                } else {
                    (1.0 + x.exp()).ln()
                };
                assert!(
                    (f64::from(got) - want).abs() < 1e-5 * want.max(1.0),
                    "{x}, {label}"
                );
            }
        }
    }
}
