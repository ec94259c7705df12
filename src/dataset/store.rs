//! The token store: a tokenized corpus as flat arrays (ids, word-start bits, sentence and
//! document offsets, names), held in memory or memory-mapped from a prepared dataset. Every
//! task reads its text through it, so the bundled corpus and a corpus of many gigabytes take
//! the same path, and a run's memory does not grow with the corpus.

use std::io::Write;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::tokenized::{TokenizedDocument, tokenize_corpus};
use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::tokenize::Segment;
use crate::tokenize::Tokenizer;

/// Bytes of a store's array: owned, or mapped from a file.
#[derive(Debug)]
pub(crate) enum Bytes {
    /// Built in memory.
    Owned(Vec<u8>),
    /// Mapped read-only from a prepared dataset's file.
    Mapped(Mmap),
}

impl Bytes {
    /// Gives back the pages of a mapped file that reading made resident: the page cache keeps
    /// them, and a page read again is mapped again from there, unchanged.
    pub(crate) fn release(&self) {
        if let Bytes::Mapped(map) = self
            && map.len() > RELEASE_ABOVE
        {
            // SAFETY: the maps are read-only views of files never written while mapped, so a
            // dropped page reads back the same. A refusal only keeps the pages.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }
}

/// Reads between two releases of a map's pages: random reads fault in whole runs of pages
/// around each one, so that without releases a long run would make a corpus of any size
/// resident; a release costs a few microseconds.
const RELEASE_EVERY: usize = 64;

/// Maps no larger than this are never released: all of one costs less memory than the page
/// faults releasing it would cost time.
const RELEASE_ABOVE: usize = 32 << 20;

/// Counts the reads of a map, saying when to release its pages.
#[derive(Debug, Default)]
pub(crate) struct ReadCounter(AtomicUsize);

impl ReadCounter {
    /// Counts a read; true every [`RELEASE_EVERY`] reads.
    pub(crate) fn tick(&self) -> bool {
        (self.0.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(RELEASE_EVERY)
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// Maps `file` read-only for reading at random places: without read-ahead, so that a run
/// reading one example here and one there keeps resident only the pages it reads.
pub(crate) fn map_random(file: &std::fs::File) -> std::io::Result<Bytes> {
    // SAFETY: read-only; the files of a finished preparation and its indexes are never written
    // again (a new preparation removes the manifest and indexes first, and readers open
    // through them); a file changed by another program under a running reader is outside
    // what we can guard.
    let map = unsafe { Mmap::map(file) }?;
    // Only advice: refused, the map still reads the same.
    let _ = map.advise(memmap2::Advice::Random);
    Ok(Bytes::Mapped(map))
}

/// The `index`-th little-endian `u64` of `bytes`.
pub(crate) fn u64_at(bytes: &[u8], index: usize) -> u64 {
    let at = index * 8;
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// A tokenized corpus, read-only. Documents are numbered in the order they were written;
/// sentences and tokens are numbered over the whole store.
#[derive(Debug)]
pub struct TokenStore {
    pub(crate) tokens: Bytes,
    pub(crate) starts: Bytes,
    pub(crate) sentences: Bytes,
    pub(crate) documents: Bytes,
    pub(crate) id_bytes: usize,
    pub(crate) names: Vec<String>,
    /// The prepared dataset's directory, where indexes built over the store are cached;
    /// `None` for a store built in memory.
    pub(crate) dir: Option<PathBuf>,
    pub(crate) reads: ReadCounter,
}

impl TokenStore {
    /// A store in memory holding `documents` (sentences without a token dropped, documents
    /// left without one skipped).
    pub fn from_documents<'a>(documents: impl IntoIterator<Item = &'a TokenizedDocument>) -> Self {
        // Writing to memory cannot fail.
        let mut writer = StoreWriter::new(StoreFiles::default(), 4, None, Path::new("memory"))
            .expect("writing to memory");
        let mut names = Vec::new();
        for document in documents {
            // The names are kept here, not parsed back.
            if writer.push(document).unwrap_or(false) {
                names.push(document.name.clone());
            }
        }
        let (files, _) = writer.finish().expect("writing to memory");
        Self {
            tokens: Bytes::Owned(files.tokens),
            starts: Bytes::Owned(files.starts),
            sentences: Bytes::Owned(files.sentences),
            documents: Bytes::Owned(files.documents),
            id_bytes: 4,
            names,
            dir: None,
            reads: ReadCounter::default(),
        }
    }

    /// Tokenizes `corpus` into a store in memory; no token at all is
    /// [`Error::EmptyCorpus`].
    pub fn tokenize(corpus: &Corpus, tokenizer: &Tokenizer) -> Result<Self> {
        Ok(Self::from_documents(&tokenize_corpus(corpus, tokenizer)?))
    }

    /// Documents stored.
    pub fn num_documents(&self) -> usize {
        self.names.len()
    }

    /// Sentences stored.
    pub fn num_sentences(&self) -> usize {
        self.sentences.len() / 8 - 1
    }

    /// Tokens stored.
    pub fn num_tokens(&self) -> usize {
        self.tokens.len() / self.id_bytes
    }

    /// Document `index`'s name.
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The sentences `[first, end)` of document `index`.
    pub fn document_sentences(&self, index: usize) -> Range<usize> {
        u64_at(&self.documents, index) as usize..u64_at(&self.documents, index + 1) as usize
    }

    /// The tokens `[first, end)` of sentence `index`.
    pub fn sentence_tokens(&self, index: usize) -> Range<usize> {
        u64_at(&self.sentences, index) as usize..u64_at(&self.sentences, index + 1) as usize
    }

    /// Tokens `range` with their word starts, as stored (a token first in the range keeps its
    /// own word-start bit).
    pub fn tokens(&self, range: Range<usize>) -> Segment {
        if self.reads.tick() {
            self.release();
        }
        let width = self.id_bytes;
        let ids = self.tokens[range.start * width..range.end * width]
            .chunks_exact(width)
            .map(|b| match width {
                2 => u32::from(u16::from_le_bytes([b[0], b[1]])),
                _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            })
            .collect();
        let word_starts = range
            .map(|t| self.starts[t / 8] >> (t % 8) & 1 == 1)
            .collect();
        Segment { ids, word_starts }
    }

    /// Sentence `index` with its word starts.
    pub fn sentence(&self, index: usize) -> Segment {
        self.tokens(self.sentence_tokens(index))
    }

    /// Document `index`, its sentences read out.
    pub fn document(&self, index: usize) -> TokenizedDocument {
        TokenizedDocument {
            name: self.names[index].clone(),
            sentences: self
                .document_sentences(index)
                .map(|s| self.sentence(s))
                .collect(),
        }
    }

    /// Gives back the mapped pages a pass over the whole store made resident, so that a
    /// run's resident memory stays what its batches touch. Pages read again come back from
    /// the page cache.
    pub(crate) fn release(&self) {
        for bytes in [&self.tokens, &self.starts, &self.sentences, &self.documents] {
            bytes.release();
        }
    }
}

/// The five arrays of a store being written: files of a prepared dataset, or buffers.
#[derive(Debug, Default)]
pub(crate) struct StoreFiles<W> {
    pub tokens: W,
    pub starts: W,
    pub sentences: W,
    pub documents: W,
    pub names: W,
}

/// How far a store's writing has got: the counts, and the word-start bits of a byte not yet
/// written. With the ids' width it fixes every file's length, so a killed preparation is
/// resumed by cutting its files back to these lengths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterState {
    /// Tokens written.
    pub tokens: u64,
    /// Sentences written.
    pub sentences: u64,
    /// Documents written.
    pub documents: u64,
    /// Bytes of `names.txt` written.
    pub name_bytes: u64,
    /// Word-start bits waiting for their byte to fill.
    pub pending_bits: u8,
}

impl WriterState {
    /// The length each file must have: tokens, starts, sentences, documents, names.
    pub fn file_lengths(&self, id_bytes: usize) -> [u64; 5] {
        [
            self.tokens * id_bytes as u64,
            self.tokens / 8,
            (self.sentences + 1) * 8,
            (self.documents + 1) * 8,
            self.name_bytes,
        ]
    }
}

/// Appends documents to a store's arrays, streaming: it holds nothing but the state.
pub(crate) struct StoreWriter<W: Write> {
    files: StoreFiles<W>,
    id_bytes: usize,
    /// Ids must be below it, when known.
    vocab: Option<usize>,
    state: WriterState,
    /// Named by write errors.
    place: PathBuf,
}

fn put<W: Write>(out: &mut W, bytes: &[u8], place: &Path) -> Result<()> {
    out.write_all(bytes).map_err(|e| Error::io(place, e))
}

impl<W: Write> StoreWriter<W> {
    /// A writer of a new store, `id_bytes` (2 or 4) per id; writes the leading zero offsets.
    /// Write errors name `place`.
    pub fn new(
        mut files: StoreFiles<W>,
        id_bytes: usize,
        vocab: Option<usize>,
        place: &Path,
    ) -> Result<Self> {
        put(&mut files.sentences, &0u64.to_le_bytes(), place)?;
        put(&mut files.documents, &0u64.to_le_bytes(), place)?;
        let state = WriterState::default();
        Ok(Self::resume(files, id_bytes, vocab, state, place))
    }

    /// A writer that carries on from `state`, its files already cut to its lengths.
    pub fn resume(
        files: StoreFiles<W>,
        id_bytes: usize,
        vocab: Option<usize>,
        state: WriterState,
        place: &Path,
    ) -> Self {
        Self {
            files,
            id_bytes,
            vocab,
            state,
            place: place.to_path_buf(),
        }
    }

    /// Where the writing stands.
    pub fn state(&self) -> WriterState {
        self.state
    }

    /// The files, to flush.
    pub fn files_mut(&mut self) -> &mut StoreFiles<W> {
        &mut self.files
    }

    /// Appends `document`; sentences without a token are dropped and a document left
    /// without one is skipped. Returns whether it was written.
    pub fn push(&mut self, document: &TokenizedDocument) -> Result<bool> {
        if document.name.contains('\n') {
            return Err(Error::Dataset {
                path: self.place.clone(),
                reason: format!("document name {:?} holds a line break", document.name),
            });
        }
        if document.sentences.iter().all(|s| s.is_empty()) {
            return Ok(false);
        }
        let (s, files, place) = (&mut self.state, &mut self.files, &self.place);
        for sentence in document.sentences.iter().filter(|s| !s.is_empty()) {
            for (&id, &start) in sentence.ids.iter().zip(&sentence.word_starts) {
                if let Some(vocab) = self.vocab.filter(|&v| id as usize >= v) {
                    return Err(Error::TokenOutOfRange { id, vocab });
                }
                // Little-endian: a 2-byte id is the first two bytes of the 4-byte one.
                put(&mut files.tokens, &id.to_le_bytes()[..self.id_bytes], place)?;
                let bit = (s.tokens % 8) as u8;
                s.pending_bits |= u8::from(start) << bit;
                s.tokens += 1;
                if bit == 7 {
                    put(&mut files.starts, &[s.pending_bits], place)?;
                    s.pending_bits = 0;
                }
            }
            s.sentences += 1;
            put(&mut files.sentences, &s.tokens.to_le_bytes(), place)?;
        }
        s.documents += 1;
        put(&mut files.documents, &s.sentences.to_le_bytes(), place)?;
        let line = format!("{}\n", document.name);
        put(&mut files.names, line.as_bytes(), place)?;
        s.name_bytes += line.len() as u64;
        Ok(true)
    }

    /// Writes the last partial byte of word starts and hands the files back.
    pub fn finish(mut self) -> Result<(StoreFiles<W>, WriterState)> {
        if !self.state.tokens.is_multiple_of(8) {
            put(
                &mut self.files.starts,
                &[self.state.pending_bits],
                &self.place,
            )?;
        }
        Ok((self.files, self.state))
    }
}
