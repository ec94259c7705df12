//! Continues prompts with a causal language model: greedy or sampled, many prompts batched.
//!
//! ```text
//! cargo run --release --example pretrain -- --objective clm --out runs/clm-mini   # a pretext run
//! cargo run --release --example generate -- --model runs/clm-mini --prompt "the jury said"
//! cargo run --release --example generate -- --model runs/clm-mini --prompts prompts.txt \
//!     --max-new-tokens 32 --temperature 0.8 --top-p 0.9 --seed 3 --json
//! cargo run --release --example generate -- --model models/gpt2-dir --greedy --prompt "Hello"
//! ```
//!
//! `--model` is a pretext `clm` run or a Hugging Face GPT-2 directory. `--prompts FILE` reads
//! one prompt per line (blank lines skipped). Sampling draws from the whole softmax unless
//! `--top-k` or `--top-p` narrow it; each prompt has its own seeded stream, so a prompt's
//! completion does not depend on the others or on `--batch-size`. `--json` prints one object
//! per prompt: `{"prompt", "text", "ids", "logprobs", "finished"}`, where `ids` are the new
//! tokens (the end-of-text token included when the row stopped on it). The speed goes to
//! standard error.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use clap::Parser;
use pretext::generate::{CausalLm, SamplingConfig};

/// Continue prompts with a causal LM.
#[derive(Parser, Debug)]
struct Args {
    /// A pretext `clm` run directory or a Hugging Face GPT-2 directory.
    #[arg(long)]
    model: PathBuf,
    /// A prompt (repeatable).
    #[arg(long)]
    prompt: Vec<String>,
    /// A file of prompts, one per line.
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Most new tokens per prompt.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Take the most likely token at every step.
    #[arg(long)]
    greedy: bool,
    /// Sampling temperature (> 0).
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Draw among the k most likely tokens only (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Draw among the most likely tokens whose probability reaches p (1: all).
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Prompts generated together.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Print JSON, one line per prompt.
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    pretext::exit_with(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut prompts = args.prompt.clone();
    if let Some(file) = &args.prompts {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        prompts.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from),
        );
    }
    if prompts.is_empty() {
        return Err("no prompt: give --prompt TEXT or --prompts FILE".into());
    }
    if args.batch_size == 0 {
        return Err("--batch-size must be at least 1".into());
    }
    let sampling = SamplingConfig::new()
        .with_max_new_tokens(args.max_new_tokens)
        .with_greedy(args.greedy)
        .with_temperature(args.temperature)
        .with_top_k(args.top_k)
        .with_top_p(args.top_p)
        .with_seed(args.seed);
    sampling.validate()?;
    let model = CausalLm::load(&args.model, &Device::flex())?;
    let started = Instant::now();
    let mut tokens = 0;
    for batch in prompts.chunks(args.batch_size) {
        let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
        for completion in model.complete(&texts, &sampling)? {
            tokens += completion.ids.len();
            if args.json {
                println!("{}", serde_json::to_string(&completion)?);
            } else {
                // Decoded with the prompt, so that a word the prompt left open is joined.
                let all = [model.prompt_ids(&completion.prompt)?, completion.ids].concat();
                println!("{}\n", model.tokenizer.decode(&all)?);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{tokens} new tokens for {} prompts in {seconds:.2} s: {:.0} tokens/s",
        prompts.len(),
        tokens as f64 / seconds
    );
    Ok(())
}
