//! Rotation prediction (RotNet, Gidaris et al. 2018), the classic pretext task: every image
//! appears in its batch turned by 0°, 90°, 180° and 270° (exact quarter turns, no
//! interpolation), and a linear head on the encoder's vector says which turn it sees. Clothes
//! have an upright, so the task is learnable; a bag or a sandal may look alike turned.

use burn::prelude::*;

use super::ImageClassifier;
use crate::blocks::VisionTransformer;
use crate::data::Task;
use crate::data::images::{ImageExample, ImageViews, LabelledImageBatch};
use crate::error::Result;
use crate::noise::augment::rotate_quarters;
use crate::util::rng::ExampleRng;

/// The four quarter turns a head tells apart.
const TURNS: usize = 4;

/// RotNet's head: a fresh linear layer from `vit`'s `[CLS]` vector to the four turns, its
/// metrics `rotation_acc` and `rotation_loss`.
pub fn rotation_head(vit: &VisionTransformer, device: &Device) -> Result<ImageClassifier> {
    ImageClassifier::new(vit, TURNS, false, "rotation", device)
}

/// RotNet's examples: a view of an image in all four turns.
#[derive(Debug, Clone)]
pub struct RotationTask {
    views: ImageViews,
}

/// One view in its four turns, 0 to 3 quarters anticlockwise.
#[derive(Debug, Clone)]
pub struct RotationExample {
    /// The turned views, by number of quarter turns, each labelled by its turn.
    pub turns: Vec<ImageExample>,
}

impl RotationTask {
    /// The four turns of views of `views`' images (which must not be augmented by rotation).
    pub fn new(views: ImageViews) -> Self {
        Self { views }
    }
}

impl Task for RotationTask {
    type Example = RotationExample;
    type Batch = LabelledImageBatch;

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

    /// Views `[4N, 1, side, side]` labelled by their turns.
    fn collate(&self, examples: &[RotationExample], device: &Device) -> Result<LabelledImageBatch> {
        let views: Vec<&ImageExample> = examples.iter().flat_map(|e| &e.turns).collect();
        LabelledImageBatch::stack(&self.views, &views, device)
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
            .labels
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        assert_eq!(turns, [0, 1, 2, 3, 0, 1, 2, 3]);
    }
}
