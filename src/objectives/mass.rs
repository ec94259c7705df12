//! MASS's data: a segment framed as `[CLS] … [SEP]` with one contiguous span of about half
//! its text masked ([`mass_mask`]) is the source; the decoder reads, at each masked position,
//! the original token before it (at that token's own position) and predicts the span. As in
//! the MASS reference, the decoder may not attend to the encoder's states at positions that
//! became `[MASK]`. The model side is [`Seq2Seq`].
//!
//! [`Seq2Seq`]: super::Seq2Seq

use burn::prelude::*;

use crate::data::body_len;
use crate::data::{Segments, Seq2SeqBatch, Seq2SeqExample, Task, pack_segments};
use crate::dataset::Documents;
use crate::error::Result;
use crate::noise::mass::{check_share, mass_mask};
use crate::noise::{MlmMasker, MlmMasking};
use crate::util::rng::ExampleRng;

use crate::tokenize::{SpecialTokens, Tokenizer};

/// The settings of `mass`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MassSettings {
    /// Share of each segment's text in the masked span.
    pub share: f64,
    /// Decoder layers.
    pub decoder_layers: usize,
}

/// The data side of MASS: segments with one masked span each.
#[derive(Debug, Clone)]
pub struct MassTask {
    segments: Segments,
    share: f64,
    masker: MlmMasker,
    special: SpecialTokens,
}

impl MassTask {
    /// Segments of at most `seq_len` tokens (specials included) from `documents`, with a span
    /// of `share` of each one's text masked (MASS uses 0.5,
    /// [`DEFAULT_MASS_SHARE`](crate::noise::mass::DEFAULT_MASS_SHARE)).
    pub fn new(
        documents: &Documents,
        tokenizer: &Tokenizer,
        share: f64,
        seq_len: usize,
    ) -> Result<Self> {
        check_share(share)?;
        Ok(Self {
            segments: pack_segments(documents, body_len(seq_len)?)?,
            share,
            masker: MlmMasker::for_tokenizer(MlmMasking::default(), tokenizer)?,
            special: tokenizer.special(),
        })
    }
}

impl Task for MassTask {
    type Example = Seq2SeqExample;
    type Batch = Seq2SeqBatch;

    fn num_examples(&self) -> usize {
        self.segments.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<Seq2SeqExample> {
        let (ids, _) = self
            .segments
            .segment(index)
            .framed(self.special.cls, self.special.sep);
        let e = mass_mask(&ids, self.share, &self.masker, rng)?;
        let hidden = e
            .encoder_input
            .iter()
            .map(|&id| id == self.special.mask)
            .collect();
        Ok(Seq2SeqExample {
            decoder_positions: Some(e.decoder_positions.iter().map(|&p| p as u32).collect()),
            hidden_from_decoder: Some(hidden),
            source: e.encoder_input,
            decoder_input: e.decoder_input,
            targets: e.targets,
        })
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
    fn the_decoder_predicts_the_hidden_span_and_cannot_read_its_masks() {
        let tokenizer = Tokenizer::bundled().unwrap();
        let s = tokenizer.special();
        let docs = Documents::from(vec![numbered_document("d", 1000, &[5, 7, 4, 9, 6, 8], 2)]);
        let task = MassTask::new(&docs, &tokenizer, 0.5, 24).unwrap();
        for i in 0..task.num_examples() {
            let original = task.segments.segment(i).framed(s.cls, s.sep).0;
            let e = task.example(i, &mut example_rng(3, 0, i as u64)).unwrap();
            let positions = e.decoder_positions.clone().unwrap();
            let hidden = e.hidden_from_decoder.clone().unwrap();
            for (k, &p) in positions.iter().enumerate() {
                let p = p as usize;
                assert_eq!(e.targets[k], original[p + 1]);
                assert_eq!(e.decoder_input[k], original[p]);
            }
            for (t, &id) in e.source.iter().enumerate() {
                assert_eq!(hidden[t], id == s.mask);
            }
            assert_eq!((e.source[0], *e.source.last().unwrap()), (s.cls, s.sep));
        }
        for share in [0.0, 1.5] {
            assert!(MassTask::new(&docs, &tokenizer, share, 24).is_err());
        }
    }
}
