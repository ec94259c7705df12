//! Continues prompts with a causal language model: greedy or sampled, many prompts batched.
//!
//! ```text
//! cargo run --release --example pretrain -- --objective clm --out runs/clm-mini   # a pretext run
//! cargo run --release --example generate -- --model runs/clm-mini --prompt "the jury said"
//! cargo run --release --example generate -- --model runs/clm-mini --prompts prompts.txt \
//!     --max-new-tokens 32 --temperature 0.8 --top-p 0.9 --seed 3 --json
//! cargo run --release --example generate -- --model models/gpt2-dir --greedy --prompt "Hello"
//! cargo run --release --example generate -- --model runs/clm-mini --int8 --prompt "the jury said"
//! ```
//!
//! `--model` is a pretext `clm`, `sft`, `dpo` or PPO run, or a Hugging Face GPT-2 directory. `--prompts FILE` reads
//! one prompt per line (blank lines skipped). Sampling draws from the whole softmax unless
//! `--top-k` or `--top-p` narrow it; each prompt has its own seeded stream, so a prompt's
//! completion does not depend on the others or on `--batch-size`. `--json` prints one object
//! per prompt: `{"prompt", "text", "ids", "logprobs", "finished"}`, where `ids` are the new
//! tokens (the end-of-text token included when the row stopped on it). The speed goes to
//! standard error.
//!
//! `--eval FILE` scores the model instead: it answers every prompt of a split (`--split`,
//! default test) of an instruction file, greedy with `--greedy`, and prints each task's
//! exact-match accuracy:
//!
//! ```text
//! cargo run --release --example generate -- --model runs/sft-mini --eval data/instructions.jsonl --greedy --max-new-tokens 40
//! ```

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
    /// Quantize the model's weights to int8 first.
    #[arg(long)]
    int8: bool,
    /// Score the model instead: answer the prompts of this instruction file (JSON lines, as
    /// SFT reads them) and print each task's exact-match accuracy.
    #[arg(long, conflicts_with_all = ["prompt", "prompts"])]
    eval: Option<PathBuf>,
    /// The split of `--eval` to score: train, valid or test.
    #[arg(long, default_value = "test")]
    split: String,
    /// With `--eval`: this many answers of each task printed beside the wanted ones.
    #[arg(long, default_value_t = 0)]
    show: usize,
}

fn main() -> std::process::ExitCode {
    pretext::exit_with(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(file) = &args.eval {
        return eval(&args, file);
    }
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
    let sampling = sampling(&args)?;
    let model = policy(&args)?;
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

/// The sampling the flags ask for.
fn sampling(args: &Args) -> Result<SamplingConfig, Box<dyn std::error::Error>> {
    let sampling = SamplingConfig::new()
        .with_max_new_tokens(args.max_new_tokens)
        .with_greedy(args.greedy)
        .with_temperature(args.temperature)
        .with_top_k(args.top_k)
        .with_top_p(args.top_p)
        .with_seed(args.seed);
    sampling.validate()?;
    Ok(sampling)
}

/// `--eval`: each task's exact-match accuracy on a split of an instruction file.
fn eval(args: &Args, file: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let data = pretext::dataset::instructions::load_from(file)?;
    let pairs = match args.split.as_str() {
        "train" => &data.train,
        "valid" => &data.valid,
        "test" => &data.test,
        other => return Err(format!("--split: {other:?} is not train, valid or test").into()),
    };
    if pairs.is_empty() {
        return Err(format!("{} has no {} pairs", file.display(), args.split).into());
    }
    let sampling = sampling(args)?;
    let model = policy(args)?;
    let started = Instant::now();
    let mut shown = std::collections::HashMap::<String, usize>::new();
    let scores = model.exact_match(pairs, &sampling, args.batch_size, |pair, answer, right| {
        let count = shown.entry(pair.task.clone()).or_default();
        if *count < args.show {
            *count += 1;
            eprintln!(
                "[{}] {}\n  answer: {answer}\n  wanted: {}  {}",
                pair.task,
                pair.prompt,
                pair.answer(),
                if right { "(right)" } else { "(wrong)" }
            );
        }
    })?;
    let (correct, total) = scores
        .iter()
        .fold((0, 0), |(c, t), s| (c + s.correct, t + s.total));
    for score in &scores {
        if args.json {
            println!("{}", serde_json::to_string(score)?);
        } else {
            println!(
                "{:<10} {:>6.1} %  ({} of {})",
                score.task,
                100.0 * score.accuracy(),
                score.correct,
                score.total
            );
        }
    }
    if !args.json {
        println!(
            "{:<10} {:>6.1} %  ({correct} of {total})",
            "all",
            100.0 * correct as f64 / total as f64
        );
    }
    eprintln!(
        "{total} {} prompts answered in {:.1} s",
        args.split,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The model `--model` names, in int8 with `--int8`.
fn policy(args: &Args) -> Result<CausalLm, Box<dyn std::error::Error>> {
    let model = pretext::align::load_policy(&args.model, &Device::flex())?;
    Ok(if args.int8 { model.int8() } else { model })
}
