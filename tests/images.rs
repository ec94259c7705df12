//! Image pretraining on the bundled Fashion-MNIST subset: each objective's loss falls on a
//! tiny Vision Transformer.

mod common;

use std::sync::Arc;

use burn::prelude::*;
use pretext::blocks::{BlockConfig, VisionTransformerConfig};
use pretext::data::images::ImageViews;
use pretext::dataset::images::{FASHION_MNIST_MEAN, FASHION_MNIST_STD, bundled_fashion_mnist};
use pretext::noise::augment::Augmentation;
use pretext::objectives::{MaeConfig, MaeTask};
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

#[test]
fn mae_learns_to_fill_in_hidden_patches() {
    let device = Device::flex().autodiff();
    let config = MaeConfig::new()
        .with_decoder_width(32)
        .with_decoder_heads(2);
    let model = common::seeded(&device, || {
        let vit = VisionTransformerConfig::new(32, 2, BlockConfig::new(2, 64))
            .with_patch_size(7)
            .init(&device)
            .unwrap();
        let mae = config.init(&vit, &device).unwrap();
        Pretrainer::new(vit, mae)
    });
    let (train, test) = views(Augmentation::mae());
    let train = MaeTask::new(train, 16, &config).unwrap();
    let test = MaeTask::new(test, 16, &config).unwrap();
    let mut schedule = common::quick_config(60);
    schedule.batch_size = 16;
    let report = Trainer::new(model, &schedule)
        .device(&device)
        .fit(&train, &test)
        .unwrap();
    let losses = common::train_losses(&report.history);
    let (head, tail) = common::ends(&losses, 5);
    eprintln!("mae loss {head:.3} -> {tail:.3}");
    assert!(tail < MAE_FALL * head, "the loss did not fall: {losses:?}");
}

/// The share of its first steps' loss that MAE's last steps stay below: 0.50 to 0.61 over
/// PRETEXT_TEST_SEED 0 to 5 (AMD EPYC, 2026-12-07).
const MAE_FALL: f64 = 0.8;
