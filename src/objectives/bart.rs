//! BART's data (fairseq's `DenoisingDataset`): a segment of whole sentences of one document,
//! noised by [`BartNoise`] and framed as `[CLS] … [SEP]`, is the source; the original, framed
//! the same way, is the target. The decoder reads the target shifted right behind `[SEP]`, as
//! fairseq moves its end-of-sentence token to the front. The model side is [`Seq2Seq`].
//!
//! [`Seq2Seq`]: super::Seq2Seq

use burn::prelude::*;

use crate::data::body_len;
use crate::data::{Segment, Segments, Seq2SeqBatch, Seq2SeqExample, Task, pack_segments};
use crate::dataset::Documents;
use crate::error::Result;
use crate::noise::bart::BartNoise;
use crate::util::rng::ExampleRng;

use crate::tokenize::{SpecialTokens, Tokenizer};

/// The settings of `bart`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BartSettings {
    /// The noise of the source.
    pub noise: BartNoise,
    /// Decoder layers.
    pub decoder_layers: usize,
}

/// The data side of BART: noised segments and their originals.
#[derive(Debug, Clone)]
pub struct BartTask {
    segments: Segments,
    noise: BartNoise,
    special: SpecialTokens,
    seq_len: usize,
}

impl BartTask {
    /// Segments of whole sentences, at most `seq_len` tokens once framed, from `documents`,
    /// noised by `noise`.
    pub fn new(
        documents: &Documents,
        tokenizer: &Tokenizer,
        noise: BartNoise,
        seq_len: usize,
    ) -> Result<Self> {
        noise.validate()?;
        Ok(Self {
            segments: pack_segments(documents, body_len(seq_len)?)?,
            noise,
            special: tokenizer.special(),
            seq_len,
        })
    }
}

impl Task for BartTask {
    type Example = Seq2SeqExample;
    type Batch = Seq2SeqBatch;

    fn num_examples(&self) -> usize {
        self.segments.len()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<Seq2SeqExample> {
        let sentences = &self.segments.sentences(index);
        let (cls, sep) = (self.special.cls, self.special.sep);
        let mut noisy = self.noise.apply(sentences, self.special.mask, rng)?;
        // Masks inserted by empty infilling spans can outgrow the sequence; cut the end.
        noisy.keep(0..noisy.len().min(self.seq_len - 2));
        let (source, _) = noisy.framed(cls, sep);
        let (target, _) = Segment::concat(sentences).framed(cls, sep);
        Ok(Seq2SeqExample::shifted(source, target, sep))
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
    fn the_target_is_the_original_and_the_specials_stay_in_place() {
        let tokenizer = Tokenizer::bundled().unwrap();
        let s = tokenizer.special();
        let docs = Documents::from(vec![numbered_document("d", 1000, &[5, 7, 4, 9, 6, 8], 2)]);
        for name in ["bart", "mask", "delete", "infill", "permute", "rotate"] {
            let task =
                BartTask::new(&docs, &tokenizer, BartNoise::preset(name).unwrap(), 24).unwrap();
            for i in 0..task.num_examples() {
                let original = task.segments.segment(i).framed(s.cls, s.sep).0;
                for seed in 0..10 {
                    let e = task
                        .example(i, &mut example_rng(seed, 0, i as u64))
                        .unwrap();
                    assert_eq!(e.targets, original, "{name}: target is not the original");
                    assert_eq!(e.decoder_input[0], s.sep);
                    assert_eq!(&e.decoder_input[1..], &original[..original.len() - 1]);
                    let n = e.source.len();
                    assert!(n <= 24);
                    assert_eq!((e.source[0], e.source[n - 1]), (s.cls, s.sep), "{name}");
                    let inner = &e.source[1..n - 1];
                    assert!(inner.iter().all(|&id| id != s.cls && id != s.sep), "{name}");
                }
            }
        }
    }
}
