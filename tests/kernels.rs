//! Training through the fused CPU kernels tracks training through burn's composed ops: 20
//! steps of the tiny MLM model (dropout on) give the same losses within 1e-4 either way.
//!
//! Alone in its test binary: the switch between the two paths is process-wide.

mod common;

use burn::prelude::*;
use pretext::kernels::set_fused;
use pretext::train::Trainer;

#[test]
fn tiny_mlm_trains_the_same_through_the_fused_kernels() {
    let (tokenizer, train_docs, valid_docs) = common::real_text();
    let device = Device::flex().autodiff();
    let train_task = common::mlm_task(&tokenizer, &train_docs, 48);
    let valid_task = common::mlm_task(&tokenizer, &valid_docs, 48);
    let model = common::tiny_mlm(&tokenizer, &device);
    let losses = |fused: bool| {
        set_fused(fused);
        let report = Trainer::new(model.clone(), &common::quick_config(20))
            .fit(&train_task, &valid_task)
            .unwrap();
        common::train_losses(&report.history)
    };
    let (fused, composed) = (losses(true), losses(false));
    set_fused(true);
    assert_eq!(fused.len(), 20);
    let worst = fused
        .iter()
        .zip(&composed)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "fused loss {} -> {}, worst gap to composed {worst:.2e}",
        fused[0], fused[19]
    );
    assert!(
        fused[19] < fused[0] - 0.5,
        "the loss should fall: {fused:?}"
    );
    for (step, (a, b)) in fused.iter().zip(&composed).enumerate() {
        assert!(
            (a - b).abs() < 1e-4,
            "step {}: {a} fused, {b} composed",
            step + 1
        );
    }
}
