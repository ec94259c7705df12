//! A tokenized corpus prepared once into flat binary files and read back through memory maps,
//! as fairseq's and Megatron's indexed datasets and nanoGPT's token `.bin` files are: the cost
//! of opening it does not grow with the corpus, and a run touches only the pages it reads.
//!
//! A prepared directory holds
//! - `tokens.bin`: every sentence's token ids back to back, little-endian `u16` when the
//!   vocabulary fits in 16 bits, else `u32`;
//! - `starts.bin`: one bit per token (least significant first), set where a token starts a word;
//! - `sentences.bin`: `u64` offsets into the tokens, one per sentence and one past the end;
//! - `documents.bin`: `u64` offsets into the sentences, one per document and one past the end;
//! - `names.txt`: each document's name, a line each (the key of the train/validation split);
//! - `dataset.json`: the manifest (format version, the tokenizer's fingerprint, the counts),
//!   written last, so that a directory without it is an unfinished preparation.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::segments::TokenizedDocument;
use crate::error::{Error, Result};
use crate::tokenize::{Encoded, Tokenizer};

/// The manifest's file name.
pub const MANIFEST: &str = "dataset.json";
const TOKENS: &str = "tokens.bin";
const STARTS: &str = "starts.bin";
const SENTENCES: &str = "sentences.bin";
const DOCUMENTS: &str = "documents.bin";
const NAMES: &str = "names.txt";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What `dataset.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The file format's version.
    pub version: u32,
    /// [`Tokenizer::fingerprint`] of the tokenizer the ids come from.
    pub tokenizer: String,
    /// Its vocabulary size.
    pub vocab_size: usize,
    /// Bytes per stored id: 2 or 4.
    pub id_bytes: usize,
    /// Tokens stored.
    pub tokens: u64,
    /// Sentences stored.
    pub sentences: u64,
    /// Documents stored.
    pub documents: u64,
}

fn fault(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Dataset {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Writes `documents` (tokenized by `tokenizer`) as a prepared dataset in `dir`, streaming:
/// nothing but the current document is held in memory. Documents without a token are
/// skipped; none at all is [`Error::EmptyCorpus`].
pub fn write(
    dir: &Path,
    documents: impl IntoIterator<Item = TokenizedDocument>,
    tokenizer: &Tokenizer,
) -> Result<Manifest> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // A manifest left from an earlier preparation must not vouch for the files rewritten now.
    let manifest_path = dir.join(MANIFEST);
    if manifest_path.exists() {
        std::fs::remove_file(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
    }
    // Asked once: the tokenizer counts its vocabulary afresh each time.
    let vocab = tokenizer.vocab_size();
    let id_bytes = if vocab <= 1 << 16 { 2 } else { 4 };
    let create = |name: &str| -> Result<(PathBuf, BufWriter<std::fs::File>)> {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok((path, BufWriter::new(file)))
    };
    let mut tokens = create(TOKENS)?;
    let mut starts = create(STARTS)?;
    let mut sentences = create(SENTENCES)?;
    let mut documents_out = create(DOCUMENTS)?;
    let mut names = create(NAMES)?;
    let put = |(path, out): &mut (PathBuf, BufWriter<std::fs::File>), bytes: &[u8]| {
        out.write_all(bytes).map_err(|e| Error::io(&*path, e))
    };
    let (mut n_tokens, mut n_sentences, mut n_documents) = (0u64, 0u64, 0u64);
    // Word-start bits are packed a byte at a time across sentence boundaries.
    let (mut byte, mut bits) = (0u8, 0u32);
    put(&mut sentences, &0u64.to_le_bytes())?;
    put(&mut documents_out, &0u64.to_le_bytes())?;
    for document in documents {
        let kept: Vec<&Encoded> = document
            .sentences
            .iter()
            .filter(|s| !s.is_empty())
            .collect();
        if kept.is_empty() {
            continue;
        }
        if document.name.contains('\n') {
            return Err(fault(
                dir,
                format!("document name {:?} holds a line break", document.name),
            ));
        }
        for sentence in kept {
            for (&id, &start) in sentence.ids.iter().zip(&sentence.word_starts) {
                if id as usize >= vocab {
                    return Err(Error::TokenOutOfRange { id, vocab });
                }
                match id_bytes {
                    2 => put(&mut tokens, &(id as u16).to_le_bytes())?,
                    _ => put(&mut tokens, &id.to_le_bytes())?,
                }
                byte |= u8::from(start) << bits;
                bits += 1;
                if bits == 8 {
                    put(&mut starts, &[byte])?;
                    (byte, bits) = (0, 0);
                }
            }
            n_tokens += sentence.ids.len() as u64;
            n_sentences += 1;
            put(&mut sentences, &n_tokens.to_le_bytes())?;
        }
        n_documents += 1;
        put(&mut documents_out, &n_sentences.to_le_bytes())?;
        put(&mut names, format!("{}\n", document.name).as_bytes())?;
    }
    if bits > 0 {
        put(&mut starts, &[byte])?;
    }
    if n_documents == 0 {
        return Err(Error::EmptyCorpus("no document has any token".into()));
    }
    for (path, out) in [tokens, starts, sentences, documents_out, names] {
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
    }
    let manifest = Manifest {
        version: FORMAT_VERSION,
        tokenizer: tokenizer.fingerprint(),
        vocab_size: vocab,
        id_bytes,
        tokens: n_tokens,
        sentences: n_sentences,
        documents: n_documents,
    };
    let tmp = dir.join(format!("{MANIFEST}.tmp"));
    let json = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
    std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
    Ok(manifest)
}

/// A prepared dataset, open for reading: its files memory-mapped, nothing else loaded but the
/// document names.
#[derive(Debug)]
pub struct Prepared {
    dir: PathBuf,
    manifest: Manifest,
    tokens: Mmap,
    starts: Mmap,
    sentences: Mmap,
    documents: Mmap,
    names: Vec<String>,
}

/// Maps `path` read-only, checking that it holds exactly `len` bytes.
fn map(path: &Path, len: u64) -> Result<Mmap> {
    let file = std::fs::File::open(path).map_err(|e| fault(path, e))?;
    let actual = file.metadata().map_err(|e| fault(path, e))?.len();
    if actual != len {
        return Err(fault(
            path,
            format!("holds {actual} bytes where the manifest counts {len}: truncated or rewritten"),
        ));
    }
    // SAFETY: the map is read-only and the files of a finished preparation are never written
    // again (a new preparation removes the manifest first, and readers open through it); a
    // file changed by another program under a running reader is outside what we can guard.
    unsafe { Mmap::map(&file) }.map_err(|e| fault(path, e))
}

impl Prepared {
    /// Opens the prepared dataset in `dir` for `tokenizer`. A missing or unfinished
    /// preparation, another format version or a file of the wrong size is
    /// [`Error::Dataset`]; ids from another tokenizer are [`Error::TokenizerMismatch`].
    pub fn open(dir: &Path, tokenizer: &Tokenizer) -> Result<Self> {
        let manifest_path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest_path).map_err(|_| {
            fault(
                dir,
                format!("no {MANIFEST}: not a prepared dataset, or its preparation did not finish"),
            )
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| fault(&manifest_path, e))?;
        if manifest.version != FORMAT_VERSION {
            return Err(fault(
                &manifest_path,
                format!(
                    "format version {}, this build reads {FORMAT_VERSION}",
                    manifest.version
                ),
            ));
        }
        if manifest.tokenizer != tokenizer.fingerprint() {
            return Err(Error::TokenizerMismatch {
                what: "prepared dataset's and run's".into(),
                detail: format!(
                    "the ids in {} come from tokenizer {}, the run's is {}",
                    dir.display(),
                    manifest.tokenizer,
                    tokenizer.fingerprint()
                ),
            });
        }
        if !matches!(manifest.id_bytes, 2 | 4) {
            return Err(fault(
                &manifest_path,
                format!("{} bytes per id", manifest.id_bytes),
            ));
        }
        let names_path = dir.join(NAMES);
        let names: Vec<String> = std::fs::read_to_string(&names_path)
            .map_err(|e| fault(&names_path, e))?
            .lines()
            .map(str::to_string)
            .collect();
        if names.len() as u64 != manifest.documents {
            return Err(fault(
                &names_path,
                format!("{} names for {} documents", names.len(), manifest.documents),
            ));
        }
        let prepared = Self {
            tokens: map(
                &dir.join(TOKENS),
                manifest.tokens * manifest.id_bytes as u64,
            )?,
            starts: map(&dir.join(STARTS), manifest.tokens.div_ceil(8))?,
            sentences: map(&dir.join(SENTENCES), (manifest.sentences + 1) * 8)?,
            documents: map(&dir.join(DOCUMENTS), (manifest.documents + 1) * 8)?,
            dir: dir.to_path_buf(),
            names,
            manifest,
        };
        let ends = (
            prepared.offset(&prepared.sentences, prepared.manifest.sentences as usize),
            prepared.offset(&prepared.documents, prepared.manifest.documents as usize),
        );
        if ends != (prepared.manifest.tokens, prepared.manifest.sentences) {
            return Err(fault(dir, "its indexes end elsewhere than its counts"));
        }
        Ok(prepared)
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The directory it was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Documents stored.
    pub fn num_documents(&self) -> usize {
        self.names.len()
    }

    /// Document `index`'s name.
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The `index`-th `u64` of an offset file.
    fn offset(&self, file: &Mmap, index: usize) -> u64 {
        let at = index * 8;
        u64::from_le_bytes(file[at..at + 8].try_into().expect("8 bytes"))
    }

    /// The sentences `[first, end)` of document `index`.
    pub fn sentence_range(&self, index: usize) -> std::ops::Range<usize> {
        let first = self.offset(&self.documents, index) as usize;
        let end = self.offset(&self.documents, index + 1) as usize;
        first..end
    }

    /// Sentence `index` (counted over the whole dataset) with its word starts.
    pub fn sentence(&self, index: usize) -> Encoded {
        let first = self.offset(&self.sentences, index) as usize;
        let end = self.offset(&self.sentences, index + 1) as usize;
        let width = self.manifest.id_bytes;
        let ids = self.tokens[first * width..end * width]
            .chunks_exact(width)
            .map(|b| match width {
                2 => u32::from(u16::from_le_bytes([b[0], b[1]])),
                _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            })
            .collect();
        let word_starts = (first..end)
            .map(|t| self.starts[t / 8] >> (t % 8) & 1 == 1)
            .collect();
        Encoded { ids, word_starts }
    }

    /// Document `index`, its sentences read from the maps.
    pub fn document(&self, index: usize) -> TokenizedDocument {
        TokenizedDocument {
            name: self.names[index].clone(),
            sentences: self
                .sentence_range(index)
                .map(|s| self.sentence(s))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Corpus, DocumentBoundary, bundled_data_dir};
    use crate::data::tokenize_corpus;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pretext-prepared-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn some_documents(tokenizer: &Tokenizer) -> Vec<TokenizedDocument> {
        let mut corpus =
            Corpus::from_dir(bundled_data_dir().join("brown"), DocumentBoundary::File).unwrap();
        corpus.documents.truncate(12);
        tokenize_corpus(&corpus, tokenizer).unwrap()
    }

    #[test]
    fn documents_read_back_as_they_were_written() {
        let tokenizer = Tokenizer::bundled().unwrap();
        let docs = some_documents(&tokenizer);
        let dir = temp("round-trip");
        let manifest = write(&dir, docs.clone(), &tokenizer).unwrap();
        assert_eq!(manifest.id_bytes, 2, "8,192 ids fit in 16 bits");
        assert_eq!(manifest.documents, 12);
        let tokens: usize = docs
            .iter()
            .flat_map(|d| &d.sentences)
            .map(Encoded::len)
            .sum();
        assert_eq!(manifest.tokens as usize, tokens);
        // Two bytes per id and one bit per word start on disk.
        let size = |f: &str| std::fs::metadata(dir.join(f)).unwrap().len() as usize;
        assert_eq!(size(TOKENS), 2 * tokens);
        assert_eq!(size(STARTS), tokens.div_ceil(8));
        let prepared = Prepared::open(&dir, &tokenizer).unwrap();
        assert_eq!(prepared.num_documents(), docs.len());
        for (i, doc) in docs.iter().enumerate() {
            assert_eq!(&prepared.document(i), doc, "document {i}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_vocabulary_past_16_bits_is_stored_in_32() {
        let tokenizer = Tokenizer::bundled()
            .unwrap()
            .with_sentinels(70_000)
            .unwrap();
        let big = tokenizer.vocab_size() as u32 - 1;
        let doc = TokenizedDocument {
            name: "big".into(),
            sentences: vec![Encoded {
                ids: vec![5, big, 70_000],
                word_starts: vec![true, false, true],
            }],
        };
        let dir = temp("wide");
        assert_eq!(write(&dir, [doc.clone()], &tokenizer).unwrap().id_bytes, 4);
        assert_eq!(Prepared::open(&dir, &tokenizer).unwrap().document(0), doc);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_datasets_are_typed_errors() {
        let tokenizer = Tokenizer::bundled().unwrap();
        let dir = temp("bad");
        // Nothing to write.
        let empty = TokenizedDocument {
            name: "empty".into(),
            sentences: vec![Encoded::default()],
        };
        assert!(matches!(
            write(&dir, [empty], &tokenizer),
            Err(Error::EmptyCorpus(_))
        ));
        // Not prepared, or unfinished: no manifest.
        assert!(matches!(
            Prepared::open(&dir, &tokenizer),
            Err(Error::Dataset { .. })
        ));
        write(&dir, some_documents(&tokenizer), &tokenizer).unwrap();
        // Another tokenizer's run.
        let gpt2 = bundled_data_dir()
            .parent()
            .unwrap()
            .join("tests/fixtures/hf/gpt2-bundled-vocab");
        let other = Tokenizer::from_model_dir(&gpt2).unwrap();
        assert!(matches!(
            Prepared::open(&dir, &other),
            Err(Error::TokenizerMismatch { .. })
        ));
        // A truncated shard names its file.
        let tokens = dir.join(TOKENS);
        let len = std::fs::metadata(&tokens).unwrap().len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&tokens)
            .unwrap();
        file.set_len(len - 3).unwrap();
        let err = Prepared::open(&dir, &tokenizer).unwrap_err();
        assert!(
            matches!(&err, Error::Dataset { path, .. } if path.ends_with(TOKENS)),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_fingerprint_is_stable_and_tells_tokenizers_apart() {
        let a = Tokenizer::bundled().unwrap();
        let b = Tokenizer::bundled().unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(
            a.fingerprint(),
            a.clone().with_sentinels(10).unwrap().fingerprint()
        );
    }
}
