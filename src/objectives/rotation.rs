//! Rotation prediction (RotNet, Gidaris et al. 2018), the classic pretext task: every image
//! appears in its batch turned by 0°, 90°, 180° and 270° (exact quarter turns, no
//! interpolation), and a linear head on the encoder's vector says which turn it sees. Clothes
//! have an upright, so the task is learnable; a bag or a sandal may look alike turned.

use burn::nn::Linear;
use burn::prelude::*;

use super::{Objective, ObjectiveOutput, TARGETS, Weights, masked_cross_entropy};
use crate::blocks::{VisionTransformer, normal_linear};
use crate::data::images::{ImageExample, ImageViews};
use crate::data::{Batch, Task};
use crate::error::Result;
use crate::noise::augment::rotate_quarters;
use crate::util::rng::ExampleRng;

/// The four quarter turns a head tells apart.
const TURNS: usize = 4;

/// The head: the encoder's `[CLS]` vector to four turns.
#[derive(Module, Debug)]
pub struct Rotation {
    classifier: Linear,
}

impl Rotation {
    /// A fresh head for `vit`.
    pub fn new(vit: &VisionTransformer, device: &Device) -> Self {
        Self {
            classifier: normal_linear(vit.hidden_size(), TURNS, 0.02, device),
        }
    }
}

/// RotNet's examples: a view of an image in all four turns.
#[derive(Debug, Clone)]
pub struct RotationTask {
    views: ImageViews,
}

/// One view in its four turns, 0 to 3 quarters anticlockwise.
#[derive(Debug, Clone)]
pub struct RotationExample {
    /// The turned views, by number of quarter turns.
    pub turns: Vec<ImageExample>,
}

/// Views `[4N, 1, side, side]` and the turn of each `[4N]`.
#[derive(Debug, Clone)]
pub struct RotationBatch {
    /// The turned views.
    pub images: Tensor<4>,
    /// How many quarter turns each shows.
    pub turns: Tensor<1, Int>,
}

impl RotationTask {
    /// The four turns of views of `views`' images (which must not be augmented by rotation).
    pub fn new(views: ImageViews) -> Self {
        Self { views }
    }
}

impl Task for RotationTask {
    type Example = RotationExample;
    type Batch = RotationBatch;

    fn num_examples(&self) -> usize {
        self.views.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<RotationExample> {
        let view = self.views.view(index, rng);
        let side = self.views.side();
        let turns = (0..TURNS)
            .map(|turn| ImageExample {
                pixels: rotate_quarters(&view.pixels, side, turn),
                label: Some(turn),
            })
            .collect();
        Ok(RotationExample { turns })
    }

    fn collate(&self, examples: &[RotationExample], device: &Device) -> Result<RotationBatch> {
        let views: Vec<&ImageExample> = examples.iter().flat_map(|e| &e.turns).collect();
        let turns: Vec<i64> = views.iter().map(|v| v.label.unwrap_or(0) as i64).collect();
        let n = turns.len();
        Ok(RotationBatch {
            images: self.views.stack(&views, device)?,
            turns: Tensor::from_data(TensorData::new(turns, [n]), device),
        })
    }
}

impl Batch for RotationBatch {
    fn num_tokens(&self) -> usize {
        self.turns.dims()[0]
    }

    fn weights(&self) -> Weights {
        Weights::of(TARGETS, self.turns.dims()[0] as f64)
    }
}

impl Objective<VisionTransformer> for Rotation {
    type Batch = RotationBatch;

    fn forward(&self, vit: &VisionTransformer, batch: RotationBatch) -> ObjectiveOutput {
        let logits = self.classifier.forward(vit.features(batch.images, false));
        let predictions = masked_cross_entropy(logits, batch.turns);
        ObjectiveOutput {
            loss: predictions.loss(TARGETS),
            metrics: vec![
                predictions.mean_loss("rotation_loss"),
                predictions.accuracy("rotation_acc"),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::images::bundled_fashion_mnist;
    use crate::noise::augment::Augmentation;
    use crate::util::rng::example_rng;

    #[test]
    fn every_view_comes_in_its_four_turns_labelled_by_the_turn() {
        let (train, _) = bundled_fashion_mnist().unwrap();
        let views = ImageViews::new(std::sync::Arc::new(train), Augmentation::none(), 0.0, 1.0);
        let task = RotationTask::new(views.unwrap());
        let example = task.example(2, &mut example_rng(0, 0, 2)).unwrap();
        let labels: Vec<_> = example.turns.iter().map(|t| t.label).collect();
        assert_eq!(labels, [Some(0), Some(1), Some(2), Some(3)]);
        // A turn is a turn of the unturned view, and four bring it back.
        let upright = &example.turns[0].pixels;
        assert_eq!(&rotate_quarters(upright, 28, 3), &example.turns[3].pixels);
        assert_ne!(upright, &example.turns[1].pixels);
        let batch = task
            .collate(&[example.clone(), example], &Device::flex())
            .unwrap();
        assert_eq!(batch.images.dims(), [8, 1, 28, 28]);
        let turns: Vec<i64> = batch
            .turns
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        assert_eq!(turns, [0, 1, 2, 3, 0, 1, 2, 3]);
    }
}
