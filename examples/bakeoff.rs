//! The objective bake-off: pretrains the same backbone with each objective for the same
//! budget, fine-tunes every result (and a model from scratch) on the same downstream task over
//! several seeds, and writes what it found.
//!
//! ```text
//! cargo run --release --example bakeoff                      # the default (mini) budget
//! cargo run --release --example bakeoff -- --budget tiny     # a smoke run of a few minutes
//! cargo run --release --example bakeoff -- --objectives mlm,spanbert,bart --seeds 5
//! cargo run --release --example bakeoff -- --init-from ~/.cache/pretext/models/all-MiniLM-L6-v2 --objectives mlm
//! cargo run --release --example bakeoff -- --modality image   # needs scripts/fetch_fashion_mnist.sh
//! ```
//!
//! With `--init-from DIR` (a Hugging Face checkpoint), every objective continues pretraining
//! that checkpoint instead of a fresh `mini` model, and the checkpoint as it is is fine-tuned
//! too: the table then compares it, its continued pretraining and a `mini` model from scratch.
//!
//! Equal compute means the same text: every objective runs the same number of updates over
//! batches of the same size and sequence length, so each sees the same number of corpus
//! tokens (what an update costs differs between objectives, and the table gives each one's
//! time). Fine-tuning is the same for every source: the same labelled examples, steps,
//! learning rate and seeds.
//!
//! It runs the `pretrain` and `finetune` examples (building them first when started through
//! `cargo run`) and writes into `OUT` (default `runs/bakeoff-BUDGET`):
//!
//! - `pretrain-OBJECTIVE/` and `finetune-TASK-SOURCE-sSEED/`: each run's own directory and log;
//! - `results.md`: the table;
//! - `pretraining.svg`: each objective's training and validation loss against the step;
//! - `downstream.svg`: each source's test accuracy, seed by seed, and their mean.
//!
//! With `--modality image` it compares the image objectives instead (`mae`, `simclr`, `beit`,
//! `rotation`) on Fashion-MNIST: it runs the `vision` example once per source, a ViT from
//! scratch among them, each with the same ViT, pretraining epochs, label shares and seeds, into
//! `OUT/vision-SOURCE/` (default `OUT` is `runs/bakeoff-image-BUDGET`), and writes `results.md`
//! (kNN, linear probe and fine-tuned accuracy per label share, mean ± sd), `pretraining.svg`
//! and one `downstream-Lpct.svg` per label share `L`. The `mini` budget is the vision
//! chapter's protocol at 1 % of the labels (hours on 2 cores); `tiny` runs a small ViT on the
//! bundled subset in a few minutes.
//!
//! Finished runs are kept: started again, the bake-off reuses them and runs only what is
//! missing (`--fresh` starts over).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use plotters::prelude::*;
use serde_json::Value;

#[path = "support/plot.rs"]
mod plot;
#[path = "support/runs.rs"]
mod runs;
use runs::{
    Progress, Result, colour, example, finetune_arguments, hardware, mean_sd, read_records,
    run_once, test_scores,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Budget {
    /// The tiny preset, 60 pretraining and 40 fine-tuning updates, 2 seeds: minutes, for CI.
    Tiny,
    /// The mini preset, 300 pretraining updates (the `pretrain` default) and 200 fine-tuning
    /// updates, 3 seeds.
    Mini,
}

/// What a budget runs.
struct Plan {
    preset: &'static str,
    pretrain_steps: usize,
    finetune_steps: usize,
    train_examples: usize,
    seeds: u64,
    objectives: &'static [&'static str],
}

impl Budget {
    fn plan(self) -> Plan {
        match self {
            Budget::Tiny => Plan {
                preset: "tiny",
                pretrain_steps: 60,
                finetune_steps: 40,
                train_examples: 200,
                seeds: 2,
                objectives: &["mlm", "electra", "clm"],
            },
            // One objective of each family: masked, replaced-token detection,
            // autoregressive and permuted.
            Budget::Mini => Plan {
                preset: "mini",
                pretrain_steps: 300,
                finetune_steps: 200,
                train_examples: 300,
                seeds: 3,
                objectives: &["mlm", "electra", "clm", "xlnet"],
            },
        }
    }
}

/// What the pretraining reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Modality {
    /// Text: the `pretrain` and `finetune` examples on the bundled corpus.
    Text,
    /// Images: the `vision` example on Fashion-MNIST.
    Image,
}

/// The image objectives, by their registry names (those the `vision` example runs).
const IMAGE_OBJECTIVES: [&str; 4] = ["mae", "simclr", "beit", "rotation"];

/// What an image budget runs: every source gets the same ViT, pretraining epochs, label
/// shares and seeds.
struct ImagePlan {
    /// The full set from the cache, or the bundled subset.
    full: bool,
    epochs: usize,
    /// The ViT's width, layers, heads and patch side.
    vit: [usize; 4],
    /// Shares of the labels to fine-tune with, in percent.
    labels: &'static [usize],
    seeds: u64,
    objectives: &'static [&'static str],
}

impl Budget {
    fn image_plan(self) -> ImagePlan {
        match self {
            Budget::Tiny => ImagePlan {
                full: false,
                epochs: 1,
                vit: [64, 2, 2, 7],
                labels: &[10],
                seeds: 2,
                objectives: &["mae", "simclr"],
            },
            // The vision chapter's low-label protocol with the `vision` example's ViT, on
            // patches of 7 pixels (16 a picture, not 49) so that every objective fits in
            // under an hour on 2 cores.
            Budget::Mini => ImagePlan {
                full: true,
                epochs: 10,
                vit: [128, 4, 4, 7],
                labels: &[1],
                seeds: 3,
                objectives: &IMAGE_OBJECTIVES,
            },
        }
    }
}

/// Compare pretraining objectives by how well their encoders fine-tune.
#[derive(Parser, Debug)]
struct Args {
    /// How much to run.
    #[arg(long, value_enum, default_value = "mini")]
    budget: Budget,
    /// Text objectives on the bundled corpus, or image objectives on Fashion-MNIST.
    #[arg(long, value_enum, default_value = "text")]
    modality: Modality,
    /// Images only: shares of the labels to fine-tune with, in percent, comma-separated
    /// (default: the budget's).
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<usize>>,
    /// Objectives to compare, comma-separated, by their registry names (`pretrain --list`;
    /// default: the budget's).
    #[arg(long, value_delimiter = ',')]
    objectives: Option<Vec<String>>,
    /// Fine-tuning seeds per source (default: the budget's).
    #[arg(long)]
    seeds: Option<u64>,
    /// The downstream task: genre, spam or pos.
    #[arg(long, default_value = "genre")]
    task: String,
    /// Labelled training examples (default: the budget's; the low-data regime).
    #[arg(long)]
    train_examples: Option<usize>,
    /// Output directory (default: runs/bakeoff-BUDGET).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run everything again instead of reusing finished runs.
    #[arg(long)]
    fresh: bool,
    /// Continue every pretraining from this Hugging Face checkpoint, and fine-tune the
    /// checkpoint as it is as well.
    #[arg(long)]
    init_from: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    pretext::exit_with(match args.modality {
        Modality::Text => run(args),
        Modality::Image => run_images(args),
    })
}

/// One pretraining run's outcome.
struct Pretrained {
    objective: String,
    dir: PathBuf,
    /// `(step, loss)` of the train and validation records.
    train: Vec<(f64, f64)>,
    valid: Vec<(f64, f64)>,
    seconds: f64,
}

impl Pretrained {
    /// The run of `objective` in `dir`, its losses read from `metrics` (a run directory).
    fn read(objective: &str, dir: &Path, metrics: &Path, seconds: f64) -> Result<Self> {
        let records = read_records(&metrics.join("metrics.jsonl"))?;
        let curve = |split: &str| -> Vec<(f64, f64)> {
            records
                .iter()
                .filter(|r| r["split"] == split)
                .filter_map(|r| Some((r["step"].as_f64()?, r["loss"].as_f64()?)))
                .collect()
        };
        Ok(Self {
            objective: objective.into(),
            dir: dir.into(),
            train: curve("train"),
            valid: curve("valid"),
            seconds,
        })
    }
}

/// Where a fine-tuning run starts.
enum Source<'a> {
    /// A fresh model of the budget's preset.
    Scratch,
    /// A Hugging Face checkpoint as it is.
    Checkpoint(&'a Path),
    /// A pretraining run of the bake-off.
    Pretrained(&'a Pretrained),
}

impl Source<'_> {
    /// Its name in run directories and the table.
    fn name(&self) -> String {
        match self {
            Source::Scratch => "scratch".into(),
            Source::Checkpoint(dir) => checkpoint_name(dir),
            Source::Pretrained(p) => p.objective.clone(),
        }
    }
}

/// A checkpoint directory's name.
fn checkpoint_name(dir: &Path) -> String {
    dir.file_name()
        .map_or("checkpoint".into(), |n| n.to_string_lossy().into_owned())
}

/// One source's fine-tuning outcomes, one per seed.
struct Downstream {
    source: String,
    accuracy: Vec<f64>,
    macro_f1: Vec<f64>,
}

fn run(args: Args) -> Result<()> {
    if args.labels.is_some() {
        return Err("--labels is for --modality image (text uses --train-examples)".into());
    }
    let plan = args.budget.plan();
    let objectives: Vec<String> = args
        .objectives
        .clone()
        .unwrap_or_else(|| plan.objectives.iter().map(|s| s.to_string()).collect());
    // Every named objective saves the encoder a classifier fine-tunes.
    for objective in &objectives {
        pretext::recipe::registry::find(objective).map_err(|e| format!("--objectives: {e}"))?;
    }
    if !["genre", "spam", "pos"].contains(&args.task.as_str()) {
        return Err(format!("--task: {} is not genre, spam or pos", args.task).into());
    }
    let seeds = args.seeds.unwrap_or(plan.seeds);
    if seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    let train_examples = args.train_examples.unwrap_or(plan.train_examples);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/bakeoff-{:?}", args.budget).to_lowercase()));
    if args.fresh && out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    let (pretrain, finetune) = (example("pretrain")?, example("finetune")?);
    let checkpoints = usize::from(args.init_from.is_some());
    let total = objectives.len() + (objectives.len() + 1 + checkpoints) * seeds as usize;
    let mut progress = Progress::new(total);

    let mut pretrained = Vec::new();
    for objective in &objectives {
        let dir = out.join(format!("pretrain-{objective}"));
        let steps = plan.pretrain_steps.to_string();
        let every = (plan.pretrain_steps / 6).max(1).to_string();
        let init: Vec<String> = match &args.init_from {
            Some(checkpoint) => vec!["--init-from".into(), checkpoint.display().to_string()],
            None => Vec::new(),
        };
        let arguments = init
            .into_iter()
            .chain([
                "--objective".into(),
                objective.clone(),
                "--preset".into(),
                plan.preset.into(),
                "--steps".into(),
                steps.clone(),
                "--valid-every".into(),
                every,
                "--checkpoint-every".into(),
                steps,
                "--out".into(),
                dir.display().to_string(),
            ])
            .collect();
        let seconds = run_once(&pretrain, &dir, "encoder.bpk", arguments, false)?;
        let run = Pretrained::read(objective, &dir, &dir, seconds)?;
        let last = run.valid.last().map_or(f64::NAN, |v| v.1);
        progress.report(
            &format!("pretrain {objective}"),
            &format!("validation loss {last:.3}"),
        );
        pretrained.push(run);
    }

    let mut downstream = Vec::new();
    let sources: Vec<Source> = std::iter::once(Source::Scratch)
        .chain(args.init_from.as_deref().map(Source::Checkpoint))
        .chain(pretrained.iter().map(Source::Pretrained))
        .collect();
    for source in sources {
        let name = source.name();
        let mut scores = Downstream {
            source: name.clone(),
            accuracy: Vec::new(),
            macro_f1: Vec::new(),
        };
        for seed in 1..=seeds {
            let dir = out.join(format!("finetune-{}-{name}-s{seed}", args.task));
            let mut arguments: Vec<String> = match &source {
                Source::Pretrained(p) => vec!["--checkpoint".into(), p.dir.display().to_string()],
                Source::Checkpoint(checkpoint) => {
                    vec!["--checkpoint".into(), checkpoint.display().to_string()]
                }
                Source::Scratch => {
                    vec![
                        "--from-scratch".into(),
                        "--preset".into(),
                        plan.preset.into(),
                    ]
                }
            };
            arguments.extend(finetune_arguments(
                &args.task,
                train_examples,
                plan.finetune_steps,
                seed,
                &dir,
            ));
            run_once(&finetune, &dir, "metrics.jsonl", arguments, false)?;
            let (acc, f1) = test_scores(&dir)?;
            scores.accuracy.push(acc);
            scores.macro_f1.push(f1);
            progress.report(
                &format!("fine-tune {name}, seed {seed}"),
                &format!("test accuracy {:.2} %, macro-F1 {f1:.3}", 100.0 * acc),
            );
        }
        downstream.push(scores);
    }

    let table = results(
        &args,
        &plan,
        seeds,
        train_examples,
        &pretrained,
        &downstream,
    );
    std::fs::write(out.join("results.md"), &table)?;
    plot_pretraining(&out.join("pretraining.svg"), &pretrained)?;
    let caption = format!("{}: test accuracy after fine-tuning", args.task);
    plot_downstream(&out.join("downstream.svg"), &caption, &downstream)?;
    println!("{table}");
    eprintln!(
        "done in {:.0} s; results.md, pretraining.svg and downstream.svg in {}",
        progress.seconds(),
        out.display()
    );
    Ok(())
}

/// The image bake-off: the `vision` example once per source, a ViT from scratch first, each
/// with the budget's ViT, data, epochs, label shares and seeds.
fn run_images(args: Args) -> Result<()> {
    let plan = args.budget.image_plan();
    let objectives: Vec<String> = args
        .objectives
        .clone()
        .unwrap_or_else(|| plan.objectives.iter().map(|s| s.to_string()).collect());
    if let Some(o) = objectives
        .iter()
        .find(|o| !IMAGE_OBJECTIVES.contains(&o.as_str()))
    {
        return Err(format!(
            "--objectives: {o} is not an image objective ({})",
            IMAGE_OBJECTIVES.join(", ")
        )
        .into());
    }
    if args.init_from.is_some() || args.train_examples.is_some() {
        return Err("--init-from and --train-examples are for --modality text".into());
    }
    let labels = args.labels.clone().unwrap_or_else(|| plan.labels.to_vec());
    if labels.is_empty() || labels.iter().any(|&l| l == 0 || l > 100) {
        return Err(format!("--labels: {labels:?} must be percentages from 1 to 100").into());
    }
    let seeds = args.seeds.unwrap_or(plan.seeds);
    if seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    let data = match plan.full {
        true => {
            let cache = pretext::dataset::images::fashion_mnist_cache();
            if !cache.join("train-images-idx3-ubyte").is_file() {
                return Err(format!(
                    "Fashion-MNIST is not in {}: run scripts/fetch_fashion_mnist.sh first",
                    cache.display()
                )
                .into());
            }
            cache
        }
        false => Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist"),
    };
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("runs/bakeoff-image-{:?}", args.budget).to_lowercase())
    });
    if args.fresh && out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    let vision = example("vision")?;
    let mut progress = Progress::new(objectives.len() + 1);
    let list = |values: &mut dyn Iterator<Item = String>| values.collect::<Vec<_>>().join(",");
    let [width, layers, heads, patch] = plan.vit.map(|v| v.to_string());
    let mut sources = Vec::new();
    for source in std::iter::once("scratch").chain(objectives.iter().map(String::as_str)) {
        let dir = out.join(format!("vision-{source}"));
        let arguments = [
            "--objective",
            source,
            "--epochs",
            &plan.epochs.to_string(),
            "--width",
            &width,
            "--layers",
            &layers,
            "--heads",
            &heads,
            "--patch",
            &patch,
            "--labels",
            &list(&mut labels.iter().map(usize::to_string)),
            "--seeds",
            &list(&mut (1..=seeds).map(|s| s.to_string())),
            "--data",
            &data.display().to_string(),
            "--out",
            &dir.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        let results = run_vision(&vision, &dir, arguments, &labels, seeds)?;
        let seconds = results["pretrain"]["seconds"].as_f64().unwrap_or(0.0);
        let pretrained = match source {
            "scratch" => None,
            _ => Some(Pretrained::read(
                source,
                &dir,
                &dir.join("pretrain"),
                seconds,
            )?),
        };
        let first = labels[0].to_string();
        let (mean, _) = mean_sd(&finetuned(&results, &first));
        progress.report(
            &format!("vision {source}"),
            &format!(
                "fine-tuned with {first} % of the labels: {:.2} %",
                100.0 * mean
            ),
        );
        sources.push((source.to_string(), results, pretrained));
    }

    let table = image_results(&args, &plan, &labels, seeds, &sources);
    std::fs::write(out.join("results.md"), &table)?;
    for percent in &labels {
        let downstream: Vec<Downstream> = sources
            .iter()
            .map(|(source, results, _)| Downstream {
                source: source.clone(),
                accuracy: finetuned(results, &percent.to_string()),
                macro_f1: Vec::new(),
            })
            .collect();
        let caption = format!("Fashion-MNIST, {percent} % of the labels: test accuracy");
        let path = out.join(format!("downstream-{percent}pct.svg"));
        plot_downstream(&path, &caption, &downstream)?;
    }
    let pretrained: Vec<Pretrained> = sources.into_iter().filter_map(|s| s.2).collect();
    plot_pretraining(&out.join("pretraining.svg"), &pretrained)?;
    println!("{table}");
    eprintln!(
        "done in {:.0} s; results.md, pretraining.svg and the downstream plots in {}",
        progress.seconds(),
        out.display()
    );
    Ok(())
}

/// Runs the `vision` example into `dir` with `arguments` unless its `results.json` already
/// holds a fine-tuned score for every label share and seed asked for; its results. A run that
/// got as far as its pretrained ViT (`vit.bpk`) goes on in place, the example computing only
/// the scores it lacks; any other starts over. Output goes to `dir/log.txt`.
fn run_vision(
    vision: &Path,
    dir: &Path,
    arguments: Vec<String>,
    labels: &[usize],
    seeds: u64,
) -> Result<Value> {
    let path = dir.join("results.json");
    let read =
        || -> Option<Value> { serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok() };
    let complete = |results: &Value| {
        labels.iter().all(|l| {
            (1..=seeds).all(|s| results["finetune"][l.to_string()][s.to_string()].is_number())
        })
    };
    if let Some(results) = read().filter(complete) {
        return Ok(results);
    }
    if dir.exists() && !dir.join("vit.bpk").is_file() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log.txt"))?;
    let status = std::process::Command::new(vision)
        .args(arguments)
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()?;
    let log = dir.join("log.txt");
    match read().filter(complete) {
        Some(results) if status.success() => Ok(results),
        _ => Err(format!(
            "the vision run in {} failed ({status}); see {}",
            dir.display(),
            log.display()
        )
        .into()),
    }
}

/// A vision run's fine-tuned test accuracies with `percent` % of the labels, by seed.
fn finetuned(results: &Value, percent: &str) -> Vec<f64> {
    let mut seeds: Vec<(u64, f64)> = results["finetune"][percent]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(seed, a)| Some((seed.parse().ok()?, a.as_f64()?)))
        .collect();
    seeds.sort_by_key(|s| s.0);
    seeds.into_iter().map(|s| s.1).collect()
}

/// A source's row label: the objective, continued from the checkpoint if there is one.
fn source_label(args: &Args, d: &Downstream, p: Option<&Pretrained>) -> String {
    let checkpoint = args.init_from.as_deref().map(checkpoint_name);
    match (p, checkpoint) {
        (Some(p), Some(c)) => format!("{c} + {}", p.objective),
        (Some(p), None) => p.objective.clone(),
        (None, Some(c)) if d.source == c => format!("{c} (as published)"),
        (None, _) => format!("none (`{}` from scratch)", args.budget.plan().preset),
    }
}

/// `results.md`.
fn results(
    args: &Args,
    plan: &Plan,
    seeds: u64,
    train_examples: usize,
    pretrained: &[Pretrained],
    downstream: &[Downstream],
) -> String {
    let mut s = String::new();
    let config = pretrained
        .first()
        .and_then(|p| std::fs::read_to_string(p.dir.join("config.json")).ok())
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let (batch, seq_len) = config.as_ref().map_or((0, 0), |c| {
        (
            c["train"]["batch_size"].as_u64().unwrap_or(0),
            c["seq_len"].as_u64().unwrap_or(0),
        )
    });
    let budget = format!("{:?}", args.budget).to_lowercase();
    let _ = writeln!(s, "# Objective bake-off (`{budget}` budget)\n");
    let _ = writeln!(
        s,
        "- Pretraining: {}, {} updates of {batch} sequences of {seq_len} tokens \
         for every objective ({} tokens of text each), on the bundled corpus without the \
         genre task's held-out documents.",
        match &args.init_from {
            Some(dir) => format!("continuing `{}`", checkpoint_name(dir)),
            None => format!("the `{}` preset", plan.preset),
        },
        plan.pretrain_steps,
        plan.pretrain_steps as u64 * batch * seq_len
    );
    let _ = writeln!(
        s,
        "- Fine-tuning: task `{}`, {train_examples} labelled training examples, {} updates, \
         learning rate 1e-4, {seeds} seeds (1..={seeds}); scored on the whole test split.",
        args.task, plan.finetune_steps
    );
    let _ = writeln!(s, "- Hardware: {}.", hardware());
    let _ = writeln!(
        s,
        "- Pretraining losses are each objective's own (validation, last evaluation) and do \
         not compare across objectives; ELECTRA's is generator + 50 x discriminator.\n"
    );
    let _ = writeln!(
        s,
        "| Pretraining | Pretraining loss | Pretraining time | Test accuracy (mean ± sd) | \
         Test macro-F1 (mean ± sd) | Accuracy per seed |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---|");
    for d in downstream {
        let p = pretrained.iter().find(|p| p.objective == d.source);
        let (acc, acc_sd) = mean_sd(&d.accuracy);
        let (f1, f1_sd) = mean_sd(&d.macro_f1);
        let per_seed: Vec<String> = d
            .accuracy
            .iter()
            .map(|a| format!("{:.1}", 100.0 * a))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} ± {:.1} % | {:.3} ± {:.3} | {} |",
            source_label(args, d, p),
            p.and_then(|p| p.valid.last())
                .map_or("–".into(), |v| format!("{:.3}", v.1)),
            p.map_or("–".into(), |p| format!("{:.0} s", p.seconds)),
            100.0 * acc,
            100.0 * acc_sd,
            f1,
            f1_sd,
            per_seed.join(", ")
        );
    }
    let given: Vec<String> = std::env::args().skip(1).collect();
    let _ = writeln!(
        s,
        "\nReproduce: `cargo run --release --example bakeoff -- {}`.",
        given.join(" ")
    );
    s
}

/// `results.md` of the image bake-off: one row per source, its frozen scores and its
/// fine-tuned accuracy at each share of the labels.
fn image_results(
    args: &Args,
    plan: &ImagePlan,
    labels: &[usize],
    seeds: u64,
    sources: &[(String, Value, Option<Pretrained>)],
) -> String {
    let mut s = String::new();
    let results = sources.first().map(|s| &s.1).unwrap_or(&Value::Null);
    let (vit, data) = (&results["vit"], results["data"].as_str().unwrap_or("?"));
    let budget = format!("{:?}", args.budget).to_lowercase();
    let _ = writeln!(s, "# Image objective bake-off (`{budget}` budget)\n");
    let _ = writeln!(
        s,
        "- Data: {data}; pretraining and fine-tuning on the training images less the last \
         5,000 (at most a tenth; held out for validation), every score on the test images."
    );
    let _ = writeln!(
        s,
        "- ViT: width {}, {} layers of {} heads, patches of {} pixels. Pretraining: {} passes \
         over the images for every objective (rotation's steps hold a quarter as many images, each in its \
         four turns).",
        vit["width"], vit["layers"], vit["heads"], vit["patch"], plan.epochs
    );
    let _ = writeln!(
        s,
        "- Frozen vectors, of the `[CLS]` state and of the mean of the patch states: kNN \
         (k = 20, cosine, temperature 0.07) and a linear probe (standardised features, \
         logistic regression), both fitted on every pretraining image and its label."
    );
    let _ = writeln!(
        s,
        "- Fine-tuning: a linear head on the mean of the patch states and the whole ViT, with \
         a class-balanced share of the labels drawn by each seed (1..={seeds})."
    );
    let _ = writeln!(s, "- Hardware: {}.", hardware());
    let _ = writeln!(
        s,
        "- Pretraining losses are each objective's own (validation, last evaluation) and do \
         not compare across objectives.\n"
    );
    let shares: Vec<String> = labels
        .iter()
        .map(|l| format!("Fine-tuned, {l} % labels (mean ± sd; per seed)"))
        .collect();
    let _ = writeln!(
        s,
        "| Pretraining | Pretraining loss | Pretraining time | kNN [CLS] / mean | \
         Linear probe [CLS] / mean | {} |",
        shares.join(" | ")
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|{}",
        "---|".repeat(labels.len())
    );
    let percent = |v: &Value| {
        v.as_f64()
            .map_or("–".into(), |a| format!("{:.1}", 100.0 * a))
    };
    for (source, results, pretrained) in sources {
        let label = match pretrained {
            Some(_) => source.clone(),
            None => "none (the ViT from scratch)".into(),
        };
        let scores: Vec<String> = labels
            .iter()
            .map(|l| {
                let accuracy = finetuned(results, &l.to_string());
                let (mean, sd) = mean_sd(&accuracy);
                let each: Vec<String> = accuracy
                    .iter()
                    .map(|a| format!("{:.1}", 100.0 * a))
                    .collect();
                format!(
                    "{:.1} ± {:.1} %; {}",
                    100.0 * mean,
                    100.0 * sd,
                    each.join(", ")
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {} / {} % | {} / {} % | {} |",
            pretrained
                .as_ref()
                .and_then(|p| p.valid.last())
                .map_or("–".into(), |v| format!("{:.3}", v.1)),
            pretrained
                .as_ref()
                .map_or("–".into(), |p| format!("{:.0} s", p.seconds)),
            percent(&results["knn"]["cls"]),
            percent(&results["knn"]["mean"]),
            percent(&results["probe"]["cls"]),
            percent(&results["probe"]["mean"]),
            scores.join(" | ")
        );
    }
    let given: Vec<String> = std::env::args().skip(1).collect();
    let _ = writeln!(
        s,
        "\nReproduce: `cargo run --release --example bakeoff -- {}`.",
        given.join(" ")
    );
    s
}

/// `pretraining.svg`: one panel per objective (their losses have different scales), train
/// loss as a line and validation loss as points.
fn plot_pretraining(path: &Path, runs: &[Pretrained]) -> Result<()> {
    let columns = runs.len().clamp(1, 3);
    let rows = runs.len().div_ceil(columns).max(1);
    let root = SVGBackend::new(path, (360 * columns as u32, 280 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    for (i, (run, area)) in runs
        .iter()
        .zip(root.split_evenly((rows, columns)))
        .enumerate()
    {
        let points = run.train.iter().chain(&run.valid);
        let (lo, hi) = points.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
        let last = run.train.iter().map(|p| p.0).fold(1.0, f64::max);
        let margin = ((hi - lo) * 0.05).max(1e-3);
        let mut chart = ChartBuilder::on(&area)
            .caption(&run.objective, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..last, (lo - margin)..(hi + margin))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc("loss")
            .light_line_style(WHITE)
            .draw()?;
        chart
            .draw_series(LineSeries::new(run.train.iter().copied(), colour(i)))?
            .label("train")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour(i)));
        chart
            .draw_series(run.valid.iter().map(|&p| Circle::new(p, 4, BLACK.filled())))?
            .label("validation")
            .legend(|(x, y)| Circle::new((x + 8, y), 4, BLACK.filled()));
        plot::legend(&mut chart)?;
    }
    root.present()?;
    Ok(())
}

/// `downstream.svg`: each source's test accuracy per seed (points) and their mean (a bar),
/// under `caption`.
fn plot_downstream(path: &Path, caption: &str, sources: &[Downstream]) -> Result<()> {
    let root = SVGBackend::new(path, (120 * sources.len() as u32 + 160, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = sources
        .iter()
        .flat_map(|s| s.accuracy.iter().copied())
        .fold(0.0, f64::max);
    let names: Vec<String> = sources.iter().map(|s| s.source.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(
            -0.5..(sources.len() as f64 - 0.5),
            0.0..(top * 1.15).max(0.01),
        )?;
    chart
        .configure_mesh()
        .x_labels(sources.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{:.0} %", 100.0 * y))
        .y_desc("accuracy")
        .light_line_style(WHITE)
        .draw()?;
    for (i, source) in sources.iter().enumerate() {
        let x = i as f64;
        let (mean, _) = mean_sd(&source.accuracy);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x - 0.3, 0.0), (x + 0.3, mean)],
            colour(i).mix(0.35).filled(),
        )))?;
        let n = source.accuracy.len().max(1) as f64;
        chart.draw_series(source.accuracy.iter().enumerate().map(|(k, &a)| {
            // Seeds side by side, so that equal scores stay visible.
            let dx = (k as f64 - (n - 1.0) / 2.0) * 0.08;
            Circle::new((x + dx, a), 4, colour(i).filled())
        }))?;
    }
    root.present()?;
    Ok(())
}
