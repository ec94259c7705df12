//! A programmatic judge of style that stands in for people in the bundled alignment demo: a
//! naive-Bayes bag of words fitted on two corpora (Shakespeare's plays against the Brown
//! corpus, both bundled), scoring a text by the mean log-odds of its words. It plays the part
//! of the "gold" reward that the DPO paper's IMDb experiments take from a sentiment
//! classifier: preferences are labelled by it, a reward model learns them, and a policy is
//! judged by it, so that a policy that games the reward model shows as a gap between the
//! two.

use std::collections::HashMap;

use crate::corpus::{Corpus, DocumentBoundary, bundled_data_dir};
use crate::error::{Error, Result};

/// Word log-odds of a target style against another.
#[derive(Debug, Clone)]
pub struct StyleScorer {
    log_odds: HashMap<String, f32>,
    /// The log-odds of a word neither corpus has.
    unseen: f32,
}

/// The lower-cased words of `text`: runs of letters (an apostrophe inside a word kept, so
/// that "'tis" and "o'er" count as Shakespeare writes them).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphabetic() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

impl StyleScorer {
    /// Fits word log-odds `log P(w | target) − log P(w | other)` with add-`smoothing`
    /// (Laplace) counts over the union of both vocabularies. Either side without a word is an
    /// error.
    pub fn fit<'a>(
        target: impl IntoIterator<Item = &'a str>,
        other: impl IntoIterator<Item = &'a str>,
        smoothing: f64,
    ) -> Result<Self> {
        crate::error::check_positive("smoothing", smoothing)?;
        let count = |texts: &mut dyn Iterator<Item = &'a str>| {
            let mut counts = HashMap::<String, f64>::new();
            let mut total = 0.0;
            for text in texts {
                for word in words(text) {
                    *counts.entry(word).or_default() += 1.0;
                    total += 1.0;
                }
            }
            (counts, total)
        };
        let (target, target_total) = count(&mut target.into_iter());
        let (other, other_total) = count(&mut other.into_iter());
        if target_total == 0.0 || other_total == 0.0 {
            return Err(Error::EmptyCorpus(
                "a style scorer needs words of both styles".into(),
            ));
        }
        let vocab: std::collections::HashSet<&String> = target.keys().chain(other.keys()).collect();
        let v = vocab.len() as f64;
        let (t_norm, o_norm) = (target_total + smoothing * v, other_total + smoothing * v);
        let odds = |t: f64, o: f64| {
            (((t + smoothing) / t_norm).ln() - ((o + smoothing) / o_norm).ln()) as f32
        };
        let log_odds = vocab
            .iter()
            .map(|&w| {
                let t = target.get(w).copied().unwrap_or(0.0);
                let o = other.get(w).copied().unwrap_or(0.0);
                (w.clone(), odds(t, o))
            })
            .collect();
        Ok(Self {
            log_odds,
            unseen: odds(0.0, 0.0),
        })
    }

    /// Fitted on the bundled corpora: Shakespeare's plays (the target) against the Brown
    /// corpus, every sentence of every fifth document of each left out; with its accuracy on
    /// the held-out sentences of at least four words (an equal number of each, the sign of
    /// the score deciding).
    pub fn bundled_shakespeare() -> Result<(Self, f64)> {
        let dir = bundled_data_dir();
        let read = |name: &str| -> Result<(Vec<String>, Vec<String>)> {
            let corpus = Corpus::from_dir(dir.join(name), DocumentBoundary::File)?;
            let (mut fit, mut held) = (Vec::new(), Vec::new());
            for (i, doc) in corpus.documents.into_iter().enumerate() {
                match i % 5 == 4 {
                    true => held.extend(doc.sentences),
                    false => fit.extend(doc.sentences),
                }
            }
            held.retain(|s| words(s).count() >= 4);
            Ok((fit, held))
        };
        let (shakespeare, shakespeare_held) = read("shakespeare")?;
        let (brown, brown_held) = read("brown")?;
        let scorer = Self::fit(
            shakespeare.iter().map(String::as_str),
            brown.iter().map(String::as_str),
            1.0,
        )?;
        let n = shakespeare_held.len().min(brown_held.len());
        let right = shakespeare_held[..n]
            .iter()
            .filter(|s| scorer.score(s) > 0.0)
            .count()
            + brown_held[..n]
                .iter()
                .filter(|s| scorer.score(s) <= 0.0)
                .count();
        Ok((scorer, right as f64 / (2 * n).max(1) as f64))
    }

    /// The mean log-odds of the words of `text`: above 0 when it reads more like the target
    /// style; 0 for a text without words.
    pub fn score(&self, text: &str) -> f32 {
        let (sum, n) = words(text).fold((0.0f32, 0usize), |(sum, n), w| {
            (
                sum + self.log_odds.get(&w).copied().unwrap_or(self.unseen),
                n + 1,
            )
        });
        if n == 0 { 0.0 } else { sum / n as f32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_inner_apostrophes_and_drop_case_and_punctuation() {
        let w: Vec<String> = words("'Tis O'er, the KING's-men!").collect();
        assert_eq!(w, ["tis", "o'er", "the", "king's", "men"]);
    }

    #[test]
    fn the_score_is_the_mean_of_hand_log_odds() {
        let scorer = StyleScorer::fit(["thou art thou"], ["you are you"], 1.0).unwrap();
        // Vocabulary {thou, art, you, are}; each side has 3 words: normaliser 3 + 4 = 7.
        let ln = |x: f64| x.ln() as f32;
        let thou = ln(3.0 / 7.0) - ln(1.0 / 7.0);
        let art = ln(2.0 / 7.0) - ln(1.0 / 7.0);
        assert!((scorer.score("thou") - thou).abs() < 1e-6);
        assert!((scorer.score("thou art") - (thou + art) / 2.0).abs() < 1e-6);
        assert!((scorer.score("you") + thou).abs() < 1e-6);
        // A word neither side has counts as even; a text without words scores 0.
        assert!(scorer.score("zebra").abs() < 1e-6);
        assert_eq!(scorer.score("... !"), 0.0);
    }

    #[test]
    fn a_side_without_words_is_an_error() {
        assert!(matches!(
            StyleScorer::fit(["thou"], ["..."], 1.0),
            Err(Error::EmptyCorpus(_))
        ));
        assert!(StyleScorer::fit(["thou"], ["you"], 0.0).is_err());
    }

    #[test]
    fn the_bundled_judge_tells_shakespeare_from_brown() {
        let (scorer, accuracy) = StyleScorer::bundled_shakespeare().unwrap();
        assert!(accuracy > 0.9, "held-out accuracy {accuracy}");
        assert!(scorer.score("thou art a villain, my lord") > 0.0);
        assert!(scorer.score("the committee said the election was conducted") < 0.0);
    }
}
