//! A Vision Transformer judged on labelled images, the survey's protocol for image encoders:
//! its frozen vectors (for the [`knn`](super::knn) and [`probe`](super::probe) scores) and
//! fine-tuning with an [`ImageClassifier`] on it by the same loop as pretraining, scored by
//! test accuracy. Evaluation always reads the images unaugmented.

use std::path::Path;

use burn::prelude::*;

use crate::blocks::VisionTransformer;
use crate::data::Task;
use crate::data::images::{ClassifyImages, ImageExample, ImageViews};
use crate::error::{Error, Result};
use crate::objectives::ImageClassifier;
use crate::pretrainer::Pretrainer;
use crate::train::{TrainConfig, TrainReport, Trainer};

/// Images read at once when scoring.
const BATCH: usize = 256;

/// Calls `f` on every batch of `views`' images, unaugmented, in order, with the batch's
/// examples.
fn each_batch(
    views: &ImageViews,
    device: &Device,
    mut f: impl FnMut(Tensor<4>, &[ImageExample]),
) -> Result<()> {
    let plain = views.plain();
    let mut rng = crate::util::rng::example_rng(0, 0, 0);
    for start in (0..plain.len()).step_by(BATCH) {
        let end = (start + BATCH).min(plain.len());
        let examples: Vec<ImageExample> = (start..end).map(|i| plain.view(i, &mut rng)).collect();
        let refs: Vec<&ImageExample> = examples.iter().collect();
        f(plain.stack(&refs, device)?, &examples);
    }
    Ok(())
}

/// `vit`'s vector of every image of `views` `[n, width]`: the `[CLS]` state, or (`mean`) the
/// mean of the patches' states.
pub fn image_features(
    vit: &VisionTransformer,
    views: &ImageViews,
    mean: bool,
    device: &Device,
) -> Result<Tensor<2>> {
    let mut rows = Vec::new();
    each_batch(views, device, |images, _| {
        rows.push(vit.features(images, mean))
    })?;
    Ok(Tensor::cat(rows, 0))
}

/// The share of `views`' images (which must have labels) that `head` on `vit` classifies
/// right.
pub fn image_accuracy(
    vit: &VisionTransformer,
    head: &ImageClassifier,
    views: &ImageViews,
    device: &Device,
) -> Result<f64> {
    let (mut right, mut seen) = (0usize, 0usize);
    let mut unlabelled = false;
    each_batch(views, device, |images, examples| {
        let [n, _, _, _] = images.dims();
        let predicted = crate::util::ints(head.logits(vit, images).argmax(1).reshape([n]));
        for (p, e) in predicted.iter().zip(examples) {
            match e.label {
                Some(label) => right += usize::from(*p as usize == label),
                None => unlabelled = true,
            }
            seen += 1;
        }
    })?;
    if unlabelled {
        return Err(Error::InvalidConfig(
            "accuracy needs labelled images".into(),
        ));
    }
    Ok(right as f64 / seen.max(1) as f64)
}

/// Fine-tunes `head` and `vit` on `train` with `config` (validating on `valid`, logging into
/// `dir` when given), then scores the result on `test`. Returns the training report and the
/// test accuracy.
pub fn fine_tune_images(
    vit: VisionTransformer,
    head: ImageClassifier,
    [train, valid]: [&ClassifyImages; 2],
    test: &ImageViews,
    config: &TrainConfig,
    dir: Option<&Path>,
    device: &Device,
) -> Result<(TrainReport<VisionTransformer, ImageClassifier>, f64)> {
    if train.num_examples() == 0 {
        return Err(Error::EmptyBatch);
    }
    let mut trainer = Trainer::new(Pretrainer::new(vit, head), config).device(device);
    if let Some(dir) = dir {
        trainer = trainer.output(dir);
    }
    let report = trainer.fit(train, valid)?;
    let model = report.model.valid();
    let inner = device.clone().inner();
    let accuracy = image_accuracy(&model.backbone, &model.objective, test, &inner)?;
    Ok((report, accuracy))
}
