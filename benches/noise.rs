//! Data-side throughput, in examples/s: MLM masking of a batch of 32 × 128 real tokens (HF's
//! `DataCollatorForLanguageModeling` does ~20,000 on this kind of machine), and NSP / SOP
//! sentence-pair sampling of 32 pairs of up to 128 tokens.
//!
//! `cargo bench --bench noise`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pretext::Tokenizer;
use pretext::corpus::{Corpus, DocumentBoundary, bundled_data_dir};
use pretext::data::{Segment, TokenizedDocument, pack_segments, tokenize_corpus};
use pretext::noise::{
    DEFAULT_SHORT_SEQ_PROB, MlmMasker, MlmMasking, PairKind, PairSampler, example_rng,
};

const BATCH: usize = 32;
const SEQ_LEN: usize = 128;

/// The first `n` Shakespeare plays, tokenized.
fn plays(tokenizer: &Tokenizer, n: usize) -> Vec<TokenizedDocument> {
    let mut corpus = Corpus::from_dir(
        bundled_data_dir().join("shakespeare"),
        DocumentBoundary::File,
    )
    .unwrap();
    corpus.documents.truncate(n);
    tokenize_corpus(&corpus, tokenizer).unwrap()
}

fn real_batch(tokenizer: &Tokenizer) -> Vec<(Vec<u32>, Vec<bool>)> {
    let docs = plays(tokenizer, 2);
    let s = tokenizer.special();
    let segments: Vec<Segment> = pack_segments(&docs, SEQ_LEN - 2).unwrap();
    segments
        .iter()
        .filter(|seg| seg.ids.len() == SEQ_LEN - 2)
        .take(BATCH)
        .map(|seg| seg.framed(s.cls, s.sep))
        .collect()
}

fn masking(c: &mut Criterion) {
    let tokenizer = Tokenizer::bundled().unwrap();
    let batch = real_batch(&tokenizer);
    assert_eq!(batch.len(), BATCH);
    let mut group = c.benchmark_group("mlm_masking_32x128");
    group.throughput(Throughput::Elements(BATCH as u64));
    for whole_word in [false, true] {
        let masker = MlmMasker::for_tokenizer(
            MlmMasking {
                whole_word,
                ..MlmMasking::default()
            },
            &tokenizer,
        )
        .unwrap();
        let name = if whole_word { "whole_word" } else { "token" };
        let mut epoch = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                epoch += 1;
                batch
                    .iter()
                    .enumerate()
                    .map(|(i, (ids, starts))| {
                        let mut rng = example_rng(0, epoch, i as u64);
                        masker.mask(ids, starts, &mut rng).unwrap().targets.len()
                    })
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

fn pair_sampling(c: &mut Criterion) {
    let tokenizer = Tokenizer::bundled().unwrap();
    let docs = plays(&tokenizer, 4);
    let mut group = c.benchmark_group("pair_sampling_32x128");
    group.throughput(Throughput::Elements(BATCH as u64));
    for kind in [PairKind::NextSentence, PairKind::SentenceOrder] {
        let sampler = PairSampler::new(
            docs.clone(),
            kind,
            SEQ_LEN,
            DEFAULT_SHORT_SEQ_PROB,
            tokenizer.special(),
        )
        .unwrap();
        let mut epoch = 0u64;
        group.bench_function(kind.name(), |b| {
            b.iter(|| {
                epoch += 1;
                (0..BATCH)
                    .map(|i| {
                        let index = (i * 37) % sampler.len();
                        let mut rng = example_rng(0, epoch, index as u64);
                        sampler.pair(index, &mut rng).input_ids.len()
                    })
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, masking, pair_sampling);
criterion_main!(benches);
