//! Prepares a corpus once into a memory-mapped dataset that `pretrain --data DIR` reads with
//! flat memory and no start-up tokenization, however large the corpus: a thin command line
//! over [`pretext::dataset::prepare`].
//!
//! ```text
//! cargo run --release --example prepare -- --out prepared/bundled     # the bundled corpus
//! cargo run --release --example prepare -- my-texts/ --out prepared/mine
//! cargo run --release --example prepare -- dump.jsonl.gz --out prepared/dump --tokenizer tok.json
//! cargo run --release --example pretrain -- --data prepared/bundled  # = the default run
//! ```
//!
//! Input: a file or a folder read recursively; `.txt` files (one document per file, or per
//! blank-line-separated block with `--boundary blank-line`), JSON lines with a `text` field
//! (`.jsonl`, `.json`), any of them gzipped (`.gz`). Run again after an interruption and it
//! resumes; run again after it finished and it says so and stops.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use pretext::Tokenizer;
use pretext::corpus::DocumentBoundary;
use pretext::dataset::prepare::{PrepareOptions, prepare, prepare_corpus};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Tokenize a corpus once into a prepared dataset.
#[derive(Parser, Debug)]
struct Args {
    /// A text file or a folder of them; without one, the bundled pretraining corpus (the one
    /// `pretrain` reads by default).
    input: Option<PathBuf>,
    /// Where the prepared dataset goes.
    #[arg(long)]
    out: PathBuf,
    /// A `tokenizer.json` (default: the bundled one). Runs must use the same tokenizer.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// How text files are cut into documents.
    #[arg(long, value_enum, default_value = "file")]
    boundary: Boundary,
    /// Share of documents the manifest's split holds out for validation.
    #[arg(long, default_value_t = 0.05)]
    valid_fraction: f64,
    /// Megabytes of text per tokenization batch (and per resumable step).
    #[arg(long, default_value_t = 4)]
    batch_mb: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Boundary {
    /// One document per file.
    File,
    /// One document per blank-line-separated block.
    BlankLine,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tokenizer = match &args.tokenizer {
        Some(file) => Tokenizer::from_file(file)?,
        None => Tokenizer::bundled()?,
    };
    let options = PrepareOptions {
        boundary: match args.boundary {
            Boundary::File => DocumentBoundary::File,
            Boundary::BlankLine => DocumentBoundary::BlankLine,
        },
        valid_fraction: args.valid_fraction,
        batch_bytes: args.batch_mb << 20,
        progress: true,
    };
    let manifest = match &args.input {
        Some(input) => prepare(input, &args.out, &tokenizer, &options)?,
        None => {
            let corpus = pretext::dataset::bundled::pretraining_corpus()?;
            prepare_corpus(
                &corpus,
                "the bundled pretraining corpus",
                &args.out,
                &tokenizer,
                &options,
            )?
        }
    };
    let on_disk: u64 = std::fs::read_dir(&args.out)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    println!(
        "{}: {} documents, {} sentences, {} tokens from {:.1} MB of text; {:.2} bytes on disk \
         per token ({:.1} MB)",
        args.out.display(),
        manifest.documents,
        manifest.sentences,
        manifest.tokens,
        manifest.text_bytes as f64 / 1e6,
        on_disk as f64 / manifest.tokens.max(1) as f64,
        on_disk as f64 / 1e6,
    );
    if let Some(split) = &manifest.split {
        println!(
            "split: {} documents held out for validation ({:.0}% by name hash)",
            split.valid_documents,
            100.0 * split.valid_fraction
        );
    }
    // The dataset keeps its tokenizer, which a run on it uses unless told otherwise.
    println!(
        "train on it: cargo run --release --example pretrain -- --data {}",
        args.out.display()
    );
    Ok(())
}
