//! InstructGPT's recipe end to end on bundled data, with a programmatic judge standing in for
//! people, and the DPO paper's reward-versus-KL comparison of PPO and DPO.
//!
//! ```text
//! cargo run --release --example align                    # the default budget (~30 min, 2 cores)
//! cargo run --release --example align -- --budget tiny   # a smoke run of a few minutes
//! cargo run --release --example align -- --policy runs/sft-mini-2000   # start from your SFT run
//! ```
//!
//! 1. **SFT policy**: a causal model pretrained on the bundled corpus, then fine-tuned on the
//!    bundled instructions (one of whose tasks is "Continue in the style of Shakespeare"), or
//!    the SFT run `--policy` names.
//! 2. **Preferences from a judge**: the *gold* judge is a bag-of-words classifier of
//!    Shakespeare against the Brown corpus ([`StyleScorer`]); prompts ask to continue the
//!    opening words of Brown sentences in Shakespeare's style; K responses per prompt sampled
//!    from the SFT policy and ranked by the judge become InstructGPT's K-way ranked
//!    preference data (`preferences.jsonl`).
//! 3. **Reward model, PPO and DPO**: a reward model trained on those rankings; PPO against
//!    the *reward model* at several KL coefficients; DPO on the same preferences at several β.
//! 4. **Evaluation** on held-out prompts (Brown documents none of the training prompts came
//!    from): the mean gold score and the mean reward-model score of one sample per prompt,
//!    and the KL of each policy to the SFT policy on those samples.
//!
//! It writes into `OUT` (default `runs/align-BUDGET`): each run's directory, `results.md`
//! (the table), `frontier.svg` (gold and reward-model score against KL, as the DPO paper's
//! figure 2), `samples.md` (responses before and after) and `results.json`. Finished runs
//! are reused when started again (`--fresh` starts over).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "support/plot.rs"]
mod plot;

use burn::prelude::*;
use clap::{Parser, ValueEnum};
use plotters::prelude::*;
use pretext::Preset;
use pretext::align::RewardModel;
use pretext::align::{
    PolicyScore, PpoConfig, PpoOptions, Scorer, StyleScorer, evaluate, load_policy, ppo,
};
use pretext::corpus::{Corpus, DocumentBoundary, bundled_data_dir};
use pretext::generate::SamplingConfig;
use pretext::recipe::{ObjectiveRecipe, Recipe, RunOptions};
use pretext::train::TrainConfig;
use pretext::util::rng::example_rng;
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Budget {
    /// A few steps of everything: minutes, for CI.
    Tiny,
    /// The tiny preset trained for real (3,000 causal and 2,000 SFT updates, 1,000 ranked
    /// prompts, 100 PPO rollout batches per KL coefficient): about 20 minutes on 2 cores.
    Default,
}

/// What a budget runs.
struct Plan {
    preset: Preset,
    clm_steps: usize,
    sft_steps: usize,
    preference_prompts: usize,
    eval_prompts: usize,
    ranked: usize,
    response_length: usize,
    reward_steps: usize,
    ppo_steps: usize,
    ppo_batch: usize,
    kl_coefs: &'static [f64],
    dpo_steps: usize,
    betas: &'static [f64],
}

impl Budget {
    fn plan(self) -> Plan {
        match self {
            Budget::Tiny => Plan {
                preset: Preset::Tiny,
                clm_steps: 40,
                sft_steps: 40,
                preference_prompts: 48,
                eval_prompts: 16,
                ranked: 4,
                response_length: 10,
                reward_steps: 20,
                ppo_steps: 3,
                ppo_batch: 8,
                kl_coefs: &[0.05, 0.5],
                dpo_steps: 10,
                betas: &[0.1, 1.0],
            },
            Budget::Default => Plan {
                preset: Preset::Tiny,
                clm_steps: 3000,
                sft_steps: 2000,
                preference_prompts: 1000,
                eval_prompts: 200,
                ranked: 4,
                response_length: 16,
                reward_steps: 120,
                ppo_steps: 100,
                ppo_batch: 32,
                kl_coefs: &[0.02, 0.1, 0.5],
                dpo_steps: 300,
                betas: &[0.1, 0.5, 2.0],
            },
        }
    }
}

/// Run SFT, a reward model, PPO and DPO on bundled data and compare them by a gold judge.
#[derive(Parser, Debug)]
struct Args {
    /// How much to run.
    #[arg(long, value_enum, default_value = "default")]
    budget: Budget,
    /// Start from this SFT (or clm) run instead of training one.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Output directory (default: runs/align-BUDGET).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run everything again instead of reusing finished runs.
    #[arg(long)]
    fresh: bool,
    /// Seed of the sampling and of every run.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> std::process::ExitCode {
    pretext::exit_with(run(Args::parse()))
}

/// A policy judged on the held-out prompts.
struct Judged {
    name: String,
    method: &'static str,
    setting: f64,
    score: PolicyScore,
}

fn run(args: Args) -> Result<()> {
    let plan = args.budget.plan();
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/align-{}",
            format!("{:?}", args.budget).to_lowercase()
        ))
    });
    if args.fresh && out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    // Finished runs are reused only for the settings they were made with.
    let settings = json!({
        "budget": format!("{:?}", args.budget),
        "policy": args.policy,
        "seed": args.seed,
    });
    let settings_path = out.join("align.json");
    if let Ok(text) = std::fs::read_to_string(&settings_path)
        && serde_json::from_str::<serde_json::Value>(&text)? != settings
    {
        return Err(format!(
            "{} holds runs of other settings ({text}); pass --fresh or another --out",
            out.display()
        )
        .into());
    }
    std::fs::write(&settings_path, settings.to_string())?;
    pretext::train::tune_allocator();
    let started = Instant::now();
    let train_device = Device::flex().autodiff();
    let device = Device::flex();
    let mut timings: Vec<(String, f64)> = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |what: &str, timings: &mut Vec<(String, f64)>| {
        timings.push((what.to_string(), clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };

    // 1. The SFT policy.
    let sft = match &args.policy {
        Some(dir) => dir.clone(),
        None => {
            let clm = out.join("clm");
            let mut recipe = Recipe::named("clm", plan.preset)?;
            recipe.train.steps = plan.clm_steps;
            train_recipe(recipe, &clm, &train_device, args.seed)?;
            let sft = out.join("sft");
            let mut recipe = Recipe::named("sft", plan.preset)?.init_from(&clm)?;
            recipe.train.steps = plan.sft_steps;
            train_recipe(recipe, &sft, &train_device, args.seed)?;
            sft
        }
    };
    lap("SFT policy", &mut timings);

    // 2. The gold judge, the prompts, and preferences ranked by the judge.
    let (judge, judge_accuracy) = StyleScorer::bundled_shakespeare()?;
    eprintln!(
        "gold judge: Shakespeare against Brown, {:.1} % of held-out sentences told apart",
        100.0 * judge_accuracy
    );
    let (train_prompts, eval_prompts) = prompts(&plan, args.seed)?;
    let reference = load_policy(&sft, &device)?;
    let sampling = SamplingConfig::new()
        .with_max_new_tokens(plan.response_length)
        .with_temperature(1.0)
        .with_seed(args.seed);
    let preferences = out.join("preferences.jsonl");
    let samples = rank_samples(
        &reference,
        &judge,
        &train_prompts,
        plan.ranked,
        &sampling,
        &preferences,
    )?;
    lap("preferences", &mut timings);

    // 3. The reward model, PPO against it, and DPO on the same preferences.
    let reward_dir = out.join("reward");
    let mut recipe = Recipe::named("reward", plan.preset)?.init_from(&sft)?;
    let ObjectiveRecipe::Reward(settings) = &mut recipe.objective else {
        unreachable!("the reward recipe")
    };
    settings.data = Some(preferences.clone());
    recipe.train.steps = plan.reward_steps;
    recipe.train.learning_rate = 3e-4;
    recipe.train.valid_every = plan.reward_steps.div_ceil(4);
    train_recipe(recipe, &reward_dir, &train_device, args.seed)?;
    let reward_model = RewardModel::load(&reward_dir, &device)?;
    // Normalise the reward model on the SFT policy's own samples, so that β means the same
    // whatever scale its scores came out at (lm-human-preferences does so).
    let pairs: Vec<(&str, &str)> = samples
        .iter()
        .map(|(p, a)| (p.as_str(), a.as_str()))
        .collect();
    let scores = Scorer::score(&reward_model, &pairs)?;
    let (reward_mean, reward_std) = mean_sd(scores.iter().map(|&s| f64::from(s)));
    lap("reward model", &mut timings);

    let mut policies: Vec<(String, &'static str, f64, PathBuf)> =
        vec![("SFT".into(), "sft", 0.0, sft.clone())];
    for &kl_coef in plan.kl_coefs {
        let dir = out.join(format!("ppo-kl{kl_coef}"));
        let defaults = PpoConfig::default();
        let config = PpoConfig {
            train: TrainConfig {
                steps: plan.ppo_steps,
                batch_size: plan.ppo_batch,
                learning_rate: 3e-4,
                seed: args.seed,
                ..defaults.train
            },
            num_mini_batches: 2,
            response_length: plan.response_length,
            temperature: 1.0,
            kl_coef,
            reward_mean,
            reward_std: reward_std.max(1e-3),
            ..defaults
        };
        if !finished(&dir, plan.ppo_steps) {
            eprintln!("PPO, KL coefficient {kl_coef}");
            ppo(
                &sft,
                &reward_model,
                &train_prompts,
                &config,
                &PpoOptions::new(&dir, train_device.clone()),
            )?;
        }
        policies.push((format!("PPO β={kl_coef}"), "ppo", kl_coef, dir));
    }
    lap("PPO", &mut timings);
    for &beta in plan.betas {
        let dir = out.join(format!("dpo-beta{beta}"));
        let mut recipe = Recipe::named("dpo", plan.preset)?.init_from(&sft)?;
        let ObjectiveRecipe::Dpo(settings) = &mut recipe.objective else {
            unreachable!("the dpo recipe")
        };
        settings.data = Some(preferences.clone());
        settings.beta = beta;
        recipe.train.steps = plan.dpo_steps;
        recipe.train.learning_rate = 1e-4;
        recipe.train.valid_every = plan.dpo_steps;
        train_recipe(recipe, &dir, &train_device, args.seed)?;
        policies.push((format!("DPO β={beta}"), "dpo", beta, dir));
    }
    lap("DPO", &mut timings);

    // 4. Every policy judged on the held-out prompts.
    let mut judged = Vec::new();
    for (name, method, setting, dir) in &policies {
        let policy = load_policy(dir, &device)?;
        let score = evaluate(
            &policy,
            &reference,
            &eval_prompts,
            &sampling.clone().with_seed(args.seed + 1),
            &judge,
            Some(&reward_model),
            64,
        )?;
        eprintln!(
            "{name:<12} gold {:+.3}  reward model {:+.3}  KL {:.2}",
            score.gold,
            score.reward.unwrap_or(0.0),
            score.kl
        );
        judged.push(Judged {
            name: name.clone(),
            method,
            setting: *setting,
            score,
        });
    }
    lap("evaluation", &mut timings);

    let reward_accuracy = last_valid(&reward_dir, "accuracy");
    std::fs::write(
        out.join("results.md"),
        results(
            &args,
            &plan,
            judge_accuracy,
            reward_accuracy,
            &judged,
            &timings,
        ),
    )?;
    std::fs::write(out.join("samples.md"), sample_table(&judged, 8))?;
    let json: Vec<_> = judged
        .iter()
        .map(|j| json!({"policy": j.name, "gold": j.score.gold, "reward": j.score.reward, "kl": j.score.kl, "finished": j.score.finished}))
        .collect();
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    plot_frontier(&out.join("frontier.svg"), &judged)?;
    eprintln!(
        "done in {:.0} s; results.md, frontier.svg and samples.md in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// Whether the run in `dir` has a checkpoint at `steps`.
fn finished(dir: &Path, steps: usize) -> bool {
    std::fs::read_to_string(dir.join("checkpoint/state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["step"].as_u64())
        == Some(steps as u64)
}

/// Runs `recipe` into `dir`, unless a finished run is there.
fn train_recipe(mut recipe: Recipe, dir: &Path, device: &Device, seed: u64) -> Result<()> {
    recipe.train.seed = seed;
    if finished(dir, recipe.train.steps) {
        eprintln!("reusing {}", dir.display());
        return Ok(());
    }
    eprintln!(
        "{} for {} steps into {}",
        recipe.objective.name(),
        recipe.train.steps,
        dir.display()
    );
    device.seed(seed);
    recipe.run(&RunOptions::new(dir, device.clone()))?;
    Ok(())
}

/// The last validation value of `metric` in the run in `dir`.
fn last_valid(dir: &Path, metric: &str) -> Option<f64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .ok()?
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["split"] == "valid")
        .and_then(|v| v[metric].as_f64())
}

/// Prompts asking to continue the opening words (4 to 8) of Brown sentences in Shakespeare's
/// style: for training from four Brown documents in five, held out from the fifth.
fn prompts(plan: &Plan, seed: u64) -> Result<(Vec<String>, Vec<String>)> {
    let corpus = Corpus::from_dir(bundled_data_dir().join("brown"), DocumentBoundary::File)?;
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (d, doc) in corpus.documents.iter().enumerate() {
        for (s, sentence) in doc.sentences.iter().enumerate() {
            let words: Vec<&str> = sentence.split_whitespace().collect();
            if words.len() < 10 {
                continue;
            }
            let take = 4 + (d + s) % 5;
            let prompt = format!(
                "Continue in the style of Shakespeare: {} Answer:",
                words[..take].join(" ")
            );
            match d % 5 == 4 {
                true => held.push(prompt),
                false => train.push(prompt),
            }
        }
    }
    use rand::seq::SliceRandom;
    train.shuffle(&mut example_rng(seed, 0, 1));
    held.shuffle(&mut example_rng(seed, 0, 2));
    train.truncate(plan.preference_prompts);
    held.truncate(plan.eval_prompts);
    Ok((train, held))
}

/// Samples `k` responses to each prompt from `policy`, ranks each prompt's distinct non-empty
/// responses by the judge, and writes them as ranked preference lines (every tenth prompt for
/// validation); returns every `(prompt, response)` sampled.
fn rank_samples(
    policy: &pretext::generate::CausalLm,
    judge: &StyleScorer,
    prompts: &[String],
    k: usize,
    sampling: &SamplingConfig,
    path: &Path,
) -> Result<Vec<(String, String)>> {
    let mut lines = String::new();
    let mut all = Vec::new();
    let (mut written, mut skipped) = (0, 0);
    for (chunk_index, chunk) in prompts.chunks(16).enumerate() {
        let repeated: Vec<&str> = chunk
            .iter()
            .flat_map(|p| std::iter::repeat_n(p.as_str(), k))
            .collect();
        let completions = policy.complete(&repeated, sampling)?;
        for (i, group) in completions.chunks(k).enumerate() {
            let prompt = &chunk[i];
            let mut answers: Vec<(f32, String)> = Vec::new();
            for c in group {
                all.push((prompt.clone(), c.text.clone()));
                let text = c.text.trim().to_string();
                if !text.is_empty() && !answers.iter().any(|(_, a)| *a == text) {
                    answers.push((judge.score(&text), text));
                }
            }
            answers.sort_by(|a, b| b.0.total_cmp(&a.0));
            answers.dedup_by(|a, b| a.0 == b.0);
            if answers.len() < 2 {
                skipped += 1;
                continue;
            }
            let split = match (chunk_index * 16 + i) % 10 == 9 {
                true => "valid",
                false => "train",
            };
            let ranked: Vec<&str> = answers.iter().map(|(_, a)| a.as_str()).collect();
            let line = json!({"task": "verse", "split": split, "prompt": prompt, "ranked": ranked});
            writeln!(lines, "{line}")?;
            written += 1;
        }
    }
    std::fs::write(path, lines)?;
    eprintln!(
        "{written} prompts ranked by the judge ({k} samples each; {skipped} without two distinct \
         answers) into {}",
        path.display()
    );
    Ok(all)
}

/// Mean and sample standard deviation.
fn mean_sd(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let values: Vec<f64> = values.collect();
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn results(
    args: &Args,
    plan: &Plan,
    judge_accuracy: f64,
    reward_accuracy: Option<f64>,
    judged: &[Judged],
    timings: &[(String, f64)],
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Alignment on bundled data: SFT, reward model, PPO, DPO\n"
    );
    let _ = writeln!(
        md,
        "Budget `{:?}`, seed {}, {} (the CPU backend). Command: `cargo run --release --example \
         align -- --budget {}`.\n",
        args.budget,
        args.seed,
        pretext::device::host_cpu(),
        format!("{:?}", args.budget).to_lowercase()
    );
    let _ = writeln!(
        md,
        "- Gold judge: Shakespeare against Brown, {:.1} % of held-out sentences told apart.",
        100.0 * judge_accuracy
    );
    let _ = writeln!(
        md,
        "- Preferences: {} prompts × {} samples of the SFT policy ranked by the judge; reward \
         model held-out pairwise accuracy: {}.",
        plan.preference_prompts,
        plan.ranked,
        reward_accuracy.map_or("n/a".into(), |a| format!("{a:.3}"))
    );
    let _ = writeln!(
        md,
        "- Evaluation: one sample (temperature 1, at most {} tokens) for each of {} held-out \
         prompts; KL = Σ_t KL(π ‖ π_SFT) at each token of those samples, exact over the \
         vocabulary.\n",
        plan.response_length, plan.eval_prompts
    );
    let _ = writeln!(
        md,
        "| policy | gold score | reward model score | KL to SFT | responses ended |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    for j in judged {
        let _ = writeln!(
            md,
            "| {} | {:+.3} | {:+.3} | {:.2} | {:.0} % |",
            j.name,
            j.score.gold,
            j.score.reward.unwrap_or(0.0),
            j.score.kl,
            100.0 * j.score.finished
        );
    }
    let _ = writeln!(md, "\nTime per stage:\n");
    for (what, seconds) in timings {
        let _ = writeln!(md, "- {what}: {seconds:.0} s");
    }
    md
}

fn sample_table(judged: &[Judged], n: usize) -> String {
    let mut md = String::from("# Held-out prompts, one sample from each policy\n");
    let Some(first) = judged.first() else {
        return md;
    };
    for i in 0..n.min(first.score.samples.len()) {
        let _ = writeln!(md, "\n## {}\n", first.score.samples[i].prompt);
        for j in judged {
            let s = &j.score.samples[i];
            let _ = writeln!(
                md,
                "- **{}** (gold {:+.2}, reward model {:+.2}): {}",
                j.name,
                s.gold,
                s.reward.unwrap_or(0.0),
                s.text.replace('\n', " ")
            );
        }
    }
    md
}

/// `frontier.svg`: the gold score (left) and the reward model's score (right) of each policy
/// against its KL to the SFT policy, PPO's and DPO's settings joined in order.
fn plot_frontier(path: &Path, judged: &[Judged]) -> Result<()> {
    let root = SVGBackend::new(path, (900, 380)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    let max_kl = judged.iter().map(|j| j.score.kl).fold(0.1, f64::max) * 1.1;
    let min_kl = judged.iter().map(|j| j.score.kl).fold(0.0, f64::min);
    let mut groups: BTreeMap<&str, Vec<&Judged>> = BTreeMap::new();
    for j in judged {
        groups.entry(j.method).or_default().push(j);
    }
    for (panel, (title, value)) in panels.iter().zip([
        (
            "gold judge",
            (|j: &Judged| j.score.gold) as fn(&Judged) -> f64,
        ),
        ("reward model", |j: &Judged| j.score.reward.unwrap_or(0.0)),
    ]) {
        let (lo, hi) = judged
            .iter()
            .map(value)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        let margin = ((hi - lo) * 0.15).max(0.05);
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{title} score against KL to SFT"),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(min_kl..max_kl, (lo - margin)..(hi + margin))?;
        chart
            .configure_mesh()
            .x_desc("KL(π ‖ π_SFT), nats per response")
            .y_desc(format!("mean {title} score"))
            .light_line_style(WHITE)
            .draw()?;
        for (g, (method, members)) in groups.iter().enumerate() {
            let colour = Palette99::pick(g).to_rgba();
            let mut points: Vec<(f64, f64)> =
                members.iter().map(|j| (j.score.kl, value(j))).collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(points.clone(), colour))?
                .label(method.to_uppercase())
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, colour.filled()));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
            chart.draw_series(members.iter().map(|j| {
                Text::new(
                    format!("{}", j.setting),
                    (j.score.kl, value(j)),
                    ("sans-serif", 11),
                )
            }))?;
        }
        plot::legend(&mut chart)?;
    }
    root.present()?;
    Ok(())
}
