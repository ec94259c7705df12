//! Labelled files of one's own, for fine-tuning: texts (or pairs of texts) with a class, as
//! JSON lines, CSV or TSV, and sentences with a tag a word, as CoNLL columns or JSON lines.
//! The label set is read from the training file; without a validation file, a share of the
//! training items is held out by a seeded hash of their text (so a text repeated in the file
//! never lands on both sides).
//!
//! ```no_run
//! use pretext::dataset::labelled_files::{LabelledFiles, LabelledKind};
//!
//! # fn main() -> pretext::Result<()> {
//! let files = LabelledFiles::new("reviews.csv").with_test("reviews-test.csv");
//! assert_eq!(files.kind()?, LabelledKind::Texts);
//! let data = files.texts()?; // labels sorted: ["negative", "positive"]
//! println!("{} classes, {} training texts", data.labels.len(), data.train.len());
//! # Ok(()) }
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::labelled::{LabelledData, LabelledText, TaggedSentence, json_lines};
use crate::error::{Error, Result};
use crate::util::rng::{FNV_OFFSET, fnv1a, splitmix64};

/// The layout of a labelled file, told by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelledFormat {
    /// One JSON object a line (`.jsonl`, `.json`).
    JsonLines,
    /// Comma-separated values under a header row, fields in double quotes where they hold
    /// commas, quotes or line breaks (`.csv`).
    Csv,
    /// Tab-separated values under a header row, no quoting (`.tsv`), as GLUE ships them.
    Tsv,
    /// CoNLL columns: a word a line, its tag in the last column, a blank line between
    /// sentences, `-DOCSTART-` lines skipped (`.conll`, `.bio`, `.iob`, `.txt`).
    Conll,
}

impl LabelledFormat {
    /// The format of `path`, from its extension.
    pub fn of(path: &Path) -> Result<Self> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match extension.to_ascii_lowercase().as_str() {
            "jsonl" | "json" => Ok(Self::JsonLines),
            "csv" => Ok(Self::Csv),
            "tsv" => Ok(Self::Tsv),
            "conll" | "bio" | "iob" | "txt" => Ok(Self::Conll),
            _ => Err(data_fault(
                path,
                0,
                "a labelled file is .jsonl, .csv, .tsv or CoNLL (.conll, .bio, .iob, .txt)",
            )),
        }
    }
}

/// Which fields (JSON lines) or columns (CSV, TSV) hold what; the defaults are the names
/// Hugging Face datasets use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// The text to classify. Default `text`.
    pub text: String,
    /// The second text of a pair, where a file has it. Default `text_pair`.
    pub text_pair: String,
    /// The class, a string or a number. Default `label`.
    pub label: String,
    /// A tagged sentence's words (JSON lines). Default `tokens`.
    pub tokens: String,
    /// Their tags, strings or numbers (JSON lines). Default `tags`.
    pub tags: String,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            text: "text".into(),
            text_pair: "text_pair".into(),
            label: "label".into(),
            tokens: "tokens".into(),
            tags: "tags".into(),
        }
    }
}

/// What a labelled file teaches: a class a text (sequence classification) or a tag a word
/// (token classification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelledKind {
    /// Texts, or pairs of texts, with a class each.
    Texts,
    /// Sentences with a tag for each word.
    Tags,
}

/// A fine-tuning dataset given as files: a training file, and validation and test files if
/// there are any.
#[derive(Debug, Clone)]
pub struct LabelledFiles {
    /// The training file; the label set is its labels.
    pub train: PathBuf,
    /// The validation file; without one, `valid_fraction` of the training items.
    pub valid: Option<PathBuf>,
    /// The test file, if any.
    pub test: Option<PathBuf>,
    /// The fields or columns to read.
    pub columns: Columns,
    /// The share of the training items held out for validation when there is no validation
    /// file. Default 0.1.
    pub valid_fraction: f64,
    /// Seed of that hold-out. Default 0.
    pub seed: u64,
}

/// One item of a file before its labels become classes: where it stands, and what it holds.
struct Raw<T> {
    line: usize,
    item: T,
    labels: Vec<String>,
}

impl LabelledFiles {
    /// Training data in `train`, default columns, 10 % of it held out for validation.
    pub fn new(train: impl Into<PathBuf>) -> Self {
        Self {
            train: train.into(),
            valid: None,
            test: None,
            columns: Columns::default(),
            valid_fraction: 0.1,
            seed: 0,
        }
    }

    /// These files with a validation file.
    pub fn with_valid(mut self, valid: impl Into<PathBuf>) -> Self {
        self.valid = Some(valid.into());
        self
    }

    /// These files with a test file.
    pub fn with_test(mut self, test: impl Into<PathBuf>) -> Self {
        self.test = Some(test.into());
        self
    }

    /// Whether the training file holds classified texts or tagged sentences: CoNLL is
    /// tagged, CSV and TSV classified, and JSON lines tagged when the first object has the
    /// tokens field.
    pub fn kind(&self) -> Result<LabelledKind> {
        Ok(match LabelledFormat::of(&self.train)? {
            LabelledFormat::Conll => LabelledKind::Tags,
            LabelledFormat::Csv | LabelledFormat::Tsv => LabelledKind::Texts,
            LabelledFormat::JsonLines => {
                let first = json_lines::<Map<String, Value>>(&self.train)?
                    .into_iter()
                    .next();
                match first.is_some_and(|(_, o)| o.contains_key(&self.columns.tokens)) {
                    true => LabelledKind::Tags,
                    false => LabelledKind::Texts,
                }
            }
        })
    }

    /// The texts of the files with their classes, the class names sorted (numerically when
    /// every one is a number). A missing field or column, a label of validation or test that
    /// training lacks, or a file without an item is an error naming the file and line.
    pub fn texts(&self) -> Result<LabelledData<LabelledText>> {
        self.read(
            |path| read_texts(path, &self.columns),
            |text: &LabelledText| text.text.clone() + text.pair.as_deref().unwrap_or(""),
            |mut text, mut classes| {
                text.label = classes.remove(0);
                text
            },
        )
    }

    /// The tagged sentences of the files, the tag names sorted (numerically when every one is
    /// a number); errors as [`texts`](Self::texts)'.
    pub fn tagged(&self) -> Result<LabelledData<TaggedSentence>> {
        self.read(
            |path| read_tagged(path, &self.columns),
            |sentence: &TaggedSentence| sentence.words.join(" "),
            |mut sentence, classes| {
                sentence.tags = classes;
                sentence
            },
        )
    }

    /// Reads every file with `read`, makes the label set of the training file's labels,
    /// holds out validation items by the hash of `key` if there is no validation file, and
    /// gives each item its classes with `classify`.
    fn read<T>(
        &self,
        read: impl Fn(&Path) -> Result<Vec<Raw<T>>>,
        key: impl Fn(&T) -> String,
        classify: impl Fn(T, Vec<u32>) -> T,
    ) -> Result<LabelledData<T>> {
        crate::error::check_rate("valid_fraction", self.valid_fraction)?;
        let train = read(&self.train)?;
        // The label set, sorted (as numbers when every label is one), and each label's class.
        let names: BTreeSet<&str> = train
            .iter()
            .flat_map(|r| r.labels.iter().map(String::as_str))
            .collect();
        let mut labels: Vec<String> = names.into_iter().map(str::to_string).collect();
        if labels.iter().all(|l| l.parse::<i64>().is_ok()) {
            labels.sort_by_key(|l| l.parse::<i64>().expect("checked"));
        }
        let ids: HashMap<String, u32> = (0..).zip(&labels).map(|(i, l)| (l.clone(), i)).collect();
        let classes = |path: &Path, raw: Raw<T>| -> Result<T> {
            let classes = raw.labels.iter().map(|label| {
                ids.get(label).copied().ok_or_else(|| {
                    let known = labels.join(", ");
                    let reason =
                        format!("label {label:?} is not one of the training file's: {known}");
                    data_fault(path, raw.line, &reason)
                })
            });
            let classes = classes.collect::<Result<Vec<_>>>()?;
            Ok(classify(raw.item, classes))
        };
        let mut data = LabelledData {
            labels: labels.clone(),
            ..LabelledData::default()
        };
        for raw in train {
            let held_out = self.valid.is_none() && self.holds_out(&key(&raw.item));
            let item = classes(&self.train, raw)?;
            match held_out {
                true => data.valid.push(item),
                false => data.train.push(item),
            }
        }
        for (path, subset) in [(&self.valid, &mut data.valid), (&self.test, &mut data.test)] {
            if let Some(path) = path {
                for raw in read(path)? {
                    subset.push(classes(path, raw)?);
                }
            }
        }
        if data.train.is_empty() {
            let reason = "every item was held out for validation: give a validation file or a \
                          smaller valid_fraction";
            return Err(data_fault(&self.train, 0, reason));
        }
        Ok(data)
    }

    /// Whether the item whose text is `key` goes to validation.
    fn holds_out(&self, key: &str) -> bool {
        let hash = splitmix64(self.seed ^ fnv1a(FNV_OFFSET, key.as_bytes()));
        (hash as f64 / u64::MAX as f64) < self.valid_fraction
    }
}

/// An [`Error::DataFile`] at `line` of `path` (0: the file as a whole).
fn data_fault(path: &Path, line: usize, reason: &str) -> Error {
    Error::DataFile {
        path: path.to_path_buf(),
        line,
        reason: reason.to_string(),
    }
}

/// The classified texts of `path`, one a line (JSON lines) or record (CSV, TSV).
fn read_texts(path: &Path, columns: &Columns) -> Result<Vec<Raw<LabelledText>>> {
    let records = match LabelledFormat::of(path)? {
        LabelledFormat::JsonLines => json_lines::<Map<String, Value>>(path)?,
        LabelledFormat::Csv => delimited(path, ',', true)?,
        LabelledFormat::Tsv => delimited(path, '\t', false)?,
        LabelledFormat::Conll => {
            let reason = "a CoNLL file tags words; texts with a class are .jsonl, .csv or .tsv";
            return Err(data_fault(path, 0, reason));
        }
    };
    let raws = records.into_iter().map(|(line, record)| {
        let field = |name: &str| -> Result<Option<String>> {
            match record.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => scalar(value)
                    .map(Some)
                    .ok_or_else(|| data_fault(path, line, &format!("{name:?} is not a string"))),
            }
        };
        let required = |name: &str| {
            field(name)?.ok_or_else(|| {
                let fields: Vec<&str> = record.keys().map(String::as_str).collect();
                let reason = format!("no {name:?} field; it has {}", fields.join(", "));
                data_fault(path, line, &reason)
            })
        };
        let text = LabelledText {
            document: format!("{}:{line}", path.display()),
            text: required(&columns.text)?,
            pair: field(&columns.text_pair)?,
            label: 0,
        };
        let labels = vec![required(&columns.label)?];
        Ok(Raw {
            line,
            item: text,
            labels,
        })
    });
    nonempty(path, raws.collect::<Result<Vec<_>>>()?)
}

/// The tagged sentences of `path`: CoNLL columns, or JSON lines of words and tags.
fn read_tagged(path: &Path, columns: &Columns) -> Result<Vec<Raw<TaggedSentence>>> {
    let sentence = |line: usize, words: Vec<String>, tags: Vec<String>| Raw {
        line,
        item: TaggedSentence {
            document: format!("{}:{line}", path.display()),
            words,
            tags: Vec::new(),
        },
        labels: tags,
    };
    let mut sentences = Vec::new();
    match LabelledFormat::of(path)? {
        LabelledFormat::Conll => {
            let text = crate::corpus::read_utf8(path)?;
            let (mut words, mut tags, mut start) = (Vec::new(), Vec::new(), 0);
            for (i, row) in text.lines().chain([""]).enumerate() {
                let fields: Vec<&str> = row.split_whitespace().collect();
                if fields.is_empty() || fields[0] == "-DOCSTART-" {
                    if !words.is_empty() {
                        let (w, t) = (std::mem::take(&mut words), std::mem::take(&mut tags));
                        sentences.push(sentence(start, w, t));
                    }
                    continue;
                }
                if fields.len() < 2 {
                    let reason = format!("{row:?} has no tag after the word");
                    return Err(data_fault(path, i + 1, &reason));
                }
                if words.is_empty() {
                    start = i + 1;
                }
                words.push(fields[0].to_string());
                tags.push(fields[fields.len() - 1].to_string());
            }
        }
        LabelledFormat::JsonLines => {
            for (line, record) in json_lines::<Map<String, Value>>(path)? {
                let list = |name: &str| -> Result<Vec<String>> {
                    let values = record.get(name).and_then(Value::as_array);
                    let strings = values.map(|v| v.iter().map(scalar).collect::<Option<Vec<_>>>());
                    strings.flatten().ok_or_else(|| {
                        let reason = format!("{name:?} is not a list of strings or numbers");
                        data_fault(path, line, &reason)
                    })
                };
                let (words, tags) = (list(&columns.tokens)?, list(&columns.tags)?);
                if words.len() != tags.len() {
                    let reason = format!("{} words but {} tags", words.len(), tags.len());
                    return Err(data_fault(path, line, &reason));
                }
                if !words.is_empty() {
                    sentences.push(sentence(line, words, tags));
                }
            }
        }
        LabelledFormat::Csv | LabelledFormat::Tsv => {
            let reason = "tagged sentences are CoNLL columns or JSON lines of tokens and tags";
            return Err(data_fault(path, 0, reason));
        }
    }
    nonempty(path, sentences)
}

/// A string, or a number or boolean written as one.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

/// `items`, or an [`Error::EmptyCorpus`] naming `path` when there are none.
fn nonempty<T>(path: &Path, items: Vec<T>) -> Result<Vec<T>> {
    match items.is_empty() {
        true => Err(Error::EmptyCorpus(format!(
            "{} holds no labelled item",
            path.display()
        ))),
        false => Ok(items),
    }
}

/// The records of a CSV or TSV file under its header row, as field → value objects, each
/// with the line it starts on. With `quotes`, a field in double quotes may hold the delimiter,
/// line breaks and doubled quotes (RFC 4180).
fn delimited(
    path: &Path,
    delimiter: char,
    quotes: bool,
) -> Result<Vec<(usize, Map<String, Value>)>> {
    let text = crate::corpus::read_utf8(path)?;
    let mut rows = split_records(&text, delimiter, quotes)
        .map_err(|(line, reason)| data_fault(path, line, &reason))?
        .into_iter();
    let Some((_, header)) = rows.next() else {
        return Ok(Vec::new());
    };
    rows.map(|(line, row)| {
        if row.len() != header.len() {
            let reason = format!("{} fields under a header of {}", row.len(), header.len());
            return Err(data_fault(path, line, &reason));
        }
        let record = header
            .iter()
            .cloned()
            .zip(row.into_iter().map(Value::String));
        Ok((line, record.collect()))
    })
    .collect()
}

/// The rows of delimited `text`, blank lines skipped, each with the line it starts on; an
/// unclosed quote is the line it opened on and why.
fn split_records(
    text: &str,
    delimiter: char,
    quotes: bool,
) -> std::result::Result<Vec<(usize, Vec<String>)>, (usize, String)> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut line, mut start, mut quoted) = (1, 1, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => {
                    line += usize::from(c == '\n');
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if quotes && field.is_empty() => quoted = true,
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                if row.len() > 1 || !row[0].is_empty() {
                    rows.push((start, std::mem::take(&mut row)));
                }
                row.clear();
                line += 1;
                start = line;
            }
            c if c == delimiter => row.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if quoted {
        return Err((start, "a quoted field is never closed".into()));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push((start, row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_file;

    #[test]
    fn csv_fields_may_hold_delimiters_quotes_and_line_breaks() {
        let text = "text,label\n\"a, b\",x\r\n\"say \"\"hi\"\"\nthere\",y\n\nplain,x";
        let rows = split_records(text, ',', true).unwrap();
        let fields: Vec<Vec<&str>> = rows
            .iter()
            .map(|(_, r)| r.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            fields,
            [
                vec!["text", "label"],
                vec!["a, b", "x"],
                vec!["say \"hi\"\nthere", "y"],
                vec!["plain", "x"]
            ]
        );
        let lines: Vec<usize> = rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 2, 3, 6]);
        assert_eq!(
            split_records("a\n\"open", ',', true),
            Err((2, "a quoted field is never closed".into()))
        );
        // TSV keeps quotes as they are.
        let rows = split_records("text\tlabel\n\"x\"\t1\n", '\t', false).unwrap();
        assert_eq!(rows[1].1, ["\"x\"", "1"]);
    }

    #[test]
    fn labels_come_from_training_sorted_and_unknown_ones_are_named() {
        let train = temp_file(
            "lf-train.jsonl",
            concat!(
                r#"{"text": "good film", "label": "pos"}"#,
                "\n",
                r#"{"text": "bad film", "text_pair": "it was bad", "label": "neg"}"#,
                "\n",
            ),
        );
        let valid = temp_file("lf-valid.csv", "text,label\nfine,pos\nawful,meh\n");
        let files = LabelledFiles::new(&train).with_valid(&valid);
        assert_eq!(files.kind().unwrap(), LabelledKind::Texts);
        let err = files.texts().unwrap_err();
        assert!(matches!(err, Error::DataFile { line: 3, .. }), "{err}");
        assert!(err.to_string().contains("\"meh\""), "{err}");
        std::fs::write(&valid, "text,label\nfine,pos\n").unwrap();
        let data = files.texts().unwrap();
        assert_eq!(data.labels, ["neg", "pos"]);
        assert_eq!(data.train[1].pair.as_deref(), Some("it was bad"));
        assert_eq!((data.train[0].label, data.train[1].label), (1, 0));
        assert_eq!((data.valid.len(), data.valid[0].label), (1, 1));
        // Numbers sort as numbers.
        std::fs::write(
            &train,
            "{\"text\": \"a\", \"label\": 10}\n{\"text\": \"b\", \"label\": 9}\n",
        )
        .unwrap();
        let data = LabelledFiles::new(&train)
            .with_valid(&train)
            .texts()
            .unwrap();
        assert_eq!(data.labels, ["9", "10"]);
    }

    #[test]
    fn missing_columns_and_ragged_rows_are_errors_at_their_line() {
        let path = temp_file("lf-bad.csv", "sentence,label\nhello,1\n");
        let err = LabelledFiles::new(&path).texts().unwrap_err();
        assert!(matches!(err, Error::DataFile { line: 2, .. }), "{err}");
        assert!(
            err.to_string()
                .contains("no \"text\" field; it has label, sentence"),
            "{err}"
        );
        let mut files = LabelledFiles::new(&path);
        files.columns.text = "sentence".into();
        files.valid_fraction = 0.0;
        assert_eq!(files.texts().unwrap().train[0].text, "hello");
        std::fs::write(&path, "sentence,label\nhello,1,extra\n").unwrap();
        assert!(matches!(
            files.texts(),
            Err(Error::DataFile { line: 2, .. })
        ));
        std::fs::write(&path, "sentence,label\n").unwrap();
        assert!(matches!(files.texts(), Err(Error::EmptyCorpus(_))));
        let other = temp_file("lf-bad.xml", "<a/>");
        assert!(matches!(
            LabelledFiles::new(other).kind(),
            Err(Error::DataFile { .. })
        ));
    }

    #[test]
    fn conll_and_json_tagged_sentences_read_alike() {
        let conll = temp_file(
            "lf-tags.conll",
            "-DOCSTART- O\n\nEU NNP B-ORG\nrejects VBZ O\n\n\nPeter NNP B-PER\n",
        );
        let json = temp_file(
            "lf-tags.jsonl",
            "{\"tokens\": [\"EU\", \"rejects\"], \"tags\": [\"B-ORG\", \"O\"]}\n\
             {\"tokens\": [\"Peter\"], \"tags\": [\"B-PER\"]}\n",
        );
        for path in [conll, json] {
            let mut files = LabelledFiles::new(&path);
            files.valid_fraction = 0.0;
            assert_eq!(files.kind().unwrap(), LabelledKind::Tags);
            let data = files.tagged().unwrap();
            assert_eq!(data.labels, ["B-ORG", "B-PER", "O"]);
            assert_eq!(data.train.len(), 2);
            assert_eq!(data.train[0].words, ["EU", "rejects"]);
            assert_eq!(data.train[0].tags, [0, 2]);
            assert_eq!(data.train[1].tags, [1]);
        }
        let bad = temp_file("lf-bad.conll", "EU B-ORG\nlonely\n");
        assert!(matches!(
            LabelledFiles::new(bad).tagged(),
            Err(Error::DataFile { line: 2, .. })
        ));
    }

    #[test]
    fn the_hold_out_is_seeded_and_keeps_repeated_texts_together() {
        let lines: String = (0..400)
            .map(|i| format!("{{\"text\": \"text {}\", \"label\": {}}}\n", i % 200, i % 2))
            .collect();
        let path = temp_file("lf-split.jsonl", &lines);
        let data = LabelledFiles::new(&path).texts().unwrap();
        let held = data.valid.len();
        // Each of 200 distinct texts (twice each) is held out with probability 0.1.
        assert!((10..=80).contains(&held), "{held} held out");
        assert!(
            data.valid
                .iter()
                .all(|v| data.train.iter().all(|t| t.text != v.text))
        );
        let again = LabelledFiles::new(&path).texts().unwrap();
        assert_eq!(again.valid, data.valid);
        let mut other = LabelledFiles::new(&path);
        other.seed = 1;
        assert_ne!(other.texts().unwrap().valid, data.valid);
    }
}
