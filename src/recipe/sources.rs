//! Where a run's tokenizer and text come from: the two sources a [`Recipe`](super::Recipe)
//! names, and how each is loaded (a prepared dataset opened as it is, a folder of text
//! prepared once into the cache, the bundled corpus tokenized into memory).

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::corpus::DocumentBoundary;
use crate::dataset::prepare::{self, PrepareOptions};
use crate::dataset::{Documents, Prepared, TokenStore};
use crate::error::Result;
use crate::tokenize::Tokenizer;

/// Where a run's tokenizer comes from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSource {
    /// A `tokenizer.json`; `None` for the bundled one.
    pub file: Option<PathBuf>,
    /// T5's sentinel tokens `<extra_id_0>` … added to its vocabulary (0 for none).
    pub sentinels: usize,
}

impl TokenizerSource {
    /// Loads the tokenizer, sentinels added.
    pub fn load(&self) -> Result<Tokenizer> {
        let tokenizer = match &self.file {
            Some(path) => Tokenizer::from_file(path).map_err(|e| e.in_field("tokenizer.file"))?,
            None => Tokenizer::bundled()?,
        };
        if self.sentinels == 0 {
            return Ok(tokenizer);
        }
        tokenizer
            .with_sentinels(self.sentinels)
            .map_err(|e| e.in_field("tokenizer.sentinels"))
    }
}

/// Where a run's text comes from, and how much of it validates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// A prepared dataset ([`crate::dataset::prepare`]), or text to prepare: a folder of
    /// `.txt` files (one document each), a single `.txt` file (one document a blank-line
    /// separated block), `.jsonl`/`.json` lines with a `text` field (one document each),
    /// gzipped or not; `None` for the bundled corpus, less the documents the genre task
    /// evaluates on (see [`crate::dataset::bundled`]).
    pub dir: Option<PathBuf>,
    /// Share of the documents held out for validation, drawn with a fixed seed so that every
    /// run validates on the same documents whatever its own seed. Default 0.05.
    pub valid_fraction: f64,
}

impl Default for DataSource {
    fn default() -> Self {
        Self {
            dir: None,
            valid_fraction: 0.05,
        }
    }
}

impl DataSource {
    /// The train and validation documents, tokenized by `tokenizer`. A prepared dataset is
    /// opened as it is; text (a file or a folder) is prepared first into the cache
    /// ([`prepare::cache_dir`]), once; the bundled corpus is tokenized into memory. All three
    /// are then read the same way, and split by document names.
    pub fn documents(
        &self,
        tokenizer: &Tokenizer,
        progress: bool,
    ) -> Result<(Documents, Documents)> {
        let prepared = match &self.dir {
            None => {
                let corpus = crate::dataset::bundled::pretraining_corpus()?;
                let store = TokenStore::tokenize(&corpus, tokenizer)?;
                return Documents::split(Arc::new(store), self.valid_fraction, 0);
            }
            Some(dir) if dir.join(crate::dataset::prepared::MANIFEST).exists() => dir.clone(),
            Some(dir) => {
                let cache = prepare::cache_dir(dir, tokenizer);
                // A folder holds a document a file; a single text file, a document a
                // blank-line-separated block.
                let boundary = match dir.is_file() {
                    true => DocumentBoundary::BlankLine,
                    false => DocumentBoundary::File,
                };
                let options = PrepareOptions {
                    boundary,
                    valid_fraction: self.valid_fraction,
                    progress,
                    ..PrepareOptions::default()
                };
                prepare::prepare(dir, &cache, tokenizer, &options)?;
                cache
            }
        };
        Prepared::open(&prepared, tokenizer)?.split(self.valid_fraction, 0)
    }
}
