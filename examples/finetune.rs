//! Fine-tunes a pretrained encoder (or a fresh one) on a bundled downstream task and scores it
//! on the task's test split.
//!
//! ```text
//! cargo run --release --example pretrain -- --out runs/mlm-mini              # pretrain first
//! cargo run --release --example finetune -- --checkpoint runs/mlm-mini --task genre
//! cargo run --release --example finetune -- --from-scratch --task genre    # the baseline
//! cargo run --release --example finetune -- --checkpoint runs/mlm-mini --train-examples 300
//! cargo run --release --example finetune -- --checkpoint runs/mlm-mini --task spam
//! cargo run --release --example finetune -- --checkpoint runs/mlm-mini --task pos  # tagging
//! cargo run --release --example finetune -- --checkpoint models/bert-dir   # a Hugging Face BERT
//! ```
//!
//! Writes `OUT/metrics.jsonl` like `pretrain` (train and validation records of the fine-tuning
//! run), then one last line with the test scores: `{"split":"test","accuracy":…,
//! "macro_f1":…,"examples":…}`.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use clap::{Parser, ValueEnum};
use pretext::blocks::TransformerEncoder;
use pretext::data::Task;
use pretext::data::{TokenBatch, TokenExample};
use pretext::finetune::{
    ClassificationTask, Classifier, LabelledData, LabelledText, Scores, TaggedSentence,
    TaggingTask, fine_tune, genre, pos, spam,
};
use pretext::objectives::{Objective, SequenceClassifierConfig, TokenClassifierConfig};
use pretext::pretrainer::check_compatible;
use pretext::recipe::RunDir;
use pretext::train::TrainConfig;
use pretext::train::checkpoint::load_weights;
use pretext::{Preset, Pretrainer, Tokenizer};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TaskName {
    /// Brown-corpus passages, 15 genres.
    Genre,
    /// SpamAssassin e-mail bodies, spam or ham.
    Spam,
    /// Brown sentences, a universal part of speech for every word (token classification).
    Pos,
}

/// Fine-tune an encoder on a downstream classification task.
#[derive(Parser, Debug)]
struct Args {
    /// A pretraining run's directory (its recipe, config.json, and encoder.bpk), or a Hugging
    /// Face BERT directory (config.json, model.safetensors, tokenizer.json).
    #[arg(
        long,
        conflicts_with = "from_scratch",
        required_unless_present = "from_scratch"
    )]
    checkpoint: Option<PathBuf>,
    /// Train the same model from random weights instead (the baseline); its shape is
    /// --preset's.
    #[arg(long)]
    from_scratch: bool,
    /// Model size with --from-scratch.
    #[arg(long, default_value = "mini")]
    preset: String,
    /// The downstream task.
    #[arg(long, value_enum, default_value = "genre")]
    task: TaskName,
    /// Use only this many training examples, spread evenly over the split (the low-data
    /// regime); default all.
    #[arg(long)]
    train_examples: Option<usize>,
    /// Optimizer updates.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Examples per batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate (warmup over 10 %, then linear decay).
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Tokens per example, [CLS] and [SEP] included.
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Words per passage of the genre task.
    #[arg(long, default_value_t = 100)]
    passage_words: usize,
    /// Dropout on the pooled vector.
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    /// Seed of the head's initialisation, the batches and dropout.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Validate every N steps.
    #[arg(long, default_value_t = 50)]
    valid_every: usize,
    /// Run directory (default: runs/finetune-TASK-SOURCE).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `n` items spread evenly over `items`.
fn spread<T: Clone>(items: &[T], n: Option<usize>) -> Vec<T> {
    match n {
        Some(n) if n < items.len() => {
            let step = items.len() as f64 / n as f64;
            (0..n)
                .map(|k| items[(k as f64 * step) as usize].clone())
                .collect()
        }
        _ => items.to_vec(),
    }
}

/// The train (`train_examples` of it, spread evenly), validation and test tasks `task` makes
/// of `data`'s subsets.
fn subsets<I: Clone, T>(
    data: &LabelledData<I>,
    train_examples: Option<usize>,
    task: impl Fn(&[I]) -> pretext::Result<T>,
) -> pretext::Result<[T; 3]> {
    Ok([
        task(&spread(&data.train, train_examples))?,
        task(&data.valid)?,
        task(&data.test)?,
    ])
}

/// The tokenizer and the encoder: a pretext run's (shaped as its recipe says, with its
/// tokenizer), a Hugging Face BERT directory's, or a fresh one of the preset's shape.
fn encoder(
    args: &Args,
    device: &Device,
) -> Result<(Tokenizer, TransformerEncoder), Box<dyn std::error::Error>> {
    let (tokenizer, backbone) = match &args.checkpoint {
        Some(dir) if pretext::hf::is_model_dir(dir) => {
            let tokenizer = Tokenizer::from_model_dir(dir)?;
            let (backbone, report) = pretext::hf::load_encoder_from(dir, device)?;
            eprintln!("{}: {report}", dir.display());
            (tokenizer, backbone)
        }
        Some(dir) => {
            let run = RunDir::open(dir)?;
            // The run's tokenizer (T5's has its sentinels, whose rows the encoder keeps).
            let tokenizer = run.tokenizer()?;
            let encoder = run.recipe.encoder.clone().with_dropout(0.1);
            let backbone = load_weights(&run.encoder_file(), encoder.init(device)?)?;
            (tokenizer, backbone)
        }
        None => {
            let tokenizer = Tokenizer::bundled()?;
            let preset: Preset = args.preset.parse()?;
            let backbone = preset.encoder(tokenizer.vocab_size()).init(device)?;
            (tokenizer, backbone)
        }
    };
    check_compatible(&tokenizer, &backbone, args.seq_len)?;
    Ok((tokenizer, backbone))
}

fn main() -> std::process::ExitCode {
    pretext::exit_with(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let source = match &args.checkpoint {
        Some(dir) => dir
            .file_name()
            .map_or("checkpoint".into(), |n| n.to_string_lossy().into_owned()),
        None => "scratch".into(),
    };
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("runs/finetune-{:?}-{source}", args.task).to_lowercase())
    });
    let device = Device::flex().autodiff();
    device.seed(args.seed);
    let (tokenizer, backbone) = encoder(&args, &device)?;
    let name = format!("{:?}", args.task).to_lowercase();
    std::fs::create_dir_all(&out)?;
    let (scores, train_examples) = match args.task {
        TaskName::Genre | TaskName::Spam => {
            let data = match args.task {
                TaskName::Genre => genre::load(args.passage_words)?,
                _ => spam::load()?,
            };
            let classes = data.labels.len();
            let tasks = subsets(&data, args.train_examples, |texts: &[LabelledText]| {
                ClassificationTask::new(texts, &tokenizer, classes, args.seq_len)
            })?;
            let head = SequenceClassifierConfig::new(classes, name)
                .with_dropout(args.dropout)
                .init(&backbone, &device)?;
            run_task(&args, &out, backbone, head, &tasks, classes, &device)?
        }
        TaskName::Pos => {
            let data = pos::load()?;
            let classes = data.labels.len();
            let tasks = subsets(
                &data,
                args.train_examples,
                |sentences: &[TaggedSentence]| {
                    TaggingTask::new(sentences, &tokenizer, classes, args.seq_len)
                },
            )?;
            let head = TokenClassifierConfig::new(classes, name)
                .with_dropout(args.dropout)
                .init(&backbone, &device)?;
            run_task(&args, &out, backbone, head, &tasks, classes, &device)?
        }
    };

    let line = serde_json::json!({
        "split": "test",
        "accuracy": scores.accuracy,
        "macro_f1": scores.macro_f1,
        "examples": scores.examples,
        "source": source,
        "train_examples": train_examples,
    });
    let metrics = out.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&metrics).unwrap_or_default();
    text.push_str(&format!("{line}\n"));
    std::fs::write(&metrics, text)?;
    eprintln!(
        "test: accuracy {:.4}, macro-F1 {:.4} over {} predictions; done in {:.1}s; metrics in {}",
        scores.accuracy,
        scores.macro_f1,
        scores.examples,
        started.elapsed().as_secs_f64(),
        metrics.display()
    );
    Ok(())
}

/// Trains `head` on `backbone` over `tasks` (train, validation, test) into `out` and scores it
/// on the test task; returns the scores and the number of training examples.
fn run_task<H, T>(
    args: &Args,
    out: &std::path::Path,
    backbone: TransformerEncoder,
    head: H,
    [train_task, valid_task, test_task]: &[T; 3],
    classes: usize,
    device: &Device,
) -> Result<(Scores, usize), Box<dyn std::error::Error>>
where
    H: Classifier + Objective<TransformerEncoder, Batch = TokenBatch>,
    Pretrainer<TransformerEncoder, H>: Module,
    T: Task<Example = TokenExample, Batch = TokenBatch>,
{
    eprintln!(
        "{:?}: {classes} classes; {} train / {} validation / {} test examples",
        args.task,
        train_task.num_examples(),
        valid_task.num_examples(),
        test_task.num_examples()
    );
    let config = TrainConfig::new(args.steps, args.batch_size)
        .with_learning_rate(args.lr)
        .with_seed(args.seed)
        .with_valid_every(args.valid_every)
        .with_valid_batches(valid_task.num_examples().div_ceil(args.batch_size))
        .with_checkpoint_every(0)
        .with_shards(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (_, scores) = fine_tune(
        backbone,
        head,
        [train_task, valid_task, test_task],
        &config,
        Some(out),
        device,
    )?;
    Ok((scores, train_task.num_examples()))
}
