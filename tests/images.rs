//! Image pretraining on the bundled Fashion-MNIST subset: each objective's loss falls on a
//! tiny Vision Transformer.

mod common;

use std::sync::Arc;

use burn::prelude::*;
use pretext::blocks::{BlockConfig, VisionTransformer, VisionTransformerConfig};
use pretext::data::images::ImageViews;
use pretext::dataset::images::{FASHION_MNIST_MEAN, FASHION_MNIST_STD, bundled_fashion_mnist};
use pretext::noise::augment::Augmentation;
use pretext::objectives::{MaeConfig, MaeTask, Rotation, RotationTask, SimclrConfig, SimclrTask};
use pretext::pretrainer::Pretrainer;
use pretext::train::Trainer;

/// Views of the bundled training and test images, augmented as MAE's.
fn views(augmentation: Augmentation) -> (ImageViews, ImageViews) {
    let (train, test) = bundled_fashion_mnist().unwrap();
    let make = |images| {
        let (mean, std) = (FASHION_MNIST_MEAN, FASHION_MNIST_STD);
        ImageViews::new(Arc::new(images), augmentation.clone(), mean, std).unwrap()
    };
    (make(train), make(test))
}

/// A tiny ViT: 16 patches of 7 × 7, two layers of 32.
fn tiny_vit(device: &Device) -> VisionTransformer {
    VisionTransformerConfig::new(32, 2, BlockConfig::new(2, 64))
        .with_patch_size(7)
        .init(device)
        .unwrap()
}

/// Trains `model` for `steps` steps of 16 images on `train`; the first and last five steps'
/// mean losses.
fn fit<O, T>(model: Pretrainer<VisionTransformer, O>, steps: usize, train: T, test: T) -> (f64, f64)
where
    O: pretext::objectives::Objective<VisionTransformer, Batch = T::Batch>,
    T: pretext::data::Task,
{
    let mut schedule = common::quick_config(steps);
    schedule.batch_size = 16;
    let report = Trainer::new(model, &schedule)
        .device(&Device::flex().autodiff())
        .fit(&train, &test)
        .unwrap();
    common::ends(&common::train_losses(&report.history), 5)
}

#[test]
fn mae_learns_to_fill_in_hidden_patches() {
    let device = Device::flex().autodiff();
    let config = MaeConfig::new()
        .with_decoder_width(32)
        .with_decoder_heads(2);
    let model = common::seeded(&device, || {
        let vit = tiny_vit(&device);
        let mae = config.init(&vit, &device).unwrap();
        Pretrainer::new(vit, mae)
    });
    let (train, test) = views(Augmentation::mae());
    let train = MaeTask::new(train, 16, &config).unwrap();
    let test = MaeTask::new(test, 16, &config).unwrap();
    let (head, tail) = fit(model, 60, train, test);
    eprintln!("mae loss {head:.3} -> {tail:.3}");
    assert!(
        tail < MAE_FALL * head,
        "the loss did not fall: {head} -> {tail}"
    );
}

#[test]
fn simclr_learns_to_pair_views_of_one_image() {
    let device = Device::flex().autodiff();
    let config = SimclrConfig::new().with_projection_size(16);
    let model = common::seeded(&device, || {
        let vit = tiny_vit(&device);
        let simclr = config.init(&vit, &device).unwrap();
        Pretrainer::new(vit, simclr)
    });
    let (train, test) = views(Augmentation::simclr());
    let (head, tail) = fit(model, 150, SimclrTask::new(train), SimclrTask::new(test));
    eprintln!("simclr loss {head:.3} -> {tail:.3}");
    assert!(
        tail < head - SIMCLR_FALL,
        "the loss did not fall: {head} -> {tail}"
    );
}

/// How far SimCLR's loss falls in 150 steps, at least (from about ln 31 = 3.43, chance among
/// the other 31 views): 0.28 to 0.48 over PRETEXT_TEST_SEED 0 to 5 (AMD EPYC, 2026-12-07).
const SIMCLR_FALL: f64 = 0.1;

/// The share of its first steps' loss that MAE's last steps stay below: 0.50 to 0.61 over
/// PRETEXT_TEST_SEED 0 to 5 (AMD EPYC, 2026-12-07).
const MAE_FALL: f64 = 0.8;

#[test]
fn rotation_prediction_learns_which_way_up_clothes_are() {
    let device = Device::flex().autodiff();
    let model = common::seeded(&device, || {
        let vit = tiny_vit(&device);
        let head = Rotation::new(&vit, &device);
        Pretrainer::new(vit, head)
    });
    let (train, test) = views(Augmentation::none());
    let (head, tail) = fit(
        model,
        150,
        RotationTask::new(train),
        RotationTask::new(test),
    );
    eprintln!("rotation loss {head:.3} -> {tail:.3}");
    assert!(
        tail < ROTATION_FALL * head,
        "the loss did not fall: {head} -> {tail}"
    );
}

/// The share of its first steps' loss (ln 4 = 1.39) that rotation prediction's last steps
/// stay below after 150 steps: 0.46 to 0.67 over PRETEXT_TEST_SEED 0 to 5 (AMD EPYC,
/// 2026-12-07).
const ROTATION_FALL: f64 = 0.8;
