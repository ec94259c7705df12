//! Fills the masks of a text with a masked language model's most likely tokens, like
//! `transformers`' fill-mask pipeline.
//!
//! ```text
//! cargo run --release --example pretrain                   # a pretext run: runs/modernbert-mini
//! cargo run --release --example fill_mask -- --model runs/modernbert-mini "The [MASK] sat on the mat."
//! cargo run --release --example fill_mask -- --model models/bert-dir --top-k 10 "Paris is the [MASK] of France."
//! cargo run --release --example fill_mask -- --model runs/modernbert-mini --json "A [MASK] and a [MASK]."
//! cargo run --release --example fill_mask -- --model runs/modernbert-mini --int8 "The [MASK] sat on the mat."
//! ```
//!
//! `--model` is a pretext run whose objective has an MLM head (`modernbert`, `crammed`, `mlm`,
//! `bert`, `albert`) or a Hugging Face BERT, RoBERTa, ALBERT, ModernBERT or ELECTRA generator
//! directory. `--json` prints, for each text, one line: a list with one entry per mask, in
//! order, each a list of `{"token", "id", "score"}`.

use std::path::PathBuf;

use burn::prelude::*;
use clap::Parser;
use pretext::fill_mask::MaskedLm;

/// Fill the masks of texts with a masked LM's most likely tokens.
#[derive(Parser, Debug)]
struct Args {
    /// A pretext run directory or a Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
    /// Candidates per mask.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Print JSON, one line per text.
    #[arg(long)]
    json: bool,
    /// Quantize the model's weights to int8 first.
    #[arg(long)]
    int8: bool,
    /// Texts holding the tokenizer's mask token ([MASK], or <mask> for RoBERTa).
    #[arg(required = true)]
    texts: Vec<String>,
}

fn main() -> std::process::ExitCode {
    pretext::exit_with(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut model = MaskedLm::load(&args.model, &Device::flex())?;
    if args.int8 {
        model = model.int8();
    }
    for text in &args.texts {
        let masks = model.fill(text, args.top_k)?;
        if args.json {
            println!("{}", serde_json::to_string(&masks)?);
            continue;
        }
        println!("{text}");
        for (k, predictions) in masks.iter().enumerate() {
            println!("  mask {}:", k + 1);
            for p in predictions {
                println!("    {:<16} {:>6}  {:.4}", p.token, p.id, p.score);
            }
        }
    }
    Ok(())
}
