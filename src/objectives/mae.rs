//! MAE (He et al. 2022), masked autoencoding of images: most of an image's patches are hidden
//! (75 %), the Vision Transformer encodes the visible ones alone, and a light decoder fills
//! the rest in from a shared mask vector at their positions; the loss is the mean squared
//! error of the hidden patches' pixels, each patch normalised by its own mean and variance
//! (`norm_pix_loss`), as `facebookresearch/mae` computes it.
//!
//! ```
//! use burn::prelude::*;
//! use pretext::blocks::{BlockConfig, VisionTransformerConfig};
//! use pretext::data::images::ImageViews;
//! use pretext::dataset::images::bundled_fashion_mnist;
//! use pretext::noise::augment::Augmentation;
//! use pretext::objectives::{MaeConfig, MaeTask};
//! use pretext::train::{TrainConfig, Trainer};
//!
//! let device = Device::flex().autodiff();
//! let vit = VisionTransformerConfig::new(32, 2, BlockConfig::new(2, 64))
//!     .with_patch_size(7)
//!     .init(&device)?;
//! let config = MaeConfig::new().with_decoder_width(32).with_decoder_heads(2);
//! let mae = config.init(&vit, &device)?;
//! let (train, test) = bundled_fashion_mnist()?;
//! let views = |images| ImageViews::fashion_mnist(images, Augmentation::mae());
//! let train = MaeTask::new(views(train)?, vit.num_patches(), &config)?;
//! let test = MaeTask::new(views(test)?, vit.num_patches(), &config)?;
//! let schedule = TrainConfig::new(2, 8).with_progress(false);
//! let report = Trainer::new(pretext::Pretrainer::new(vit, mae), &schedule)
//!     .device(&device)
//!     .fit(&train, &test)?;
//! assert!(report.history.iter().any(|r| r.metrics.contains_key("pixel_mse")));
//! # Ok::<(), pretext::Error>(())
//! ```

use burn::module::Param;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

use super::{Loss, Metric, Objective, ObjectiveOutput, Weights};
use crate::blocks::{
    BlockConfig, TransformerEncoder, VisionTransformer, linear_3d, patch_stack, patchify,
    sincos_2d, unpatchify,
};
use crate::data::images::{ImageExample, ImageViews};
use crate::data::{Batch, Task};
use crate::error::{Error, Result};
use crate::util::rng::{ExampleRng, choose};

/// The unit of MAE's loss: the hidden patches of a batch.
pub const MASKED_PATCHES: &str = "masked_patches";

/// MAE's masking and decoder.
#[derive(Config, Debug)]
pub struct MaeConfig {
    /// The share of each image's patches hidden from the encoder. Default 0.75 (MAE's).
    #[config(default = 0.75)]
    pub mask_ratio: f64,
    /// The decoder's width (a multiple of 4, for its 2-D positions). Default 64.
    #[config(default = 64)]
    pub decoder_width: usize,
    /// The decoder's layers. Default 1 (MAE finds one enough for fine-tuning).
    #[config(default = 1)]
    pub decoder_layers: usize,
    /// The decoder's attention heads. Default 4.
    #[config(default = 4)]
    pub decoder_heads: usize,
    /// Whether each target patch is normalised by its own mean and variance. Default true
    /// (MAE's pretraining; its pictures come from a model trained without).
    #[config(default = true)]
    pub norm_pix_loss: bool,
}

/// The decoder and its mask vector; the encoder is the backbone it is handed.
#[derive(Module, Debug)]
pub struct Mae {
    /// Encoder width → decoder width.
    decoder_embed: Linear,
    /// The vector every hidden patch starts the decoder as.
    mask_token: Param<Tensor<1>>,
    /// The decoder's layers and final norm.
    decoder: TransformerEncoder,
    /// Decoder width → a patch's pixels.
    pred: Linear,
    #[module(skip)]
    norm_pix_loss: bool,
}

impl MaeConfig {
    /// Checks the mask ratio and the decoder's shape.
    pub fn validate(&self) -> Result<()> {
        crate::error::check_open_share("mask_ratio", self.mask_ratio)?;
        if self.decoder_width == 0 || !self.decoder_width.is_multiple_of(4) {
            return Err(Error::InvalidConfig(format!(
                "decoder width {} must be a positive multiple of 4 (2-D positions)",
                self.decoder_width
            )));
        }
        Ok(())
    }

    /// Patches an image of `patches` keeps visible: `⌊patches · (1 − ratio)⌋` as MAE counts
    /// (fewer than all, for a ratio above 0), an error when that is none.
    pub fn visible(&self, patches: usize) -> Result<usize> {
        self.validate()?;
        let keep = (patches as f64 * (1.0 - self.mask_ratio)) as usize;
        if keep == 0 {
            return Err(Error::InvalidConfig(format!(
                "a mask ratio of {} leaves none of {patches} patches visible",
                self.mask_ratio
            )));
        }
        Ok(keep)
    }

    /// The decoder for `vit`'s patches.
    pub fn init(&self, vit: &VisionTransformer, device: &Device) -> Result<Mae> {
        self.visible(vit.num_patches())?;
        let width = self.decoder_width;
        let block = BlockConfig::new(self.decoder_heads, 4 * width);
        let xavier = |d_in, d_out| {
            LinearConfig::new(d_in, d_out)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        Ok(Mae {
            decoder_embed: xavier(vit.hidden_size(), width),
            mask_token: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([width], device),
            decoder: patch_stack(width, self.decoder_layers, &block, vit.num_patches() + 1)
                .init(device)?,
            pred: xavier(width, vit.patch_values()),
            norm_pix_loss: self.norm_pix_loss,
        })
    }
}

/// MAE's examples: a view of an image and the order its patches are hidden in.
#[derive(Debug, Clone)]
pub struct MaeTask {
    views: ImageViews,
    patches: usize,
    keep: usize,
}

/// A view and a random order of its patches: the first `keep` are visible.
#[derive(Debug, Clone)]
pub struct MaeExample {
    /// The view.
    pub image: ImageExample,
    /// Every patch index once, in a random order.
    pub order: Vec<usize>,
}

/// A batch of MAE examples.
#[derive(Debug, Clone)]
pub struct MaeBatch {
    /// The views `[batch, 1, side, side]`.
    pub images: Tensor<4>,
    /// The visible patches of each view `[batch, keep]`, in their drawn order.
    pub keep: Tensor<2, Int>,
    /// Where each patch sits in the order `[batch, patches]` (the order's inverse: MAE's
    /// `ids_restore`).
    pub restore: Tensor<2, Int>,
    /// 1 at hidden patches, 0 at visible ones `[batch, patches]`.
    pub hidden: Tensor<2>,
}

impl MaeTask {
    /// Examples of `views` for a model of `patches` patches per image, hiding `mask_ratio` of
    /// them.
    pub fn new(views: ImageViews, patches: usize, config: &MaeConfig) -> Result<Self> {
        let keep = config.visible(patches)?;
        Ok(Self {
            views,
            patches,
            keep,
        })
    }

    /// The images the task reads.
    pub fn views(&self) -> &ImageViews {
        &self.views
    }
}

impl Task for MaeTask {
    type Example = MaeExample;
    type Batch = MaeBatch;

    fn num_examples(&self) -> usize {
        self.views.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<MaeExample> {
        let image = self.views.view(index, rng);
        Ok(MaeExample {
            image,
            order: choose(self.patches, self.patches, rng),
        })
    }

    fn collate(&self, examples: &[MaeExample], device: &Device) -> Result<MaeBatch> {
        let images: Vec<&ImageExample> = examples.iter().map(|e| &e.image).collect();
        let images = self.views.stack(&images, device)?;
        let (n, l, keep) = (examples.len(), self.patches, self.keep);
        let mut visible = Vec::with_capacity(n * keep);
        let mut restore = vec![0i64; n * l];
        let mut hidden = vec![0f32; n * l];
        for (row, example) in examples.iter().enumerate() {
            for (rank, &patch) in example.order.iter().enumerate() {
                restore[row * l + patch] = rank as i64;
                if rank < keep {
                    visible.push(patch as i64);
                } else {
                    hidden[row * l + patch] = 1.0;
                }
            }
        }
        let int =
            |values: Vec<i64>, cols| Tensor::from_data(TensorData::new(values, [n, cols]), device);
        Ok(MaeBatch {
            images,
            keep: int(visible, keep),
            restore: int(restore, l),
            hidden: Tensor::from_data(TensorData::new(hidden, [n, l]), device),
        })
    }
}

impl Batch for MaeBatch {
    fn num_tokens(&self) -> usize {
        let [n, patches] = self.restore.dims();
        n * patches
    }

    fn weights(&self) -> Weights {
        let ([n, patches], keep) = (self.restore.dims(), self.keep.dims()[1]);
        Weights::of(MASKED_PATCHES, (n * (patches - keep)) as f64)
    }
}

impl Mae {
    /// The decoder's reconstruction of every patch `[batch, patches, pixels]` (visible ones
    /// included, as MAE's `forward_decoder` gives them), from `vit`'s encoding of the visible
    /// patches of `batch`.
    pub fn reconstruct(&self, vit: &VisionTransformer, batch: &MaeBatch) -> Tensor<3> {
        let [n, l] = batch.restore.dims();
        let keep = batch.keep.dims()[1];
        let latent = linear_3d(&self.decoder_embed, encode_visible(vit, batch));
        let dd = latent.dims()[2];
        let cls = latent.clone().slice([0..n, 0..1, 0..dd]);
        let tokens = latent.slice([0..n, 1..1 + keep, 0..dd]);
        let masks = self
            .mask_token
            .val()
            .reshape([1, 1, dd])
            .expand([n, l - keep, dd]);
        // Visible then mask vectors, in the drawn order; `restore` puts each at its patch.
        let ordered = Tensor::cat(vec![tokens, masks], 1);
        let restored = ordered.gather(1, expand_index(batch.restore.clone(), dd));
        let grid = (l as f64).sqrt().round() as usize;
        let device = restored.device();
        let positions = Tensor::<1>::from_floats(sincos_2d(grid, dd).as_slice(), &device);
        let patches = restored + positions.reshape([1, l, dd]);
        let decoded = self
            .decoder
            .encode_embedded(Tensor::cat(vec![cls, patches], 1), None);
        linear_3d(&self.pred, decoded.slice([0..n, 1..1 + l, 0..dd]))
    }

    /// What MAE's figures show of `batch`, each `[batch, channels, side, side]` in the views'
    /// own pixel scale: the views with their hidden patches set to `blank`, and the decoder's
    /// reconstruction with the visible patches pasted in. A model trained on normalised
    /// patches predicts shapes, not levels: its patches are put back at each true patch's
    /// mean and deviation, as MAE's demo does.
    pub fn pictures(
        &self,
        vit: &VisionTransformer,
        batch: &MaeBatch,
        blank: f32,
    ) -> [Tensor<4>; 2] {
        let (p, channels) = (vit.patch_size(), batch.images.dims()[1]);
        let target = patchify(batch.images.clone(), p);
        let mut predicted = self.reconstruct(vit, batch);
        if self.norm_pix_loss {
            let (mean, std) = patch_statistics(&target);
            predicted = predicted * std + mean;
        }
        let [n, l] = batch.restore.dims();
        let hidden = batch.hidden.clone().reshape([n, l, 1]);
        let shown = target * (hidden.ones_like() - hidden.clone());
        let masked = shown.clone() + hidden.clone() * blank;
        let rebuilt = shown + predicted * hidden;
        [masked, rebuilt].map(|patches| unpatchify(patches, p, channels))
    }

    /// What each patch of `images` is scored against `[batch, patches, pixels]`: its pixels,
    /// normalised per patch with `norm_pix_loss` (unbiased variance, ε 10⁻⁶, as MAE).
    pub fn targets(&self, images: Tensor<4>, patch_size: usize) -> Tensor<3> {
        let target = patchify(images, patch_size);
        if !self.norm_pix_loss {
            return target;
        }
        let (mean, std) = patch_statistics(&target);
        (target - mean) / std
    }
}

/// Each patch's mean and deviation `[batch, patches, 1]` as `norm_pix_loss` takes them
/// (unbiased variance, ε 10⁻⁶, as MAE).
fn patch_statistics(patches: &Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let mean = patches.clone().mean_dim(2);
    let std = patches.clone().var(2).add_scalar(1e-6).sqrt();
    (mean, std)
}

/// `vit`'s states `[batch, 1 + keep, width]` of `[CLS]` and the visible patches of `batch`:
/// the encoder is handed those alone, so it never sees a hidden patch.
pub fn encode_visible(vit: &VisionTransformer, batch: &MaeBatch) -> Tensor<3> {
    let x = vit.embed_patches(batch.images.clone());
    let width = x.dims()[2];
    vit.encode_patches(x.gather(1, expand_index(batch.keep.clone(), width)))
}

/// Indices `[batch, len]` repeated along a last dimension of `width`, for `gather`.
fn expand_index(ids: Tensor<2, Int>, width: usize) -> Tensor<3, Int> {
    let [n, len] = ids.dims();
    ids.unsqueeze_dim::<3>(2).expand([n, len, width])
}

impl Objective<VisionTransformer> for Mae {
    type Batch = MaeBatch;

    fn forward(&self, vit: &VisionTransformer, batch: MaeBatch) -> ObjectiveOutput {
        let pred = self.reconstruct(vit, &batch);
        let target = self.targets(batch.images.clone(), vit.patch_size());
        let [n, l, _] = pred.dims();
        let per_patch = (pred - target).powf_scalar(2.0).mean_dim(2).reshape([n, l]);
        let sum = (per_patch * batch.hidden.clone()).sum();
        let count = batch.hidden.sum();
        ObjectiveOutput {
            metrics: vec![Metric::mean("pixel_mse", sum.clone().detach(), count)],
            loss: Loss::over(MASKED_PATCHES, sum),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{VisionTransformerConfig, unpatchify};
    use crate::dataset::images::bundled_fashion_mnist;
    use crate::noise::augment::Augmentation;
    use crate::test_support::max_abs_diff;
    use crate::util::rng::example_rng;

    /// A seeded ViT of 16 patches of 7 × 7 and MAE's decoder for it.
    fn model(device: &Device) -> (VisionTransformer, Mae) {
        crate::util::random::init_seeded(device, 4, || {
            let vit = VisionTransformerConfig::new(16, 1, BlockConfig::new(2, 32))
                .with_patch_size(7)
                .init(device)
                .unwrap();
            let mae = MaeConfig::new().with_decoder_width(8).with_decoder_heads(2);
            let mae = mae.init(&vit, device).unwrap();
            (vit, mae)
        })
    }

    fn task(config: &MaeConfig) -> MaeTask {
        let (train, _) = bundled_fashion_mnist().unwrap();
        let views = ImageViews::fashion_mnist(train, Augmentation::mae()).unwrap();
        MaeTask::new(views, 16, config).unwrap()
    }

    fn batch(task: &MaeTask, device: &Device) -> MaeBatch {
        let examples: Vec<MaeExample> = (0..3)
            .map(|i| task.example(i, &mut example_rng(1, 0, i as u64)).unwrap())
            .collect();
        task.collate(&examples, device).unwrap()
    }

    #[test]
    fn masking_hides_the_exact_share_and_restore_inverts_the_order() {
        let task = task(&MaeConfig::new());
        let device = Device::flex();
        let example = task.example(5, &mut example_rng(1, 0, 5)).unwrap();
        let mut sorted = example.order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..16).collect::<Vec<_>>());
        let batch = batch(&task, &device);
        // ⌊16 · 0.25⌋ = 4 visible, 12 hidden, in every row.
        assert_eq!(batch.keep.dims(), [3, 4]);
        let hidden: Vec<f32> = batch
            .hidden
            .clone()
            .sum_dim(1)
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_eq!(hidden, [12.0; 3]);
        assert_eq!(batch.weights().get(MASKED_PATCHES), 36.0);
        // The visible patches are the hidden mask's zeros, and restore puts them first.
        let keep: Vec<i64> = batch
            .keep
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        let restore: Vec<i64> = batch
            .restore
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        let mask: Vec<f32> = batch.hidden.into_data().try_to_vec().unwrap();
        for row in 0..3 {
            for (rank, &patch) in keep[row * 4..row * 4 + 4].iter().enumerate() {
                assert_eq!(restore[row * 16 + patch as usize], rank as i64);
                assert_eq!(mask[row * 16 + patch as usize], 0.0);
            }
        }
    }

    #[test]
    fn the_encoder_never_sees_a_hidden_patch() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (vit, mae) = model(&device);
        let task = task(&MaeConfig::new());
        let batch = batch(&task, &device);
        let seen = encode_visible(&vit, &batch);
        // Scribble over every hidden patch: what the encoder gives does not move.
        let patches = patchify(batch.images.clone(), 7);
        let hidden = batch.hidden.clone().unsqueeze_dim::<3>(2);
        let scribbled = MaeBatch {
            images: unpatchify(patches.clone() + hidden.clone().mul_scalar(5.0), 7, 1),
            ..batch.clone()
        };
        assert_eq!(
            max_abs_diff(encode_visible(&vit, &scribbled), seen.clone()),
            0.0
        );
        // Over a visible one, it does.
        let visible = hidden.neg().add_scalar(1.0);
        let touched = MaeBatch {
            images: unpatchify(patches + visible.mul_scalar(5.0), 7, 1),
            ..batch.clone()
        };
        assert!(max_abs_diff(encode_visible(&vit, &touched), seen) > 1e-3);
        // The decoder rebuilds every patch, and the loss is over the hidden ones.
        assert_eq!(mae.reconstruct(&vit, &batch).dims(), [3, 16, 49]);
        let out = mae.forward(&vit, batch);
        assert!(
            out.loss
                .normalized(&Weights::of(MASKED_PATCHES, 36.0))
                .into_scalar::<f32>()
                > 0.0
        );
    }

    #[test]
    fn normalised_targets_have_each_patch_at_mean_0_and_variance_1() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (_, mae) = model(&device);
        let images =
            Tensor::<4>::random([2, 1, 28, 28], burn::tensor::Distribution::Default, &device);
        let targets = mae.targets(images, 7);
        let mean = targets.clone().mean_dim(2).abs().max().into_scalar::<f32>();
        let var = targets
            .var(2)
            .sub_scalar(1.0)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(mean < 1e-4 && var < 1e-3, "{mean} {var}");
    }

    #[test]
    fn pictures_keep_the_visible_patches_and_blank_or_fill_the_hidden_ones() {
        let device = Device::flex();
        let (vit, mae) = model(&device);
        let batch = batch(&task(&MaeConfig::new()), &device);
        let [masked, rebuilt] = mae.pictures(&vit, &batch, -5.0);
        let input = patchify(batch.images.clone(), 7);
        let hidden = batch.hidden.clone().reshape([3, 16, 1]).expand([3, 16, 49]);
        let visible = hidden.ones_like() - hidden.clone();
        let [masked, rebuilt] = [masked, rebuilt].map(|p| patchify(p, 7));
        let gap = |a: Tensor<3>, b: Tensor<3>| a.sub(b).abs().max().into_scalar::<f32>();
        assert!(
            gap(
                masked.clone() * visible.clone(),
                input.clone() * visible.clone()
            ) < 1e-6
        );
        assert!(gap(rebuilt.clone() * visible.clone(), input.clone() * visible) < 1e-6);
        assert!(gap(masked * hidden.clone(), hidden.clone() * -5.0) < 1e-6);
        // The hidden patches are the decoder's guesses, not the input or the blank.
        assert!(gap(rebuilt.clone() * hidden.clone(), input * hidden.clone()) > 1e-2);
        assert!(gap(rebuilt * hidden.clone(), hidden * -5.0) > 1e-2);
    }

    #[test]
    fn mask_ratios_that_leave_nothing_to_see_or_hide_are_refused() {
        for ratio in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
            let err = MaeConfig::new()
                .with_mask_ratio(ratio)
                .validate()
                .unwrap_err();
            assert!(err.to_string().contains("mask_ratio"), "{err}");
        }
        // Of 16 patches, 0.97 leaves none visible.
        let err = MaeConfig::new()
            .with_mask_ratio(0.97)
            .visible(16)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
        assert_eq!(MaeConfig::new().visible(49).unwrap(), 12);
        assert!(MaeConfig::new().with_decoder_width(30).validate().is_err());
    }
}
