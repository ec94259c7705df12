//! Writes a finished run as a Hugging Face model directory, for `transformers`: a pretraining
//! run (the model of its last checkpoint, in the class its objective exports as) or a
//! fine-tuning run (its classifier, with the label names).
//!
//! ```text
//! cargo run --release --example export -- runs/modernbert-mini runs/modernbert-hf   # ModernBertForMaskedLM
//! cargo run --release --example export -- runs/mlm-mini runs/mlm-mini-hf   # pretrain --objective mlm
//! cargo run --release --example export -- runs/finetune-topics-mlm-mini runs/topics-hf
//! ```
//!
//! The same from code: [`pretext::recipe::Recipe::export_hf`] for a pretraining run,
//! [`pretext::finetune::FineTuned::export_hf`] for a fine-tuned one.

use std::path::PathBuf;

use burn::prelude::Device;
use clap::Parser;
use pretext::finetune::FineTuned;
use pretext::recipe::RunDir;

/// Export a finished pretext run as a Hugging Face model directory.
#[derive(Parser, Debug)]
struct Args {
    /// The run: a `pretrain` output directory or a `finetune` one.
    run: PathBuf,
    /// The Hugging Face directory to write; it must be absent or empty unless --force.
    out: PathBuf,
    /// Write into a non-empty directory, replacing the files the export writes.
    #[arg(long)]
    force: bool,
}

fn main() -> std::process::ExitCode {
    pretext::exit_with(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let class = if FineTuned::is_saved(&args.run) {
        FineTuned::load(&args.run, &Device::flex())?.export_hf(&args.out, args.force)?
    } else if RunDir::is_run(&args.run) {
        let run = RunDir::open(&args.run)?;
        run.recipe.export_hf(&args.run, &args.out, args.force)?
    } else {
        return Err(pretext::Error::InvalidConfig(format!(
            "{} is neither a pretraining run (config.json) nor a fine-tuning run \
             (classifier.json)",
            args.run.display()
        ))
        .into());
    };
    eprintln!("exported to {} (transformers: {class})", args.out.display());
    Ok(())
}
