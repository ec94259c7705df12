//! Trains the bundled WordPiece vocabulary from the bundled corpus and writes
//! `data/tokenizer.json` (or `--out`).
//!
//! ```text
//! cargo run --release --example train_tokenizer -- --vocab-size 8192
//! ```

use std::path::PathBuf;

use clap::Parser;
use pretext::Tokenizer;
use pretext::corpus::bundled_data_dir;

/// Train a WordPiece tokenizer on text files.
#[derive(Parser, Debug)]
struct Args {
    /// Folders or files of `.txt` text (default: the bundled corpus).
    inputs: Vec<PathBuf>,
    /// Vocabulary size, special tokens included.
    #[arg(long, default_value_t = 8192)]
    vocab_size: usize,
    /// Where to write `tokenizer.json`.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn txt_files(path: &PathBuf, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            txt_files(&entry, out)?;
        }
    } else if path.extension().is_some_and(|e| e == "txt") {
        out.push(path.clone());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let data = bundled_data_dir();
    let inputs = if args.inputs.is_empty() {
        vec![data.join("brown"), data.join("shakespeare")]
    } else {
        args.inputs
    };
    let mut files = Vec::new();
    for input in &inputs {
        txt_files(input, &mut files)?;
    }
    eprintln!(
        "training a {}-token WordPiece vocabulary on {} files",
        args.vocab_size,
        files.len()
    );
    let tokenizer = Tokenizer::train_wordpiece(&files, args.vocab_size)?;
    let out = args.out.unwrap_or_else(|| data.join("tokenizer.json"));
    tokenizer.save(&out)?;
    eprintln!(
        "wrote {} ({} tokens)",
        out.display(),
        tokenizer.vocab_size()
    );
    Ok(())
}
