//! The raw inputs of a dataset preparation, read as a stream of documents: a file or a folder of
//! `.txt`, `.jsonl` and `.json` files, each plain or gzipped.
//!
//! Inputs can be many gigabytes, so nothing is read whole: files are read a line at a time and
//! only the current document is held. A preparation that is killed must not start over, so after
//! every document the reader can say where it stands ([`Position`]), and a new reader resumes
//! there. A web crawl holds the odd line that is not UTF-8 (and a binary file misnamed `.txt`
//! lines with NUL bytes); such lines are skipped and counted
//! ([`Skipped`]) rather than ending hours of work, while a JSON line of the wrong shape, which
//! means the input is not what it was taken for, is an error.
//!
//! Text files are cut into documents as [`Corpus::from_dir`](crate::corpus::Corpus::from_dir)
//! cuts them, under the same names, so a folder of UTF-8 text reads the same either way.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use crate::corpus::{
    Document, DocumentBoundary, Paragraph, collect_files, document, input_name, paragraphs,
    part_name,
};
use crate::error::{Error, Result};

/// How many places of skipped lines [`Skipped`] keeps: enough to find the fault, few enough to
/// log.
const SKIPPED_PLACES: usize = 5;

/// What a source file holds, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text (`.txt`), cut into documents by the reader's [`DocumentBoundary`].
    Text,
    /// JSON lines (`.jsonl` or `.json`), as Hugging Face `datasets` exports them: an object a
    /// line whose string field `text` is one document (other fields are ignored), cut into
    /// paragraphs and sentences as a text file read with [`DocumentBoundary::File`] is.
    JsonLines,
}

impl Format {
    /// The format of the file `path` and whether it is gzipped (a further `.gz`); none for a
    /// file of any other kind.
    fn of(path: &Path) -> Option<(Format, bool)> {
        let gzip = path.extension().is_some_and(|e| e == "gz");
        let inner = if gzip {
            Path::new(path.file_stem()?)
        } else {
            path
        };
        let format = match inner.extension()?.to_str()? {
            "txt" => Format::Text,
            "jsonl" | "json" => Format::JsonLines,
            _ => return None,
        };
        Some((format, gzip))
    }
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Where it is.
    pub path: PathBuf,
    /// Its name, the stem of its documents' names: its path relative to the parent of the input
    /// it was found in, as [`Corpus::from_dir`](crate::corpus::Corpus::from_dir) names files,
    /// e.g. `brown/ca01.txt` (or `ca01.txt` when the input is the file itself).
    pub name: String,
    /// Its size on disk (compressed, for a gzipped file), for progress figures.
    pub bytes: u64,
    /// What it holds.
    pub format: Format,
    /// Whether it is gzipped.
    pub gzip: bool,
}

/// The sources of `input`: the file itself, or every `.txt`, `.jsonl` and `.json` file under the
/// folder, each optionally gzipped (`.txt.gz`, `.jsonl.gz`), recursively in sorted path order;
/// other files in a folder are left out. A folder without any is [`Error::EmptyCorpus`]; a file
/// of another kind is [`Error::Dataset`].
pub fn list_sources(input: &Path) -> Result<Vec<Source>> {
    let metadata = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
    let files = if metadata.is_dir() {
        let mut files = Vec::new();
        collect_files(input, &|path| Format::of(path).is_some(), &mut files)?;
        if files.is_empty() {
            return Err(Error::EmptyCorpus(format!(
                "no .txt, .jsonl or .json file, plain or gzipped, under {}",
                input.display()
            )));
        }
        files
    } else {
        vec![input.to_path_buf()]
    };
    files
        .into_iter()
        .map(|path| {
            let (format, gzip) = Format::of(&path).ok_or_else(|| Error::Dataset {
                path: path.clone(),
                reason: "not a .txt, .jsonl or .json file, plain or gzipped (.gz)".into(),
            })?;
            let bytes = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len();
            Ok(Source {
                name: input_name(input, &path),
                path,
                bytes,
                format,
                gzip,
            })
        })
        .collect()
}

/// Where a reader stands: just after the last document it yielded. A preparation records it
/// with its output and hands it to [`Reader::resume`] after a restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The source, as an index into the reader's sources.
    pub source: usize,
    /// Bytes of the source's decompressed stream before this position (for a plain file, the
    /// byte offset in it).
    pub offset: u64,
    /// Lines of the source before `offset`: JSON lines are named and faulted by their line.
    pub lines: u64,
    /// Documents the source yielded before `offset`: blank-line blocks are named by their
    /// index, and every block holds a sentence, so that index is this count.
    pub documents: u64,
}

/// Lines skipped because they are not text: not UTF-8, or holding a NUL byte (binary data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// How many.
    pub lines: u64,
    /// The first few of them (up to 5), each as `path:offset`, the offset being that of the
    /// first bad byte in the file's decompressed stream.
    pub first: Vec<String>,
}

impl Skipped {
    fn record(&mut self, path: &Path, offset: u64) {
        self.lines += 1;
        if self.first.len() < SKIPPED_PLACES {
            self.first.push(format!("{}:{offset}", path.display()));
        }
    }

    /// Adds the lines skipped later in the same input, e.g. those of a reader resumed where
    /// the counts in `self` stopped.
    pub fn merge(&mut self, later: &Skipped) {
        self.lines += later.lines;
        let room = SKIPPED_PLACES.saturating_sub(self.first.len());
        self.first.extend(later.first.iter().take(room).cloned());
    }
}

/// A file that counts the bytes read from it, so that progress is in bytes on disk whether or
/// not the file is compressed. The count is shared because the reader holds the file only
/// through the decompressor and line buffer around it.
struct Counting {
    file: File,
    count: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// One JSON line: only its `text` matters.
type JsonObject = serde_json::Map<String, serde_json::Value>;

/// The source being read.
struct Open {
    /// Its decompressed bytes.
    stream: Box<dyn BufRead + Send>,
    /// Bytes read from its file so far.
    disk: Arc<AtomicU64>,
    /// How far it has been read.
    at: Position,
    /// The last line read, kept to reuse its allocation.
    line: String,
}

impl Open {
    /// Opens `source` at `at` (which names it): for a plain file a seek, for a gzipped one a
    /// decompression from the start, as gzip streams cannot seek.
    fn new(source: &Source, at: Position) -> Result<Self> {
        let io = |e| Error::io(&source.path, e);
        let changed = || Error::Dataset {
            path: source.path.clone(),
            reason: format!(
                "cannot resume at byte {}, past the end: the file changed since",
                at.offset
            ),
        };
        let mut file = File::open(&source.path).map_err(io)?;
        let disk = Arc::new(AtomicU64::new(0));
        let stream: Box<dyn BufRead + Send> = if source.gzip {
            let count = disk.clone();
            let mut stream = BufReader::new(MultiGzDecoder::new(Counting { file, count }));
            let dropped = std::io::copy(&mut (&mut stream).take(at.offset), &mut std::io::sink())
                .map_err(io)?;
            if dropped < at.offset {
                return Err(changed());
            }
            Box::new(stream)
        } else {
            if at.offset > file.metadata().map_err(io)?.len() {
                return Err(changed());
            }
            file.seek(SeekFrom::Start(at.offset)).map_err(io)?;
            // The bytes before the position count as read, so that progress goes on from where
            // it stood.
            disk.store(at.offset, Ordering::Relaxed);
            let count = disk.clone();
            Box::new(BufReader::new(Counting { file, count }))
        };
        Ok(Open {
            stream,
            disk,
            at,
            line: String::new(),
        })
    }

    /// The next UTF-8 line of `source`, without its line ending (`\n` or `\r\n`, as
    /// `str::lines` cuts them); a line that is not UTF-8, or holds a NUL byte, is dropped into
    /// `skipped`. None at the
    /// end.
    fn next_line(&mut self, source: &Source, skipped: &mut Skipped) -> Result<Option<&str>> {
        let mut bytes = std::mem::take(&mut self.line).into_bytes();
        loop {
            bytes.clear();
            let start = self.at.offset;
            let n = self
                .stream
                .read_until(b'\n', &mut bytes)
                .map_err(|e| Error::io(&source.path, e))?;
            if n == 0 {
                return Ok(None);
            }
            self.at.offset += n as u64;
            self.at.lines += 1;
            if bytes.ends_with(b"\n") {
                bytes.pop();
                if bytes.ends_with(b"\r") {
                    bytes.pop();
                }
            }
            // A NUL byte is valid UTF-8 but no text holds one: binary data (a file misnamed
            // `.txt`) is skipped as a line that is not UTF-8 is, not read as words.
            if let Some(nul) = bytes.iter().position(|&b| b == 0) {
                skipped.record(&source.path, start + nul as u64);
                continue;
            }
            // Checked in place, so that a good line is not copied.
            match String::from_utf8(bytes) {
                Ok(line) => {
                    self.line = line;
                    return Ok(Some(&self.line));
                }
                Err(e) => {
                    let bad = start + e.utf8_error().valid_up_to() as u64;
                    skipped.record(&source.path, bad);
                    bytes = e.into_bytes();
                }
            }
        }
    }

    /// The rest of a text source as one document.
    fn whole_text(&mut self, source: &Source, skipped: &mut Skipped) -> Result<Option<Document>> {
        let mut paragraph = Paragraph::default();
        let mut blocks = Vec::new();
        while let Some(line) = self.next_line(source, skipped)? {
            blocks.extend(paragraph.push_line(line));
        }
        blocks.extend(paragraph.finish());
        Ok(document(source.name.clone(), &blocks))
    }

    /// The next blank-line-separated block of a text source as a document.
    fn next_block(&mut self, source: &Source, skipped: &mut Skipped) -> Result<Option<Document>> {
        let mut paragraph = Paragraph::default();
        loop {
            let line = self.next_line(source, skipped)?;
            let end = line.is_none();
            let block = match line {
                Some(line) => paragraph.push_line(line),
                None => paragraph.finish(),
            };
            let name = || part_name(&source.name, self.at.documents);
            if let Some(document) = block.and_then(|b| document(name(), &[b])) {
                return Ok(Some(document));
            }
            if end {
                return Ok(None);
            }
        }
    }

    /// The next JSON line of a source that holds text, as a document; blank lines are passed
    /// over.
    fn next_json(&mut self, source: &Source, skipped: &mut Skipped) -> Result<Option<Document>> {
        while let Some(line) = self.next_line(source, skipped)? {
            if line.trim().is_empty() {
                continue;
            }
            let parsed = serde_json::from_str::<JsonObject>(line);
            let index = self.at.lines - 1;
            let fault = |reason: String| Error::Dataset {
                path: source.path.clone(),
                reason: format!("line {}: {reason}", index + 1),
            };
            // Parsed as a map rather than a struct, because serde would also take an array
            // (`["text"]`) for a struct.
            let mut object = parsed.map_err(|e| fault(format!("not a JSON object ({e})")))?;
            let Some(serde_json::Value::String(text)) = object.remove("text") else {
                return Err(fault("no string field `text`".into()));
            };
            if let Some(document) = document(part_name(&source.name, index), &paragraphs(&text)) {
                return Ok(Some(document));
            }
        }
        Ok(None)
    }
}

/// Reads the documents of a list of sources in order, one at a time.
pub struct Reader {
    sources: Vec<Source>,
    boundary: DocumentBoundary,
    /// The source being read; none before the first, between two and after the last.
    open: Option<Open>,
    /// The index of the source to open next.
    next: usize,
    /// Bytes on disk of the sources before the open one.
    done: u64,
    position: Position,
    skipped: Skipped,
}

impl Reader {
    /// Reads `sources` from the start, cutting text files into documents at `boundary`.
    pub fn new(sources: Vec<Source>, boundary: DocumentBoundary) -> Self {
        Reader {
            sources,
            boundary,
            open: None,
            next: 0,
            done: 0,
            position: Position::default(),
            skipped: Skipped::default(),
        }
    }

    /// Reads `sources` from `at`, a [`Reader::position`] of a reader of the same sources and
    /// boundary: the documents are those that reader would have yielded next, under the same
    /// names. [`Reader::skipped`] counts only the lines skipped after `at`; add them to the
    /// count recorded with `at` ([`Skipped::merge`]) for the whole input's.
    pub fn resume(sources: Vec<Source>, boundary: DocumentBoundary, at: Position) -> Result<Self> {
        let source = sources.get(at.source).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "cannot resume at source {} of an input of {} sources",
                at.source,
                sources.len()
            ))
        })?;
        let open = Open::new(source, at)?;
        let done = sources[..at.source].iter().map(|s| s.bytes).sum();
        Ok(Reader {
            open: Some(open),
            next: at.source + 1,
            done,
            position: at,
            ..Reader::new(sources, boundary)
        })
    }

    /// The next document; none when every source has been read.
    pub fn next_document(&mut self) -> Result<Option<Document>> {
        loop {
            let open = match &mut self.open {
                Some(open) => open,
                None => {
                    let Some(source) = self.sources.get(self.next) else {
                        return Ok(None);
                    };
                    let at = Position {
                        source: self.next,
                        ..Position::default()
                    };
                    self.next += 1;
                    self.open.insert(Open::new(source, at)?)
                }
            };
            let source = &self.sources[open.at.source];
            let skipped = &mut self.skipped;
            let document = match (source.format, self.boundary) {
                (Format::JsonLines, _) => open.next_json(source, skipped)?,
                (Format::Text, DocumentBoundary::File) => open.whole_text(source, skipped)?,
                (Format::Text, DocumentBoundary::BlankLine) => open.next_block(source, skipped)?,
            };
            match document {
                Some(document) => {
                    open.at.documents += 1;
                    self.position = open.at;
                    return Ok(Some(document));
                }
                None => {
                    self.done += source.bytes;
                    self.open = None;
                }
            }
        }
    }

    /// Where the reader stands: just after the last document yielded (the start of the first
    /// source before any). Lines skipped before it are all in [`Reader::skipped`] when it is
    /// taken right after a document, so the two can be recorded together.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Bytes on disk read so far (compressed ones for a gzipped file), over all sources, those
    /// passed over by [`Reader::resume`] included: set against the sum of [`Source::bytes`],
    /// the share done.
    pub fn bytes_read(&self) -> u64 {
        self.done
            + self
                .open
                .as_ref()
                .map_or(0, |open| open.disk.load(Ordering::Relaxed))
    }

    /// The lines skipped so far because they are not UTF-8 (after the position resumed from,
    /// for a resumed reader).
    pub fn skipped(&self) -> &Skipped {
        &self.skipped
    }

    /// The sources, in reading order.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;
    use crate::corpus::{Corpus, bundled_data_dir};

    /// An empty folder of its own for a test.
    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pretext-sources-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all(reader: &mut Reader) -> Vec<Document> {
        std::iter::from_fn(|| reader.next_document().unwrap()).collect()
    }

    fn total_bytes(sources: &[Source]) -> u64 {
        sources.iter().map(|s| s.bytes).sum()
    }

    #[test]
    fn bundled_folders_read_as_corpus_from_dir_reads_them() {
        for folder in ["brown", "shakespeare"] {
            let dir = bundled_data_dir().join(folder);
            for boundary in [DocumentBoundary::File, DocumentBoundary::BlankLine] {
                let sources = list_sources(&dir).unwrap();
                let total = total_bytes(&sources);
                let mut reader = Reader::new(sources, boundary);
                let documents = read_all(&mut reader);
                let corpus = Corpus::from_dir(&dir, boundary).unwrap();
                assert_eq!(documents.len(), corpus.len(), "{folder} {boundary:?}");
                assert_eq!(documents, corpus.documents, "{folder} {boundary:?}");
                assert_eq!(reader.skipped(), &Skipped::default());
                assert_eq!(reader.bytes_read(), total);
            }
        }
    }

    /// Text with what a reader must get right: `\r\n` endings, runs of blank lines, lines
    /// that are not UTF-8 (`tag` tells files apart), no final line ending.
    fn messy_text(tag: u8) -> Vec<u8> {
        let mut text = Vec::new();
        text.extend_from_slice(b"\n\nThe first block. It has two lines\r\nof text.\r\n\r\n");
        text.extend_from_slice(b"A bad \xff line follows.\n\xfe\xfd broken \xc3\n");
        text.extend_from_slice(b"Still the second block! Yes.\n\n\n\n");
        text.extend_from_slice(format!("Block {tag} alone.\n\n").as_bytes());
        text.extend_from_slice(b"\xff\n\nLast block ");
        text.extend_from_slice(b"without an ending.");
        text
    }

    /// JSON lines with blank lines, an empty text, extra fields, a line that is not UTF-8 and
    /// texts of several paragraphs.
    fn messy_json(tag: u8) -> Vec<u8> {
        let mut json = Vec::new();
        for i in 0..6 {
            json.extend_from_slice(
                format!(
                    "{{\"id\": {i}, \"text\": \"Text {tag}.{i} begins. It goes on.\\n\\nA \
                     second paragraph.\", \"meta\": {{\"url\": \"x\"}}}}\r\n"
                )
                .as_bytes(),
            );
            match i {
                1 => json.extend_from_slice(b"\n   \n"),
                2 => json.extend_from_slice(b"{\"text\": \"\"}\n"),
                3 => json.extend_from_slice(b"{\"text\": \"bad \xff byte\"}\n"),
                _ => {}
            }
        }
        json
    }

    #[test]
    fn a_resumed_reader_yields_what_the_first_would_have() {
        let root = temp("resume");
        let texts = root.join("texts");
        let json = root.join("json");
        let gzipped = root.join("gzipped");
        for dir in [&texts, &json, &gzipped] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(texts.join("a.txt"), messy_text(1)).unwrap();
        std::fs::write(texts.join("b.txt"), "").unwrap();
        std::fs::write(texts.join("c.txt"), messy_text(2)).unwrap();
        std::fs::write(json.join("a.jsonl"), messy_json(1)).unwrap();
        std::fs::write(json.join("b.jsonl"), messy_json(2)).unwrap();
        std::fs::write(gzipped.join("a.jsonl.gz"), gzip(&messy_json(1))).unwrap();
        std::fs::write(gzipped.join("b.jsonl.gz"), gzip(&messy_json(2))).unwrap();
        for (input, boundary) in [
            (&texts, DocumentBoundary::File),
            (&texts, DocumentBoundary::BlankLine),
            (&json, DocumentBoundary::File),
            (&gzipped, DocumentBoundary::File),
        ] {
            let what = format!("{} {boundary:?}", input.display());
            let sources = list_sources(input).unwrap();
            let total = total_bytes(&sources);
            let mut reader = Reader::new(sources.clone(), boundary);
            let all = read_all(&mut reader);
            let skipped = reader.skipped().clone();
            assert!(all.len() >= 2, "{what}: {all:?}");
            assert!(skipped.lines >= 2, "{what}: {skipped:?}");
            for k in 0..=all.len() {
                let mut first = Reader::new(sources.clone(), boundary);
                for document in &all[..k] {
                    assert_eq!(first.next_document().unwrap().as_ref(), Some(document));
                }
                let (at, mut skipped_before) = (first.position(), first.skipped().clone());
                drop(first);
                let mut resumed = Reader::resume(sources.clone(), boundary, at).unwrap();
                // Progress goes on from where it stood (a gzipped file's bytes before the
                // position are read again, so they count by themselves).
                if !sources[at.source].gzip {
                    let before = total_bytes(&sources[..at.source]) + at.offset;
                    assert_eq!(resumed.bytes_read(), before, "{what}, resumed after {k}");
                }
                assert_eq!(
                    read_all(&mut resumed),
                    all[k..],
                    "{what}, resumed after {k}"
                );
                skipped_before.merge(resumed.skipped());
                assert_eq!(skipped_before, skipped, "{what}, resumed after {k}");
                assert_eq!(resumed.bytes_read(), total, "{what}");
            }
        }
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_line_that_is_not_utf8_is_skipped_and_counted() {
        let dir = temp("utf8");
        let path = dir.join("a.txt");
        let good = "First block, first line.\r\nStill the first block.\n\nSecond block.\n";
        let bad_line = b"its bad byte \xff is at 13\r\n";
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&good.as_bytes()[..26]);
        bytes.extend_from_slice(bad_line);
        bytes.extend_from_slice(&good.as_bytes()[26..]);
        std::fs::write(&path, &bytes).unwrap();
        for boundary in [DocumentBoundary::File, DocumentBoundary::BlankLine] {
            let mut reader = Reader::new(list_sources(&path).unwrap(), boundary);
            // The bad line is dropped, not taken for a blank one: the blocks stay as they were.
            let expected = Corpus::from_texts([("a.txt", good)], boundary).unwrap();
            assert_eq!(read_all(&mut reader), expected.documents, "{boundary:?}");
            let place = format!("{}:{}", path.display(), 26 + 13);
            assert_eq!(
                reader.skipped(),
                &Skipped {
                    lines: 1,
                    first: vec![place]
                }
            );
        }
        // A binary file misnamed .txt: its lines hold NUL bytes and are skipped, not read.
        let binary = dir.join("b.txt");
        std::fs::write(
            &binary,
            b"\x7fELF\x02\x01\x01\x00\x00\x00abc\nxyz\x00\x00\n",
        )
        .unwrap();
        let mut reader = Reader::new(list_sources(&binary).unwrap(), DocumentBoundary::File);
        assert!(read_all(&mut reader).is_empty());
        assert_eq!(reader.skipped().lines, 2);
        // In JSON lines, the bad line keeps its index: the next line is still `#2`.
        let path = dir.join("a.jsonl");
        std::fs::write(
            &path,
            b"{\"text\": \"One.\"}\n{\"text\": \"\xff\"}\n{\"text\": \"Two.\"}\n",
        )
        .unwrap();
        let mut reader = Reader::new(list_sources(&path).unwrap(), DocumentBoundary::File);
        let names: Vec<String> = read_all(&mut reader).into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["a.jsonl#0", "a.jsonl#2"]);
        assert_eq!(reader.skipped().lines, 1);
        assert_eq!(reader.skipped().first, [format!("{}:27", path.display())]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_malformed_json_line_names_its_file_and_line() {
        let dir = temp("json");
        let path = dir.join("data.jsonl");
        for (bad, expect) in [
            ("{not json", "not a JSON object"),
            ("[\"an array is not an object\"]", "not a JSON object"),
            ("\"a string\"", "not a JSON object"),
            ("{\"id\": 1}", "no string field `text`"),
            ("{\"text\": 5}", "no string field `text`"),
        ] {
            std::fs::write(&path, format!("{{\"text\": \"Fine.\"}}\n\n{bad}\n")).unwrap();
            let mut reader = Reader::new(list_sources(&path).unwrap(), DocumentBoundary::File);
            assert_eq!(
                reader.next_document().unwrap().unwrap().name,
                "data.jsonl#0"
            );
            let err = reader.next_document().unwrap_err();
            assert!(
                matches!(&err, Error::Dataset { path: p, reason }
                    if p == &path && reason.starts_with("line 3: ") && reason.contains(expect)),
                "{bad}: {err}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn inputs_are_listed_by_kind_and_named_as_corpus_names_files() {
        let root = temp("list");
        let dir = root.join("corpus");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("notes.md"), "not an input").unwrap();
        std::fs::write(dir.join("sub/table.csv"), "a,b").unwrap();
        let err = list_sources(&dir).unwrap_err();
        assert!(
            matches!(&err, Error::EmptyCorpus(m) if m.contains(&*dir.to_string_lossy())),
            "{err}"
        );
        assert!(matches!(
            list_sources(&dir.join("notes.md")),
            Err(Error::Dataset { .. })
        ));
        for file in ["z.txt", "sub/b.json", "sub/a.jsonl.gz", "sub/c.txt.gz"] {
            std::fs::write(dir.join(file), "").unwrap();
        }
        let listed: Vec<(String, Format, bool)> = list_sources(&dir)
            .unwrap()
            .into_iter()
            .map(|s| (s.name, s.format, s.gzip))
            .collect();
        let expected = [
            ("corpus/sub/a.jsonl.gz", Format::JsonLines, true),
            ("corpus/sub/b.json", Format::JsonLines, false),
            ("corpus/sub/c.txt.gz", Format::Text, true),
            ("corpus/z.txt", Format::Text, false),
        ]
        .map(|(n, f, g)| (n.to_string(), f, g));
        assert_eq!(listed, expected);
        let single = list_sources(&dir.join("sub/c.txt.gz")).unwrap();
        assert_eq!(single[0].name, "c.txt.gz");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn gzipped_text_reads_as_the_plain_text_and_counts_compressed_bytes() {
        let root = temp("gzip");
        let (plain, gzipped) = (root.join("plain/corpus"), root.join("gzipped/corpus"));
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::create_dir_all(&gzipped).unwrap();
        let text: String = (0..200)
            .map(|i| format!("Line {i} of the text.\r\nIt goes on.\n\n"))
            .collect();
        std::fs::write(plain.join("a.txt"), &text).unwrap();
        // Two gzip members back to back, as `cat a.gz b.gz` makes: both are read.
        let (head, tail) = text.as_bytes().split_at(text.len() / 2);
        let members = [gzip(head), gzip(tail)].concat();
        std::fs::write(gzipped.join("a.txt.gz"), &members).unwrap();
        for boundary in [DocumentBoundary::File, DocumentBoundary::BlankLine] {
            let mut reader = Reader::new(list_sources(&plain).unwrap(), boundary);
            let expected = read_all(&mut reader);
            assert_eq!(
                expected,
                Corpus::from_dir(&plain, boundary).unwrap().documents
            );
            let sources = list_sources(&gzipped).unwrap();
            assert_eq!(sources[0].bytes, members.len() as u64);
            let mut reader = Reader::new(sources, boundary);
            let documents: Vec<Document> = read_all(&mut reader)
                .into_iter()
                .map(|d| Document {
                    name: d.name.replacen("a.txt.gz", "a.txt", 1),
                    ..d
                })
                .collect();
            assert_eq!(documents, expected, "{boundary:?}");
            assert_eq!(reader.bytes_read(), members.len() as u64);
        }
        std::fs::remove_dir_all(root).unwrap();
    }
}
