//! The recipe ablation, Cramming-style: pretrains each recipe file of `examples/ablation/`
//! (one change at a time from `mlm`, then the named recipes) over several seeds at one budget,
//! fine-tunes every pretrained encoder on `genre` and `spam`, and writes a table and a plot of
//! validation loss against wall time.
//!
//! ```text
//! cargo run --release --example ablation                          # 300 updates, 3 seeds
//! cargo run --release --example ablation -- --steps 6000 --out runs/ablation-6000
//! cargo run --release --example ablation -- --recipes examples/ablation/00-mlm.json,examples/ablation/10-modernbert.json
//! cargo run --release --example ablation -- --tasks none          # pretraining only
//! ```
//!
//! Every row is a complete recipe (`pretrain --print` wrote each file), run as `pretrain
//! --config FILE --seed S` with seeds 1..=N; the table lists what each file changes from the
//! first one. Every recipe is validated at the same steps, on the same held-out text, and its
//! masked LM scored at BERT's 15 % masking whatever rate it trains at (`mlm_ppl@15`,
//! `mlm_acc@15`), so runs that mask at other rates, or mix MLM with next-token prediction
//! (`10-hybrid`), compare. Each pretrained encoder is fine-tuned once per task with its own
//! seed, the bake-off's budget: 300 labelled examples, 200 updates at 1e-4.
//!
//! It runs the `pretrain` and `finetune` examples and writes into `OUT` (default
//! `runs/ablation-STEPS`): `RECIPE-sSEED/` (pretraining) and `RECIPE-sSEED-TASK/` (fine-tuning)
//! with their logs, `results.md` and `wall-time.svg`: each recipe's validation loss at 15 %
//! against the wall time of its run (mean over seeds; a run's validations are placed by step
//! along its measured time, validation and all; the default budget's is committed as
//! `examples/ablation/wall-time-300.svg`). Finished runs are reused (`--fresh` starts over),
//! and a pretraining run stopped midway goes on from its last checkpoint (one at each
//! validation), so an interrupted ablation resumes, and rows, seeds or tasks can be added later.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Parser;
use plotters::prelude::*;
use pretext::recipe::Recipe;
use serde_json::Value;

#[path = "support/plot.rs"]
mod plot;
#[path = "support/runs.rs"]
mod runs;
use runs::{
    Progress, Result, colour, example, finetune_arguments, hardware, mean_sd, read_records,
    run_once, test_scores,
};

/// The training fields every run of the ablation sets alike, whatever its file says.
const SET_HERE: [&str; 5] = [
    "train.steps",
    "train.seed",
    "train.valid_every",
    "train.checkpoint_every",
    "train.shards",
];

/// Compare pretraining recipes by validation MLM loss, throughput and fine-tuning.
#[derive(Parser, Debug)]
struct Args {
    /// Recipe files, comma-separated, or folders of them (default: examples/ablation, in name
    /// order). The first is the baseline the table compares with.
    #[arg(long, value_delimiter = ',')]
    recipes: Vec<PathBuf>,
    /// Pretraining updates of every recipe (default: the recipes' own, 300).
    #[arg(long)]
    steps: Option<usize>,
    /// Pretraining seeds per recipe, 1..=N.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Downstream tasks, comma-separated (genre, spam, pos), or `none`.
    #[arg(long, value_delimiter = ',', default_value = "genre,spam")]
    tasks: Vec<String>,
    /// Labelled training examples per task (the low-data regime).
    #[arg(long, default_value_t = 300)]
    train_examples: usize,
    /// Fine-tuning updates per task.
    #[arg(long, default_value_t = 200)]
    finetune_steps: usize,
    /// Output directory (default: runs/ablation-STEPS).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run everything again instead of reusing finished runs.
    #[arg(long)]
    fresh: bool,
}

fn main() -> std::process::ExitCode {
    pretext::exit_with(run(Args::parse()))
}

/// One pretraining run's outcome.
struct Pretrained {
    /// Wall seconds of the whole run (validation included).
    seconds: f64,
    /// Median training throughput over its records.
    tokens_per_s: f64,
    /// `(step, MLM loss at 15 %, masked-token accuracy at 15 %)` of each validation.
    valid: Vec<(f64, f64, f64)>,
    steps: f64,
}

/// A recipe's runs, one per seed, and its fine-tuning accuracy per task, one per seed.
struct Row {
    name: String,
    recipe: Recipe,
    runs: Vec<Pretrained>,
    downstream: BTreeMap<String, Vec<f64>>,
}

fn run(args: Args) -> Result<()> {
    let files = recipe_files(&args.recipes)?;
    let tasks: Vec<String> = args
        .tasks
        .iter()
        .filter(|t| *t != "none")
        .cloned()
        .collect();
    if let Some(task) = tasks
        .iter()
        .find(|t| !["genre", "spam", "pos"].contains(&t.as_str()))
    {
        return Err(format!("--tasks: {task} is not genre, spam, pos or none").into());
    }
    if args.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    let mut rows = Vec::new();
    for file in &files {
        let recipe = Recipe::from_file(file)?;
        // Checked before hours of work start, not when its turn comes.
        recipe.check()?;
        let name = file
            .file_stem()
            .map_or("recipe".into(), |s| s.to_string_lossy().into_owned());
        rows.push(Row {
            name,
            recipe,
            runs: Vec::new(),
            downstream: BTreeMap::new(),
        });
    }
    let steps = args.steps.unwrap_or(rows[0].recipe.train.steps);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/ablation-{steps}")));
    if args.fresh && out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    let (pretrain, finetune) = (example("pretrain")?, example("finetune")?);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let total = files.len() * args.seeds as usize * (1 + tasks.len());
    let mut progress = Progress::new(total);
    // Seed by seed, every recipe in turn: a host whose speed drifts over the hours then moves
    // every recipe's runs of a seed alike, and throughput compares within a seed.
    for seed in 1..=args.seeds {
        for (row, file) in rows.iter_mut().zip(&files) {
            let dir = out.join(format!("{}-s{seed}", row.name));
            let arguments = [
                "--config",
                &file.display().to_string(),
                "--seed",
                &seed.to_string(),
                "--steps",
                &steps.to_string(),
                "--valid-every",
                &(steps / 6).max(1).to_string(),
                "--checkpoint-every",
                &(steps / 6).max(1).to_string(),
                "--shards",
                &cores.to_string(),
                "--out",
                &dir.display().to_string(),
            ]
            .map(String::from)
            .to_vec();
            let seconds = run_once(&pretrain, &dir, "encoder.bpk", arguments, true)?;
            let run = pretrained(&dir, seconds, steps)?;
            let (_, loss, acc) = run
                .valid
                .last()
                .copied()
                .unwrap_or((0.0, f64::NAN, f64::NAN));
            progress.report(
                &format!("pretrain {}, seed {seed}", row.name),
                &format!(
                    "loss@15 {loss:.3}, acc@15 {:.1} %, {:.0} tok/s",
                    100.0 * acc,
                    run.tokens_per_s
                ),
            );
            row.runs.push(run);
            for task in &tasks {
                let tuned = out.join(format!("{}-s{seed}-{task}", row.name));
                let mut arguments = vec!["--checkpoint".into(), dir.display().to_string()];
                arguments.extend(finetune_arguments(
                    task,
                    args.train_examples,
                    args.finetune_steps,
                    seed,
                    &tuned,
                ));
                run_once(&finetune, &tuned, "metrics.jsonl", arguments, false)?;
                let (acc, _) = test_scores(&tuned)?;
                row.downstream.entry(task.clone()).or_default().push(acc);
                progress.report(
                    &format!("fine-tune {}, seed {seed}, {task}", row.name),
                    &format!("test accuracy {:.1} %", 100.0 * acc),
                );
            }
        }
    }
    let table = results(&args, steps, &tasks, &rows);
    std::fs::write(out.join("results.md"), &table)?;
    plot_wall_time(&out.join("wall-time.svg"), &rows)?;
    println!("{table}");
    eprintln!(
        "done in {:.0} s; results.md and wall-time.svg in {}",
        progress.seconds(),
        out.display()
    );
    Ok(())
}

/// The recipe files named, folders expanded to their `.json` files in name order.
fn recipe_files(named: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let default = [Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ablation")];
    let named = if named.is_empty() {
        &default[..]
    } else {
        named
    };
    let mut files = Vec::new();
    for path in named {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err("--recipes: no recipe files".into());
    }
    Ok(files)
}

/// A finished pretraining run read back from its `metrics.jsonl`.
fn pretrained(dir: &Path, seconds: f64, steps: usize) -> Result<Pretrained> {
    let records = read_records(&dir.join("metrics.jsonl"))?;
    let speeds = records
        .iter()
        .filter(|r| r["split"] == "train")
        .filter_map(|r| r["tokens_per_s"].as_f64());
    // A recipe that masks 15 % logs its MLM figures once; one at another rate adds `@15`.
    // The MLM loss is ln `mlm_ppl`: a recipe that mixes MLM with another task logs a `loss`
    // of the mix.
    let at_15 = |r: &Value, name: &str| r[format!("{name}@15")].as_f64().or(r[name].as_f64());
    let valid = records
        .iter()
        .filter(|r| r["split"] == "valid")
        .filter_map(|r| {
            let acc = at_15(r, "mlm_acc").unwrap_or(f64::NAN);
            Some((r["step"].as_f64()?, at_15(r, "mlm_ppl")?.ln(), acc))
        })
        .collect();
    Ok(Pretrained {
        seconds,
        tokens_per_s: median(speeds),
        valid,
        steps: steps as f64,
    })
}

/// The middle value (the upper one of an even count; NaN for none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `mean ± sd` of `values` scaled by `scale`, with `digits` decimals.
fn spread(values: &[f64], scale: f64, digits: usize) -> String {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return "–".into();
    }
    let (mean, sd) = mean_sd(values);
    format!("{:.digits$} ± {:.digits$}", scale * mean, scale * sd)
}

/// `results.md`.
fn results(args: &Args, steps: usize, tasks: &[String], rows: &[Row]) -> String {
    let mut s = String::new();
    let base = &rows[0];
    let (batch, seq_len) = (base.recipe.train.batch_size, base.recipe.seq_len);
    let _ = writeln!(s, "# Recipe ablation, {steps} updates\n");
    let _ = writeln!(
        s,
        "- Pretraining: {steps} updates of {batch} × {seq_len} tokens per recipe, seeds 1–{}, \
         on the bundled corpus without the genre task's held-out documents; validation at 15 % \
         masking whatever the training rate.",
        args.seeds
    );
    if !tasks.is_empty() {
        let _ = writeln!(
            s,
            "- Fine-tuning: each pretrained encoder once per task with its seed, {} labelled \
             examples, {} updates at 1e-4, scored on the whole test split.",
            args.train_examples, args.finetune_steps
        );
    }
    let _ = writeln!(s, "- Hardware: {}.", hardware());
    let _ = writeln!(
        s,
        "- tokens/s: the median of each run's training throughput (validation excluded), \
         then the median over seeds; ×: the median over seeds of a run's throughput over \
         `{}`'s run of the same seed (the recipes run seed by seed, in turn, so that a drift \
         in the host's speed moves both); time: the whole run, mean over seeds.\n",
        base.name
    );
    let mut header =
        "| Recipe | tokens/s | × | time | valid MLM loss@15 | valid acc@15 (%) |".to_string();
    let mut rule = "|---|---:|---:|---:|---:|---:|".to_string();
    for task in tasks {
        let _ = write!(header, " `{task}` acc (%) |");
        rule.push_str("---:|");
    }
    let _ = writeln!(s, "{header}\n{rule}");
    let speed = |row: &Row| median(row.runs.iter().map(|r| r.tokens_per_s));
    // Each seed's run against the baseline's run of the same seed, then the median.
    let ratio = |row: &Row| {
        let pairs = row.runs.iter().zip(&base.runs);
        median(pairs.map(|(r, b)| r.tokens_per_s / b.tokens_per_s))
    };
    for row in rows {
        let last = |pick: fn(&(f64, f64, f64)) -> f64| -> Vec<f64> {
            row.runs
                .iter()
                .map(|r| r.valid.last().map_or(f64::NAN, pick))
                .collect()
        };
        let seconds: Vec<f64> = row.runs.iter().map(|r| r.seconds).collect();
        let _ = write!(
            s,
            "| {} | {:.0} | {:.2} | {:.0} s | {} | {} |",
            row.name,
            speed(row),
            ratio(row),
            mean_sd(&seconds).0,
            spread(&last(|v| v.1), 1.0, 3),
            spread(&last(|v| v.2), 100.0, 1),
        );
        for task in tasks {
            let scores = row.downstream.get(task).cloned().unwrap_or_default();
            let _ = write!(s, " {} |", spread(&scores, 100.0, 1));
        }
        s.push('\n');
    }
    let _ = writeln!(s, "\nWhat each recipe changes from `{}`:\n", base.name);
    for row in &rows[1..] {
        let changed: Vec<String> = (base.recipe.differences(&row.recipe).into_iter())
            .filter(|(path, ..)| !SET_HERE.contains(&path.as_str()))
            .map(|(path, _, value)| format!("`{path}` = `{value}`"))
            .collect();
        let _ = writeln!(s, "- `{}`: {}", row.name, changed.join(", "));
    }
    let given: Vec<String> = std::env::args().skip(1).collect();
    let _ = writeln!(
        s,
        "\nReproduce: `cargo run --release --example ablation -- {}`.",
        given.join(" ")
    );
    s
}

/// `wall-time.svg`: validation loss at 15 % against wall time, a line per recipe (the mean
/// over its seeds at each validation).
fn plot_wall_time(path: &Path, rows: &[Row]) -> Result<()> {
    let curves: Vec<Vec<(f64, f64)>> = rows
        .iter()
        .map(|row| {
            let points = row.runs.iter().map(|r| r.valid.len()).min().unwrap_or(0);
            (0..points)
                .map(|k| {
                    let n = row.runs.len() as f64;
                    let at = |r: &Pretrained| (r.valid[k].0 / r.steps * r.seconds, r.valid[k].1);
                    row.runs
                        .iter()
                        .map(at)
                        .fold((0.0, 0.0), |(x, y), (a, b)| (x + a / n, y + b / n))
                })
                .collect()
        })
        .collect();
    let points = curves.iter().flatten();
    let (right, lo, hi) = points.fold((1.0_f64, f64::INFINITY, f64::NEG_INFINITY), |acc, p| {
        (acc.0.max(p.0), acc.1.min(p.1), acc.2.max(p.1))
    });
    let margin = ((hi - lo) * 0.05).max(1e-3);
    let root = SVGBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("validation MLM loss at 15 % masking", ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..right * 1.02, (lo - margin)..(hi + margin))?;
    chart
        .configure_mesh()
        .x_desc("wall time (s)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("loss")
        .light_line_style(WHITE)
        .draw()?;
    for (i, (row, curve)) in rows.iter().zip(&curves).enumerate() {
        let style = colour(i).stroke_width(2);
        chart
            .draw_series(LineSeries::new(curve.iter().copied(), style))?
            .label(row.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        chart.draw_series(curve.iter().map(|&p| Circle::new(p, 3, colour(i).filled())))?;
    }
    plot::legend(&mut chart)?;
    root.present()?;
    Ok(())
}
