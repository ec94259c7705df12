//! Documents: the side of a token store a task reads (all of it, or one side of the
//! train/validation split). Cheap to clone: the store is shared, and only the list of
//! document numbers is the split's own.

use std::ops::Range;
use std::sync::Arc;

use super::store::TokenStore;
use super::tokenized::TokenizedDocument;
use crate::corpus::Corpus;
use crate::error::Result;
use crate::tokenize::Segment;
use crate::tokenize::Tokenizer;

/// Some documents of a [`TokenStore`], in store order.
#[derive(Debug, Clone)]
pub struct Documents {
    store: Arc<TokenStore>,
    /// Store numbers of the documents; `None` for all of them.
    chosen: Option<Arc<Vec<u32>>>,
}

impl Documents {
    /// Every document of `store`.
    pub fn all(store: Arc<TokenStore>) -> Self {
        Self {
            store,
            chosen: None,
        }
    }

    /// The documents of `store` numbered `chosen` (in increasing order).
    pub fn subset(store: Arc<TokenStore>, chosen: Vec<u32>) -> Self {
        debug_assert!(chosen.windows(2).all(|w| w[0] < w[1]));
        Self {
            store,
            chosen: Some(Arc::new(chosen)),
        }
    }

    /// `(train, validation)` documents of `store`, split by name as
    /// [`Corpus::split`] splits a corpus with `seed`, so that a corpus split before or after
    /// tokenization holds out the same documents.
    pub fn split(store: Arc<TokenStore>, valid_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        let names: Vec<&str> = store.names.iter().map(String::as_str).collect();
        let valid = crate::corpus::validation_flags(&names, valid_fraction, seed)?;
        let (mut train, mut held) = (Vec::new(), Vec::new());
        for (d, v) in valid.into_iter().enumerate() {
            if v { &mut held } else { &mut train }.push(d as u32);
        }
        Ok((
            Self::subset(store.clone(), train),
            Self::subset(store, held),
        ))
    }

    /// Tokenizes `corpus` into a store in memory.
    pub fn tokenize(corpus: &Corpus, tokenizer: &Tokenizer) -> Result<Self> {
        TokenStore::tokenize(corpus, tokenizer).map(|store| Self::all(Arc::new(store)))
    }

    /// The store they are read from.
    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.chosen
            .as_ref()
            .map_or(self.store.num_documents(), |c| c.len())
    }

    /// Whether there is no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The store's number for document `index`.
    pub fn store_index(&self, index: usize) -> usize {
        self.chosen.as_ref().map_or(index, |c| c[index] as usize)
    }

    /// Document `index`'s name.
    pub fn name(&self, index: usize) -> &str {
        self.store.name(self.store_index(index))
    }

    /// Document `index`'s sentences, numbered over the store.
    pub fn sentences(&self, index: usize) -> Range<usize> {
        self.store.document_sentences(self.store_index(index))
    }

    /// Sentence `index` (a store number) with its word starts.
    pub fn sentence(&self, index: usize) -> Segment {
        self.store.sentence(index)
    }

    /// Number of tokens of sentence `index` (a store number).
    pub fn sentence_len(&self, index: usize) -> usize {
        self.store.sentence_tokens(index).len()
    }

    /// Number of tokens of document `index`.
    pub fn num_tokens(&self, index: usize) -> usize {
        let sentences = self.sentences(index);
        if sentences.is_empty() {
            return 0;
        }
        self.store.sentence_tokens(sentences.end - 1).end
            - self.store.sentence_tokens(sentences.start).start
    }

    /// Tokens `range` (store numbers) with their word starts.
    pub fn tokens(&self, range: Range<usize>) -> Segment {
        self.store.tokens(range)
    }

    /// Document `index`, read out.
    pub fn document(&self, index: usize) -> TokenizedDocument {
        self.store.document(self.store_index(index))
    }

    /// A key of which documents these are, naming the indexes cached for them.
    pub(crate) fn key(&self) -> u64 {
        let store = &self.store;
        let mut hash = crate::util::rng::FNV_OFFSET;
        for count in [self.len(), store.num_tokens(), store.num_sentences()] {
            hash = crate::util::rng::splitmix64(hash ^ count as u64);
        }
        if let Some(chosen) = &self.chosen {
            for &d in chosen.iter() {
                hash = crate::util::rng::splitmix64(hash ^ u64::from(d));
            }
        }
        hash
    }
}

impl From<&[TokenizedDocument]> for Documents {
    /// A store in memory holding `documents` (those without a token left out).
    fn from(documents: &[TokenizedDocument]) -> Self {
        Self::all(Arc::new(TokenStore::from_documents(documents)))
    }
}

impl From<Vec<TokenizedDocument>> for Documents {
    fn from(documents: Vec<TokenizedDocument>) -> Self {
        Self::from(documents.as_slice())
    }
}
