//! Preparing a corpus once: raw text (a folder of `.txt` files, JSON lines, either gzipped)
//! read as a stream, cut into sentences, tokenized in parallel on every core, and written as a
//! [prepared dataset](super::prepared). A progress line shows MB/s and the time left; a
//! preparation that is killed resumes where its last batch ended, writing the same bytes it
//! would have written in one go; a finished one is reused.

use std::io::{BufWriter, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::prepared::{
    Manifest, Provenance, SplitRecord, create_files, id_bytes, remove_manifest, sync_files,
};
use super::sources::{Position, Reader, Skipped, Source, list_sources};
use super::store::{StoreFiles, StoreWriter, WriterState};
use super::tokenized::{BATCH_BYTES, text_batches, tokenize_documents};
use crate::corpus::{Corpus, Document, DocumentBoundary, validation_flags};
use crate::error::{Error, Result};
use crate::tokenize::Tokenizer;
use crate::util::rng::{FNV_OFFSET, fnv1a};

/// How a corpus is prepared.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// How text files are cut into documents (JSON lines are a document per line).
    pub boundary: DocumentBoundary,
    /// Share of documents the manifest's split holds out for validation (by a hash of each
    /// document's name, as runs split); default 0.05, the recipes' default.
    pub valid_fraction: f64,
    /// Text (in bytes) tokenized per batch: each batch is one parallel call to the tokenizer
    /// and one resumable step. Default 4 MiB.
    pub batch_bytes: usize,
    /// Show a progress line on standard error.
    pub progress: bool,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        Self {
            boundary: DocumentBoundary::File,
            valid_fraction: 0.05,
            batch_bytes: BATCH_BYTES,
            progress: true,
        }
    }
}

/// The file listing a preparation's sources.
const SOURCES: &str = "sources.txt";

/// The provenance of `(name, size)` sources, and the text of `sources.txt`.
fn provenance_of(
    sources: &[(String, u64)],
    boundary: DocumentBoundary,
    tokenizer: &Tokenizer,
) -> (Provenance, String) {
    let mut list = String::new();
    for (name, bytes) in sources {
        list.push_str(&format!("{name}\t{bytes}\n"));
    }
    let hash = fnv1a(FNV_OFFSET, list.as_bytes());
    let provenance = Provenance {
        sources: sources.len() as u64,
        source_bytes: sources.iter().map(|(_, b)| b).sum(),
        sources_hash: format!("{hash:016x}"),
        boundary: boundary_name(boundary).into(),
        tokenizer: tokenizer.fingerprint(),
    };
    (provenance, list)
}

/// `progress.json`: how far an unfinished preparation got.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    provenance: Provenance,
    writer: WriterState,
    position: Position,
    skipped: Skipped,
    text_bytes: u64,
}

const CHECKPOINT: &str = "progress.json";

fn boundary_name(boundary: DocumentBoundary) -> &'static str {
    match boundary {
        DocumentBoundary::File => "file",
        DocumentBoundary::BlankLine => "blank-line",
    }
}

/// Prepares the text at `input` (a file, or a folder read recursively: `.txt`, `.jsonl` or
/// `.json` lines with a `text` field, any of them `.gz`) into `out` for `tokenizer`.
///
/// A finished preparation of the same sources with the same tokenizer and boundary is reused
/// as it is; an unfinished one resumes. Lines that are not UTF-8 are skipped and counted in
/// the manifest (with the first few places), because one bad byte in a crawl should not
/// stop hours of work; a JSON line that is not an object with a string `text` is an error
/// naming the file and line, because it means the input is not what it was taken for.
///
/// ```no_run
/// use pretext::dataset::prepare::{PrepareOptions, prepare};
/// use pretext::Tokenizer;
///
/// let tokenizer = Tokenizer::bundled()?;
/// let manifest = prepare(
///     "my-corpus/".as_ref(),
///     "prepared/my-corpus".as_ref(),
///     &tokenizer,
///     &PrepareOptions::default(),
/// )?;
/// println!("{} documents, {} tokens", manifest.documents, manifest.tokens);
/// # Ok::<(), pretext::Error>(())
/// ```
pub fn prepare(
    input: &Path,
    out: &Path,
    tokenizer: &Tokenizer,
    options: &PrepareOptions,
) -> Result<Manifest> {
    let sources = list_sources(input)?;
    let named: Vec<(String, u64)> = sources.iter().map(|s| (s.name.clone(), s.bytes)).collect();
    let (provenance, list) = provenance_of(&named, options.boundary, tokenizer);
    if let Some(manifest) = finished(out, &provenance, options) {
        return Ok(manifest);
    }
    let resumed = read_checkpoint(out).filter(|c| c.provenance == provenance);
    let reader = match &resumed {
        Some(c) => Reader::resume(sources.clone(), options.boundary, c.position)?,
        None => Reader::new(sources.clone(), options.boundary),
    };
    let preparation = Preparation::start(out, tokenizer, options, provenance, resumed)?;
    write_sources(out, &list)?;
    preparation.run(reader, &sources)
}

/// Prepares `corpus`, documents already in memory, into `out`, tokenized as [`prepare`]
/// tokenizes; `name` stands for its source in the manifest. With no input, the `prepare`
/// example prepares the bundled pretraining corpus this way, so that a run on the result
/// reads exactly the documents of a default run. Small enough to need no resume.
pub fn prepare_corpus(
    corpus: &Corpus,
    name: &str,
    out: &Path,
    tokenizer: &Tokenizer,
    options: &PrepareOptions,
) -> Result<Manifest> {
    let total = corpus.documents.iter().map(|d| d.text_len() as u64).sum();
    let source = (format!("{name} ({} documents)", corpus.len()), total);
    let (provenance, list) = provenance_of(&[source], options.boundary, tokenizer);
    if let Some(manifest) = finished(out, &provenance, options) {
        return Ok(manifest);
    }
    let preparation = Preparation::start(out, tokenizer, options, provenance, None)?;
    write_sources(out, &list)?;
    let mut read = 0;
    let batches = text_batches(&corpus.documents, options.batch_bytes.max(1)).map(|documents| {
        read += documents.iter().map(|d| d.text_len() as u64).sum::<u64>();
        Ok(Batch {
            documents: documents.to_vec(),
            position: Position::default(),
            bytes_read: read,
            skipped: Skipped::default(),
        })
    });
    preparation.consume(batches, 0, total)
}

fn write_sources(out: &Path, list: &str) -> Result<()> {
    let path = out.join(SOURCES);
    std::fs::write(&path, list).map_err(|e| Error::io(&path, e))
}

/// The manifest of a finished preparation of `provenance` in `out`, if there is one.
fn finished(out: &Path, provenance: &Provenance, options: &PrepareOptions) -> Option<Manifest> {
    let manifest = Manifest::read(out).ok()?;
    if manifest.provenance.as_ref() != Some(provenance) {
        return None;
    }
    if options.progress {
        eprintln!("{}: prepared already, reused", out.display());
    }
    Some(manifest)
}

fn read_checkpoint(out: &Path) -> Option<Checkpoint> {
    let text = std::fs::read_to_string(out.join(CHECKPOINT)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A preparation under way.
struct Preparation<'a> {
    out: &'a Path,
    tokenizer: &'a Tokenizer,
    options: &'a PrepareOptions,
    provenance: Provenance,
    writer: StoreWriter<BufWriter<std::fs::File>>,
    vocab: usize,
    width: usize,
    /// Lines skipped by earlier runs of a resumed preparation.
    skipped_before: Skipped,
    skipped: Skipped,
    text_bytes: u64,
}

/// A batch of documents read, with where the reader stood after its last one.
struct Batch {
    documents: Vec<Document>,
    position: Position,
    bytes_read: u64,
    skipped: Skipped,
}

impl<'a> Preparation<'a> {
    fn start(
        out: &'a Path,
        tokenizer: &'a Tokenizer,
        options: &'a PrepareOptions,
        provenance: Provenance,
        resumed: Option<Checkpoint>,
    ) -> Result<Self> {
        crate::error::check_rate("valid_fraction", options.valid_fraction)?;
        remove_manifest(out)?;
        // Asked once: the tokenizer counts its vocabulary afresh each time.
        let vocab = tokenizer.vocab_size();
        let width = id_bytes(vocab);
        let (writer, skipped, text_bytes) = match resumed {
            Some(c) => {
                let files = create_files(out, width, Some(&c.writer))?;
                let writer = StoreWriter::resume(files, width, Some(vocab), c.writer, out);
                (writer, c.skipped, c.text_bytes)
            }
            None => {
                let _ = std::fs::remove_file(out.join(CHECKPOINT));
                let files = create_files(out, width, None)?;
                let writer = StoreWriter::new(files, width, Some(vocab), out)?;
                (writer, Skipped::default(), 0)
            }
        };
        Ok(Self {
            out,
            tokenizer,
            options,
            provenance,
            writer,
            vocab,
            width,
            skipped_before: skipped.clone(),
            skipped,
            text_bytes,
        })
    }

    /// Reads on a thread of its own (sentence splitting and decompression overlap the
    /// tokenizer), tokenizes and writes batch by batch, checkpointing after each.
    fn run(self, mut reader: Reader, sources: &[Source]) -> Result<Manifest> {
        let total: u64 = sources.iter().map(|s| s.bytes).sum();
        let batch_bytes = self.options.batch_bytes.max(1);
        let resumed_from = reader.bytes_read();
        let (send, batches) = mpsc::sync_channel::<Result<Batch>>(2);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                loop {
                    let mut documents = Vec::new();
                    let mut bytes = 0;
                    let more = loop {
                        match reader.next_document() {
                            Ok(Some(d)) => {
                                bytes += d.text_len();
                                documents.push(d);
                                if bytes >= batch_bytes {
                                    break true;
                                }
                            }
                            Ok(None) => break false,
                            Err(e) => {
                                let _ = send.send(Err(e));
                                return;
                            }
                        }
                    };
                    let batch = Batch {
                        documents,
                        position: reader.position(),
                        bytes_read: reader.bytes_read(),
                        skipped: reader.skipped().clone(),
                    };
                    if send.send(Ok(batch)).is_err() || !more {
                        return;
                    }
                }
            });
            self.consume(batches, resumed_from, total)
        })
    }

    /// Writes `batches` (input read up to `resumed_from` bytes before them, of `total`),
    /// showing progress, then the manifest.
    fn consume(
        mut self,
        batches: impl IntoIterator<Item = Result<Batch>>,
        resumed_from: u64,
        total: u64,
    ) -> Result<Manifest> {
        let already = self.writer.state();
        let started = Instant::now();
        let mut shown = Instant::now();
        // A terminal gets a line redrawn each second, a log file a line every half minute.
        let terminal = std::io::stderr().is_terminal();
        let every = if terminal { 1.0 } else { 30.0 };
        for batch in batches {
            let batch = batch?;
            self.write_batch(&batch)?;
            if self.options.progress && shown.elapsed().as_secs_f64() >= every {
                shown = Instant::now();
                let done = batch.bytes_read - resumed_from;
                let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
                let left = (total.saturating_sub(batch.bytes_read) as f64 / rate.max(1.0)) as u64;
                let line = format!(
                    "prepared {:.1} / {:.1} MB ({:.0}%), {:.1} MB/s, {}m{:02}s left, \
                     {} documents, {} tokens",
                    batch.bytes_read as f64 / 1e6,
                    total as f64 / 1e6,
                    100.0 * batch.bytes_read as f64 / total.max(1) as f64,
                    rate / 1e6,
                    left / 60,
                    left % 60,
                    self.writer.state().documents,
                    self.writer.state().tokens,
                );
                if terminal {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let progress = self.options.progress.then(|| {
            let resumed = if already.documents > 0 {
                format!(", resumed after {} documents", already.documents)
            } else {
                String::new()
            };
            let rate = (total - resumed_from) as f64 / 1e6 / seconds.max(1e-9);
            (
                terminal,
                format!(
                    "from {:.1} MB in {seconds:.1}s ({rate:.1} MB/s{resumed})",
                    total as f64 / 1e6
                ),
            )
        });
        let out = self.out;
        let manifest = self.finish()?;
        if let Some((terminal, read)) = progress {
            let skipped = if manifest.skipped.lines > 0 {
                format!(
                    "; {} lines that are not text (not UTF-8, or binary) skipped, first at {}",
                    manifest.skipped.lines,
                    manifest.skipped.first.join(", ")
                )
            } else {
                String::new()
            };
            eprintln!(
                "{}{}: {} documents, {} tokens {read}{skipped}",
                if terminal { "\r\x1b[2K" } else { "" },
                out.display(),
                manifest.documents,
                manifest.tokens,
            );
        }
        Ok(manifest)
    }

    /// Tokenizes and writes one batch, then records where the preparation stands.
    fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        for document in tokenize_documents(&batch.documents, self.tokenizer)? {
            self.writer.push(&document)?;
        }
        self.text_bytes += batch
            .documents
            .iter()
            .map(|d| d.text_len() as u64)
            .sum::<u64>();
        // The reader counts what it skipped since it started; add what runs before it did.
        self.skipped = self.skipped_before.clone();
        self.skipped.merge(&batch.skipped);
        sync_files(self.out, self.writer.files_mut())?;
        let checkpoint = Checkpoint {
            provenance: self.provenance.clone(),
            writer: self.writer.state(),
            position: batch.position,
            skipped: self.skipped.clone(),
            text_bytes: self.text_bytes,
        };
        let json = serde_json::to_string(&checkpoint).expect("a checkpoint serialises");
        crate::util::atomic_file::write(&self.out.join(CHECKPOINT), json)
    }

    /// Writes the last bits and the manifest, and drops the checkpoint.
    fn finish(self) -> Result<Manifest> {
        let (mut files, state): (StoreFiles<_>, _) = self.writer.finish()?;
        if state.documents == 0 {
            return Err(Error::EmptyCorpus(format!(
                "{} sources hold no text with a token",
                self.provenance.sources
            )));
        }
        sync_files(self.out, &mut files)?;
        drop(files);
        let names_path = self.out.join("names.txt");
        let names = std::fs::read_to_string(&names_path).map_err(|e| Error::io(&names_path, e))?;
        let names: Vec<&str> = names.lines().collect();
        let held_out = if names.len() >= 2 {
            validation_flags(&names, self.options.valid_fraction, 0)?
                .into_iter()
                .filter(|&v| v)
                .count() as u64
        } else {
            0
        };
        let mut manifest =
            Manifest::new(self.tokenizer.fingerprint(), self.vocab, self.width, &state);
        manifest.text_bytes = self.text_bytes;
        manifest.split = Some(SplitRecord {
            valid_fraction: self.options.valid_fraction,
            valid_documents: held_out,
        });
        manifest.skipped = self.skipped;
        manifest.provenance = Some(self.provenance);
        self.tokenizer.save_to_dir(self.out)?;
        manifest.write(self.out)?;
        let _ = std::fs::remove_file(self.out.join(CHECKPOINT));
        Ok(manifest)
    }
}

/// Where [`prepare`] caches a raw folder a run reads: `$PRETEXT_CACHE`, else
/// `$XDG_CACHE_HOME/pretext`, else `~/.cache/pretext`, under `datasets/`, keyed by the
/// folder's full path and the tokenizer.
pub fn cache_dir(input: &Path, tokenizer: &Tokenizer) -> PathBuf {
    let root = std::env::var_os("PRETEXT_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("pretext")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/pretext")))
        .unwrap_or_else(|| std::env::temp_dir().join("pretext-cache"));
    let full = std::fs::canonicalize(input).unwrap_or_else(|_| input.to_path_buf());
    let hash = fnv1a(FNV_OFFSET, full.to_string_lossy().as_bytes());
    let hash = fnv1a(hash, tokenizer.fingerprint().as_bytes());
    let stem = full
        .file_name()
        .map_or("corpus".into(), |n| n.to_string_lossy().into_owned());
    root.join("datasets").join(format!("{stem}-{hash:016x}"))
}
