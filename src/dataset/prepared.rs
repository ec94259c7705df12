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
//! - `sources.txt`: the input files, name and size on disk, a line each;
//! - `tokenizer.json` and `tokenizer_config.json`: the tokenizer the ids come from, which a run
//!   over the directory uses unless told otherwise ([`tokenizer_of`]);
//! - `dataset.json`: the manifest (format version, the tokenizer's fingerprint, the counts,
//!   the split, the lines skipped, a hash of the sources), written last, so that a directory
//!   without it is an unfinished preparation (whose `progress.json` says where it stopped);
//! - `index/`: indexes runs built over it (segments, sentence-pair chunks), cached.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::documents::Documents;
use super::sources::Skipped;
use super::store::{
    Bytes, ReadCounter, StoreFiles, StoreWriter, TokenStore, WriterState, map_random, u64_at,
};
use super::tokenized::TokenizedDocument;
use crate::error::{Error, Result};
use crate::tokenize::Tokenizer;

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
    /// Bytes of sentence text tokenized (whitespace between sentences not counted).
    #[serde(default)]
    pub text_bytes: u64,
    /// The train/validation split the preparation made, for the record: a run splits by the
    /// same hash of names with its own `valid_fraction`, so with the same fraction it holds
    /// out these documents.
    #[serde(default)]
    pub split: Option<SplitRecord>,
    /// Lines left out because they were not UTF-8.
    #[serde(default)]
    pub skipped: Skipped,
    /// What was prepared, from what, with which tokenizer (`None` for a dataset written from
    /// documents in memory).
    #[serde(default)]
    pub provenance: Option<Provenance>,
}

/// What a preparation is of: a resumed or reused preparation must match it. The sources
/// themselves (a corpus may have hundreds of thousands of files) are listed in `sources.txt`,
/// a line each, name and size on disk; this holds their count, size and a hash of the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Number of input files (1 for documents prepared from memory).
    pub sources: u64,
    /// Their size on disk.
    pub source_bytes: u64,
    /// A hash of the names and sizes of the sources, in order.
    pub sources_hash: String,
    /// `"file"` or `"blank-line"`.
    pub boundary: String,
    /// [`Tokenizer::fingerprint`] of the tokenizer.
    pub tokenizer: String,
}

/// The train/validation split recorded in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRecord {
    /// Share of documents held out.
    pub valid_fraction: f64,
    /// Documents held out.
    pub valid_documents: u64,
}

fn fault(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Dataset {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The files of a prepared dataset in `dir`, created empty (or cut back to `state`'s lengths
/// to resume a preparation).
pub(crate) fn create_files(
    dir: &Path,
    id_bytes: usize,
    state: Option<&WriterState>,
) -> Result<StoreFiles<BufWriter<std::fs::File>>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let lengths = state.map(|s| s.file_lengths(id_bytes));
    let open = |name: &str, k: usize| -> Result<BufWriter<std::fs::File>> {
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(lengths.is_none())
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if let Some(lengths) = lengths {
            let have = file.metadata().map_err(|e| Error::io(&path, e))?.len();
            if have < lengths[k] {
                return Err(fault(&path, "shorter than its preparation's record"));
            }
            file.set_len(lengths[k]).map_err(|e| Error::io(&path, e))?;
            file.seek(SeekFrom::End(0))
                .map_err(|e| Error::io(&path, e))?;
        }
        Ok(BufWriter::with_capacity(1 << 20, file))
    };
    Ok(StoreFiles {
        tokens: open(TOKENS, 0)?,
        starts: open(STARTS, 1)?,
        sentences: open(SENTENCES, 2)?,
        documents: open(DOCUMENTS, 3)?,
        names: open(NAMES, 4)?,
    })
}

/// Flushes every file of a store being written to disk, so that its state can be recorded.
pub(crate) fn sync_files(
    dir: &Path,
    files: &mut StoreFiles<BufWriter<std::fs::File>>,
) -> Result<()> {
    for out in [
        &mut files.tokens,
        &mut files.starts,
        &mut files.sentences,
        &mut files.documents,
        &mut files.names,
    ] {
        out.flush().map_err(|e| Error::io(dir, e))?;
        out.get_ref().sync_data().map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Bytes per stored id for a vocabulary of `vocab` tokens.
pub(crate) fn id_bytes(vocab: usize) -> usize {
    if vocab <= 1 << 16 { 2 } else { 4 }
}

/// The tokenizer a finished prepared dataset in `dir` was prepared with, if it is one and kept
/// it (datasets prepared before it was kept have none).
pub fn tokenizer_of(dir: &Path) -> Option<std::path::PathBuf> {
    let file = dir.join("tokenizer.json");
    (dir.join(MANIFEST).is_file() && file.is_file()).then_some(file)
}

/// Writes `documents` (tokenized by `tokenizer`) as a prepared dataset in `dir`, streaming:
/// nothing but the current document is held in memory. Documents without a token are
/// skipped; none at all is [`Error::EmptyCorpus`]. For raw text, with progress and resume,
/// see [`prepare`](super::prepare).
pub fn write(
    dir: &Path,
    documents: impl IntoIterator<Item = TokenizedDocument>,
    tokenizer: &Tokenizer,
) -> Result<Manifest> {
    remove_manifest(dir)?;
    // Asked once: the tokenizer counts its vocabulary afresh each time.
    let vocab = tokenizer.vocab_size();
    let width = id_bytes(vocab);
    let files = create_files(dir, width, None)?;
    let mut writer = StoreWriter::new(files, width, Some(vocab), dir)?;
    for document in documents {
        writer.push(&document)?;
    }
    let (mut files, state) = writer.finish()?;
    if state.documents == 0 {
        return Err(Error::EmptyCorpus("no document has any token".into()));
    }
    sync_files(dir, &mut files)?;
    tokenizer.save_to_dir(dir)?;
    let manifest = Manifest::new(tokenizer.fingerprint(), vocab, width, &state);
    manifest.write(dir)?;
    Ok(manifest)
}

/// Removes `dir`'s manifest and cached indexes, so that files rewritten now are not vouched
/// for or indexed by what described the old ones.
pub(crate) fn remove_manifest(dir: &Path) -> Result<()> {
    let path = dir.join(MANIFEST);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&path, e)),
        _ => {}
    }
    let index = dir.join(super::index::INDEX_DIR);
    match std::fs::remove_dir_all(&index) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&index, e)),
        _ => Ok(()),
    }
}

impl Manifest {
    /// The manifest of a finished store.
    pub(crate) fn new(
        tokenizer: String,
        vocab_size: usize,
        id_bytes: usize,
        state: &WriterState,
    ) -> Self {
        Self {
            version: FORMAT_VERSION,
            tokenizer,
            vocab_size,
            id_bytes,
            tokens: state.tokens,
            sentences: state.sentences,
            documents: state.documents,
            text_bytes: 0,
            split: None,
            skipped: Skipped::default(),
            provenance: None,
        }
    }

    /// Writes it into `dir` atomically: its presence says the preparation finished.
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("a manifest serialises");
        crate::util::atomic_file::write(&dir.join(MANIFEST), json)
    }
}

/// A prepared dataset, open for reading: its files memory-mapped, nothing else loaded but the
/// document names.
#[derive(Debug)]
pub struct Prepared {
    manifest: Manifest,
    store: Arc<TokenStore>,
}

/// Maps `path` read-only, checking that it holds exactly `len` bytes.
fn map(path: &Path, len: u64) -> Result<Bytes> {
    let file = std::fs::File::open(path).map_err(|e| fault(path, e))?;
    let actual = file.metadata().map_err(|e| fault(path, e))?.len();
    if actual != len {
        return Err(fault(
            path,
            format!("holds {actual} bytes where the manifest counts {len}: truncated or rewritten"),
        ));
    }
    if len == 0 {
        // An empty file cannot be mapped.
        return Ok(Bytes::Owned(Vec::new()));
    }
    map_random(&file).map_err(|e| fault(path, e))
}

impl Prepared {
    /// Opens the prepared dataset in `dir` for `tokenizer`. A missing or unfinished
    /// preparation, another format version or a file of the wrong size is
    /// [`Error::Dataset`]; ids from another tokenizer are [`Error::TokenizerMismatch`].
    pub fn open(dir: &Path, tokenizer: &Tokenizer) -> Result<Self> {
        let manifest = Manifest::read(dir)?;
        if manifest.tokenizer != tokenizer.fingerprint() {
            return Err(Error::TokenizerMismatch {
                what: "prepared dataset's and run's".into(),
                detail: format!(
                    "the ids in {} come from tokenizer {}, the run's is {}; run with the \
                     tokenizer.json the dataset was prepared with (`pretrain --tokenizer FILE`, \
                     the recipe field tokenizer.file)",
                    dir.display(),
                    manifest.tokenizer,
                    tokenizer.fingerprint()
                ),
            });
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
        let store = TokenStore {
            tokens: map(
                &dir.join(TOKENS),
                manifest.tokens * manifest.id_bytes as u64,
            )?,
            starts: map(&dir.join(STARTS), manifest.tokens.div_ceil(8))?,
            sentences: map(&dir.join(SENTENCES), (manifest.sentences + 1) * 8)?,
            documents: map(&dir.join(DOCUMENTS), (manifest.documents + 1) * 8)?,
            id_bytes: manifest.id_bytes,
            names,
            dir: Some(dir.to_path_buf()),
            reads: ReadCounter::default(),
        };
        let ends = (
            u64_at(&store.sentences, manifest.sentences as usize),
            u64_at(&store.documents, manifest.documents as usize),
        );
        if ends != (manifest.tokens, manifest.sentences) {
            return Err(fault(dir, "its indexes end elsewhere than its counts"));
        }
        Ok(Self {
            manifest,
            store: Arc::new(store),
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The directory it was opened from.
    pub fn dir(&self) -> &Path {
        self.store
            .dir
            .as_deref()
            .expect("a prepared store has a directory")
    }

    /// The token store.
    pub fn store(&self) -> &Arc<TokenStore> {
        &self.store
    }

    /// Every document.
    pub fn documents(&self) -> Documents {
        Documents::all(self.store.clone())
    }

    /// `(train, validation)` documents, split by name as
    /// [`Corpus::split`](crate::corpus::Corpus::split) splits a corpus with `seed`, so that
    /// the two paths hold out the same documents.
    pub fn split(&self, valid_fraction: f64, seed: u64) -> Result<(Documents, Documents)> {
        Documents::split(self.store.clone(), valid_fraction, seed)
    }
}

impl Manifest {
    /// Reads and checks `dir`'s manifest.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|_| {
            fault(
                dir,
                format!("no {MANIFEST}: not a prepared dataset, or its preparation did not finish"),
            )
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| fault(&path, e))?;
        if manifest.version != FORMAT_VERSION {
            return Err(fault(
                &path,
                format!(
                    "format version {}, this build reads {FORMAT_VERSION}",
                    manifest.version
                ),
            ));
        }
        if !matches!(manifest.id_bytes, 2 | 4) {
            return Err(fault(&path, format!("{} bytes per id", manifest.id_bytes)));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Corpus, DocumentBoundary, bundled_data_dir};
    use crate::dataset::tokenize_corpus;
    use crate::tokenize::Encoded;

    fn temp(name: &str) -> std::path::PathBuf {
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
        assert_eq!(prepared.store().num_documents(), docs.len());
        for (i, doc) in docs.iter().enumerate() {
            assert_eq!(&prepared.store().document(i), doc, "document {i}");
        }
        // The dataset keeps its tokenizer, which reads back as the very one.
        let kept = Tokenizer::from_file(tokenizer_of(&dir).unwrap()).unwrap();
        assert_eq!(kept.fingerprint(), tokenizer.fingerprint());
        Prepared::open(&dir, &kept).unwrap();
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
        assert_eq!(
            Prepared::open(&dir, &tokenizer)
                .unwrap()
                .store()
                .document(0),
            doc
        );
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
