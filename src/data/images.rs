//! Images as a task's examples: each a view of one image drawn by an [`Augmentation`] from the
//! example's own random stream (so a resumed run sees the same views), normalised by the data
//! set's mean and standard deviation, and batched as `[batch, channels, side, side]` tensors;
//! labelled views batched with their classes for a classifier ([`ClassifyImages`]).

use std::sync::Arc;

use burn::prelude::*;

use super::{Batch, TARGETS, Task, Weights};
use crate::dataset::Images;
use crate::dataset::images::{FASHION_MNIST_MEAN, FASHION_MNIST_STD};
use crate::error::{Error, Result};
use crate::noise::augment::Augmentation;
use crate::util::rng::ExampleRng;

/// Views of the images of a set, one per example.
#[derive(Debug, Clone)]
pub struct ImageViews {
    images: Arc<Images>,
    augmentation: Augmentation,
    /// Pixels are mapped to `(p − mean) / std`.
    mean: f32,
    std: f32,
}

/// One view of an image: its pixels (normalised, rows first) and its label, if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageExample {
    /// `side × side` normalised pixels, rows first.
    pub pixels: Vec<f32>,
    /// The image's class.
    pub label: Option<usize>,
}

impl ImageViews {
    /// Views of square `images` by `augmentation`, normalised by `mean` and `std` (on the
    /// 0-to-1 scale). An empty set, images that are not square, a bad augmentation or a
    /// standard deviation that is not positive is an error.
    pub fn new(
        images: Arc<Images>,
        augmentation: Augmentation,
        mean: f32,
        std: f32,
    ) -> Result<Self> {
        augmentation.validate()?;
        if images.is_empty() {
            return Err(Error::InvalidConfig("an image task needs images".into()));
        }
        if images.height() != images.width() {
            return Err(Error::InvalidConfig(format!(
                "images of {} × {} are not square",
                images.height(),
                images.width()
            )));
        }
        if !(std.is_finite() && std > 0.0 && mean.is_finite()) {
            return Err(Error::InvalidConfig(format!(
                "pixel mean {mean} and standard deviation {std}: the deviation must be positive"
            )));
        }
        Ok(Self {
            images,
            augmentation,
            mean,
            std,
        })
    }

    /// Views of Fashion-MNIST `images` by `augmentation`, normalised by its training set's
    /// pixel mean and standard deviation.
    pub fn fashion_mnist(
        images: impl Into<Arc<Images>>,
        augmentation: Augmentation,
    ) -> Result<Self> {
        Self::new(
            images.into(),
            augmentation,
            FASHION_MNIST_MEAN,
            FASHION_MNIST_STD,
        )
    }

    /// The same images unaugmented: what evaluation reads.
    pub fn plain(&self) -> Self {
        Self {
            augmentation: Augmentation::none(),
            ..self.clone()
        }
    }

    /// A black pixel (the background of Fashion-MNIST) in the views' normalised scale.
    pub fn background(&self) -> f32 {
        -self.mean / self.std
    }

    /// The images viewed.
    pub fn images(&self) -> &Images {
        &self.images
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there are none (never, for a built task).
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Side of the images, in pixels.
    pub fn side(&self) -> usize {
        self.images.height()
    }

    /// A view of image `index` drawn with `rng`.
    pub fn view(&self, index: usize, rng: &mut ExampleRng) -> ImageExample {
        let side = self.side();
        let image = self.images.image_f32(index);
        let view = self.augmentation.apply(&image, side, side, rng);
        ImageExample {
            pixels: view.iter().map(|p| (p - self.mean) / self.std).collect(),
            label: self.images.label(index),
        }
    }

    /// The pixels of `examples` as one tensor `[batch, 1, side, side]` on `device`.
    pub fn stack(&self, examples: &[&ImageExample], device: &Device) -> Result<Tensor<4>> {
        if examples.is_empty() {
            return Err(Error::EmptyBatch);
        }
        let side = self.side();
        let pixels: Vec<f32> = examples
            .iter()
            .flat_map(|e| e.pixels.iter().copied())
            .collect();
        let data = TensorData::new(pixels, [examples.len(), 1, side, side]);
        Ok(Tensor::from_data(data, device))
    }
}

/// Images `[n, 1, side, side]` and a class for each `[n]`: what an image classifier reads
/// (its classes the data set's, or a pretext task's own, such as a quarter turn).
#[derive(Debug, Clone)]
pub struct LabelledImageBatch {
    /// The views.
    pub images: Tensor<4>,
    /// The class of each.
    pub labels: Tensor<1, Int>,
}

impl LabelledImageBatch {
    /// `examples` batched on `device` by `views`, each with its label (an unlabelled view is
    /// an error).
    pub fn stack(views: &ImageViews, examples: &[&ImageExample], device: &Device) -> Result<Self> {
        let labels = examples
            .iter()
            .map(|e| e.label.map(|l| l as i64))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::InvalidConfig("a classifier's images need labels".into()))?;
        let n = labels.len();
        Ok(Self {
            images: views.stack(examples, device)?,
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        })
    }
}

impl Batch for LabelledImageBatch {
    fn num_tokens(&self) -> usize {
        self.labels.dims()[0]
    }

    fn weights(&self) -> Weights {
        Weights::of(TARGETS, self.labels.dims()[0] as f64)
    }
}

/// Labelled images as a classifier's examples: a view of each, its class the target.
#[derive(Debug, Clone)]
pub struct ClassifyImages {
    views: ImageViews,
}

impl ClassifyImages {
    /// The task over `views`, whose images must all have labels.
    pub fn new(views: ImageViews) -> Result<Self> {
        if views.images.label(0).is_none() {
            return Err(Error::InvalidConfig(
                "images to classify need labels".into(),
            ));
        }
        Ok(Self { views })
    }

    /// The views it draws.
    pub fn views(&self) -> &ImageViews {
        &self.views
    }
}

impl Task for ClassifyImages {
    type Example = ImageExample;
    type Batch = LabelledImageBatch;

    fn num_examples(&self) -> usize {
        self.views.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<ImageExample> {
        Ok(self.views.view(index, rng))
    }

    fn collate(&self, examples: &[ImageExample], device: &Device) -> Result<LabelledImageBatch> {
        let examples: Vec<&ImageExample> = examples.iter().collect();
        LabelledImageBatch::stack(&self.views, &examples, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::images::{FASHION_MNIST_MEAN, FASHION_MNIST_STD, bundled_fashion_mnist};
    use crate::util::rng::example_rng;

    fn views(augmentation: Augmentation) -> ImageViews {
        let (train, _) = bundled_fashion_mnist().unwrap();
        ImageViews::fashion_mnist(train, augmentation).unwrap()
    }

    #[test]
    fn a_view_is_the_normalised_image_and_the_same_stream_gives_the_same_view() {
        let plain = views(Augmentation::none());
        let example = plain.view(3, &mut example_rng(0, 0, 3));
        let (train, _) = bundled_fashion_mnist().unwrap();
        let raw = train.image_f32(3);
        for (p, r) in example.pixels.iter().zip(&raw) {
            assert!((p * FASHION_MNIST_STD + FASHION_MNIST_MEAN - r).abs() < 1e-6);
        }
        assert_eq!(example.label, train.label(3));
        let augmented = views(Augmentation::simclr());
        let once = augmented.view(3, &mut example_rng(5, 2, 3));
        assert_eq!(once, augmented.view(3, &mut example_rng(5, 2, 3)));
        assert_ne!(once, augmented.view(3, &mut example_rng(5, 3, 3)));
        let batch = augmented
            .stack(&[&once, &example], &Device::flex())
            .unwrap();
        assert_eq!(batch.dims(), [2, 1, 28, 28]);
    }

    #[test]
    fn bad_sets_and_settings_are_refused() {
        let (train, _) = bundled_fashion_mnist().unwrap();
        let images = Arc::new(train);
        let none = Augmentation::none();
        assert!(ImageViews::new(images.clone(), none.clone(), 0.0, 0.0).is_err());
        let bad = Augmentation {
            flip: 2.0,
            ..Augmentation::none()
        };
        assert!(ImageViews::new(images.clone(), bad, 0.0, 1.0).is_err());
        let empty = Arc::new(images.subset(&[]));
        assert!(ImageViews::new(empty, none.clone(), 0.0, 1.0).is_err());
        let wide = Arc::new(Images::new(2, 3, vec![0; 6], None).unwrap());
        assert!(ImageViews::new(wide, none.clone(), 0.0, 1.0).is_err());
        let views = ImageViews::new(images, none, 0.0, 1.0).unwrap();
        assert!(matches!(
            views.stack(&[], &Device::flex()),
            Err(Error::EmptyBatch)
        ));
    }
}
