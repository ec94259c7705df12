//! Generation from a causal LM: cached decoding against the full forward, left-padded batches
//! against prompts alone, the sampling options, seeds, EOS, and bad input. `transformers`' own
//! GPT-2 logits (the `gpt2` fixture) are the outside oracle for greedy steps.

mod common;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use pretext::blocks::{AttentionMask, EncoderBackbone};
use pretext::error::Error;
use pretext::generate::{CausalLm, Generated, SamplingConfig};
use pretext::objectives::ClmConfig;
use pretext::{Preset, Tokenizer};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hf")
        .join(name)
}

/// A random tiny pre-LN causal model over the bundled vocabulary; wide weights make its
/// distributions uneven, so that samples tell settings apart.
fn tiny_model() -> CausalLm {
    let device = Device::flex();
    let tokenizer = Tokenizer::bundled().unwrap();
    let (encoder, clm) = pretext::util::random::init_seeded(&device, 21, || {
        let encoder = Preset::Tiny
            .encoder(tokenizer.vocab_size())
            .map_block(|b| b.with_norm_first(true))
            .with_dropout(0.0)
            .init(&device)
            .unwrap();
        let clm = ClmConfig::new().init(&encoder, &device);
        (encoder, clm)
    });
    let special = tokenizer.special();
    CausalLm {
        head: clm.head().clone(),
        encoder,
        bos: Some(special.cls),
        eos: special.sep,
        tokenizer,
    }
}

fn prompts(model: &CausalLm) -> Vec<Vec<u32>> {
    ["the jury", "he said that the city of atlanta", "it was"]
        .iter()
        .map(|p| model.prompt_ids(p).unwrap())
        .collect()
}

/// Log-softmax rows `[len, vocab]` of the model run over `ids` in one causal pass.
fn full_forward(model: &CausalLm, ids: &[u32]) -> Vec<Vec<f32>> {
    let device = Device::flex();
    let len = ids.len();
    let input: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    let input = Tensor::<2, Int>::from_data(TensorData::new(input, [1, len]), &device);
    let segments = input.zeros_like();
    let hidden = model.encoder.encode(
        input,
        Some(segments),
        Some(&AttentionMask::causal(len, &device)),
    );
    let all = Tensor::<1, Int>::arange(0..len as i64, &device);
    let logits = model
        .head
        .forward_at(hidden, all, model.encoder.token_embedding());
    let rows: Vec<f32> = log_softmax(logits, 1).into_data().try_to_vec().unwrap();
    rows.chunks(model.encoder.vocab_size())
        .map(<[f32]>::to_vec)
        .collect()
}

fn argmax(row: &[f32]) -> u32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    row.iter().position(|&v| v == max).unwrap() as u32
}

#[test]
fn greedy_decoding_is_the_argmax_of_the_full_forward_at_every_step() {
    let model = tiny_model();
    let greedy = SamplingConfig::new()
        .with_greedy(true)
        .with_max_new_tokens(12);
    let prompts = prompts(&model);
    let out = model.generate(&prompts, &greedy).unwrap();
    for (b, prompt) in prompts.iter().enumerate() {
        let new = &out.ids[b];
        assert_eq!(new.len(), 12, "the random model should not stop early");
        let all: Vec<u32> = prompt.iter().chain(new).copied().collect();
        let rows = full_forward(&model, &all);
        for (k, (&id, &logprob)) in new.iter().zip(&out.logprobs[b]).enumerate() {
            let row = &rows[prompt.len() - 1 + k];
            assert_eq!(id, argmax(row), "prompt {b}, step {k}");
            assert!(
                (logprob - row[id as usize]).abs() < 1e-5,
                "prompt {b}, step {k}"
            );
        }
    }
}

#[test]
fn the_cache_changes_nothing_but_the_cost() {
    let model = tiny_model();
    let sampled = SamplingConfig::new()
        .with_temperature(0.8)
        .with_top_p(0.95)
        .with_seed(5)
        .with_max_new_tokens(10);
    let prompts = prompts(&model);
    let cached = model.generate(&prompts, &sampled).unwrap();
    let recomputed = model
        .generate(&prompts, &sampled.clone().with_use_cache(false))
        .unwrap();
    assert_same(&cached, &recomputed, 1e-5);
}

fn assert_same(a: &Generated, b: &Generated, tolerance: f32) {
    assert_eq!(a.ids, b.ids);
    assert_eq!(a.finished, b.finished);
    for (x, y) in a.logprobs.iter().flatten().zip(b.logprobs.iter().flatten()) {
        assert!((x - y).abs() <= tolerance, "{x} vs {y}");
    }
}

#[test]
fn a_left_padded_batch_samples_what_each_prompt_samples_alone() {
    let model = tiny_model();
    let prompts = prompts(&model);
    for sampling in [
        SamplingConfig::new().with_greedy(true),
        SamplingConfig::new().with_top_k(20).with_seed(3),
        SamplingConfig::new().with_temperature(1.5).with_seed(4),
    ] {
        let sampling = sampling.with_max_new_tokens(8);
        let batch = model.generate(&prompts, &sampling).unwrap();
        for (b, prompt) in prompts.iter().enumerate() {
            let alone = model
                .generate(std::slice::from_ref(prompt), &sampling)
                .unwrap();
            assert_eq!(alone.ids[0], batch.ids[b], "prompt {b}");
            for (x, y) in alone.logprobs[0].iter().zip(&batch.logprobs[b]) {
                assert!((x - y).abs() < 1e-4, "prompt {b}: {x} vs {y}");
            }
        }
        // And in another order, beside a repeat of itself.
        let reordered = vec![prompts[2].clone(), prompts[0].clone(), prompts[2].clone()];
        let again = model.generate(&reordered, &sampling).unwrap();
        assert_eq!(again.ids[0], batch.ids[2]);
        assert_eq!(again.ids[1], batch.ids[0]);
        if !sampling.greedy {
            assert_ne!(again.ids[2], again.ids[0], "a repeated prompt draws anew");
        }
    }
}

#[test]
fn top_k_one_is_greedy_and_seeds_decide_the_samples() {
    let model = tiny_model();
    let prompts = prompts(&model);
    let greedy = SamplingConfig::new()
        .with_greedy(true)
        .with_max_new_tokens(8);
    let k1 = SamplingConfig::new()
        .with_top_k(1)
        .with_seed(9)
        .with_max_new_tokens(8);
    assert_eq!(
        model.generate(&prompts, &greedy).unwrap().ids,
        model.generate(&prompts, &k1).unwrap().ids
    );
    let seeded = |seed| SamplingConfig::new().with_seed(seed).with_max_new_tokens(8);
    let a = model.generate(&prompts, &seeded(1)).unwrap();
    assert_same(&a, &model.generate(&prompts, &seeded(1)).unwrap(), 0.0);
    assert_ne!(a.ids, model.generate(&prompts, &seeded(2)).unwrap().ids);
    // Sampling at temperature 1 is not greedy.
    assert_ne!(a.ids, model.generate(&prompts, &greedy).unwrap().ids);
}

#[test]
fn the_end_of_text_token_stops_its_row_only() {
    let mut model = tiny_model();
    let prompts = prompts(&model);
    let greedy = SamplingConfig::new()
        .with_greedy(true)
        .with_max_new_tokens(10);
    let free = model.generate(&prompts, &greedy).unwrap();
    assert!(free.finished.iter().all(|f| !f));
    // Make the third token of the first row the end of text.
    let eos = free.ids[0][2];
    model.eos = eos;
    let stopped = model.generate(&prompts, &greedy).unwrap();
    for (b, row) in free.ids.iter().enumerate() {
        let end = row.iter().position(|&id| id == eos);
        let expected = match end {
            Some(at) => &row[..=at],
            None => &row[..],
        };
        assert_eq!(stopped.ids[b], expected, "row {b}");
        assert_eq!(stopped.finished[b], end.is_some());
        assert_eq!(stopped.logprobs[b].len(), stopped.ids[b].len());
    }
    assert_eq!(stopped.ids[0].len(), 3);
    assert!(stopped.finished[0]);
}

/// `transformers`' GPT-2 logits for the fixture's first input row (no padding).
fn gpt2_oracle() -> (Vec<i64>, Vec<Vec<f32>>) {
    let text = std::fs::read_to_string(fixture("gpt2/expected.json")).unwrap();
    let want: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<i64> = serde_json::from_value(want["input_ids"][0].clone()).unwrap();
    let logits: Vec<f32> = serde_json::from_value(want["lm_logits"].clone()).unwrap();
    let vocab = logits.len() / 18;
    let rows = logits
        .chunks(vocab)
        .take(ids.len())
        .map(<[f32]>::to_vec)
        .collect();
    (ids, rows)
}

#[test]
fn an_imported_gpt2_takes_the_greedy_steps_transformers_logits_give() {
    let device = Device::flex();
    let gpt2 = pretext::hf::load_gpt2(&fixture("gpt2"), &device).unwrap();
    let tokenizer = Tokenizer::bundled().unwrap();
    let model = CausalLm {
        encoder: gpt2.encoder,
        head: gpt2.clm.head().clone(),
        bos: None,
        eos: u32::MAX,
        tokenizer,
    };
    let (ids, rows) = gpt2_oracle();
    // Every prefix of the row as one left-padded batch: one greedy step each.
    let prompts: Vec<Vec<u32>> = (1..=ids.len())
        .map(|k| ids[..k].iter().map(|&id| id as u32).collect())
        .collect();
    let greedy = SamplingConfig::new()
        .with_greedy(true)
        .with_max_new_tokens(1);
    let out = model.generate(&prompts, &greedy).unwrap();
    for (k, row) in rows.iter().enumerate() {
        let id = out.ids[k][0];
        assert_eq!(id, argmax(row), "prefix of {}", k + 1);
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let norm = max + row.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
        assert!((out.logprobs[k][0] - (row[id as usize] - norm)).abs() < 1e-4);
    }
}

#[test]
fn a_gpt2_directory_with_its_tokenizer_loads_and_completes_text() {
    let model = CausalLm::load(&fixture("gpt2-bundled-vocab"), &Device::flex()).unwrap();
    assert_eq!(model.bos, None);
    let sampling = SamplingConfig::new().with_max_new_tokens(5).with_seed(1);
    let prompts = ["the jury said", "it"];
    let out = model.complete(&prompts, &sampling).unwrap();
    assert_eq!(out.len(), 2);
    // Completing text is generating from the tokenizer's reading of it (GPT-2 adds no start
    // token): the same draws, token for token, with the same seed.
    let encoded: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| model.tokenizer.encode(p).unwrap().ids)
        .collect();
    let drawn = model.generate(&encoded, &sampling).unwrap();
    for (k, completion) in out.iter().enumerate() {
        assert_eq!(completion.prompt, prompts[k]);
        assert!(completion.ids.len() <= 5 && !completion.ids.is_empty());
        assert_eq!(completion.ids, drawn.ids[k], "{}", prompts[k]);
        assert_eq!(completion.logprobs, drawn.logprobs[k], "{}", prompts[k]);
        assert!(!completion.text.is_empty(), "{completion:?}");
    }
}

#[test]
fn bad_sampling_settings_and_prompts_are_typed_errors() {
    let model = tiny_model();
    let prompts = prompts(&model);
    for bad in [
        SamplingConfig::new().with_top_p(0.0),
        SamplingConfig::new().with_top_p(1.01),
        SamplingConfig::new().with_temperature(0.0),
        SamplingConfig::new().with_temperature(-0.5),
    ] {
        assert!(matches!(
            model.generate(&prompts, &bad),
            Err(Error::InvalidConfig(_))
        ));
    }
    let max = model.encoder.max_positions();
    let long = SamplingConfig::new().with_max_new_tokens(max);
    assert!(matches!(
        model.generate(&prompts, &long),
        Err(Error::SequenceTooLong { .. })
    ));
    let fine = SamplingConfig::new();
    assert!(matches!(
        model.generate(&[vec![]], &fine),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        model.generate(&[vec![1, 1_000_000]], &fine),
        Err(Error::TokenOutOfRange { id: 1_000_000, .. })
    ));
}

#[test]
fn a_model_without_a_causal_head_is_refused() {
    let device = Device::flex();
    let err = CausalLm::load(&fixture("bert"), &device).unwrap_err();
    assert!(matches!(err, Error::NoCausalPath(_)), "{err}");
    assert!(err.to_string().contains("bert"), "{err}");
    // A pretext run of a masked objective is refused from its recipe, before any weight.
    let dir = common::temp_dir("generate-mlm-run");
    let recipe = pretext::Recipe::named("mlm", Preset::Tiny).unwrap();
    std::fs::write(dir.join("config.json"), recipe.to_json()).unwrap();
    let err = CausalLm::load(&dir, &device).unwrap_err();
    assert!(matches!(err, Error::NoCausalPath(_)), "{err}");
    assert!(err.to_string().contains("`mlm` run"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_causal_model_exported_as_gpt2_generates_what_it_generated_before() {
    let device = Device::flex();
    let tokenizer = Tokenizer::bundled().unwrap();
    let config = Preset::Tiny
        .encoder(tokenizer.vocab_size())
        .map_block(|b| b.with_norm_first(true))
        .with_embedding_norm(false)
        .with_num_segments(0)
        .with_dropout(0.0);
    let (encoder, clm) = pretext::util::random::init_seeded(&device, 8, || {
        let encoder = config.init(&device).unwrap();
        let clm = ClmConfig::new()
            .with_transform(false)
            .with_bias(false)
            .init(&encoder, &device);
        (encoder, clm)
    });
    let dir = common::temp_dir("generate-gpt2-export");
    let model = pretext::hf::Exportable::Causal {
        config: &config,
        encoder: &encoder,
        clm: &clm,
    };
    pretext::hf::export(model, &tokenizer, &dir, true).unwrap();
    let special = tokenizer.special();
    let before = CausalLm {
        head: clm.head().clone(),
        encoder,
        bos: Some(special.cls),
        eos: special.sep,
        tokenizer,
    };
    let after = CausalLm::load(&dir, &device).unwrap();
    // The export's tokenizer puts the start token before a text, and nothing after it.
    assert_eq!(after.bos, Some(special.cls));
    assert_eq!(after.tokenizer.start_tokens().unwrap(), vec![special.cls]);
    let sampling = SamplingConfig::new().with_max_new_tokens(8).with_seed(4);
    let prompts = ["the jury said", "it was a"];
    let a = before.complete(&prompts, &sampling).unwrap();
    let b = after.complete(&prompts, &sampling).unwrap();
    assert_eq!(a, b);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn start_tokens_follow_each_tokenizers_framing() {
    // The bundled tokenizer frames nothing: pretext's own runs add [CLS] themselves.
    let bundled = Tokenizer::bundled().unwrap();
    assert!(bundled.start_tokens().unwrap().is_empty());
    // Nor does a byte-level BPE whose post-processor only maps offsets (GPT-2's kind).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/tokenizers");
    let bpe = Tokenizer::from_model_dir(&dir.join("roberta-bpe")).unwrap();
    assert!(bpe.start_tokens().unwrap().is_empty());
    // Framed as BERT's, closed or open-ended, a text starts with [CLS].
    let cls = bundled.special().cls;
    let out = common::temp_dir("start-tokens");
    for open_end in [false, true] {
        let path = out.join(format!("tokenizer-{open_end}.json"));
        bundled.save_framed(&path, open_end).unwrap();
        let framed = Tokenizer::from_file(&path).unwrap();
        assert_eq!(
            framed.start_tokens().unwrap(),
            vec![cls],
            "open_end {open_end}"
        );
    }
    std::fs::remove_dir_all(out).unwrap();
}
