//! A Vision Transformer (Dosovitskiy et al. 2021) from the crate's own blocks: an image cut
//! into square patches, each flattened and mapped to the model's width, fixed 2-D sine-cosine
//! positions added (MAE's table), a learned `[CLS]` vector in front, then the same stack of
//! encoder layers the text encoder runs.

use burn::module::Param;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

use super::block::BlockConfig;
use super::encoder::{TransformerEncoder, TransformerEncoderConfig};
use super::mask::AttentionMask;
use super::positions::PositionEncoding;
use super::{EncoderBackbone, linear_3d};
use crate::error::{Error, Result};

/// The shape of a [`VisionTransformer`].
#[derive(Config, Debug)]
pub struct VisionTransformerConfig {
    /// Side of the (square) images, in pixels. Default 28 (Fashion-MNIST).
    #[config(default = 28)]
    pub image_size: usize,
    /// Channels of each pixel. Default 1 (grayscale).
    #[config(default = 1)]
    pub channels: usize,
    /// Side of a patch, which must divide the image's. Default 4: 49 patches of 16 pixels.
    #[config(default = 4)]
    pub patch_size: usize,
    /// Model width (a multiple of 4, for the 2-D positions).
    pub hidden_size: usize,
    /// Number of layers.
    pub num_layers: usize,
    /// The layers' shape (pre-norm, as ViT's).
    pub block: BlockConfig,
    /// Dropout on the layers' residual branches. Default 0 (MAE pretrains without).
    #[config(default = 0.0)]
    pub dropout: f64,
}

/// Patches → width, positions, `[CLS]`, then an encoder stack.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    /// The map from a flattened patch to the model's width (a convolution of stride `p`).
    patches: Linear,
    /// The `[CLS]` vector `[width]`, whose position is all zeros.
    cls: Param<Tensor<1>>,
    /// The layers and the final norm (its one-row token table is never read).
    encoder: TransformerEncoder,
    #[module(skip)]
    image_size: usize,
    #[module(skip)]
    channels: usize,
    #[module(skip)]
    patch_size: usize,
}

impl VisionTransformerConfig {
    /// Patches along one side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }

    /// Checks that the patches tile the image and that the width suits the positions.
    pub fn validate(&self) -> Result<()> {
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return Err(Error::InvalidConfig(format!(
                "patch size {} does not divide the image side {}",
                self.patch_size, self.image_size
            )));
        }
        if self.channels == 0 {
            return Err(Error::InvalidConfig("an image needs a channel".into()));
        }
        if !self.hidden_size.is_multiple_of(4) {
            return Err(Error::InvalidConfig(format!(
                "hidden size {} is not a multiple of 4: the 2-D positions give each axis half \
                 the width, in sine-cosine pairs",
                self.hidden_size
            )));
        }
        self.stack().validate()
    }

    /// The stack's shape (see [`patch_stack`]).
    fn stack(&self) -> TransformerEncoderConfig {
        let tokens = self.grid() * self.grid() + 1;
        patch_stack(self.hidden_size, self.num_layers, &self.block, tokens)
            .with_dropout(self.dropout)
    }

    /// Builds the model.
    pub fn init(&self, device: &Device) -> Result<VisionTransformer> {
        self.validate()?;
        let patch = self.patch_size * self.patch_size * self.channels;
        Ok(VisionTransformer {
            // MAE initialises the patch map Xavier-uniform, as a linear map.
            patches: LinearConfig::new(patch, self.hidden_size)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device),
            cls: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([self.hidden_size], device),
            encoder: self.stack().init(device)?,
            image_size: self.image_size,
            channels: self.channels,
            patch_size: self.patch_size,
        })
    }
}

impl VisionTransformer {
    /// Patches per image.
    pub fn num_patches(&self) -> usize {
        let grid = self.image_size / self.patch_size;
        grid * grid
    }

    /// Values in one flattened patch (`p² · channels`).
    pub fn patch_values(&self) -> usize {
        self.patch_size * self.patch_size * self.channels
    }

    /// Model width.
    pub fn hidden_size(&self) -> usize {
        self.encoder.hidden_size()
    }

    /// The stack of encoder layers (and its final norm) the patches run through.
    pub fn stack(&self) -> &TransformerEncoder {
        &self.encoder
    }

    /// Side of a patch.
    pub fn patch_size(&self) -> usize {
        self.patch_size
    }

    /// The patches of `images` `[batch, channels, side, side]` mapped to the model's width
    /// with their positions added: `[batch, patches, width]`, row by row of patches.
    pub fn embed_patches(&self, images: Tensor<4>) -> Tensor<3> {
        let x = linear_3d(&self.patches, patchify(images, self.patch_size));
        self.position(x)
    }

    /// [`embed_patches`](Self::embed_patches) with the patches where `replaced` `[batch,
    /// patches]` is 1 mapped to `vector` `[width]` instead (BEiT's and SimMIM's `[MASK]`
    /// embedding), their positions added as any patch's.
    pub fn embed_patches_replacing(
        &self,
        images: Tensor<4>,
        replaced: Tensor<2>,
        vector: Tensor<1>,
    ) -> Tensor<3> {
        let x = linear_3d(&self.patches, patchify(images, self.patch_size));
        let [batch, n, width] = x.dims();
        let replaced = replaced.reshape([batch, n, 1]);
        let kept = replaced.ones_like() - replaced.clone();
        let vector = vector.reshape([1, 1, width]);
        self.position(x * kept + replaced * vector)
    }

    /// `x` `[batch, patches, width]` with the fixed positions added.
    fn position(&self, x: Tensor<3>) -> Tensor<3> {
        let device = x.device();
        let grid = self.image_size / self.patch_size;
        let width = self.hidden_size();
        let table = Tensor::<1>::from_floats(sincos_2d(grid, width).as_slice(), &device);
        x + table.reshape([1, grid * grid, width])
    }

    /// The stack over `patches` `[batch, n, width]` (embedded, positioned, any subset of an
    /// image's) with `[CLS]` put in front: `[batch, 1 + n, width]`, `[CLS]` first.
    pub fn encode_patches(&self, patches: Tensor<3>) -> Tensor<3> {
        let [batch, _, width] = patches.dims();
        let cls = self
            .cls
            .val()
            .reshape([1, 1, width])
            .expand([batch, 1, width]);
        let x = Tensor::cat(vec![cls, patches], 1);
        self.encoder.encode_embedded(x, None::<&AttentionMask>)
    }

    /// Hidden states `[batch, 1 + patches, width]` of `images` `[batch, channels, side,
    /// side]`: `[CLS]` first, then every patch's.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<3> {
        self.check(&images);
        self.encode_patches(self.embed_patches(images))
    }

    /// One vector per image `[batch, width]`: the `[CLS]` state, or (`mean`) the mean of the
    /// patches' states, as MAE fine-tunes.
    pub fn features(&self, images: Tensor<4>, mean: bool) -> Tensor<2> {
        let hidden = self.forward(images);
        let [batch, len, width] = hidden.dims();
        if mean {
            hidden
                .slice([0..batch, 1..len, 0..width])
                .mean_dim(1)
                .reshape([batch, width])
        } else {
            hidden
                .slice([0..batch, 0..1, 0..width])
                .reshape([batch, width])
        }
    }

    /// Panics on images of another shape: the data layer checks files, so this is a caller's
    /// bug, not bad input.
    fn check(&self, images: &Tensor<4>) {
        let [_, c, h, w] = images.dims();
        assert_eq!(
            [c, h, w],
            [self.channels, self.image_size, self.image_size],
            "images of the wrong shape for this model"
        );
    }
}

/// The shape of a stack over embedded patches (a ViT's encoder, MAE's decoder): `layers`
/// pre-norm layers of `block` at `width` with their final norm, no positions of its own (the
/// patches bring theirs), no segments, room for `tokens` vectors, and a token table of one row
/// that is never read.
pub fn patch_stack(
    width: usize,
    layers: usize,
    block: &BlockConfig,
    tokens: usize,
) -> TransformerEncoderConfig {
    let block = block
        .clone()
        .with_norm_first(true)
        .with_positions(PositionEncoding::None);
    TransformerEncoderConfig::new(1, width, layers, block)
        .with_max_positions(tokens)
        .with_num_segments(0)
        .with_dropout(0.0)
        .with_embedding_norm(false)
}

/// `images` `[batch, channels, side, side]` as patches `[batch, (side/p)², p²·channels]`:
/// patches row by row, pixels row by row within one, channels last (MAE's `patchify`).
pub fn patchify(images: Tensor<4>, p: usize) -> Tensor<3> {
    let [batch, channels, height, width] = images.dims();
    let (gh, gw) = (height / p, width / p);
    images
        .reshape([batch, channels, gh, p, gw, p])
        .permute([0, 2, 4, 3, 5, 1])
        .reshape([batch, gh * gw, p * p * channels])
}

/// The inverse of [`patchify`]: patches `[batch, grid², p²·channels]` back to images
/// `[batch, channels, grid·p, grid·p]`.
pub fn unpatchify(patches: Tensor<3>, p: usize, channels: usize) -> Tensor<4> {
    let [batch, n, _] = patches.dims();
    let grid = (n as f64).sqrt().round() as usize;
    patches
        .reshape([batch, grid, grid, p, p, channels])
        .permute([0, 5, 1, 3, 2, 4])
        .reshape([batch, channels, grid * p, grid * p])
}

/// MAE's fixed 2-D sine-cosine positions of a `grid` × `grid` of patches, row by row, each of
/// `width` values: the first half encodes the patch's column and the second its row, each as
/// `[sin(x·ω_k), cos(x·ω_k)]` with `ω_k = 10000^(−k/(width/4))`.
pub fn sincos_2d(grid: usize, width: usize) -> Vec<f32> {
    let quarter = width / 4;
    let omega: Vec<f64> = (0..quarter)
        .map(|k| 1.0 / 10_000f64.powf(k as f64 / quarter as f64))
        .collect();
    let axis = |x: usize| {
        let angles = omega.iter().map(move |w| x as f64 * w);
        angles.clone().map(f64::sin).chain(angles.map(f64::cos))
    };
    (0..grid * grid)
        .flat_map(|i| axis(i % grid).chain(axis(i / grid)))
        .map(|v| v as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::max_abs_diff;

    fn tiny(device: &Device) -> VisionTransformer {
        crate::util::random::init_seeded(device, 3, || {
            VisionTransformerConfig::new(16, 2, BlockConfig::new(2, 32))
                .with_image_size(8)
                .init(device)
                .unwrap()
        })
    }

    #[test]
    fn patches_are_row_major_and_unpatchify_inverts_them() {
        let device = Device::flex();
        // Two channels of a 4 × 4 image, values saying where they are.
        let values: Vec<f32> = (0..32).map(|i| i as f32).collect();
        let images = Tensor::<1>::from_floats(values.as_slice(), &device).reshape([1, 2, 4, 4]);
        let patches = patchify(images.clone(), 2);
        assert_eq!(patches.dims(), [1, 4, 8]);
        let first: Vec<f32> = patches
            .clone()
            .slice([0..1, 0..1, 0..8])
            .into_data()
            .try_to_vec()
            .unwrap();
        // The top-left patch: pixels (0,0) (0,1) (1,0) (1,1), each channel 0 then 1.
        assert_eq!(first, [0.0, 16.0, 1.0, 17.0, 4.0, 20.0, 5.0, 21.0]);
        // The second patch is the one to its right.
        let second: Vec<f32> = patches
            .clone()
            .slice([0..1, 1..2, 0..2])
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_eq!(second, [2.0, 18.0]);
        assert!(max_abs_diff(unpatchify(patches, 2, 2), images) == 0.0);
    }

    #[test]
    fn positions_are_maes_table() {
        let table = sincos_2d(3, 8);
        assert_eq!(table.len(), 9 * 8);
        // Patch 0 (column 0, row 0): sin 0 = 0 and cos 0 = 1 on both axes.
        assert_eq!(&table[..8], &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
        // Patch 5 is column 2 of row 1; ω = 1 and 1/100.
        let p = &table[5 * 8..6 * 8];
        let expect = [
            2f64.sin(),
            0.02f64.sin(),
            2f64.cos(),
            0.02f64.cos(),
            1f64.sin(),
            0.01f64.sin(),
            1f64.cos(),
            0.01f64.cos(),
        ];
        for (got, want) in p.iter().zip(expect) {
            assert!((*got as f64 - want).abs() < 1e-6, "{p:?}");
        }
    }

    #[test]
    fn the_model_reads_every_patch_and_only_its_own_image() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let model = tiny(&device);
        assert_eq!((model.num_patches(), model.patch_values()), (4, 16));
        let images =
            Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Default, &device);
        let hidden = model.forward(images.clone());
        assert_eq!(hidden.dims(), [2, 5, 16]);
        // Changing one patch of image 1 changes every state of image 1 (attention is global)
        // and nothing of image 0.
        let changed = images.clone().slice_assign(
            [1..2, 0..1, 4..8, 4..8],
            Tensor::ones([1, 1, 4, 4], &device),
        );
        let again = model.forward(changed);
        let diff = (again - hidden).abs().sum_dim(2).reshape([2, 5]);
        let rows: Vec<f32> = diff.into_data().try_to_vec().unwrap();
        assert!(rows[..5].iter().all(|&d| d == 0.0), "{rows:?}");
        assert!(rows[5..].iter().all(|&d| d > 1e-4), "{rows:?}");
        assert_eq!(model.features(images.clone(), false).dims(), [2, 16]);
        assert_eq!(model.features(images, true).dims(), [2, 16]);
    }

    #[test]
    fn patches_that_do_not_tile_the_image_are_refused() {
        let block = BlockConfig::new(2, 32);
        for config in [
            VisionTransformerConfig::new(16, 1, block.clone()).with_patch_size(5),
            VisionTransformerConfig::new(16, 1, block.clone()).with_patch_size(0),
            VisionTransformerConfig::new(18, 1, block.clone()),
        ] {
            let err = config.validate().unwrap_err();
            assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
        }
    }
}
