//! Tokenized text: documents as token ids sentence by sentence, runs of tokens with their word
//! starts, and the one way text is tokenized, in parallel batches, for memory and for
//! prepared datasets alike.

use crate::corpus::{Corpus, Document};
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

/// Tokenizes every sentence of `corpus` (in parallel, through `tokenizers`, a few megabytes
/// of text at a time), dropping sentences without a token and then documents left without one.
pub fn tokenize_corpus(corpus: &Corpus, tokenizer: &Tokenizer) -> Result<Vec<TokenizedDocument>> {
    let mut out = Vec::with_capacity(corpus.len());
    for batch in text_batches(&corpus.documents, BATCH_BYTES) {
        out.extend(tokenize_documents(batch, tokenizer)?);
    }
    if out.is_empty() {
        return Err(Error::EmptyCorpus("no document has any token".into()));
    }
    Ok(out)
}

/// Text tokenized per call: enough to keep every core busy, little enough that the
/// tokenizer's intermediate encodings stay small.
pub const BATCH_BYTES: usize = 4 << 20;

/// `documents` in runs of at least `bytes` of sentence text (the last run may be shorter):
/// the batches the tokenizer is called on.
pub(crate) fn text_batches(
    documents: &[Document],
    bytes: usize,
) -> impl Iterator<Item = &[Document]> {
    let mut rest = documents;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut text = 0;
        let end = rest
            .iter()
            .position(|d| {
                text += d.text_len();
                text >= bytes
            })
            .map_or(rest.len(), |i| i + 1);
        let (batch, after) = rest.split_at(end);
        rest = after;
        Some(batch)
    })
}

/// Tokenizes `documents` in one parallel call, sentence by sentence, dropping sentences
/// without a token and then documents left without one.
pub fn tokenize_documents(
    documents: &[Document],
    tokenizer: &Tokenizer,
) -> Result<Vec<TokenizedDocument>> {
    let texts: Vec<&str> = documents
        .iter()
        .flat_map(|d| d.sentences.iter().map(String::as_str))
        .collect();
    let mut encoded = tokenizer.encode_batch(&texts)?.into_iter();
    Ok(documents
        .iter()
        .map(|d| TokenizedDocument {
            name: d.name.clone(),
            sentences: encoded
                .by_ref()
                .take(d.sentences.len())
                .filter(|e| !e.is_empty())
                .collect(),
        })
        .filter(|d| !d.sentences.is_empty())
        .collect())
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
