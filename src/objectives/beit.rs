//! Masked image modelling over patch codes, BEiT-lite (Bao et al. 2022, with iGPT's k-means
//! palette for the dVAE): a share of each view's patches is replaced by a learned `[MASK]`
//! embedding before the Vision Transformer, and the MLM head (BERT's transform and an output
//! over the codes) predicts the [`PatchCodebook`] code of every hidden patch. Blank patches
//! are not targets: a third of Fashion-MNIST's patches are background, and a model that
//! says "background" everywhere would look good for nothing. Patches are hidden uniformly at
//! random, not in BEiT's blocks.
//!
//! ```
//! use std::sync::Arc;
//! use burn::prelude::*;
//! use pretext::blocks::{BlockConfig, VisionTransformerConfig};
//! use pretext::data::images::ImageViews;
//! use pretext::data::patch_codes::{CodebookFit, PatchCodebook};
//! use pretext::data::{Batch, Task};
//! use pretext::dataset::images::bundled_fashion_mnist;
//! use pretext::noise::augment::Augmentation;
//! use pretext::objectives::{BeitConfig, BeitTask, Objective};
//!
//! let device = Device::flex();
//! let (train, _) = bundled_fashion_mnist().unwrap();
//! let views = ImageViews::fashion_mnist(train, Augmentation::mae()).unwrap();
//! let fit = CodebookFit { samples: 2000, iterations: 4, ..CodebookFit::new(32, 7) };
//! let codebook = Arc::new(PatchCodebook::fit(&views, &fit).unwrap());
//! let vit = VisionTransformerConfig::new(16, 1, BlockConfig::new(2, 32))
//!     .with_patch_size(7)
//!     .init(&device)
//!     .unwrap();
//! let config = BeitConfig::new();
//! let beit = config.init(&vit, codebook.len(), &device).unwrap();
//! let task = BeitTask::new(views, codebook, &config).unwrap();
//! let examples: Vec<_> = (0..4)
//!     .map(|i| task.example(i, &mut pretext::util::rng::example_rng(0, 0, i as u64)).unwrap())
//!     .collect();
//! let batch = task.collate(&examples, &device).unwrap();
//! let weights = batch.weights();
//! let out = beit.forward(&vit, batch);
//! // About ln 32 at the start: the head does not yet know the 32 codes apart.
//! let loss = out.loss.normalized(&weights).into_scalar::<f32>();
//! assert!(loss > 2.0 && loss < 6.0, "{loss}");
//! assert_eq!(out.metrics[1].name, "code_acc");
//! ```

use std::sync::Arc;

use burn::module::Param;
use burn::prelude::*;

use super::{Objective, ObjectiveOutput, TARGETS, Weights, masked_cross_entropy};
use crate::blocks::{LmHead, LmHeadConfig, VisionTransformer};
use crate::data::images::{ImageExample, ImageViews};
use crate::data::patch_codes::PatchCodebook;
use crate::data::{Batch, Task};
use crate::error::Result;
use crate::util::rng::{ExampleRng, choose};

/// BEiT-lite's settings.
#[derive(Config, Debug)]
pub struct BeitConfig {
    /// The share of each view's patches hidden. Default 0.4 (BEiT's 75 of 196).
    #[config(default = 0.4)]
    pub mask_ratio: f64,
}

/// The `[MASK]` embedding, the codes' output table and the MLM head over them.
#[derive(Module, Debug)]
pub struct Beit {
    mask_token: Param<Tensor<1>>,
    /// One row per code `[codes, width]`: the table the head's output is tied to.
    codes: Param<Tensor<2>>,
    head: LmHead,
}

impl BeitConfig {
    /// Checks the mask ratio.
    pub fn validate(&self) -> Result<()> {
        crate::error::check_open_share("mask_ratio", self.mask_ratio)
    }

    /// Patches hidden of `patches` (at least one).
    pub fn hidden(&self, patches: usize) -> Result<usize> {
        self.validate()?;
        Ok(((patches as f64 * self.mask_ratio).round() as usize).clamp(1, patches))
    }

    /// The head for `vit` over `codes` codes.
    pub fn init(&self, vit: &VisionTransformer, codes: usize, device: &Device) -> Result<Beit> {
        self.validate()?;
        let width = vit.hidden_size();
        let normal = burn::nn::Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        Ok(Beit {
            mask_token: normal.init([width], device),
            codes: normal.init([codes, width], device),
            head: LmHeadConfig::new(width, width, codes)
                .with_layer_norm_eps(1e-6)
                .init(device),
        })
    }
}

/// BEiT-lite's examples: a view, the code of each of its patches, and which are hidden.
#[derive(Debug, Clone)]
pub struct BeitTask {
    views: ImageViews,
    codebook: Arc<PatchCodebook>,
    hidden: usize,
}

/// A view, its patches' codes, and the patches hidden.
#[derive(Debug, Clone)]
pub struct BeitExample {
    /// The view.
    pub image: ImageExample,
    /// Every patch's code, row by row of patches.
    pub codes: Vec<u32>,
    /// The hidden patches.
    pub hidden: Vec<usize>,
}

/// A batch of BEiT-lite examples.
#[derive(Debug, Clone)]
pub struct BeitBatch {
    /// The views `[batch, 1, side, side]`.
    pub images: Tensor<4>,
    /// 1 at hidden patches `[batch, patches]`.
    pub hidden: Tensor<2>,
    /// The hidden patches that are targets, as flat indices `b · patches + t` `[targets]`.
    pub target_positions: Tensor<1, Int>,
    /// Their codes `[targets]`.
    pub target_codes: Tensor<1, Int>,
}

impl BeitTask {
    /// Examples of `views` coded by `codebook` (fitted for the model's patch size), hiding
    /// `config`'s share of the patches.
    pub fn new(
        views: ImageViews,
        codebook: Arc<PatchCodebook>,
        config: &BeitConfig,
    ) -> Result<Self> {
        let side = views.side();
        let patches = codebook.codes(&vec![0.0; side * side], side).len();
        let hidden = config.hidden(patches)?;
        Ok(Self {
            views,
            codebook,
            hidden,
        })
    }
}

impl Task for BeitTask {
    type Example = BeitExample;
    type Batch = BeitBatch;

    fn num_examples(&self) -> usize {
        self.views.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<BeitExample> {
        let image = self.views.view(index, rng);
        let codes = self.codebook.codes(&image.pixels, self.views.side());
        let hidden = choose(codes.len(), self.hidden, rng);
        Ok(BeitExample {
            image,
            codes,
            hidden,
        })
    }

    fn collate(&self, examples: &[BeitExample], device: &Device) -> Result<BeitBatch> {
        let images: Vec<&ImageExample> = examples.iter().map(|e| &e.image).collect();
        let images = self.views.stack(&images, device)?;
        let n = examples.len();
        let l = examples[0].codes.len();
        let mut hidden = vec![0f32; n * l];
        let (mut positions, mut codes) = (Vec::new(), Vec::new());
        let background = self.codebook.background();
        for (row, example) in examples.iter().enumerate() {
            let mut at: Vec<usize> = example.hidden.clone();
            at.sort_unstable();
            for t in at {
                hidden[row * l + t] = 1.0;
                if example.codes[t] != background {
                    positions.push((row * l + t) as i64);
                    codes.push(example.codes[t] as i64);
                }
            }
        }
        let int = |values: Vec<i64>| {
            let len = values.len();
            Tensor::from_data(TensorData::new(values, [len]), device)
        };
        Ok(BeitBatch {
            images,
            hidden: Tensor::from_data(TensorData::new(hidden, [n, l]), device),
            target_positions: int(positions),
            target_codes: int(codes),
        })
    }
}

impl Batch for BeitBatch {
    fn num_tokens(&self) -> usize {
        let [n, patches] = self.hidden.dims();
        n * patches
    }

    fn weights(&self) -> Weights {
        Weights::of(TARGETS, self.target_codes.dims()[0] as f64)
    }
}

impl Objective<VisionTransformer> for Beit {
    type Batch = BeitBatch;

    fn forward(&self, vit: &VisionTransformer, batch: BeitBatch) -> ObjectiveOutput {
        let x = vit.embed_patches_replacing(batch.images, batch.hidden, self.mask_token.val());
        let hidden = vit.encode_patches(x);
        let [n, len, width] = hidden.dims();
        let patches = hidden.slice([0..n, 1..len, 0..width]);
        let logits = self
            .head
            .forward_at(patches, batch.target_positions, self.codes.val());
        let predictions = masked_cross_entropy(logits, batch.target_codes);
        ObjectiveOutput {
            loss: predictions.loss(TARGETS),
            metrics: vec![
                predictions.mean_loss("code_loss"),
                predictions.accuracy("code_acc"),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{BlockConfig, VisionTransformerConfig};
    use crate::data::patch_codes::CodebookFit;
    use crate::dataset::images::bundled_fashion_mnist;
    use crate::noise::augment::Augmentation;
    use crate::util::rng::example_rng;

    fn task(mask_ratio: f64) -> BeitTask {
        let (train, _) = bundled_fashion_mnist().unwrap();
        let views = ImageViews::fashion_mnist(train, Augmentation::none()).unwrap();
        let fit = CodebookFit {
            samples: 2000,
            iterations: 4,
            ..CodebookFit::new(32, 4)
        };
        let codebook = Arc::new(PatchCodebook::fit(&views, &fit).unwrap());
        BeitTask::new(
            views,
            codebook,
            &BeitConfig::new().with_mask_ratio(mask_ratio),
        )
        .unwrap()
    }

    #[test]
    fn the_hidden_share_is_exact_and_only_hidden_non_blank_patches_are_targets() {
        let task = task(0.4);
        let examples: Vec<BeitExample> = (0..6)
            .map(|i| task.example(i, &mut example_rng(2, 0, i as u64)).unwrap())
            .collect();
        let batch = task.collate(&examples, &Device::flex()).unwrap();
        let hidden = crate::util::floats(batch.hidden.clone());
        let positions = crate::util::ints(batch.target_positions.clone());
        let codes = crate::util::ints(batch.target_codes.clone());
        let background = task.codebook.background() as i64;
        for (row, example) in examples.iter().enumerate() {
            let count = hidden[row * 49..(row + 1) * 49]
                .iter()
                .filter(|&&h| h == 1.0)
                .count();
            assert_eq!(count, 20, "round(0.4 × 49) hidden");
            let expected: usize = example
                .hidden
                .iter()
                .filter(|&&t| example.codes[t] as i64 != background)
                .count();
            let targets = positions
                .iter()
                .filter(|&&p| p as usize / 49 == row)
                .count();
            assert_eq!(targets, expected);
        }
        for (&p, &c) in positions.iter().zip(&codes) {
            let (row, t) = (p as usize / 49, p as usize % 49);
            assert_eq!(hidden[p as usize], 1.0);
            assert_eq!(examples[row].codes[t] as i64, c);
            assert_ne!(c, background);
        }
    }

    #[test]
    fn the_model_sees_nothing_of_a_hidden_patch() {
        let device = Device::flex();
        let task = task(0.4);
        let vit = crate::util::random::init_seeded(&device, 3, || {
            VisionTransformerConfig::new(16, 1, BlockConfig::new(2, 32))
                .init(&device)
                .unwrap()
        });
        let beit = BeitConfig::new().init(&vit, 32, &device).unwrap();
        let example = task.example(0, &mut example_rng(0, 0, 0)).unwrap();
        let mut scribbled = example.clone();
        for &t in &example.hidden {
            let (gy, gx) = (t / 7, t % 7);
            for y in 0..4 {
                for x in 0..4 {
                    scribbled.image.pixels[(gy * 4 + y) * 28 + gx * 4 + x] = 3.0;
                }
            }
        }
        let forward = |e: &BeitExample| {
            let batch = task.collate(std::slice::from_ref(e), &device).unwrap();
            let x = vit.embed_patches_replacing(batch.images, batch.hidden, beit.mask_token.val());
            vit.encode_patches(x)
        };
        let gap = (forward(&example) - forward(&scribbled))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(gap < 1e-5, "{gap}");
    }

    #[test]
    fn mask_ratios_outside_the_open_interval_are_refused() {
        for ratio in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(BeitConfig::new().with_mask_ratio(ratio).validate().is_err());
        }
    }
}
