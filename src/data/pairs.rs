//! Sentence pairs for next-sentence prediction (BERT) and sentence-order prediction (ALBERT),
//! built as BERT's `create_instances_from_document` does, but addressable by example index.
//!
//! Each document is cut once, greedily and without randomness, into chunks of whole sentences
//! that fill `seq_len - 3` tokens; example `i` starts at chunk `i`. From there, per example and
//! from its own random stream: a shorter target length with probability `short_seq_prob`,
//! sentences from the chunk's start until the target is reached, a random split into A and B,
//! then
//! - **NSP**: half the time (always when the chunk has one sentence) B is replaced by sentences
//!   from a random other document, filling what A left of the target. Label `1` = B is random,
//!   `0` = B is the true continuation (BERT's convention; XLNet's is the opposite).
//! - **SOP**: A and B are always consecutive text of one document; half the time they are
//!   swapped. Label `1` = swapped. Where ALBERT's reference pairs a one-sentence chunk with a
//!   random document, this splits that sentence at a random word start instead, so that SOP
//!   never crosses documents.
//!
//! BERT puts the sentences a random B displaced back, to start its next example; here the chunks
//! are fixed so that any example can be made alone, and those sentences wait for an epoch that
//! draws a different split or label for their chunk.
//!
//! Finally the longer segment loses tokens from a random end until the pair fits, each side
//! keeping at least one (BERT's `truncate_seq_pair`), and the pair is framed as
//! `[CLS] A [SEP] B [SEP]` with segment ids 0 then 1.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::util::rng::ExampleRng;
use std::sync::Arc;

use crate::data::Segment;
use crate::dataset::Documents;
use crate::dataset::index::Table;
use crate::error::{Error, Result, check_rate};
use crate::tokenize::SpecialTokens;

/// BERT's and ALBERT's share of examples given a shorter target length.
pub const DEFAULT_SHORT_SEQ_PROB: f64 = 0.1;

/// Which sentence-level task the pairs are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PairKind {
    /// Next-sentence prediction: is B the continuation of A (0) or random text (1)?
    NextSentence,
    /// Sentence-order prediction: are A and B in order (0) or swapped (1)?
    SentenceOrder,
}

impl PairKind {
    /// The objective's short name, which prefixes its metrics: `"nsp"` or `"sop"`.
    pub fn name(self) -> &'static str {
        match self {
            PairKind::NextSentence => "nsp",
            PairKind::SentenceOrder => "sop",
        }
    }
}

/// A framed sentence pair with its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentencePair {
    /// `[CLS] A [SEP] B [SEP]`.
    pub input_ids: Vec<u32>,
    /// 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`.
    pub segment_ids: Vec<u32>,
    /// Word starts of `input_ids`, for whole-word masking.
    pub word_starts: Vec<bool>,
    /// 1 = random B (NSP) or swapped (SOP); 0 otherwise.
    pub label: u8,
    /// Index of the document A came from (B too, unless NSP drew a random B).
    pub document: usize,
}

/// Builds [`SentencePair`]s from tokenized documents.
#[derive(Debug, Clone)]
pub struct PairSampler {
    documents: Documents,
    /// Rows `[document, first sentence]` of each chunk, the sentence numbered over the store.
    chunks: Arc<Table>,
    task: PairKind,
    max_tokens: usize,
    short_seq_prob: f64,
    special: SpecialTokens,
}

impl PairSampler {
    /// Pairs of at most `seq_len` tokens (specials included) from `documents`, with BERT's
    /// `short_seq_prob` ([`DEFAULT_SHORT_SEQ_PROB`]) of shorter targets.
    pub fn new(
        documents: Documents,
        task: PairKind,
        seq_len: usize,
        short_seq_prob: f64,
        special: SpecialTokens,
    ) -> Result<Self> {
        check_rate("short_seq_prob", short_seq_prob)?;
        let max_tokens = seq_len.checked_sub(3).filter(|&n| n >= 2).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "a sequence length of {seq_len} leaves no room for two segments besides \
                 [CLS] [SEP] [SEP]"
            ))
        })?;
        let chunks = Table::build(&documents, &format!("pairs-{max_tokens}"), 2, |rows| {
            for d in 0..documents.len() {
                let sentences = documents.sentences(d);
                if documents.num_tokens(d) < 2 {
                    continue;
                }
                let mut start = sentences.start;
                let mut len = 0;
                for s in sentences.clone() {
                    len += documents.sentence_len(s);
                    if len >= max_tokens || s + 1 == sentences.end {
                        rows.push(&[d as u64, start as u64])?;
                        start = s + 1;
                        len = 0;
                    }
                }
            }
            Ok(0)
        })?;
        if chunks.len() == 0 {
            return Err(Error::EmptyCorpus(
                "no document has two tokens to make a sentence pair from".into(),
            ));
        }
        if (0..documents.len()).all(|d| documents.sentences(d).len() < 2) {
            return Err(Error::EmptyCorpus(
                "every document has a single sentence, so there is no sentence pair to learn \
                 from (is the text split into sentences?)"
                    .into(),
            ));
        }
        Ok(Self {
            documents,
            chunks: Arc::new(chunks),
            task,
            max_tokens,
            short_seq_prob,
            special,
        })
    }

    /// Number of distinct examples (chunks) per epoch.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Whether there is no example.
    pub fn is_empty(&self) -> bool {
        self.chunks.len() == 0
    }

    /// The documents pairs are drawn from.
    pub fn documents(&self) -> &Documents {
        &self.documents
    }

    /// Example `index` (`< len()`), drawn with `rng`.
    pub fn pair(&self, index: usize, rng: &mut ExampleRng) -> SentencePair {
        let doc = self.chunks.get(index, 0) as usize;
        let first = self.chunks.get(index, 1) as usize;
        let end = self.documents.sentences(doc).end;
        let target = if rng.random::<f64>() < self.short_seq_prob {
            rng.random_range(2..=self.max_tokens)
        } else {
            self.max_tokens
        };
        let mut chunk_end = first;
        let mut len = 0;
        while chunk_end < end && len < target {
            len += self.documents.sentence_len(chunk_end);
            chunk_end += 1;
        }
        let chunk: Vec<Segment> = (first..chunk_end)
            .map(|s| self.documents.sentence(s))
            .collect();
        let a_end = if chunk.len() >= 2 {
            rng.random_range(1..chunk.len())
        } else {
            1
        };
        let mut a = Segment::concat(&chunk[..a_end]);
        let mut b = Segment::concat(&chunk[a_end..]);
        let mut label = 0u8;
        match self.task {
            PairKind::NextSentence => {
                if chunk.len() == 1 || rng.random::<f64>() < 0.5 {
                    label = 1;
                    b = self.random_segment(doc, target.saturating_sub(a.ids.len()).max(1), rng);
                }
            }
            PairKind::SentenceOrder => {
                if b.ids.is_empty() {
                    // One sentence: split it at a random word start (any token if none).
                    let cuts: Vec<usize> = (1..a.ids.len()).filter(|&i| a.word_starts[i]).collect();
                    let cut = if cuts.is_empty() {
                        rng.random_range(1..a.ids.len())
                    } else {
                        cuts[rng.random_range(0..cuts.len())]
                    };
                    b.ids = a.ids.split_off(cut);
                    b.word_starts = a.word_starts.split_off(cut);
                    b.word_starts[0] = true;
                }
                if rng.random::<f64>() < 0.5 {
                    std::mem::swap(&mut a, &mut b);
                    label = 1;
                }
            }
        }
        truncate_pair(&mut a, &mut b, self.max_tokens, rng);
        self.frame(a, b, label, doc)
    }

    /// Sentences of a random other document (the same one if there is no other), from a
    /// random sentence on, until `target` tokens.
    fn random_segment(&self, not: usize, target: usize, rng: &mut ExampleRng) -> Segment {
        let n = self.documents.len();
        let mut doc = rng.random_range(0..n);
        for _ in 0..10 {
            if doc != not && !self.documents.sentences(doc).is_empty() {
                break;
            }
            doc = rng.random_range(0..n);
        }
        if self.documents.sentences(doc).is_empty() {
            doc = not;
        }
        let sentences = self.documents.sentences(doc);
        let mut run = Segment::default();
        for s in sentences.start + rng.random_range(0..sentences.len())..sentences.end {
            let sentence = self.documents.sentence(s);
            run.push(&sentence.ids, &sentence.word_starts);
            if run.ids.len() >= target {
                break;
            }
        }
        run
    }

    fn frame(&self, a: Segment, b: Segment, label: u8, document: usize) -> SentencePair {
        // `[CLS] A [SEP]`, then `B [SEP]`.
        let (mut input_ids, mut word_starts) = a.framed(self.special.cls, self.special.sep);
        let b_start = input_ids.len();
        input_ids.extend(b.ids.iter().chain([&self.special.sep]));
        word_starts.extend(b.word_starts.iter().chain([&true]));
        let n = input_ids.len();
        let segment_ids = (0..n).map(|i| u32::from(i >= b_start)).collect();
        SentencePair {
            input_ids,
            segment_ids,
            word_starts,
            label,
            document,
        }
    }
}

/// BERT's `truncate_seq_pair`: drop a token from a random end of the longer segment (B on a
/// tie) until both fit in `max_tokens`; neither is emptied. The trimming moves window bounds
/// and cuts each segment once.
fn truncate_pair(a: &mut Segment, b: &mut Segment, max_tokens: usize, rng: &mut ExampleRng) {
    let (mut a_lo, mut a_hi, mut b_lo, mut b_hi) = (0, a.len(), 0, b.len());
    while (a_hi - a_lo) + (b_hi - b_lo) > max_tokens {
        let (lo, hi) = if a_hi - a_lo > b_hi - b_lo {
            (&mut a_lo, &mut a_hi)
        } else {
            (&mut b_lo, &mut b_hi)
        };
        if *hi - *lo <= 1 {
            break;
        }
        if rng.random::<bool>() {
            *lo += 1;
        } else {
            *hi -= 1;
        }
    }
    if a_lo > 0 || a_hi < a.len() {
        a.keep(a_lo..a_hi);
    }
    if b_lo > 0 || b_hi < b.len() {
        b.keep(b_lo..b_hi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::tokenized::numbered_document;
    use crate::util::rng::example_rng;

    const SPECIAL: SpecialTokens = SpecialTokens {
        pad: 0,
        unk: 1,
        cls: 2,
        sep: 3,
        mask: 4,
    };

    /// Document `d` holds tokens `1000 * (d + 1) + k` so every token names its document; its
    /// sentences have the given lengths, words of two tokens.
    fn corpus(lengths: &[&[usize]]) -> Documents {
        lengths
            .iter()
            .enumerate()
            .map(|(d, lens)| numbered_document(&format!("doc{d}"), 1000 * (d as u32 + 1), lens, 2))
            .collect::<Vec<_>>()
            .into()
    }

    fn many_docs() -> Documents {
        let shapes: Vec<Vec<usize>> = (0..30)
            .map(|d| (0..12).map(|s| 4 + (d * 7 + s * 3) % 9).collect())
            .collect();
        let refs: Vec<&[usize]> = shapes.iter().map(|v| v.as_slice()).collect();
        corpus(&refs)
    }

    fn doc_of(id: u32) -> usize {
        (id / 1000 - 1) as usize
    }

    /// Splits a framed pair into its A and B ids, checking the frame on the way.
    fn segments(p: &SentencePair) -> (Vec<u32>, Vec<u32>) {
        assert_eq!(p.input_ids[0], SPECIAL.cls);
        assert_eq!(*p.input_ids.last().unwrap(), SPECIAL.sep);
        let seps: Vec<usize> = (0..p.input_ids.len())
            .filter(|&i| p.input_ids[i] == SPECIAL.sep)
            .collect();
        assert_eq!(seps.len(), 2, "{:?}", p.input_ids);
        for (i, &seg) in p.segment_ids.iter().enumerate() {
            assert_eq!(seg, u32::from(i > seps[0]), "segment id at {i}");
        }
        (
            p.input_ids[1..seps[0]].to_vec(),
            p.input_ids[seps[0] + 1..seps[1]].to_vec(),
        )
    }

    #[test]
    fn sop_never_crosses_a_document_and_nsp_positives_continue_a() {
        for task in [PairKind::SentenceOrder, PairKind::NextSentence] {
            let s = PairSampler::new(many_docs(), task, 40, 0.1, SPECIAL).unwrap();
            for i in 0..s.len() {
                for epoch in 0..5 {
                    let p = s.pair(i, &mut example_rng(1, epoch, i as u64));
                    let (a, b) = segments(&p);
                    assert!(!a.is_empty() && !b.is_empty());
                    assert!(p.input_ids.len() <= 40);
                    let same_doc = a.iter().chain(&b).all(|&t| doc_of(t) == p.document);
                    if task == PairKind::SentenceOrder || p.label == 0 {
                        assert!(same_doc, "{task:?} pair crosses documents");
                    }
                    // Each segment is contiguous text; in order, B comes after A in the
                    // document (truncation only trims outer ends); swapped, A comes after B.
                    let contiguous = |v: &[u32]| v.windows(2).all(|w| w[1] == w[0] + 1);
                    let (first, second) = if task == PairKind::SentenceOrder && p.label == 1 {
                        (&b, &a)
                    } else {
                        (&a, &b)
                    };
                    assert!(contiguous(first), "a segment is not contiguous: {first:?}");
                    if same_doc && (task == PairKind::SentenceOrder || p.label == 0) {
                        assert!(
                            contiguous(second),
                            "a segment is not contiguous: {second:?}"
                        );
                        assert!(second[0] > *first.last().unwrap(), "order lost");
                    }
                }
            }
        }
    }

    #[test]
    fn labels_are_balanced() {
        for task in [PairKind::SentenceOrder, PairKind::NextSentence] {
            let s = PairSampler::new(many_docs(), task, 40, 0.0, SPECIAL).unwrap();
            let (mut ones, mut n) = (0, 0);
            for epoch in 0..200 {
                for i in 0..s.len() {
                    ones += s.pair(i, &mut example_rng(2, epoch, i as u64)).label as usize;
                    n += 1;
                }
            }
            let share = ones as f64 / n as f64;
            assert!(
                (share - 0.5).abs() < 0.03,
                "{task:?}: label 1 share {share}"
            );
        }
    }

    #[test]
    fn a_one_sentence_document_follows_the_rules() {
        let docs = corpus(&[&[9], &[5, 5, 5]]);
        let nsp = PairSampler::new(docs.clone(), PairKind::NextSentence, 40, 0.0, SPECIAL).unwrap();
        let sop = PairSampler::new(docs, PairKind::SentenceOrder, 40, 0.0, SPECIAL).unwrap();
        assert_eq!((nsp.chunks.get(0, 0), nsp.chunks.get(0, 1)), (0, 0));
        for k in 0..50 {
            // NSP, as BERT: a one-sentence chunk always gets a random B (from the other document).
            let p = nsp.pair(0, &mut example_rng(3, k, 0));
            let (_, b) = segments(&p);
            assert_eq!(p.label, 1);
            assert!(b.iter().all(|&t| doc_of(t) == 1));
            // SOP: the sentence is split at a word start; both halves stay in document 0.
            let p = sop.pair(0, &mut example_rng(3, k, 0));
            let (a, b) = segments(&p);
            assert_eq!(a.len() + b.len(), 9);
            assert!(a.iter().chain(&b).all(|&t| doc_of(t) == 0));
            let cut = if p.label == 1 { a[0] } else { b[0] };
            assert_eq!((cut - 1000) % 2, 0, "cut inside a word");
        }
    }

    #[test]
    fn truncation_keeps_both_segments_and_the_length_limit() {
        let docs = corpus(&[&[30, 2], &[50], &[3, 40, 40]]);
        for task in [PairKind::SentenceOrder, PairKind::NextSentence] {
            let s = PairSampler::new(docs.clone(), task, 16, 0.3, SPECIAL).unwrap();
            for k in 0..200 {
                for i in 0..s.len() {
                    let p = s.pair(i, &mut example_rng(4, k, i as u64));
                    let (a, b) = segments(&p);
                    assert!(!a.is_empty() && !b.is_empty());
                    assert!(p.input_ids.len() <= 16, "{} tokens", p.input_ids.len());
                    assert_eq!(p.word_starts.len(), p.input_ids.len());
                }
            }
        }
    }

    #[test]
    fn same_stream_same_pair_and_bad_settings_are_errors() {
        let s = PairSampler::new(many_docs(), PairKind::NextSentence, 40, 0.1, SPECIAL).unwrap();
        assert_eq!(
            s.pair(3, &mut example_rng(5, 1, 3)),
            s.pair(3, &mut example_rng(5, 1, 3))
        );
        assert!(matches!(
            PairSampler::new(many_docs(), PairKind::NextSentence, 4, 0.1, SPECIAL),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            PairSampler::new(many_docs(), PairKind::NextSentence, 40, 1.5, SPECIAL),
            Err(Error::RateOutOfRange { .. })
        ));
        assert!(matches!(
            PairSampler::new(corpus(&[&[1]]), PairKind::SentenceOrder, 40, 0.1, SPECIAL),
            Err(Error::EmptyCorpus(_))
        ));
        for kind in [PairKind::NextSentence, PairKind::SentenceOrder] {
            assert!(matches!(
                PairSampler::new(corpus(&[&[8], &[5], &[9]]), kind, 40, 0.1, SPECIAL),
                Err(Error::EmptyCorpus(_))
            ));
        }
    }
}
