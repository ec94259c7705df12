//! Learning-rate schedules, as a factor of the peak rate at each update: BERT's linear warmup
//! then linear decay to zero, ModernBERT's warmup–stable–decay trapezoid, and Cramming's
//! one-cycle triangle.

use burn::prelude::*;

use crate::error::{Error, Result};

/// How the learning rate moves over a run's updates.
#[derive(Config, Debug, PartialEq, Copy)]
pub enum Schedule {
    /// A linear warmup over the run's `warmup_fraction`, then a linear decay to 0 (BERT's).
    WarmupLinear,
    /// Warmup–stable–decay (ModernBERT's trapezoid): the warmup, the peak held, then a linear
    /// decay to 0 over the last `decay_fraction` of the updates.
    WarmupStableDecay {
        /// Share of the updates spent decaying, at the end.
        decay_fraction: f64,
    },
    /// One cycle (Cramming's `budget-triangle2`): from `start` × the peak, a linear rise to
    /// the peak at `1 − start` of the updates, then a linear fall to 0; no separate warmup
    /// (Cramming: 0.25, `min(0.25 + t, 4(1 − t))`, the peak at three quarters).
    OneCycle {
        /// The factor the first update starts at.
        start: f64,
    },
}

impl Schedule {
    /// Checks its fractions.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::WarmupLinear => Ok(()),
            Self::WarmupStableDecay { decay_fraction }
                if decay_fraction > 0.0 && decay_fraction <= 1.0 =>
            {
                Ok(())
            }
            Self::OneCycle { start } if start > 0.0 && start < 1.0 => Ok(()),
            other => Err(Error::InvalidConfig(format!(
                "schedule {other:?}: decay_fraction must be in (0, 1], start in (0, 1)"
            ))),
        }
    }

    /// The learning rate of update `step` (0-based) of `total`, `warmup` of them warming up,
    /// at peak rate `peak`.
    pub fn rate(&self, peak: f64, step: usize, warmup: usize, total: usize) -> f64 {
        match *self {
            Self::WarmupLinear => warmup_linear_decay(peak, step, warmup, total),
            Self::WarmupStableDecay { decay_fraction } => {
                let decay = ((decay_fraction * total as f64).round() as usize).max(1);
                let stable_until = total.saturating_sub(decay);
                warming_up(peak, step, warmup).unwrap_or_else(|| match step < stable_until {
                    true => peak,
                    false => peak * (total.saturating_sub(step) as f64 / decay as f64).min(1.0),
                })
            }
            Self::OneCycle { start } => {
                // Rising from `start` with slope 1 meets the fall to 0 at t = 1 − start.
                let t = step as f64 / total.max(1) as f64;
                peak * (start + t).min((1.0 - t) / start)
            }
        }
    }
}

/// The rate of update `step` while the first `warmup` updates rise linearly to `peak`, or
/// `None` after them.
fn warming_up(peak: f64, step: usize, warmup: usize) -> Option<f64> {
    (step < warmup).then(|| peak * (step + 1) as f64 / warmup as f64)
}

/// Learning rate for optimizer update `step` (0-based) of `total` updates.
pub fn warmup_linear_decay(peak: f64, step: usize, warmup: usize, total: usize) -> f64 {
    warming_up(peak, step, warmup).unwrap_or_else(|| {
        let left = total.saturating_sub(step) as f64;
        let span = total.saturating_sub(warmup).max(1) as f64;
        peak * (left / span).clamp(0.0, 1.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_peaks_and_decays_to_zero() {
        let lr = |s| warmup_linear_decay(1.0, s, 10, 110);
        assert!((lr(0) - 0.1).abs() < 1e-12);
        assert!((lr(9) - 1.0).abs() < 1e-12);
        assert!((lr(10) - 1.0).abs() < 1e-12);
        assert!((lr(60) - 0.5).abs() < 1e-12);
        assert!(lr(109) > 0.0 && lr(109) < 0.02);
        assert!((0..109).all(|s| lr(s + 1) <= lr(s) || s < 9));
    }

    #[test]
    fn warmup_stable_decay_holds_the_peak_then_decays_over_its_share() {
        let wsd = Schedule::WarmupStableDecay {
            decay_fraction: 0.2,
        };
        let lr = |s| wsd.rate(2.0, s, 10, 100);
        assert!((lr(0) - 0.2).abs() < 1e-12);
        assert!((10..80).all(|s| lr(s) == 2.0), "the stable part");
        assert!((lr(90) - 1.0).abs() < 1e-12, "half way down the last 20");
        assert!(lr(99) > 0.0 && lr(99) <= 0.1);
        assert!((80..99).all(|s| lr(s + 1) < lr(s)));
    }

    #[test]
    fn one_cycle_is_crammings_triangle() {
        let cycle = Schedule::OneCycle { start: 0.25 };
        let lr = |s| cycle.rate(1.0, s, 0, 100);
        // min(0.25 + t, 4 (1 − t)): a quarter at the start, the peak at 75 %, 0 at the end.
        assert!((lr(0) - 0.25).abs() < 1e-12);
        assert!((lr(50) - 0.75).abs() < 1e-12);
        assert!((lr(75) - 1.0).abs() < 1e-12);
        assert!((lr(90) - 0.4).abs() < 1e-12);
        assert!((0..75).all(|s| lr(s + 1) > lr(s)) && (75..99).all(|s| lr(s + 1) < lr(s)));
        assert_eq!(
            Schedule::WarmupLinear.rate(1.0, 30, 10, 110),
            warmup_linear_decay(1.0, 30, 10, 110)
        );
    }

    #[test]
    fn fractions_out_of_range_are_refused() {
        for bad in [
            Schedule::WarmupStableDecay {
                decay_fraction: 0.0,
            },
            Schedule::WarmupStableDecay {
                decay_fraction: 1.5,
            },
            Schedule::OneCycle { start: 0.0 },
            Schedule::OneCycle { start: 1.0 },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
