//! The image objectives' recipes (`mae`, `simclr`, `beit`, `rotation`): a Vision Transformer
//! of the recipe's encoder shape (width, depth, block, dropout) over patches of Fashion-MNIST,
//! pretrained by the same trainer, checkpoints and metrics as the text objectives. The
//! recipe's tokenizer, text and sequence length go unread; the run saves the whole ViT as
//! `encoder.bpk`, which [`read_vit`] gives back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::registry::{ObjectiveRecipe, ObjectiveSettings};
use super::{Recipe, Run, RunReport};
use crate::blocks::{BlockConfig, TransformerEncoderConfig, VisionTransformer};
use crate::blocks::{VisionTransformerConfig, patch_stack};
use crate::data::Task;
use crate::data::images::ImageViews;
use crate::data::patch_codes::{CodebookFit, PatchCodebook};
use crate::dataset::Images;
use crate::dataset::images::{bundled_fashion_mnist, fashion_mnist};
use crate::error::{Error, Result, in_setting};
use crate::noise::augment::Augmentation;
use crate::objectives::{
    BeitConfig, BeitTask, MaeConfig, MaeTask, Objective, RotationTask, SimclrConfig, SimclrTask,
    rotation_head,
};
use crate::preset::Preset;
use crate::tokenize::Tokenizer;
use crate::train::TrainConfig;

/// What every image objective reads: the images, how many hold out, the patches and the
/// views' augmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSettings {
    /// Fashion-MNIST's directory (`scripts/fetch_fashion_mnist.sh` fills
    /// `~/.cache/pretext/data/fashion-mnist`); `None`: the bundled subset of 1,000.
    pub dir: Option<PathBuf>,
    /// The last training images, held out for validation: 5,000 by default, at most a
    /// tenth of the set.
    pub held_out: usize,
    /// Side of a patch, which must divide the images' 28: 4 (49 patches) or 7 (16).
    pub patch_size: usize,
    /// How each view is drawn.
    pub augmentation: Augmentation,
}

impl ImageSettings {
    /// The bundled subset, 5,000 held out (a tenth of it, there), patches of 4, `augmentation`.
    pub fn new(augmentation: Augmentation) -> Self {
        Self {
            dir: None,
            held_out: 5000,
            patch_size: 4,
            augmentation,
        }
    }

    /// The ViT of `encoder`'s width, depth, block and dropout over these patches.
    pub fn vit(&self, encoder: &TransformerEncoderConfig) -> VisionTransformerConfig {
        VisionTransformerConfig::new(
            encoder.hidden_size,
            encoder.num_layers,
            encoder.block.clone(),
        )
        .with_patch_size(self.patch_size)
        .with_dropout(encoder.dropout)
    }

    /// The training images less the held-out ones, and the held-out ones.
    pub fn read(&self) -> Result<(Images, Images)> {
        let (train, _) = match &self.dir {
            Some(dir) => fashion_mnist(dir)?,
            None => bundled_fashion_mnist()?,
        };
        Ok(train.hold_out(self.held_out))
    }

    /// Views of `images` with these settings' augmentation.
    pub fn views(&self, images: Images) -> Result<ImageViews> {
        ImageViews::fashion_mnist(images, self.augmentation.clone())
    }

    /// Checks the directory, the augmentation and the ViT the recipe's encoder makes.
    fn check(&self, recipe: &Recipe) -> Result<()> {
        if let Some(dir) = &self.dir
            && !dir.join("train-images-idx3-ubyte").is_file()
        {
            return Err(Error::Recipe {
                field: "objective.settings.images.dir".into(),
                reason: format!(
                    "{} holds no Fashion-MNIST (train-images-idx3-ubyte): run \
                     scripts/fetch_fashion_mnist.sh",
                    dir.display()
                ),
            });
        }
        in_setting(self.augmentation.validate(), "images.augmentation")?;
        in_setting(self.vit(&recipe.encoder).validate(), "images.patch_size")
    }
}

/// `mae`'s settings: the images and MAE's masking and decoder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaeSettings {
    /// The images.
    pub images: ImageSettings,
    /// The masking, the decoder and the loss.
    pub mae: MaeConfig,
}

/// `simclr`'s settings: the images and the projection and temperature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimclrSettings {
    /// The images.
    pub images: ImageSettings,
    /// The projection head and NT-Xent's temperature.
    pub simclr: SimclrConfig,
}

/// `beit`'s settings: the images, the masking and the codebook's size.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeitSettings {
    /// The images.
    pub images: ImageSettings,
    /// The share of the patches hidden.
    pub beit: BeitConfig,
    /// Codes in the k-means codebook fitted on the training images (seeded by the recipe's
    /// seed). Default 256.
    pub codes: usize,
}

/// `rotation`'s settings: the images alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationSettings {
    /// The images (never augmented by rotation: that is the task).
    pub images: ImageSettings,
}

/// The recipe of `objective` at `preset`'s scale for images: a pre-norm ViT (tiny: 64 wide,
/// 2 layers of 2 heads; larger presets: 128 wide, 4 layers of 4 heads; GELU networks 4 × as
/// wide, no dropout) trained by AdamW (β2 0.95, weight decay 0.05) at 10⁻³ on 256 images a
/// step, 5 % of the steps warming up.
fn image_recipe(objective: ObjectiveRecipe, preset: Preset) -> Result<Recipe> {
    let mut recipe = Recipe::new(objective, preset)?;
    let (width, layers, heads) = match preset {
        Preset::Tiny => (64, 2, 2),
        _ => (128, 4, 4),
    };
    let vocab = recipe.encoder.vocab_size;
    // The stack's token table and positions go unread; they take the tokenizer's and the
    // sequence length's sizes only so that the recipe's checks hold as for any encoder.
    let stack = patch_stack(width, layers, &BlockConfig::new(heads, 4 * width), 1);
    recipe.encoder = TransformerEncoderConfig {
        vocab_size: vocab,
        max_positions: recipe.seq_len,
        ..stack
    };
    recipe.train = image_training(recipe.train.steps, 256).with_shards(recipe.train.shards);
    Ok(recipe)
}

/// How the image objectives pretrain, `steps` steps of `batch` images: AdamW at 10⁻³ (β2 0.95,
/// weight decay 0.05), 5 % of the steps warming up, validating on 8 batches.
pub fn image_training(steps: usize, batch: usize) -> TrainConfig {
    TrainConfig::new(steps, batch)
        .with_learning_rate(1e-3)
        .with_warmup_fraction(0.05)
        .with_weight_decay(0.05)
        .with_adam_beta2(Some(0.95))
        .with_valid_batches(8)
}

/// `mae`: 75 % of the patches hidden, a decoder of one layer 64 wide, per-patch normalised
/// targets; views cropped (20 % of the area at least) and flipped.
pub fn mae(preset: Preset) -> Result<Recipe> {
    let images = ImageSettings::new(Augmentation::mae());
    let settings = MaeSettings {
        images,
        mae: MaeConfig::new(),
    };
    image_recipe(ObjectiveRecipe::Mae(settings), preset)
}

/// `simclr`: τ 0.2, a projection to 128; SimCLR's views for grayscale (crop, flip,
/// brightness and contrast).
pub fn simclr(preset: Preset) -> Result<Recipe> {
    let images = ImageSettings::new(Augmentation::simclr());
    let settings = SimclrSettings {
        images,
        simclr: SimclrConfig::new(),
    };
    let mut recipe = image_recipe(ObjectiveRecipe::Simclr(settings), preset)?;
    // In-batch negatives: the batch's views must meet in one shard.
    recipe.train.shards = 1;
    Ok(recipe)
}

/// `beit`: 40 % of the patches hidden, 256 codes; MAE's views.
pub fn beit(preset: Preset) -> Result<Recipe> {
    let settings = BeitSettings {
        images: ImageSettings::new(Augmentation::mae()),
        beit: BeitConfig::new(),
        codes: 256,
    };
    image_recipe(ObjectiveRecipe::Beit(settings), preset)
}

/// `rotation`: four quarter turns of each view; MAE's views (crop and flip, no turn).
pub fn rotation(preset: Preset) -> Result<Recipe> {
    let settings = RotationSettings {
        images: ImageSettings::new(Augmentation::mae()),
    };
    let mut recipe = image_recipe(ObjectiveRecipe::Rotation(settings), preset)?;
    // Each image comes in four turns: a quarter as many images make a batch as large.
    recipe.train.batch_size /= 4;
    Ok(recipe)
}

/// Trains a fresh ViT of `run`'s recipe with the head `head` makes for it on the task `task`
/// makes of each of `splits` (the training and validation images `images` read), and saves
/// the ViT.
fn run_images<H, T>(
    run: &Run,
    images: &ImageSettings,
    splits: (Images, Images),
    head: impl FnOnce(&VisionTransformer) -> Result<H>,
    task: impl Fn(ImageViews) -> Result<T>,
) -> Result<RunReport>
where
    H: Objective<VisionTransformer, Batch = T::Batch>,
    T: Task,
{
    let vit = images.vit(&run.recipe.encoder).init(run.device())?;
    let head = head(&vit)?;
    let train = task(images.views(splits.0)?)?;
    let valid = task(images.views(splits.1)?)?;
    Ok(run.fit_tasks(vit, head, train, valid)?.into())
}

/// An image objective's recipe side; what it tells the recipe follows from it (no text,
/// segments or mask token, no Hugging Face form).
pub trait ImageObjective {
    /// Its images.
    fn images(&self) -> &ImageSettings;

    /// Checks its own settings (the images are checked for it).
    fn check_own(&self) -> Result<()>;

    /// Builds its head and tasks and trains them on a fresh ViT.
    fn train(&self, run: &Run) -> Result<RunReport>;
}

impl<T: ImageObjective> ObjectiveSettings for T {
    fn reads_corpus(&self) -> bool {
        false
    }

    fn segments(&self) -> usize {
        0
    }

    fn masks(&self) -> bool {
        false
    }

    fn check(&self, recipe: &Recipe, _: &Tokenizer) -> Result<()> {
        self.images().check(recipe)?;
        self.check_own()
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        self.train(run)
    }

    fn hf_misfit(&self, _: &Recipe) -> Option<String> {
        Some("a Vision Transformer, which no text family holds".into())
    }
}

impl ImageObjective for MaeSettings {
    fn images(&self) -> &ImageSettings {
        &self.images
    }

    fn check_own(&self) -> Result<()> {
        in_setting(self.mae.validate(), "mae")
    }

    fn train(&self, run: &Run) -> Result<RunReport> {
        let patches = self.images.vit(&run.recipe.encoder).grid().pow(2);
        let head = |vit: &VisionTransformer| self.mae.init(vit, run.device());
        let task = |views| MaeTask::new(views, patches, &self.mae);
        run_images(run, &self.images, self.images.read()?, head, task)
    }
}

impl ImageObjective for SimclrSettings {
    fn images(&self) -> &ImageSettings {
        &self.images
    }

    fn check_own(&self) -> Result<()> {
        in_setting(self.simclr.validate(), "simclr")
    }

    fn train(&self, run: &Run) -> Result<RunReport> {
        let head = |vit: &VisionTransformer| self.simclr.init(vit, run.device());
        let task = |views| Ok(SimclrTask::new(views));
        run_images(run, &self.images, self.images.read()?, head, task)
    }
}

impl ImageObjective for BeitSettings {
    fn images(&self) -> &ImageSettings {
        &self.images
    }

    fn check_own(&self) -> Result<()> {
        in_setting(self.beit.validate(), "beit")?;
        if self.codes < 2 {
            return Err(Error::Recipe {
                field: "objective.settings.codes".into(),
                reason: format!("a codebook needs at least 2 codes, not {}", self.codes),
            });
        }
        Ok(())
    }

    /// Fits the codebook on the training images (seeded by the recipe's seed) first.
    fn train(&self, run: &Run) -> Result<RunReport> {
        let splits = self.images.read()?;
        let plain = self.images.views(splits.0.clone())?.plain();
        let fit = CodebookFit {
            seed: run.recipe.train.seed,
            ..CodebookFit::new(self.codes, self.images.patch_size)
        };
        let codebook = Arc::new(PatchCodebook::fit(&plain, &fit)?);
        let head = |vit: &VisionTransformer| self.beit.init(vit, codebook.len(), run.device());
        let task = |views| BeitTask::new(views, Arc::clone(&codebook), &self.beit);
        run_images(run, &self.images, splits, head, task)
    }
}

impl ImageObjective for RotationSettings {
    fn images(&self) -> &ImageSettings {
        &self.images
    }

    fn check_own(&self) -> Result<()> {
        Ok(())
    }

    fn train(&self, run: &Run) -> Result<RunReport> {
        let head = |vit: &VisionTransformer| rotation_head(vit, run.device());
        let task = |views| Ok(RotationTask::new(views));
        run_images(run, &self.images, self.images.read()?, head, task)
    }
}

/// The ViT a run of an image objective left in `run_dir` (its `encoder.bpk`), on `device`.
pub fn read_vit(run_dir: &Path, device: &Device) -> Result<VisionTransformer> {
    let recipe = Recipe::read(run_dir.join(super::run_dir::CONFIG_FILE))?;
    let images = match &recipe.objective {
        ObjectiveRecipe::Mae(s) => s.images(),
        ObjectiveRecipe::Simclr(s) => s.images(),
        ObjectiveRecipe::Beit(s) => s.images(),
        ObjectiveRecipe::Rotation(s) => s.images(),
        other => {
            return Err(Error::Recipe {
                field: "objective".into(),
                reason: format!("{} trains no Vision Transformer", other.name()),
            });
        }
    };
    let vit = {
        let _held = crate::util::random::hold();
        images.vit(&recipe.encoder).init(device)?
    };
    crate::train::checkpoint::load_weights(&run_dir.join(super::run_dir::ENCODER_FILE), vit)
}
