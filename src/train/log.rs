//! Metrics as JSON lines and a progress line on the terminal.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::TrainConfig;
use crate::error::{Error, Result};
use crate::objectives::{Metric, Reduce};

/// Which split a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training batches.
    Train,
    /// The validation split.
    Valid,
}

impl Split {
    /// `"train"` or `"valid"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
        }
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Optimizer updates done.
    pub step: usize,
    /// Train or validation.
    pub split: Split,
    /// Mean loss over the batches the record covers.
    pub loss: f64,
    /// Real tokens per second of training (0 for validation).
    pub tokens_per_s: f64,
    /// Learning rate of the last update.
    pub lr: f64,
    /// The objective's metrics, e.g. `mlm_acc`.
    pub metrics: BTreeMap<String, f64>,
}

impl LogRecord {
    /// The record as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("step".into(), self.step.into());
        map.insert("split".into(), self.split.as_str().into());
        map.insert("loss".into(), self.loss.into());
        map.insert("tokens_per_s".into(), self.tokens_per_s.round().into());
        map.insert("lr".into(), self.lr.into());
        for (k, v) in &self.metrics {
            map.insert(k.clone(), (*v).into());
        }
        serde_json::Value::Object(map)
    }
}

/// What a step did, for the log: its loss, the real tokens it trained on and its metrics.
#[derive(Debug, Clone, Default)]
pub struct StepDone {
    /// The step's loss.
    pub loss: f64,
    /// Real tokens trained on.
    pub tokens: usize,
    /// The step's metrics, added to those of the other steps logged with it.
    pub metrics: Vec<MetricValue>,
}

/// One metric of a step or batch as numbers: a sum and a count, and how they reduce.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// The metric's name in `metrics.jsonl`.
    pub name: String,
    /// The sum of its values.
    pub sum: f64,
    /// How many values were summed.
    pub count: f64,
    /// How the sum and count become the logged value.
    pub reduce: Reduce,
}

impl MetricValue {
    /// A batch's [`Metric`], read back from its tensors.
    pub fn read(metric: &Metric) -> Self {
        Self {
            name: metric.name.clone(),
            sum: f64::from(metric.sum.clone().into_scalar::<f32>()),
            count: f64::from(metric.count.clone().into_scalar::<f32>()),
            reduce: metric.reduce,
        }
    }

    /// One value, averaged with the other steps' in a record.
    pub fn mean(name: impl Into<String>, value: f64) -> Self {
        Self {
            name: name.into(),
            sum: value,
            count: 1.0,
            reduce: Reduce::Mean,
        }
    }

    /// A running count (episodes so far): a record logs the last step's value.
    pub fn last(name: impl Into<String>, value: f64) -> Self {
        Self {
            name: name.into(),
            sum: value,
            count: 1.0,
            reduce: Reduce::Last,
        }
    }
}

/// Running totals of losses and of metrics (as sums and counts) over the steps or batches
/// logged together.
#[derive(Debug, Default, Clone)]
pub struct MetricTotals {
    sums: BTreeMap<String, (f64, f64, Reduce)>,
    loss_sum: f64,
    losses: usize,
}

impl MetricTotals {
    /// Adds one loss (a step's, or a validation's).
    pub fn add_loss(&mut self, loss: f64) {
        self.loss_sum += loss;
        self.losses += 1;
    }

    /// Adds one batch's metrics (reads their tensors back).
    pub fn add_metrics(&mut self, metrics: &[Metric]) {
        for m in metrics {
            self.add(MetricValue::read(m));
        }
    }

    /// Adds one metric's sum and count.
    pub fn add(&mut self, value: MetricValue) {
        let entry = self
            .sums
            .entry(value.name)
            .or_insert((0.0, 0.0, value.reduce));
        match value.reduce {
            Reduce::Last => *entry = (value.sum, value.count, value.reduce),
            _ => {
                entry.0 += value.sum;
                entry.1 += value.count;
            }
        }
    }

    /// Mean of the losses added.
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.losses.max(1) as f64
    }

    /// The metric values; a metric whose count is 0 is absent (see [`Metric`]).
    pub fn values(&self) -> BTreeMap<String, f64> {
        self.sums
            .iter()
            .filter(|(_, (_, count, _))| *count > 0.0)
            .map(|(k, (sum, count, reduce))| {
                let v = match reduce {
                    Reduce::Mean => sum / count,
                    Reduce::ExpMean => (sum / count).exp(),
                    Reduce::Sum | Reduce::Last => *sum,
                };
                (k.clone(), v)
            })
            .collect()
    }
}

/// `eta` as minutes and seconds, `3m05s`.
fn minutes(eta: Duration) -> String {
    let secs = eta.as_secs();
    format!("{}m{:02}s", secs / 60, secs % 60)
}

/// The training side of a run's log: metrics and throughput gathered over the steps between
/// two records, a progress line after each step, and a record every `log_every` steps.
#[derive(Debug)]
pub(crate) struct TrainLog {
    logger: Logger,
    totals: MetricTotals,
    /// Tokens and seconds of training since the last record: throughput counts training work
    /// only, not validation or checkpoint writing.
    window: (usize, f64),
    started: Instant,
    first_step: usize,
    steps: usize,
    log_every: usize,
}

impl TrainLog {
    /// The log of a run of `config` that starts (or resumes) at `first_step`.
    pub(crate) fn new(mut logger: Logger, config: &TrainConfig, first_step: usize) -> Self {
        logger.total = Some(config.steps);
        Self {
            logger,
            totals: MetricTotals::default(),
            window: (0, 0.0),
            started: Instant::now(),
            first_step,
            steps: config.steps,
            log_every: config.log_every,
        }
    }

    /// Adds the step that brought the run to `step`, which took `took`; returns its record
    /// when one is due (every `log_every` steps, the first and the last).
    pub(crate) fn step(
        &mut self,
        step: usize,
        lr: f64,
        done: StepDone,
        took: Duration,
    ) -> Result<Option<LogRecord>> {
        self.totals.add_loss(done.loss);
        for value in done.metrics {
            self.totals.add(value);
        }
        self.window.0 += done.tokens;
        self.window.1 += took.as_secs_f64();
        let tokens_per_s = self.window.0 as f64 / self.window.1.max(1e-9);
        let left = (self.steps - step) as f64 / (step - self.first_step) as f64;
        let eta = self.started.elapsed().mul_f64(left);
        let loss = self.totals.mean_loss();
        self.logger
            .progress(step, self.steps, loss, tokens_per_s, eta);
        if !(step.is_multiple_of(self.log_every) || step == 1 || step == self.steps) {
            return Ok(None);
        }
        let record = LogRecord {
            step,
            split: Split::Train,
            loss,
            tokens_per_s,
            lr,
            metrics: std::mem::take(&mut self.totals).values(),
        };
        self.window = (0, 0.0);
        self.logger.write(&record, Some(eta))?;
        Ok(Some(record))
    }

    /// Writes another record (a validation's).
    pub(crate) fn record(&self, record: &LogRecord) -> Result<()> {
        self.logger.record(record)
    }
}

/// Appends records to `metrics.jsonl` and shows progress on stderr.
#[derive(Debug)]
pub struct Logger {
    path: Option<PathBuf>,
    progress: bool,
    terminal: bool,
    /// The run's steps, shown as `step N/TOTAL` once a training log knows them.
    total: Option<usize>,
}

impl Logger {
    /// Logs to `dir/metrics.jsonl` when `dir` is given. On resume, lines after `keep_until`
    /// (steps the checkpoint never saw) are dropped so the file matches the replayed run.
    pub fn new(dir: Option<&Path>, progress: bool, keep_until: Option<usize>) -> Result<Self> {
        let path = dir.map(|d| d.join("metrics.jsonl"));
        if let Some(path) = &path {
            match keep_until {
                Some(step) if path.exists() => {
                    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                    let kept: String = text
                        .lines()
                        .filter(|l| {
                            serde_json::from_str::<serde_json::Value>(l)
                                .ok()
                                .and_then(|v| v["step"].as_u64())
                                .is_some_and(|s| s as usize <= step)
                        })
                        .map(|l| format!("{l}\n"))
                        .collect();
                    crate::util::atomic_file::write(path, kept)?;
                }
                _ => std::fs::write(path, "").map_err(|e| Error::io(path, e))?,
            }
        }
        Ok(Self {
            path,
            progress,
            terminal: std::io::stderr().is_terminal(),
            total: None,
        })
    }

    /// Writes one record.
    pub fn record(&self, record: &LogRecord) -> Result<()> {
        self.write(record, None)
    }

    /// Writes one record; a training record's line also shows the time left, `eta`.
    fn write(&self, record: &LogRecord, eta: Option<Duration>) -> Result<()> {
        if let Some(path) = &self.path {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            writeln!(file, "{}", record.to_json()).map_err(|e| Error::io(path, e))?;
        }
        if self.progress {
            let metrics: Vec<String> = record
                .metrics
                .iter()
                .map(|(k, v)| format!("{k} {v:.4}"))
                .collect();
            // Validation is not timed, so its line shows no throughput.
            let speed = match record.split {
                Split::Train => format!(" | {:.0} tok/s", record.tokens_per_s),
                Split::Valid => String::new(),
            };
            let left = eta.map_or(String::new(), |eta| format!(" | eta {}", minutes(eta)));
            let step = match self.total {
                Some(total) => format!("{}/{total}", record.step),
                None => record.step.to_string(),
            };
            let line = format!(
                "step {step:>9} {:<5} loss {:.4} | {}{speed} | lr {:.2e}{left}",
                record.split.as_str(),
                record.loss,
                metrics.join(" "),
                record.lr
            );
            if self.terminal {
                eprintln!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
        }
        Ok(())
    }

    /// Redraws the progress line (terminal only).
    pub fn progress(&self, step: usize, total: usize, loss: f64, tokens_per_s: f64, eta: Duration) {
        if self.progress && self.terminal {
            eprint!(
                "\r\x1b[2K[{step}/{total}] loss {loss:.4} | {tokens_per_s:.0} tok/s | eta {}",
                minutes(eta)
            );
            let _ = std::io::stderr().flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::*;

    #[test]
    fn a_metric_over_nothing_is_absent_and_a_batch_over_nothing_adds_nothing() {
        let device = Device::flex();
        let scalar = |v: f32| Tensor::<1>::from_floats([v], &device);
        let mut totals = MetricTotals::default();
        // Recall over two batches, the first without positives: 3 of 4, not 3 of 4 and a 0.
        totals.add_metrics(&[
            Metric::mean("recall", scalar(0.0), scalar(0.0)),
            Metric::mean("precision", scalar(0.0), scalar(0.0)),
        ]);
        totals.add_metrics(&[
            Metric::mean("recall", scalar(3.0), scalar(4.0)),
            Metric::mean("precision", scalar(0.0), scalar(0.0)),
        ]);
        let values = totals.values();
        assert_eq!(values.get("recall"), Some(&0.75));
        assert!(!values.contains_key("precision"), "{values:?}");
    }
}
