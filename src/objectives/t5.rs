//! T5's data (`span_corruption`): raw text of the length [`span_corruption_lengths`] gives for
//! the input length, its noise spans replaced by sentinels in the source and its kept spans
//! in the target, each followed by end-of-sequence (`[SEP]`). The decoder reads the target
//! shifted right behind `[PAD]`, T5's decoder start. The model side is [`Seq2Seq`].
//!
//! Unlike T5, which concatenates documents and cuts the stream, segments here are whole
//! sentences of one document (as for every other objective), so a segment may be shorter than
//! the raw length; its noise is then proportionally less.
//!
//! [`Seq2Seq`]: super::Seq2Seq

use burn::prelude::*;

use crate::data::{Segments, Seq2SeqBatch, Seq2SeqExample, Task};
use crate::dataset::Documents;
use crate::error::{Error, Result};
use crate::noise::t5::{
    corrupt_spans, num_noise_spans, random_spans_noise_mask, span_corruption_lengths,
};
use crate::util::rng::ExampleRng;

use crate::tokenize::{SpecialTokens, Tokenizer};

/// T5's number of sentinel tokens, which its recipe adds to the vocabulary.
pub const T5_SENTINELS: usize = 100;

/// The settings of `t5`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct T5Settings {
    /// How much is hidden, in spans of what length.
    pub corruption: SpanCorruption,
    /// Decoder layers.
    pub decoder_layers: usize,
}

/// How much T5's span corruption hides.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanCorruption {
    /// Share of the tokens that are noise. T5: 0.15.
    pub noise_density: f64,
    /// Mean length of a noise span. T5: 3.
    pub mean_span_length: f64,
}

impl Default for SpanCorruption {
    fn default() -> Self {
        Self {
            noise_density: crate::noise::t5::DEFAULT_NOISE_DENSITY,
            mean_span_length: crate::noise::t5::DEFAULT_MEAN_SPAN_LENGTH,
        }
    }
}

/// Shortest text span corruption takes: one kept token and one noise token.
const MIN_TOKENS: usize = 2;

/// The data side of T5: span-corrupted segments.
#[derive(Debug, Clone)]
pub struct T5Task {
    segments: Segments,
    corruption: SpanCorruption,
    sentinels: Vec<u32>,
    special: SpecialTokens,
}

impl T5Task {
    /// Segments of raw text whose corrupted source (end-of-sequence included) is at most
    /// `seq_len` tokens, from `documents`. Segments shorter than two tokens are left out (a
    /// one-token document has nothing to hide and keep); the tokenizer must have a sentinel
    /// for every span of the longest segment ([`Tokenizer::with_sentinels`]).
    pub fn new(
        documents: &Documents,
        tokenizer: &Tokenizer,
        corruption: SpanCorruption,
        seq_len: usize,
    ) -> Result<Self> {
        let (raw, _) = span_corruption_lengths(
            seq_len,
            corruption.noise_density,
            corruption.mean_span_length,
        )?;
        let segments = Segments::pack(documents, raw, MIN_TOKENS)?;
        if segments.is_empty() {
            return Err(Error::EmptyCorpus(format!(
                "no segment has the {MIN_TOKENS} tokens span corruption needs"
            )));
        }
        // Span counts grow with length, so the longest segment needs the most sentinels.
        let longest = segments.longest();
        let needed = num_noise_spans(
            longest,
            corruption.noise_density,
            corruption.mean_span_length,
        )?;
        let sentinels = tokenizer.sentinels();
        if sentinels.len() < needed {
            return Err(Error::NotEnoughSentinels {
                needed,
                found: sentinels.len(),
            });
        }
        Ok(Self {
            segments,
            corruption,
            sentinels,
            special: tokenizer.special(),
        })
    }
}

/// Span corruption of `tokens`: `(source, target)`, each ending in `eos`.
pub fn span_corrupt(
    tokens: &[u32],
    corruption: SpanCorruption,
    sentinels: &[u32],
    eos: u32,
    rng: &mut ExampleRng,
) -> Result<(Vec<u32>, Vec<u32>)> {
    if tokens.len() < MIN_TOKENS {
        return Err(Error::TextTooShort {
            what: "span corruption",
            len: tokens.len(),
            min: MIN_TOKENS,
        });
    }
    let noise = random_spans_noise_mask(
        tokens.len(),
        corruption.noise_density,
        corruption.mean_span_length,
        rng,
    )?;
    let (mut source, mut target) = corrupt_spans(tokens, &noise, sentinels)?;
    source.push(eos);
    target.push(eos);
    Ok((source, target))
}

impl Task for T5Task {
    type Example = Seq2SeqExample;
    type Batch = Seq2SeqBatch;

    fn num_examples(&self) -> usize {
        self.segments.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<Seq2SeqExample> {
        let (source, target) = span_corrupt(
            &self.segments.segment(index).ids,
            self.corruption,
            &self.sentinels,
            self.special.sep,
            rng,
        )?;
        Ok(Seq2SeqExample::shifted(source, target, self.special.pad))
    }

    fn collate(&self, examples: &[Seq2SeqExample], device: &Device) -> Result<Seq2SeqBatch> {
        Seq2SeqBatch::collate(examples, self.special.pad, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::tokenized::numbered_document;
    use crate::util::rng::example_rng;

    #[test]
    fn sources_fit_the_input_length_and_targets_start_with_the_first_sentinel() {
        let tokenizer = Tokenizer::bundled().unwrap().with_sentinels(20).unwrap();
        let sentinels = tokenizer.sentinels();
        let docs = Documents::from(vec![numbered_document("d", 1000, &[40, 50, 30, 60, 45], 2)]);
        let task = T5Task::new(&docs, &tokenizer, SpanCorruption::default(), 64).unwrap();
        for i in 0..task.num_examples() {
            let e = task.example(i, &mut example_rng(1, 0, i as u64)).unwrap();
            assert!(e.source.len() <= 64, "source of {}", e.source.len());
            assert_eq!(e.targets[0], sentinels[0]);
            assert_eq!(e.decoder_input[0], tokenizer.special().pad);
            let sep = tokenizer.special().sep;
            assert_eq!(
                (*e.source.last().unwrap(), *e.targets.last().unwrap()),
                (sep, sep)
            );
        }
    }

    #[test]
    fn too_few_sentinels_or_too_short_texts_are_typed_errors() {
        let docs = Documents::from(vec![numbered_document("d", 1000, &[40, 50, 30, 60, 45], 2)]);
        let few = Tokenizer::bundled().unwrap().with_sentinels(2).unwrap();
        let err = T5Task::new(&docs, &few, SpanCorruption::default(), 128).unwrap_err();
        // Sentences of 40 + 50 + 30 fill the longest segment (of at most 141 raw tokens):
        // 18 noise tokens in 6 spans.
        assert!(
            matches!(
                err,
                Error::NotEnoughSentinels {
                    needed: 6,
                    found: 2
                }
            ),
            "{err}"
        );
        let short = span_corrupt(
            &[7],
            SpanCorruption::default(),
            &[99],
            3,
            &mut example_rng(0, 0, 0),
        );
        assert!(matches!(short, Err(Error::TextTooShort { len: 1, .. })));
        let tokenizer = few.with_sentinels(10).unwrap();
        let one_token = [numbered_document("d", 1000, &[1], 1)];
        let err = T5Task::new(
            &Documents::from(&one_token[..]),
            &tokenizer,
            SpanCorruption::default(),
            128,
        )
        .unwrap_err();
        assert!(matches!(err, Error::EmptyCorpus(_)), "{err}");
    }
}
