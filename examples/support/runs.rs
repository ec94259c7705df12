//! What the comparing examples (`bakeoff`, `ablation`) share: running the `pretrain` and
//! `finetune` examples as child processes into run directories that are reused once finished,
//! reading their `metrics.jsonl` back, and summing seeds up.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plotters::style::RGBColor;
use serde_json::Value;

/// The examples' error type.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The path of a sibling example binary, built first when the caller runs under cargo.
pub fn example(name: &str) -> Result<PathBuf> {
    let dir = std::env::current_exe()?
        .parent()
        .ok_or("the example's binary has no directory")?
        .to_path_buf();
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut build = Command::new(cargo);
        build.args(["build", "--example", name, "--manifest-path"]);
        build.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        if !build.status()?.success() {
            return Err(format!("building the {name} example failed").into());
        }
    }
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        return Err(format!(
            "{} is missing: build it with `cargo build --release --examples`",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// Runs `binary` with `arguments` into `dir` unless a finished run (one holding `marker`, and
/// for `metrics.jsonl` a test record) is there already; output goes to `dir/log.txt`. Returns
/// the seconds it took (read back for a reused run).
///
/// With `resume`, an unfinished run that left a checkpoint (`dir/checkpoint/`: a `pretrain`
/// run stopped midway, when the comparison was) goes on from it with `--resume` instead of
/// starting over; its seconds are those of every attempt, the steps after its last checkpoint
/// counted twice.
pub fn run_once(
    binary: &Path,
    dir: &Path,
    marker: &str,
    mut arguments: Vec<String>,
    resume: bool,
) -> Result<f64> {
    let timing = dir.join("seconds.txt");
    let finished = dir.join(marker).exists()
        && (marker != "metrics.jsonl"
            || read_records(&dir.join(marker))?
                .iter()
                .any(|r| r["split"] == "test"));
    if finished && let Ok(text) = std::fs::read_to_string(&timing) {
        return Ok(text.trim().parse().unwrap_or(f64::NAN));
    }
    // The seconds of earlier attempts, kept up to date while a run goes on.
    let so_far = dir.join("seconds-so-far.txt");
    let earlier = if resume && dir.join("checkpoint").is_dir() {
        arguments.push("--resume".into());
        let text = std::fs::read_to_string(&so_far).unwrap_or_default();
        text.trim().parse().unwrap_or(0.0)
    } else {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        0.0
    };
    std::fs::create_dir_all(dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log.txt"))?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(arguments)
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()?;
    // Polled often enough not to lengthen a short run measurably.
    let mut noted = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
        if noted.elapsed() >= Duration::from_secs(10) {
            let seconds = earlier + started.elapsed().as_secs_f64();
            std::fs::write(&so_far, format!("{seconds:.1}\n"))?;
            noted = Instant::now();
        }
    };
    if !status.success() {
        return Err(format!(
            "{} failed ({status}); its output is in {}",
            binary.display(),
            dir.join("log.txt").display()
        )
        .into());
    }
    let seconds = earlier + started.elapsed().as_secs_f64();
    std::fs::write(&timing, format!("{seconds:.1}\n"))?;
    Ok(seconds)
}

/// Numbered progress lines on stderr, `[DONE/TOTAL] WHAT: RESULT (S s in all)`.
pub struct Progress {
    done: usize,
    total: usize,
    started: Instant,
}

impl Progress {
    /// Progress over `total` pieces of work, timed from now.
    pub fn new(total: usize) -> Self {
        Self {
            done: 0,
            total,
            started: Instant::now(),
        }
    }

    /// Reports one more piece done.
    pub fn report(&mut self, what: &str, result: &str) {
        self.done += 1;
        let (done, total) = (self.done, self.total);
        eprintln!(
            "[{done}/{total}] {what}: {result} ({:.0} s in all)",
            self.seconds()
        );
    }

    /// Seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// The arguments of a `finetune` run on a bundled `task` with the comparisons' fixed budget.
pub fn finetune_arguments(
    task: &str,
    train_examples: usize,
    steps: usize,
    seed: u64,
    out: &Path,
) -> Vec<String> {
    let steps = steps.to_string();
    [
        "--task",
        task,
        "--train-examples",
        &train_examples.to_string(),
        "--steps",
        &steps,
        "--valid-every",
        &steps,
        "--seed",
        &seed.to_string(),
        "--out",
        &out.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// A finished fine-tuning run's test accuracy and macro-F1.
pub fn test_scores(dir: &Path) -> Result<(f64, f64)> {
    let test = read_records(&dir.join("metrics.jsonl"))?
        .into_iter()
        .find(|r| r["split"] == "test")
        .ok_or_else(|| format!("{}: no test record", dir.display()))?;
    Ok((
        test["accuracy"].as_f64().unwrap_or(f64::NAN),
        test["macro_f1"].as_f64().unwrap_or(f64::NAN),
    ))
}

/// The JSON records of a `metrics.jsonl`.
pub fn read_records(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", path.display()).into()))
        .collect()
}

/// Mean and sample standard deviation.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// The CPU's model name and core count, for the record.
pub fn hardware() -> String {
    format!("{}, the CPU (flex) backend", pretext::device::host_cpu())
}

/// Colours for the series, one per compared run.
pub fn colour(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 12] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 0),
        RGBColor(174, 199, 232),
    ];
    PALETTE[i % PALETTE.len()]
}
