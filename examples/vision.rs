//! Image pretraining on Fashion-MNIST, judged as the survey's vision chapter judges image
//! encoders: pretrains a small Vision Transformer with one objective (MAE, SimCLR, BEiT-lite
//! over k-means patch codes or rotation prediction; `scratch` pretrains nothing), scores its frozen vectors (kNN at k = 20 and a
//! linear probe, on the `[CLS]` state and on the mean of the patches'), then fine-tunes it with
//! 1 %, 10 % and 100 % of the labels (class-balanced, one draw per seed) and scores it on the
//! 10,000 test images.
//!
//! ```text
//! scripts/fetch_fashion_mnist.sh                      # once: the full set, into the cache
//! cargo run --release --example vision -- --objective mae
//! cargo run --release --example vision -- --objective simclr --labels 1,10 --seeds 1,2,3
//! cargo run --release --example vision -- --objective scratch
//! ```
//!
//! Without the full set in `~/.cache/pretext/data/fashion-mnist` (or `--data DIR`) it runs on
//! the bundled subset of 1,000 training images, which is for trying it out, not for figures.
//! 5,000 training images are held out of pretraining and fine-tuning for validation.
//!
//! It writes into `OUT` (default `runs/vision-OBJECTIVE`): `pretrain/` (the pretraining's
//! `metrics.jsonl` and checkpoints), `vit.bpk` (the pretrained ViT, reused when the example is
//! run again), `results.json` (every score, merged over runs: run again with more label shares
//! or seeds, it computes only the scores it lacks) and, for MAE,
//! `reconstructions.png`: test images, what the encoder saw of them, and the decoder's
//! reconstruction, a row each.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::prelude::*;
use clap::{Parser, ValueEnum};
use pretext::blocks::{BlockConfig, VisionTransformer, VisionTransformerConfig};
use pretext::data::images::{ClassifyImages, ImageViews};
use pretext::data::patch_codes::{CodebookFit, PatchCodebook};
use pretext::dataset::Images;
use pretext::dataset::images::{bundled_fashion_mnist, fashion_mnist, fashion_mnist_cache};
use pretext::finetune::images::{fine_tune_images, image_features};
use pretext::finetune::knn::knn_accuracy;
use pretext::finetune::probe::{ProbeConfig, linear_probe};
use pretext::noise::augment::Augmentation;
use pretext::objectives::{
    BeitConfig, BeitTask, ImageClassifier, MaeConfig, MaeTask, Objective, RotationTask,
    SimclrConfig, SimclrTask, rotation_head,
};
use pretext::pretrainer::Pretrainer;
use pretext::recipe::images::image_training;
use pretext::train::checkpoint::{load_weights, save_weights};
use pretext::train::{TrainConfig, Trainer};
use serde_json::{Value, json};

#[path = "support/png.rs"]
mod png;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pretext {
    /// Masked autoencoding: 75 % of the patches hidden, a light decoder rebuilds them.
    Mae,
    /// Contrastive: two augmented views of each image find each other (NT-Xent).
    Simclr,
    /// Masked image modelling: 40 % of the patches hidden, their k-means codes predicted
    /// (BEiT-lite).
    Beit,
    /// Which of four quarter turns an image shows.
    Rotation,
    /// No pretraining: the from-scratch baseline.
    Scratch,
}

#[derive(Parser, Debug)]
#[command(about = "Pretrain a Vision Transformer on Fashion-MNIST and score it")]
struct Args {
    /// The pretraining objective.
    #[arg(long, value_enum, default_value = "mae")]
    objective: Pretext,
    /// Output directory (default runs/vision-OBJECTIVE).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Fashion-MNIST's directory (default: the cache if it is there, else the bundled subset).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Passes over the pretraining images.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per pretraining step.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Peak learning rate of the pretraining (AdamW, β2 0.95, weight decay 0.05).
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// The ViT's width.
    #[arg(long, default_value_t = 128)]
    width: usize,
    /// The ViT's layers.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Attention heads.
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Side of a patch (4: 49 patches; 7: 16).
    #[arg(long, default_value_t = 4)]
    patch: usize,
    /// Shares of the labels to fine-tune with, in percent.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100])]
    labels: Vec<usize>,
    /// Fine-tuning seeds (each draws its own labelled subset and head).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 3])]
    seeds: Vec<u64>,
    /// The pretraining's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Training images held out for validation.
const HELD_OUT: usize = 5000;

/// Fine-tuning passes over the labelled images, by share of the labels (fewer labels, more
/// passes: each share gets a few hundred updates at least).
fn finetune_epochs(percent: usize) -> usize {
    match percent {
        0..=1 => 50,
        2..=10 => 10,
        _ => 3,
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let name = format!("{:?}", args.objective).to_lowercase();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/vision-{name}")));
    std::fs::create_dir_all(&out)?;
    let (train, test, held_out, full) = read_data(&args)?;
    eprintln!(
        "{} pretraining / {} validation / {} test images{}; {}",
        train.len(),
        held_out.len(),
        test.len(),
        if full { "" } else { " (the bundled subset)" },
        pretext::device::host_cpu()
    );
    let device = Device::flex().autodiff();
    let vit_config = VisionTransformerConfig::new(
        args.width,
        args.layers,
        BlockConfig::new(args.heads, 4 * args.width),
    )
    .with_patch_size(args.patch);
    let results_path = out.join("results.json");
    let mut results: Value = std::fs::read_to_string(&results_path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| json!({}));
    results["objective"] = json!(name);
    results["cpu"] = json!(pretext::device::host_cpu());
    results["vit"] = json!({"width": args.width, "layers": args.layers, "heads": args.heads, "patch": args.patch});
    results["data"] = json!(match full {
        true => "Fashion-MNIST",
        false => "the bundled subset",
    });

    let vit = pretrain(
        &args,
        &vit_config,
        &train,
        &held_out,
        &test,
        &out,
        &device,
        &mut results,
    )?;
    std::fs::write(&results_path, serde_json::to_string_pretty(&results)?)?;

    // The frozen vectors.
    let inner = device.clone().inner();
    let frozen = vit.valid();
    let labels = |images: &Images| images.labels().ok_or("images without labels");
    let (train_labels, test_labels) = (labels(&train)?, labels(&test)?);
    let started = Instant::now();
    for (pool, mean) in [("cls", false), ("mean", true)] {
        if results["knn"][pool].is_number() && results["probe"][pool].is_number() {
            continue; // scored by an earlier run of the same ViT
        }
        let vectors = |images: &Images| image_features(&frozen, &plain(images), mean, &inner);
        let (a, b) = (vectors(&train)?, vectors(&test)?);
        let knn = knn_accuracy(a.clone(), &train_labels, b.clone(), &test_labels, 20, 0.07)?;
        let probe = linear_probe(a, &train_labels, b, &test_labels, &ProbeConfig::new())?;
        eprintln!(
            "{pool}: kNN {:.2} %, linear probe {:.2} %",
            100.0 * knn,
            100.0 * probe
        );
        results["knn"][pool] = json!(knn);
        results["probe"][pool] = json!(probe);
    }
    eprintln!("frozen scores in {:.0}s", started.elapsed().as_secs_f64());
    std::fs::write(&results_path, serde_json::to_string_pretty(&results)?)?;

    // Fine-tuning with a share of the labels.
    let valid = ClassifyImages::new(plain(&held_out))?;
    let test_views = plain(&test);
    for &percent in &args.labels {
        for &seed in &args.seeds {
            let key = [format!("{percent}"), format!("{seed}")];
            if let Some(accuracy) = results["finetune"][&key[0]][&key[1]].as_f64() {
                eprintln!(
                    "{percent:>3} % labels, seed {seed}: test accuracy {:.2} % (an earlier run's)",
                    100.0 * accuracy
                );
                continue;
            }
            let per_class = (train.len() / 10 * percent / 100).max(1);
            let subset = match percent {
                100 => train.clone(),
                _ => train.subset(&train.balanced(per_class.min(min_class(&train)), seed)?),
            };
            let n = subset.len();
            let views = views(&subset, finetune_augmentation())?;
            let batch = 64;
            let steps = (finetune_epochs(percent) * n).div_ceil(batch);
            let config = TrainConfig::new(steps, batch)
                .with_learning_rate(5e-4)
                .with_weight_decay(0.05)
                .with_adam_beta2(Some(0.999))
                .with_valid_every(steps)
                .with_valid_batches(4)
                .with_log_every(steps.div_ceil(10))
                .with_checkpoint_every(usize::MAX)
                .with_seed(seed)
                .with_progress(false);
            let head = seeded(&device, seed, || {
                ImageClassifier::new(&vit, 10, true, "class", &device)
            })?;
            let started = Instant::now();
            let dir = out.join(format!("finetune-{percent}pct-s{seed}"));
            let (_, accuracy) = fine_tune_images(
                vit.clone(),
                head,
                [&ClassifyImages::new(views)?, &valid],
                &test_views,
                &config,
                Some(&dir),
                &device,
            )?;
            eprintln!(
                "{percent:>3} % labels ({n} images, {steps} steps), seed {seed}: test accuracy \
                 {:.2} % in {:.0}s",
                100.0 * accuracy,
                started.elapsed().as_secs_f64()
            );
            results["finetune"][&key[0]][&key[1]] = json!(accuracy);
            std::fs::write(&results_path, serde_json::to_string_pretty(&results)?)?;
        }
    }
    eprintln!("scores in {}", results_path.display());
    Ok(())
}

/// The training images less the held-out ones, the test images, the held-out ones, and
/// whether they are the full set.
fn read_data(args: &Args) -> Result<(Images, Images, Images, bool)> {
    let dir = args.data.clone().or_else(|| {
        let cache = fashion_mnist_cache();
        cache
            .join("train-images-idx3-ubyte")
            .is_file()
            .then_some(cache)
    });
    let (train, test) = match &dir {
        Some(dir) => fashion_mnist(dir)?,
        None => bundled_fashion_mnist()?,
    };
    let full = train.len() == 60_000;
    // The recipes' rule: the last images, at most a tenth.
    let (train, held_out) = train.hold_out(HELD_OUT);
    Ok((train, test, held_out, full))
}

/// The fewest images any class has.
fn min_class(images: &Images) -> usize {
    let labels = images.labels().unwrap_or_default();
    (0..10)
        .map(|c| labels.iter().filter(|&&l| l == c).count())
        .min()
        .unwrap_or(0)
}

/// Views of `images` by `augmentation`, normalised by Fashion-MNIST's statistics.
fn views(images: &Images, augmentation: Augmentation) -> pretext::Result<ImageViews> {
    ImageViews::fashion_mnist(images.clone(), augmentation)
}

/// Unaugmented views of `images`.
fn plain(images: &Images) -> ImageViews {
    views(images, Augmentation::none()).expect("Fashion-MNIST's views")
}

/// Fine-tuning's views: a light crop (60 % of the area at least) and a flip.
fn finetune_augmentation() -> Augmentation {
    Augmentation {
        crop_scale: (0.6, 1.0),
        crop_ratio: (0.75, 4.0 / 3.0),
        flip: 0.5,
        ..Augmentation::none()
    }
}

/// The pretrained ViT: read from `OUT/vit.bpk` if an earlier run left it, else trained with
/// the objective (a fresh one for `scratch`) and saved there.
#[allow(clippy::too_many_arguments)]
fn pretrain(
    args: &Args,
    vit_config: &VisionTransformerConfig,
    train: &Images,
    held_out: &Images,
    test: &Images,
    out: &Path,
    device: &Device,
    results: &mut Value,
) -> Result<VisionTransformer> {
    let path = out.join("vit.bpk");
    let fresh = || seeded(device, args.seed, || vit_config.init(device));
    if path.is_file() {
        eprintln!("{} read (delete it to pretrain again)", path.display());
        return Ok(load_weights(&path, fresh()?)?);
    }
    // Rotation's batches hold four turns of each image: a quarter as many images a step.
    let batch = match args.objective {
        Pretext::Rotation => (args.batch_size / 4).max(1),
        _ => args.batch_size,
    };
    let steps = (args.epochs * train.len()).div_ceil(batch);
    // The image recipes' optimisation (`pretrain --objective mae`), one shard.
    let config = image_training(steps, batch)
        .with_learning_rate(args.learning_rate)
        .with_valid_every(steps.div_ceil(10))
        .with_log_every(steps.div_ceil(50).max(1))
        .with_checkpoint_every(steps.div_ceil(5))
        .with_seed(args.seed);
    let run = out.join("pretrain");
    let pretraining = Pretraining {
        vit: vit_config,
        seed: args.seed,
        config: &config,
        run: &run,
        device,
        splits: [train, held_out],
    };
    let started = Instant::now();
    let vit = match args.objective {
        Pretext::Scratch => fresh()?,
        Pretext::Mae => {
            let mae = MaeConfig::new();
            let patches = vit_config.grid() * vit_config.grid();
            let task =
                |images: &Images| MaeTask::new(views(images, Augmentation::mae())?, patches, &mae);
            let model = pretraining.fit(|vit| mae.init(vit, device), task)?;
            let shown = model.valid();
            png::write_reconstructions(
                &shown.backbone,
                &shown.objective,
                &MaeTask::new(plain(test), patches, &mae)?,
                &out.join("reconstructions.png"),
            )?;
            model.backbone
        }
        Pretext::Simclr => {
            let simclr = SimclrConfig::new();
            let task =
                |images: &Images| Ok(SimclrTask::new(views(images, Augmentation::simclr())?));
            pretraining
                .fit(|vit| simclr.init(vit, device), task)?
                .backbone
        }
        Pretext::Beit => {
            // Seeded by the pretraining's seed, as the `beit` recipe's.
            let coding = CodebookFit {
                seed: args.seed,
                ..CodebookFit::new(256, args.patch)
            };
            let codebook = Arc::new(PatchCodebook::fit(&plain(train), &coding)?);
            let beit = BeitConfig::new();
            let task = |images: &Images| {
                let views = views(images, Augmentation::mae())?;
                BeitTask::new(views, Arc::clone(&codebook), &beit)
            };
            let head = |vit: &VisionTransformer| beit.init(vit, codebook.len(), device);
            pretraining.fit(head, task)?.backbone
        }
        Pretext::Rotation => {
            let task = |images: &Images| Ok(RotationTask::new(views(images, Augmentation::mae())?));
            pretraining
                .fit(|vit| rotation_head(vit, device), task)?
                .backbone
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if args.objective != Pretext::Scratch {
        let images_per_s = (steps * batch) as f64 / seconds;
        eprintln!(
            "pretrained {steps} steps of {batch} images in {seconds:.0}s: {images_per_s:.0} images/s"
        );
        results["pretrain"] = json!({"steps": steps, "batch": batch, "epochs": args.epochs,
            "seconds": seconds, "images_per_s": images_per_s, "learning_rate": args.learning_rate});
    }
    // A new ViT: the scores of an earlier one no longer hold.
    for scores in ["knn", "probe", "finetune"] {
        results[scores] = Value::Null;
    }
    save_weights(&vit, &path)?;
    Ok(vit)
}

/// What `build` returns, its parameters drawn from `seed`'s stream.
fn seeded<M: burn::module::Module>(
    device: &Device,
    seed: u64,
    build: impl FnOnce() -> pretext::Result<M>,
) -> pretext::Result<M> {
    let mut failed = None;
    let built = pretext::util::random::init_seeded(device, seed, || {
        build().map_err(|e| failed = Some(e)).ok()
    });
    match (built, failed) {
        (Some(module), _) => Ok(module),
        (None, error) => {
            Err(error.unwrap_or_else(|| pretext::Error::InvalidConfig("no model".into())))
        }
    }
}

/// What every objective's pretraining shares: the ViT's shape and seed, the schedule, the
/// run directory, the device and the training and validation images.
struct Pretraining<'a> {
    vit: &'a VisionTransformerConfig,
    seed: u64,
    config: &'a TrainConfig,
    run: &'a Path,
    device: &'a Device,
    splits: [&'a Images; 2],
}

impl Pretraining<'_> {
    /// Pretrains a fresh ViT with the head `head` makes for it, on the task `task` makes of
    /// each split; the trained ViT and head.
    fn fit<H, T>(
        &self,
        head: impl FnOnce(&VisionTransformer) -> pretext::Result<H>,
        task: impl Fn(&Images) -> pretext::Result<T>,
    ) -> Result<Pretrainer<VisionTransformer, H>>
    where
        H: Objective<VisionTransformer, Batch = T::Batch>,
        T: pretext::data::Task,
    {
        let model = seeded(self.device, self.seed, || {
            let vit = self.vit.init(self.device)?;
            let head = head(&vit)?;
            Ok(Pretrainer::new(vit, head))
        })?;
        let [train, valid] = self.splits.map(task);
        // One shard per core, as `pretrain` runs, unless the objective's examples meet in
        // its loss (SimCLR's negatives).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = if model.objective.couples_batch() {
            1
        } else {
            cores
        };
        let config = self.config.clone().with_shards(shards);
        let report = Trainer::new(model, &config)
            .device(self.device)
            .output(self.run)
            .fit(&train?, &valid?)?;
        Ok(report.model)
    }
}
