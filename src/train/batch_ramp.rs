//! A batch that grows over the first part of a run (Cramming's batch-size ramp): small batches
//! while the model learns fast from little, the full batch once updates need less noise.

use burn::prelude::*;

use crate::error::{Error, Result};

/// How many examples each early step draws: `start` at the first step, rising linearly to the
/// full `batch_size × grad_accumulation` at `fraction` of the steps, the full batch after.
/// Cramming ramps to its final batch by 60 % of its budget. The learning-rate schedule and
/// everything else go on by steps; a small step is as much an update as a full one.
#[derive(Config, Debug, PartialEq, Copy)]
pub struct BatchRamp {
    /// Examples of the first step (at least 1, at most the full batch).
    pub start: usize,
    /// Share of the steps over which the batch grows, in (0, 1].
    pub fraction: f64,
}

impl BatchRamp {
    /// Checks the ramp against the full batch of `full` examples.
    pub fn validate(&self, full: usize) -> Result<()> {
        if self.start == 0 || self.start > full {
            return Err(Error::InvalidConfig(format!(
                "batch_ramp.start must be between 1 and the full batch of {full} examples, \
                 not {}",
                self.start
            )));
        }
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return Err(Error::InvalidConfig(format!(
                "batch_ramp.fraction must be in (0, 1], not {}",
                self.fraction
            )));
        }
        Ok(())
    }

    /// The first step (from 0) of a `steps`-step run that draws the full batch.
    pub fn end(&self, steps: usize) -> usize {
        (self.fraction * steps as f64).ceil() as usize
    }

    /// Examples step `step` (from 0) of a `steps`-step run draws, of a full batch of `full`.
    pub fn examples(&self, step: usize, steps: usize, full: usize) -> usize {
        let end = self.end(steps);
        if step >= end {
            return full;
        }
        let grown = (full - self.start) as f64 * step as f64 / end as f64;
        self.start + grown.round() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_rises_from_start_to_full_by_the_fraction() {
        let ramp = BatchRamp::new(4, 0.6);
        let sizes: Vec<usize> = (0..10).map(|s| ramp.examples(s, 10, 16)).collect();
        assert_eq!(sizes[0], 4);
        assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
        assert!(sizes[..6].iter().all(|&n| n < 16), "{sizes:?}");
        assert!(sizes[6..].iter().all(|&n| n == 16), "{sizes:?}");
        // A ramp over all steps still ends below the full batch only before its last step.
        let whole = BatchRamp::new(1, 1.0);
        assert_eq!(whole.examples(0, 3, 9), 1);
        assert_eq!(whole.examples(3, 3, 9), 9);
    }

    #[test]
    fn a_step_starts_where_the_steps_before_it_ended() {
        let config = crate::train::TrainConfig::new(10, 4)
            .with_grad_accumulation(2)
            .with_batch_ramp(Some(BatchRamp::new(2, 0.5)));
        let mut drawn = 0;
        for step in 0..=10 {
            assert_eq!(config.examples_before(step), drawn, "step {step}");
            drawn += config.step_examples(step) as u64;
        }
        assert_eq!(config.step_examples(0), 2);
        assert_eq!(config.step_examples(9), 8);
        assert!(
            config
                .with_batch_ramp(Some(BatchRamp::new(9, 0.5)))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn a_ramp_out_of_range_is_refused() {
        assert!(BatchRamp::new(0, 0.5).validate(8).is_err());
        assert!(BatchRamp::new(9, 0.5).validate(8).is_err());
        assert!(BatchRamp::new(2, 0.0).validate(8).is_err());
        assert!(BatchRamp::new(2, 1.5).validate(8).is_err());
        assert!(BatchRamp::new(8, 1.0).validate(8).is_ok());
    }
}
