//! Data-side throughput, in examples/s: MLM masking of a batch of 32 × 128 real tokens (HF's
//! `DataCollatorForLanguageModeling` does ~20,000 on this kind of machine), and NSP / SOP
//! sentence-pair sampling of 32 pairs of up to 128 tokens, and the denoising transforms (BART's
//! five, MASS, T5 span corruption) on the same 32 × 128 batch, and the factorization orders of
//! permuted LM (XLNet's and MPNet's; HF's `DataCollatorForPermutationLanguageModeling` makes
//! ~3,700 examples/s here, dense masks included; ours are built on the device from the order).
//!
//! And where examples come from: an MLM example (segment read, framed, masked) from a token
//! store in memory against one memory-mapped from a prepared dataset, and against segments
//! held as vectors as the tasks held them before prepared datasets, over the whole bundled
//! pretraining corpus at spread indexes (and, with `PRETEXT_BENCH_PREPARED=DIR`, from a large
//! prepared dataset).
//!
//! `cargo bench --bench noise`

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use pretext::Tokenizer;
use pretext::corpus::{Corpus, DocumentBoundary, bundled_data_dir};
use pretext::data::{DEFAULT_SHORT_SEQ_PROB, PairKind, PairSampler};
use pretext::data::{Segment, Task, pack_segments};
use pretext::dataset::prepare::{PrepareOptions, prepare_corpus};
use pretext::dataset::{Documents, Prepared};
use pretext::noise::bart;
use pretext::noise::mass::{DEFAULT_MASS_SHARE, mass_mask};
use pretext::noise::{MaskUnit, MlmMasker, MlmMasking, PermutationMasking, t5};
use pretext::objectives::MlmTask;
use pretext::util::rng::{ExampleRng, example_rng};

const BATCH: usize = 32;
const SEQ_LEN: usize = 128;

/// The first `n` Shakespeare plays, tokenized.
fn plays(tokenizer: &Tokenizer, n: usize) -> Documents {
    let mut corpus = Corpus::from_dir(
        bundled_data_dir().join("shakespeare"),
        DocumentBoundary::File,
    )
    .unwrap();
    corpus.documents.truncate(n);
    Documents::tokenize(&corpus, tokenizer).unwrap()
}

fn real_batch(tokenizer: &Tokenizer) -> Vec<(Vec<u32>, Vec<bool>)> {
    let docs = plays(tokenizer, 2);
    let s = tokenizer.special();
    let segments: Vec<Segment> = pack_segments(&docs, SEQ_LEN - 2).unwrap().iter().collect();
    segments
        .iter()
        .filter(|seg| seg.ids.len() == SEQ_LEN - 2)
        .take(BATCH)
        .map(|seg| seg.framed(s.cls, s.sep))
        .collect()
}

/// Benches `noise` over `batch`, each example with its own stream, a new epoch per iteration.
fn bench_batch<T>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    batch: &[T],
    noise: impl Fn(&T, &mut ExampleRng) -> usize,
) {
    let mut epoch = 0u64;
    group.bench_function(name, |b| {
        b.iter(|| {
            epoch += 1;
            batch
                .iter()
                .enumerate()
                .map(|(i, x)| noise(x, &mut example_rng(0, epoch, i as u64)))
                .sum::<usize>()
        })
    });
}

fn masking(c: &mut Criterion) {
    let tokenizer = Tokenizer::bundled().unwrap();
    let batch = real_batch(&tokenizer);
    assert_eq!(batch.len(), BATCH);
    let mut group = c.benchmark_group("mlm_masking_32x128");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, unit) in [
        ("token", MaskUnit::Token),
        ("whole_word", MaskUnit::WholeWord),
        ("ngram_albert", MaskUnit::ALBERT),
        ("span_spanbert", MaskUnit::SPANBERT),
    ] {
        let masker =
            MlmMasker::for_tokenizer(MlmMasking::default().with_unit(unit), &tokenizer).unwrap();
        bench_batch(&mut group, name, &batch, |(ids, starts), rng| {
            masker.mask(ids, starts, rng).unwrap().targets.len()
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

fn denoising(c: &mut Criterion) {
    let tokenizer = Tokenizer::bundled().unwrap();
    let batch: Vec<Segment> = real_batch(&tokenizer)
        .into_iter()
        .map(|(ids, word_starts)| Segment { ids, word_starts })
        .collect();
    let mask = tokenizer.special().mask;
    let masker = MlmMasker::for_tokenizer(MlmMasking::default(), &tokenizer).unwrap();
    let sentinels: Vec<u32> = (0..64).map(|k| 8191 - k).collect();
    let mut group = c.benchmark_group("denoising_32x128");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut bench = |name: &str, noise: &dyn Fn(&Segment, &mut ExampleRng) -> usize| {
        bench_batch(&mut group, name, &batch, noise)
    };
    bench("token_masking", &|t, rng| {
        bart::mask_tokens(t, 0.3, mask, rng).unwrap().len()
    });
    bench("token_deletion", &|t, rng| {
        bart::delete_tokens(t, 0.3, rng).unwrap().len()
    });
    bench("text_infilling", &|t, rng| {
        bart::infill(t, 0.3, 3.0, mask, rng).unwrap().len()
    });
    bench("sentence_permutation_8", &|t, rng| {
        let mut sentences: Vec<&[u32]> = t.ids.chunks(16).collect();
        bart::permute_sentences(&mut sentences, 1.0, rng).unwrap();
        sentences.len()
    });
    bench("document_rotation", &|t, rng| bart::rotate(t, rng).len());
    bench("bart_recipe_8_sentences", &|t, rng| {
        let sentences: Vec<Segment> = t
            .ids
            .chunks(16)
            .zip(t.word_starts.chunks(16))
            .map(|(ids, starts)| Segment {
                ids: ids.to_vec(),
                word_starts: starts.to_vec(),
            })
            .collect();
        bart::BartNoise::BART
            .apply(&sentences, mask, rng)
            .unwrap()
            .len()
    });
    bench("mass", &|t, rng| {
        mass_mask(&t.ids, DEFAULT_MASS_SHARE, &masker, rng)
            .unwrap()
            .targets
            .len()
    });
    bench("t5_span_corruption", &|t, rng| {
        let noise = t5::random_spans_noise_mask(
            t.len(),
            t5::DEFAULT_NOISE_DENSITY,
            t5::DEFAULT_MEAN_SPAN_LENGTH,
            rng,
        )
        .unwrap();
        t5::corrupt_spans(&t.ids, &noise, &sentinels)
            .unwrap()
            .0
            .len()
    });
    group.finish();
}

fn permutation_orders(c: &mut Criterion) {
    let tokenizer = Tokenizer::bundled().unwrap();
    let batch: Vec<Vec<bool>> = real_batch(&tokenizer)
        .into_iter()
        .map(|(ids, _)| (0..ids.len()).map(|i| i > 0 && i + 1 < ids.len()).collect())
        .collect();
    let mut group = c.benchmark_group("permutation_32x128");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, masking) in [
        ("xlnet", PermutationMasking::XLNET),
        ("mpnet", PermutationMasking::MPNET),
    ] {
        bench_batch(&mut group, name, &batch, |maskable, rng| {
            masking.sample(maskable, rng).unwrap().num_predict
        });
    }
    group.finish();
}

/// MLM examples at 32 indexes spread over the whole corpus, a new epoch per iteration.
fn example_sources(c: &mut Criterion) {
    let tokenizer = Tokenizer::bundled().unwrap();
    let corpus = pretext::dataset::bundled::pretraining_corpus().unwrap();
    let memory = Documents::tokenize(&corpus, &tokenizer).unwrap();
    let dir = std::env::temp_dir().join(format!("pretext-bench-prepared-{}", std::process::id()));
    let options = PrepareOptions {
        progress: false,
        ..PrepareOptions::default()
    };
    prepare_corpus(&corpus, "bundled", &dir, &tokenizer, &options).unwrap();
    let prepared = Prepared::open(&dir, &tokenizer).unwrap().documents();
    let masking = MlmMasking::default();
    let in_memory = MlmTask::new(&memory, &tokenizer, masking, SEQ_LEN).unwrap();
    let mapped = MlmTask::new(&prepared, &tokenizer, masking, SEQ_LEN).unwrap();
    let n = in_memory.num_examples();
    let indexes: Vec<usize> = (0..BATCH).map(|k| (k * 7919 + 13) % n).collect();
    let vectors: Vec<Segment> = pack_segments(&memory, SEQ_LEN - 2)
        .unwrap()
        .iter()
        .collect();
    let masker = MlmMasker::for_tokenizer(masking, &tokenizer).unwrap();
    let s = tokenizer.special();
    let mut group = c.benchmark_group("mlm_examples_32x128");
    group.throughput(Throughput::Elements(BATCH as u64));
    bench_batch(&mut group, "segment_vectors", &indexes, |&i, rng| {
        let (ids, starts) = vectors[i].framed(s.cls, s.sep);
        masker.mask(&ids, &starts, rng).unwrap().targets.len()
    });
    for (name, task) in [("store_in_memory", &in_memory), ("store_mapped", &mapped)] {
        bench_batch(&mut group, name, &indexes, |&i, rng| {
            task.example(i, rng).unwrap().targets.len()
        });
    }
    // A corpus far larger than the bundled one, prepared beforehand (`prepare` on the output
    // of scripts/synthetic_corpus.py): its random reads fault pages in, as any corpus that
    // does not stay resident does.
    if let Some(dir) = std::env::var_os("PRETEXT_BENCH_PREPARED") {
        let large = Prepared::open(dir.as_ref(), &tokenizer)
            .unwrap()
            .documents();
        let task = MlmTask::new(&large, &tokenizer, masking, SEQ_LEN).unwrap();
        let n = task.num_examples();
        let spread: Vec<usize> = (0..BATCH).map(|k| (k * 7_919_993 + 13) % n).collect();
        bench_batch(&mut group, "store_mapped_large", &spread, |&i, rng| {
            task.example(i, rng).unwrap().targets.len()
        });
    }
    group.finish();
    std::fs::remove_dir_all(dir).unwrap();
}

criterion_group!(
    benches,
    example_sources,
    masking,
    pair_sampling,
    denoising,
    permutation_orders
);
criterion_main!(benches);
