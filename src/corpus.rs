//! Plain-text corpora: files → documents → sentences, with a train/validation split by document.
//!
//! Document boundaries are kept because sentence-level objectives (NSP, SOP) and BART's sentence
//! permutation need them. Sentences are found by a small rule-based splitter: good enough for
//! pretraining data, and deterministic.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One document: a name (its file, or file and paragraph) and its sentences in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Where the document came from, e.g. `brown/ca01.txt`; also the key of the train/validation
    /// split, so a document stays on its side of the split whatever the file order.
    pub name: String,
    /// The document's sentences, in order.
    pub sentences: Vec<String>,
}

impl Document {
    /// Bytes of sentence text (the whitespace between sentences not counted).
    pub fn text_len(&self) -> usize {
        self.sentences.iter().map(String::len).sum()
    }
}

/// How a text file is cut into documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DocumentBoundary {
    /// Each file is one document; its blank-line-separated paragraphs are joined.
    #[default]
    File,
    /// Each blank-line-separated block of a file is one document.
    BlankLine,
}

/// A collection of documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Corpus {
    /// The documents, in the order they were read.
    pub documents: Vec<Document>,
}

/// The folder of the corpus bundled with the crate: `data/` beside `Cargo.toml`, or
/// `$PRETEXT_DATA_DIR` where it is set, for a binary run away from the tree it was built in
/// (e.g. carried to a GPU machine).
pub fn bundled_data_dir() -> PathBuf {
    std::env::var_os("PRETEXT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"))
}

impl Corpus {
    /// The bundled pretraining corpus: the Brown corpus and Shakespeare's plays, one document per
    /// file (see `data/README.md`).
    pub fn bundled() -> Result<Self> {
        let dir = bundled_data_dir();
        let mut corpus = Corpus::from_dir(dir.join("brown"), DocumentBoundary::File)?;
        corpus
            .documents
            .extend(Corpus::from_dir(dir.join("shakespeare"), DocumentBoundary::File)?.documents);
        Ok(corpus)
    }

    /// Reads every `*.txt` file under `dir` (recursively, in sorted order).
    pub fn from_dir(dir: impl AsRef<Path>, boundary: DocumentBoundary) -> Result<Self> {
        let dir = dir.as_ref();
        let mut files = Vec::new();
        collect_files(
            dir,
            &|path| path.extension().is_some_and(|e| e == "txt"),
            &mut files,
        )?;
        if files.is_empty() {
            return Err(Error::EmptyCorpus(format!(
                "no .txt files under {}",
                dir.display()
            )));
        }
        let mut corpus = Corpus::default();
        for file in files {
            let text = read_utf8(&file)?;
            corpus.push_text(&input_name(dir, &file), &text, boundary);
        }
        corpus.non_empty(&dir.display().to_string())
    }

    /// Reads the given files.
    pub fn from_files<P: AsRef<Path>>(files: &[P], boundary: DocumentBoundary) -> Result<Self> {
        let mut corpus = Corpus::default();
        for file in files {
            let file = file.as_ref();
            let text = read_utf8(file)?;
            corpus.push_text(&file.to_string_lossy(), &text, boundary);
        }
        corpus.non_empty("the given files")
    }

    /// Builds a corpus from in-memory `(name, text)` pairs.
    pub fn from_texts<'a>(
        texts: impl IntoIterator<Item = (&'a str, &'a str)>,
        boundary: DocumentBoundary,
    ) -> Result<Self> {
        let mut corpus = Corpus::default();
        for (name, text) in texts {
            corpus.push_text(name, text, boundary);
        }
        corpus.non_empty("the given texts")
    }

    fn push_text(&mut self, name: &str, text: &str, boundary: DocumentBoundary) {
        let paragraphs = paragraphs(text);
        match boundary {
            DocumentBoundary::File => self
                .documents
                .extend(document(name.to_string(), &paragraphs)),
            DocumentBoundary::BlankLine => {
                for (i, paragraph) in paragraphs.iter().enumerate() {
                    self.documents.extend(document(
                        part_name(name, i as u64),
                        std::slice::from_ref(paragraph),
                    ));
                }
            }
        }
    }

    fn non_empty(self, what: &str) -> Result<Self> {
        if self.documents.is_empty() {
            Err(Error::EmptyCorpus(format!("{what} hold no text")))
        } else {
            Ok(self)
        }
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether the corpus has no documents.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// Splits by document into `(train, validation)`. A document goes to validation when a hash
    /// of its name and `seed` falls below `valid_fraction`, so the split does not depend on file
    /// order. Both sides get at least one document.
    pub fn split(self, valid_fraction: f64, seed: u64) -> Result<(Corpus, Corpus)> {
        let names: Vec<&str> = self.documents.iter().map(|d| d.name.as_str()).collect();
        let valid = validation_flags(&names, valid_fraction, seed)?;
        let (valid, train): (Vec<_>, Vec<_>) =
            self.documents.into_iter().zip(valid).partition(|(_, v)| *v);
        let strip = |v: Vec<(Document, bool)>| Corpus {
            documents: v.into_iter().map(|(d, _)| d).collect(),
        };
        Ok((strip(train), strip(valid)))
    }
}

/// Which of the documents named `names` are held out for validation: those whose hash of name
/// and `seed` falls below `valid_fraction`, so that a document's side depends on its name
/// alone, not on file order or on which other documents there are. Both sides get at least
/// one document: the one whose hash is nearest the threshold crosses over.
pub(crate) fn validation_flags(
    names: &[&str],
    valid_fraction: f64,
    seed: u64,
) -> Result<Vec<bool>> {
    crate::error::check_rate("valid_fraction", valid_fraction)?;
    if names.len() < 2 {
        return Err(Error::EmptyCorpus(format!(
            "a train/validation split needs at least 2 documents, the corpus has {}",
            names.len()
        )));
    }
    let keys: Vec<f64> = names.iter().map(|n| unit_hash(n, seed)).collect();
    let mut valid: Vec<bool> = keys.iter().map(|&k| k < valid_fraction).collect();
    let nearest = |side: bool, pick: fn(f64, f64) -> bool| {
        (0..keys.len())
            .filter(|&i| valid[i] == side)
            .reduce(|a, b| if pick(keys[b], keys[a]) { b } else { a })
    };
    if !valid.contains(&true) {
        let lowest = nearest(false, |b, a| b < a).expect("every document is in train");
        valid[lowest] = true;
    } else if !valid.contains(&false) {
        let highest = nearest(true, |b, a| b > a).expect("every document validates");
        valid[highest] = false;
    }
    Ok(valid)
}

/// Appends the files under `dir` that `keep` accepts to `out`, recursively, in sorted path order
/// (so that a corpus reads the same on every file system).
pub(crate) fn collect_files(
    dir: &Path,
    keep: &dyn Fn(&Path) -> bool,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()).map_err(|err| Error::io(dir, err)))
        .collect::<Result<_>>()?;
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_files(&path, keep, out)?;
        } else if keep(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// The name of `file`, read from the input `input` (the file itself or a folder above it): its
/// path relative to the input's parent, e.g. `brown/ca01.txt`, so that names, and with them the
/// train/validation split, do not depend on where the corpus lies.
pub(crate) fn input_name(input: &Path, file: &Path) -> String {
    let parent = input.parent().unwrap_or(input);
    file.strip_prefix(parent)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

/// The name of part `index` (from 0) of the file named `name`: a blank-line-separated block, or a
/// line of JSON.
pub(crate) fn part_name(name: &str, index: u64) -> String {
    format!("{name}#{index}")
}

/// The document `name` made of `paragraphs`' sentences; none if they hold no sentence.
pub(crate) fn document(name: String, paragraphs: &[String]) -> Option<Document> {
    let sentences: Vec<String> = paragraphs.iter().flat_map(|p| split_sentences(p)).collect();
    (!sentences.is_empty()).then_some(Document { name, sentences })
}

/// Reads a file that must be UTF-8 text, naming the first bad byte otherwise: an invalid
/// sequence, or a NUL byte, which no text holds and binary files do.
pub fn read_utf8(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        let path = path.to_path_buf();
        return Err(Error::NotUtf8 { path, offset });
    }
    String::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Blank-line-separated blocks of a text, each with its lines joined by single spaces.
pub(crate) fn paragraphs(text: &str) -> Vec<String> {
    let mut paragraph = Paragraph::default();
    let mut out: Vec<String> = text
        .lines()
        .filter_map(|l| paragraph.push_line(l))
        .collect();
    out.extend(paragraph.finish());
    out
}

/// A blank-line-separated block built a line at a time, so that a text read as a stream is cut
/// as [`paragraphs`] cuts it whole.
#[derive(Debug, Default)]
pub(crate) struct Paragraph(String);

impl Paragraph {
    /// Adds a line (without its line ending); returns the block a blank line ends, if any.
    pub(crate) fn push_line(&mut self, line: &str) -> Option<String> {
        let line = line.trim();
        if line.is_empty() {
            return self.finish();
        }
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push_str(line);
        None
    }

    /// The block so far, if any, leaving this one empty: the last block of a text.
    pub(crate) fn finish(&mut self) -> Option<String> {
        (!self.0.is_empty()).then(|| std::mem::take(&mut self.0))
    }
}

/// Abbreviations after which a period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gen", "gov", "sen", "rep", "col", "lt",
    "capt", "sgt", "rev", "vs", "etc", "no", "co", "inc", "ltd", "mt", "ft", "u.s", "e.g", "i.e",
];

/// Splits a paragraph into sentences at `.`, `!` or `?` (with any closing quotes or brackets)
/// followed by whitespace and an upper-case letter, digit or opening quote, except after a
/// known abbreviation or a single initial.
pub fn split_sentences(paragraph: &str) -> Vec<String> {
    let chars: Vec<(usize, char)> = paragraph.char_indices().collect();
    let mut sentences = Vec::new();
    let mut start = 0usize;
    let mut i = 0usize;
    while i < chars.len() {
        let (_, c) = chars[i];
        if matches!(c, '.' | '!' | '?') {
            let mut end = i + 1;
            while end < chars.len() && matches!(chars[end].1, '"' | '\'' | ')' | ']') {
                end += 1;
            }
            let next_starts = end + 1 < chars.len() && chars[end].1.is_whitespace() && {
                let n = chars[end + 1].1;
                n.is_uppercase() || n.is_ascii_digit() || matches!(n, '"' | '\'' | '(')
            };
            if next_starts && !(c == '.' && ends_with_abbreviation(paragraph, chars[i].0)) {
                let end_byte = chars.get(end).map_or(paragraph.len(), |(b, _)| *b);
                let sentence = paragraph[start..end_byte].trim();
                if !sentence.is_empty() {
                    sentences.push(sentence.to_string());
                }
                start = end_byte;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    let rest = paragraph[start..].trim();
    if !rest.is_empty() {
        sentences.push(rest.to_string());
    }
    sentences
}

fn ends_with_abbreviation(text: &str, period_byte: usize) -> bool {
    let before = &text[..period_byte];
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"')
        .next()
        .unwrap_or("");
    let lower = word.to_lowercase();
    (word.chars().count() == 1 && word.chars().all(char::is_uppercase))
        || ABBREVIATIONS.contains(&lower.as_str())
}

/// A hash of `(name, seed)` mapped to `[0, 1)`: FNV-1a, then a SplitMix64 finaliser.
fn unit_hash(name: &str, seed: u64) -> f64 {
    let h = crate::util::rng::fnv1a(crate::util::rng::FNV_OFFSET ^ seed, name.as_bytes());
    (crate::util::rng::splitmix64(h) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_terminal_punctuation_but_not_abbreviations() {
        let s =
            split_sentences("Mr. Smith went to Washington. He said \"Hi!\" Then J. Doe left? Yes.");
        assert_eq!(
            s,
            vec![
                "Mr. Smith went to Washington.",
                "He said \"Hi!\"",
                "Then J. Doe left?",
                "Yes."
            ]
        );
    }

    #[test]
    fn file_boundary_keeps_one_document_and_blank_line_boundary_makes_several() {
        let text = "First para. Still first.\n\nSecond para.\n";
        let one = Corpus::from_texts([("a", text)], DocumentBoundary::File).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one.documents[0].sentences.len(), 3);
        let two = Corpus::from_texts([("a", text)], DocumentBoundary::BlankLine).unwrap();
        assert_eq!(two.len(), 2);
    }

    #[test]
    fn empty_text_is_an_error() {
        let err = Corpus::from_texts([("a", "  \n\n ")], DocumentBoundary::File).unwrap_err();
        assert!(matches!(err, Error::EmptyCorpus(_)), "{err}");
    }

    #[test]
    fn non_utf8_file_is_a_typed_error() {
        let dir = std::env::temp_dir().join(format!("pretext-utf8-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.txt");
        std::fs::write(&path, b"fine text \xff\xfe more").unwrap();
        let err = Corpus::from_files(&[&path], DocumentBoundary::File).unwrap_err();
        assert!(
            matches!(err, Error::NotUtf8 { offset: 10, .. }),
            "unexpected error: {err}"
        );
        // A binary file misnamed .txt is valid UTF-8 up to its NUL bytes, which no text holds.
        std::fs::write(&path, b"\x7fELF\x02\x01\x01\x00\x00").unwrap();
        let err = Corpus::from_files(&[&path], DocumentBoundary::File).unwrap_err();
        assert!(matches!(err, Error::NotUtf8 { offset: 7, .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn split_is_by_document_and_stable_under_reordering() {
        let texts: Vec<(String, String)> = (0..200)
            .map(|i| (format!("doc{i}"), format!("Sentence {i}. Another one.")))
            .collect();
        let corpus = Corpus::from_texts(
            texts.iter().map(|(n, t)| (n.as_str(), t.as_str())),
            DocumentBoundary::File,
        )
        .unwrap();
        let mut reversed = corpus.clone();
        reversed.documents.reverse();
        let (train, valid) = corpus.split(0.1, 7).unwrap();
        let (_, valid_rev) = reversed.split(0.1, 7).unwrap();
        assert_eq!(train.len() + valid.len(), 200);
        assert!((5..=40).contains(&valid.len()), "valid has {}", valid.len());
        let mut a: Vec<_> = valid.documents.iter().map(|d| &d.name).collect();
        let mut b: Vec<_> = valid_rev.documents.iter().map(|d| &d.name).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(train.documents.iter().all(|d| !a.contains(&&d.name)));
    }
}
