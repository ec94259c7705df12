//! What a batch's losses are summed over: counts of units (`targets`, `sequences`, `pairs`…)
//! taken from the data alone, before the model runs (see
//! [`Loss`](crate::objectives::Loss) for how the training loop divides by them).

/// The unit of per-token losses: the tokens that carry a target.
pub const TARGETS: &str = "targets";
/// The unit of losses over every real (non-padding) token: ELECTRA's discriminator, MiniLM's
/// relations.
pub const REAL_TOKENS: &str = "real_tokens";
/// The unit of per-sequence losses: the sequences (examples) of a batch.
pub const SEQUENCES: &str = "sequences";

/// Counts of the units a batch's losses are summed over, by unit name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights(Vec<(String, f64)>);

impl Weights {
    /// `count` of `unit`.
    pub fn of(unit: &str, count: f64) -> Self {
        Self(vec![(unit.to_string(), count)])
    }

    /// These weights and `count` of `unit` more.
    pub fn and(mut self, unit: &str, count: f64) -> Self {
        self.add(&Self::of(unit, count));
        self
    }

    /// The count of `unit` (0 when the batch has none).
    pub fn get(&self, unit: &str) -> f64 {
        self.0
            .iter()
            .find(|(u, _)| u == unit)
            .map_or(0.0, |&(_, n)| n)
    }

    /// Adds `other`'s counts, unit by unit.
    pub fn add(&mut self, other: &Weights) {
        for (unit, n) in &other.0 {
            match self.0.iter_mut().find(|(u, _)| u == unit) {
                Some((_, count)) => *count += n,
                None => self.0.push((unit.clone(), *n)),
            }
        }
    }

    /// The same counts with every unit named `{prefix}{unit}`, to keep apart the units of
    /// parts that a batch holds side by side (the tasks of a multi-task batch).
    pub fn prefixed(&self, prefix: &str) -> Self {
        Self(
            self.0
                .iter()
                .map(|(u, n)| (format!("{prefix}{u}"), *n))
                .collect(),
        )
    }

    /// `(unit, count)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(u, n)| (u.as_str(), *n))
    }
}
