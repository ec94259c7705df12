//! Packing documents into segments: runs of whole consecutive sentences of one document that
//! fill a token budget, as BERT's data builder fills its target length.

use std::sync::Arc;

use crate::dataset::documents::Documents;
use crate::dataset::index::Table;
use crate::error::{Error, Result};
use crate::tokenize::Segment;

/// Each document's sentences packed greedily into segments of at most `max_tokens` tokens,
/// never across documents, as BERT's data builder fills its target length; a sentence longer
/// than `max_tokens` is cut into pieces. The packing is an index of token ranges (built once,
/// and cached beside a prepared dataset), so segment `i` is read in O(1).
#[derive(Debug, Clone)]
pub struct Segments {
    documents: Documents,
    /// Rows `[first token, end token, first sentence]`.
    table: Arc<Table>,
    max_tokens: usize,
}

/// Room left for text in a sequence of `seq_len` tokens once `[CLS]` and `[SEP]` are in: the
/// segment length to pack for a BERT-style framing, or an error if nothing fits.
///
/// ```
/// assert_eq!(pretext::data::body_len(128).unwrap(), 126);
/// assert!(pretext::data::body_len(2).is_err());
/// ```
pub fn body_len(seq_len: usize) -> Result<usize> {
    seq_len.checked_sub(2).filter(|&n| n > 0).ok_or_else(|| {
        Error::InvalidConfig(format!(
            "a sequence length of {seq_len} leaves no room for text besides [CLS] and [SEP]"
        ))
    })
}

/// [`Segments::pack`] keeping every segment.
pub fn pack_segments(documents: &Documents, max_tokens: usize) -> Result<Segments> {
    Segments::pack(documents, max_tokens, 1)
}

impl Segments {
    /// Packs `documents` into segments of at most `max_tokens` tokens, leaving out those
    /// shorter than `min_tokens`.
    pub fn pack(documents: &Documents, max_tokens: usize, min_tokens: usize) -> Result<Self> {
        if max_tokens == 0 {
            return Err(Error::InvalidConfig(
                "segments need room for at least one token".into(),
            ));
        }
        if documents.is_empty() {
            return Err(Error::EmptyCorpus(
                "no documents to cut into segments".into(),
            ));
        }
        let name = format!("segments-{max_tokens}-{min_tokens}");
        let table = Table::build(documents, &name, 3, |rows| {
            let mut longest = 0;
            let mut emit = |start: usize, end: usize, sentence: usize| -> Result<()> {
                if end - start >= min_tokens {
                    longest = longest.max(end - start);
                    rows.push(&[start as u64, end as u64, sentence as u64])?;
                }
                Ok(())
            };
            for d in 0..documents.len() {
                // The segment being filled: first token, first sentence, tokens so far.
                let (mut start, mut first, mut tokens) = (0, 0, 0);
                for s in documents.sentences(d) {
                    let range = documents.store().sentence_tokens(s);
                    for piece in range.clone().step_by(max_tokens) {
                        let len = max_tokens.min(range.end - piece);
                        if tokens + len > max_tokens && tokens > 0 {
                            emit(start, piece, first)?;
                            tokens = 0;
                        }
                        if tokens == 0 {
                            (start, first) = (piece, s);
                        }
                        tokens += len;
                    }
                }
                if tokens > 0 {
                    emit(start, start + tokens, first)?;
                }
            }
            Ok(longest as u64)
        })?;
        Ok(Self {
            documents: documents.clone(),
            table: Arc::new(table),
            max_tokens,
        })
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there is no segment.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Tokens in the longest segment.
    pub fn longest(&self) -> usize {
        self.table.extra() as usize
    }

    /// Tokens `[first, end)` of segment `index`, numbered over the store.
    fn range(&self, index: usize) -> std::ops::Range<usize> {
        self.table.get(index, 0) as usize..self.table.get(index, 1) as usize
    }

    /// Segment `index`.
    pub fn segment(&self, index: usize) -> Segment {
        self.documents.tokens(self.range(index))
    }

    /// Segment `index` kept as its sentences (or pieces of a long one), for objectives that
    /// move sentences around (BART's permutation).
    pub fn sentences(&self, index: usize) -> Vec<Segment> {
        let range = self.range(index);
        let store = self.documents.store();
        let mut pieces = Vec::new();
        let mut s = self.table.get(index, 2) as usize;
        while s < store.num_sentences() {
            let sentence = store.sentence_tokens(s);
            if sentence.start >= range.end {
                break;
            }
            // Pieces are cut from the sentence's start, so the segment starts on a boundary.
            let mut piece = sentence.start.max(range.start);
            while piece < sentence.end.min(range.end) {
                let end = (piece + self.max_tokens).min(sentence.end);
                pieces.push(store.tokens(piece..end));
                piece = end;
            }
            s += 1;
        }
        pieces
    }

    /// Every segment in order.
    pub fn iter(&self) -> impl Iterator<Item = Segment> + '_ {
        (0..self.len()).map(|i| self.segment(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::tokenized::{TokenizedDocument, numbered_document};

    fn doc(name: &str, lens: &[usize]) -> TokenizedDocument {
        numbered_document(name, 10, lens, 1)
    }

    #[test]
    fn packing_keeps_sentences_whole_order_intact_and_documents_apart() {
        let docs = Documents::from(vec![doc("a", &[3, 4, 5, 20, 2]), doc("b", &[1])]);
        let packed = pack_segments(&docs, 8).unwrap();
        let segs: Vec<Segment> = packed.iter().collect();
        let lens: Vec<usize> = segs.iter().map(|s| s.ids.len()).collect();
        // [3+4], [5], [8], [8], [4], [2] would cross sentences; the rule gives:
        assert_eq!(lens, vec![7, 5, 8, 8, 6, 1]);
        assert!(segs.iter().all(|s| s.ids.len() <= 8));
        let flat: Vec<u32> = segs[..5].iter().flat_map(|s| s.ids.clone()).collect();
        let expected: Vec<u32> = (10..10 + 34).collect();
        assert_eq!(flat, expected, "tokens lost, duplicated or reordered");
    }

    /// The packing rule written plainly over in-memory documents, against which the index
    /// is checked.
    fn reference_pack(documents: &[TokenizedDocument], max_tokens: usize) -> Vec<Vec<Segment>> {
        let mut groups = Vec::new();
        for doc in documents {
            let mut current: Vec<Segment> = Vec::new();
            let mut tokens = 0;
            for sentence in &doc.sentences {
                for (ids, starts) in sentence
                    .ids
                    .chunks(max_tokens)
                    .zip(sentence.word_starts.chunks(max_tokens))
                {
                    if tokens + ids.len() > max_tokens && !current.is_empty() {
                        groups.push(std::mem::take(&mut current));
                        tokens = 0;
                    }
                    let mut piece = Segment::default();
                    piece.push(ids, starts);
                    current.push(piece);
                    tokens += ids.len();
                }
            }
            if !current.is_empty() {
                groups.push(current);
            }
        }
        groups
    }

    #[test]
    fn the_index_packs_as_the_plain_rule_does() {
        use rand::RngExt;
        let mut rng = crate::util::rng::example_rng(3, 0, 0);
        for round in 0..40 {
            let docs: Vec<TokenizedDocument> = (0..rng.random_range(1..6))
                .map(|d| {
                    let lens: Vec<usize> = (0..rng.random_range(1..8))
                        .map(|_| rng.random_range(1..30))
                        .collect();
                    numbered_document(&format!("d{d}"), 1, &lens, rng.random_range(1..4))
                })
                .collect();
            let max = rng.random_range(1..20);
            let expected = reference_pack(&docs, max);
            let packed = pack_segments(&Documents::from(docs.as_slice()), max).unwrap();
            assert_eq!(packed.len(), expected.len(), "round {round}");
            for (i, pieces) in expected.iter().enumerate() {
                assert_eq!(&packed.sentences(i), pieces, "round {round} segment {i}");
                assert_eq!(packed.segment(i), Segment::concat(pieces));
            }
            let longest = expected.iter().map(|p| Segment::concat(p).len()).max();
            assert_eq!(Some(packed.longest()), longest);
        }
    }
}
