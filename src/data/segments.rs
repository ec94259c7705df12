//! Tokenized documents and their packing into segments: runs of whole consecutive sentences of
//! one document that fill a token budget, as BERT's data builder fills its target length.

use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::tokenize::{Encoded, Tokenizer};

/// A document as token ids, sentence by sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedDocument {
    /// The document's name.
    pub name: String,
    /// Its sentences, tokenized, empty ones dropped.
    pub sentences: Vec<Encoded>,
}

/// Tokenizes every sentence of `corpus` (in parallel, through `tokenizers`).
pub fn tokenize_corpus(corpus: &Corpus, tokenizer: &Tokenizer) -> Result<Vec<TokenizedDocument>> {
    let mut out = Vec::with_capacity(corpus.len());
    for doc in &corpus.documents {
        let texts: Vec<&str> = doc.sentences.iter().map(String::as_str).collect();
        let sentences: Vec<Encoded> = tokenizer
            .encode_batch(&texts)?
            .into_iter()
            .filter(|e| !e.is_empty())
            .collect();
        if !sentences.is_empty() {
            out.push(TokenizedDocument {
                name: doc.name.clone(),
                sentences,
            });
        }
    }
    if out.is_empty() {
        return Err(Error::EmptyCorpus("no document has any token".into()));
    }
    Ok(out)
}

/// A run of tokens from one document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    /// Token ids (no special tokens).
    pub ids: Vec<u32>,
    /// Which tokens start a word.
    pub word_starts: Vec<bool>,
}

impl Segment {
    /// `[CLS] ids [SEP]`, with the specials counted as word starts.
    pub fn framed(&self, cls: u32, sep: u32) -> (Vec<u32>, Vec<bool>) {
        let mut ids = Vec::with_capacity(self.ids.len() + 2);
        ids.push(cls);
        ids.extend_from_slice(&self.ids);
        ids.push(sep);
        let mut starts = Vec::with_capacity(ids.len());
        starts.push(true);
        starts.extend_from_slice(&self.word_starts);
        starts.push(true);
        (ids, starts)
    }

    /// Appends tokens with their word starts.
    pub fn push(&mut self, ids: &[u32], starts: &[bool]) {
        self.ids.extend_from_slice(ids);
        self.word_starts.extend_from_slice(starts);
    }

    /// `[start, end)` token ranges of the words; a segment that opens mid-word (after a
    /// rotation, say) opens with a word.
    pub fn words(&self) -> Vec<(usize, usize)> {
        let mut words: Vec<(usize, usize)> = Vec::new();
        for (i, &start) in self.word_starts.iter().enumerate() {
            match words.last_mut() {
                Some(w) if !start => w.1 = i + 1,
                _ => words.push((i, i + 1)),
            }
        }
        words
    }

    /// The segments one after the other.
    pub fn concat(parts: &[Segment]) -> Segment {
        let mut out = Segment::default();
        for part in parts {
            out.push(&part.ids, &part.word_starts);
        }
        out
    }

    /// Keeps only tokens `range`; a token left first counts as a word start.
    pub fn keep(&mut self, range: std::ops::Range<usize>) {
        self.ids.truncate(range.end);
        self.word_starts.truncate(range.end);
        self.ids.drain(..range.start);
        self.word_starts.drain(..range.start);
        if let Some(first) = self.word_starts.first_mut() {
            *first = true;
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Packs each document's sentences greedily into segments of at most `max_tokens` tokens,
/// never across documents. A sentence longer than `max_tokens` is cut into pieces.
pub fn pack_segments(documents: &[TokenizedDocument], max_tokens: usize) -> Result<Vec<Segment>> {
    Ok(pack_sentences(documents, max_tokens)?
        .iter()
        .map(|sentences| Segment::concat(sentences))
        .collect())
}

/// The same packing as [`pack_segments`], each segment kept as its sentences (or pieces of a
/// long one), for objectives that move sentences around (BART's permutation).
pub fn pack_sentences(
    documents: &[TokenizedDocument],
    max_tokens: usize,
) -> Result<Vec<Vec<Segment>>> {
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
    Ok(groups)
}

/// A synthetic document for tests: sentences of the given lengths whose tokens count up from
/// `first_id`, with a word start every `word_len` tokens.
#[cfg(test)]
pub(crate) fn numbered_document(
    name: &str,
    first_id: u32,
    lengths: &[usize],
    word_len: usize,
) -> TokenizedDocument {
    let mut next = first_id;
    TokenizedDocument {
        name: name.into(),
        sentences: lengths
            .iter()
            .map(|&n| {
                let ids: Vec<u32> = (next..next + n as u32).collect();
                next += n as u32;
                Encoded {
                    ids,
                    word_starts: (0..n).map(|k| k % word_len == 0).collect(),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, lens: &[usize]) -> TokenizedDocument {
        numbered_document(name, 10, lens, 1)
    }

    #[test]
    fn packing_keeps_sentences_whole_order_intact_and_documents_apart() {
        let docs = [doc("a", &[3, 4, 5, 20, 2]), doc("b", &[1])];
        let segs = pack_segments(&docs, 8).unwrap();
        let lens: Vec<usize> = segs.iter().map(|s| s.ids.len()).collect();
        // [3+4], [5], [8], [8], [4], [2] would cross sentences; the rule gives:
        assert_eq!(lens, vec![7, 5, 8, 8, 6, 1]);
        assert!(segs.iter().all(|s| s.ids.len() <= 8));
        let flat: Vec<u32> = segs[..5].iter().flat_map(|s| s.ids.clone()).collect();
        let expected: Vec<u32> = (10..10 + 34).collect();
        assert_eq!(flat, expected, "tokens lost, duplicated or reordered");
    }
}
