//! BART's noise transforms (fairseq's `DenoisingDataset`): token masking, token deletion, text
//! infilling, sentence permutation and document rotation.
//!
//! Each is a pure function of the text, its rate and a random stream, so they compose in any
//! order, as BART applies them. They work on the body of a text (no `[CLS]`/`[SEP]`, which
//! framing adds afterwards) and carry word starts along, so that infilling can stay
//! word-aligned after other transforms ran. Counts round up, as fairseq's do
//! (`ceil(rate * n)`).

use rand::RngExt;

use crate::error::{Error, Result, check_rate};
use crate::tokenize::Segment;
use crate::util::rng::{ExampleRng, choose};

/// `ceil(rate * n)`, after checking `rate`.
fn budget(name: &'static str, rate: f64, n: usize) -> Result<usize> {
    check_rate(name, rate)?;
    Ok(((rate * n as f64).ceil() as usize).min(n))
}

/// A Poisson(`lambda`) draw by Knuth's method, capped at 127 as fairseq's table is.
pub fn poisson(lambda: f64, rng: &mut ExampleRng) -> usize {
    let floor = (-lambda).exp();
    let mut product = 1.0;
    for k in 0..128 {
        product *= rng.random::<f64>();
        if product <= floor {
            return k;
        }
    }
    127
}

/// Token masking: `ceil(rate * n)` tokens, drawn uniformly, become `mask`.
pub fn mask_tokens(text: &Segment, rate: f64, mask: u32, rng: &mut ExampleRng) -> Result<Segment> {
    let n = budget("token masking rate", rate, text.len())?;
    let mut out = text.clone();
    for i in choose(text.len(), n, rng) {
        out.ids[i] = mask;
    }
    Ok(out)
}

/// Token deletion: `ceil(rate * n)` tokens, drawn uniformly, are removed.
pub fn delete_tokens(text: &Segment, rate: f64, rng: &mut ExampleRng) -> Result<Segment> {
    let n = budget("token deletion rate", rate, text.len())?;
    let mut keep = vec![true; text.len()];
    for i in choose(text.len(), n, rng) {
        keep[i] = false;
    }
    let mut out = Segment::default();
    for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
        out.push(&[text.ids[i]], &[text.word_starts[i]]);
    }
    Ok(out)
}

/// Segment infilling: spans of whole words with Poisson(`lambda`) lengths (in words), drawn until
/// they cover `ceil(rate * words)`, each replaced by one `mask`; a zero-length span inserts a
/// `mask` before a random word instead (at most one insertion per word, so that a tiny
/// `lambda` cannot draw forever). Span starts are distinct words drawn uniformly; a span that
/// runs into another's start swallows it, so spans that overlap leave one `mask`, and the share
/// of words removed can fall below `rate` (as in fairseq). `lambda` must be positive.
pub fn infill(
    text: &Segment,
    rate: f64,
    lambda: f64,
    mask: u32,
    rng: &mut ExampleRng,
) -> Result<Segment> {
    check_lambda(lambda)?;
    let words = text.words();
    let target = budget("text infilling rate", rate, words.len())?;
    if target == 0 {
        return Ok(text.clone());
    }
    // A small `lambda` draws mostly empty spans; past one insertion per word, stop drawing.
    let mut lengths = Vec::new();
    let mut covered = 0;
    let mut empty = 0;
    while covered < target && empty < words.len() {
        let len = poisson(lambda, rng).min(target - covered);
        lengths.push(len);
        covered += len;
        empty += usize::from(len == 0);
    }
    let spans: Vec<usize> = lengths.iter().copied().filter(|&l| l > 0).collect();
    let inserts = lengths.len() - spans.len();
    // Per word: does a span start here, and is it inside another span (after its start)?
    let mut starts = vec![false; words.len()];
    let mut inside = vec![false; words.len()];
    for (start, len) in choose(words.len(), spans.len(), rng).into_iter().zip(spans) {
        starts[start] = true;
        for w in inside
            .iter_mut()
            .take((start + len).min(words.len()))
            .skip(start + 1)
        {
            *w = true;
        }
    }
    // Empty spans: masks inserted before random words (slot `words.len()` = at the end),
    // drawn up front so that the output is built in one pass.
    let mut inserted = vec![0usize; words.len() + 1];
    for _ in 0..inserts {
        inserted[rng.random_range(0..=words.len())] += 1;
    }
    let mut out = Segment::default();
    for (w, &(from, to)) in words.iter().enumerate() {
        for _ in 0..inserted[w] {
            out.push(&[mask], &[true]);
        }
        if inside[w] {
            continue;
        }
        if starts[w] {
            out.push(&[mask], &[true]);
        } else {
            out.push(&text.ids[from..to], &text.word_starts[from..to]);
        }
    }
    for _ in 0..inserted[words.len()] {
        out.push(&[mask], &[true]);
    }
    Ok(out)
}

/// Sentence permutation: `ceil(rate * n)` of the `n` sentences, drawn uniformly, are shuffled
/// among their own places; the others stay put (`rate = 1` shuffles all, BART's recipe).
pub fn permute_sentences<T>(sentences: &mut [T], rate: f64, rng: &mut ExampleRng) -> Result<()> {
    let n = budget("sentence permutation rate", rate, sentences.len())?;
    let mut places = choose(sentences.len(), n, rng);
    places.sort_unstable();
    for i in (1..places.len()).rev() {
        let j = rng.random_range(0..=i);
        sentences.swap(places[i], places[j]);
    }
    Ok(())
}

/// Document rotation: the text restarts at a token drawn uniformly from all but the first, and
/// what preceded it moves to the end. A text of fewer than two tokens is left as it is.
pub fn rotate(text: &Segment, rng: &mut ExampleRng) -> Segment {
    if text.len() < 2 {
        return text.clone();
    }
    let offset = rng.random_range(1..text.len());
    let mut out = text.clone();
    out.ids.rotate_left(offset);
    out.word_starts.rotate_left(offset);
    out
}

/// BART's noise: which transforms run on a text, and how much. They run in fairseq's order:
/// sentence permutation, token masking, token deletion, text infilling, document rotation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BartNoise {
    /// Share of the sentences shuffled among their places (1 = all).
    pub permute: f64,
    /// Share of the tokens replaced by `[MASK]`, one each.
    pub mask: f64,
    /// Share of the tokens deleted.
    pub delete: f64,
    /// Share of the words removed by text infilling.
    pub infill: f64,
    /// Mean length, in words, of an infilled span (Poisson λ).
    pub poisson_lambda: f64,
    /// Probability that the text is rotated.
    pub rotate: f64,
}

/// The span length mean of BART's paper (the posted BART-large command used 3.5).
pub const DEFAULT_POISSON_LAMBDA: f64 = 3.0;

impl BartNoise {
    /// No noise at all; the starting point of the single-transform presets.
    pub const NONE: Self = Self {
        permute: 0.0,
        mask: 0.0,
        delete: 0.0,
        infill: 0.0,
        poisson_lambda: DEFAULT_POISSON_LAMBDA,
        rotate: 0.0,
    };

    /// BART-large's published recipe: text infilling of 30 % of the words (λ = 3) and every
    /// sentence permuted.
    pub const BART: Self = Self {
        permute: 1.0,
        infill: 0.3,
        ..Self::NONE
    };

    /// The preset named `name`: `bart`, or one transform alone as in BART's comparison of
    /// them (`mask`, `delete` and `infill` at 30 %, `permute` of every sentence, `rotate`
    /// always).
    pub fn preset(name: &str) -> Result<Self> {
        let mut noise = Self::NONE;
        match name {
            "bart" => noise = Self::BART,
            "mask" => noise.mask = 0.3,
            "delete" => noise.delete = 0.3,
            "infill" => noise.infill = 0.3,
            "permute" => noise.permute = 1.0,
            "rotate" => noise.rotate = 1.0,
            other => {
                return Err(Error::InvalidConfig(format!(
                    "unknown BART noise {other:?} (expected bart, mask, delete, infill, \
                     permute or rotate)"
                )));
            }
        }
        Ok(noise)
    }

    /// Checks every rate and λ.
    pub fn validate(&self) -> Result<()> {
        check_rate("sentence permutation rate", self.permute)?;
        check_rate("token masking rate", self.mask)?;
        check_rate("token deletion rate", self.delete)?;
        check_rate("text infilling rate", self.infill)?;
        check_rate("rotation probability", self.rotate)?;
        check_lambda(self.poisson_lambda)
    }

    /// The noisy version of the text made of `sentences` (in order). Transforms whose rate is
    /// 0 draw nothing.
    pub fn apply(&self, sentences: &[Segment], mask: u32, rng: &mut ExampleRng) -> Result<Segment> {
        self.validate()?;
        // At rate 0 the permutation draws nothing and keeps the order.
        let mut order: Vec<&Segment> = sentences.iter().collect();
        permute_sentences(&mut order, self.permute, rng)?;
        let mut text = Segment::concat(order);
        if self.mask > 0.0 {
            text = mask_tokens(&text, self.mask, mask, rng)?;
        }
        if self.delete > 0.0 {
            text = delete_tokens(&text, self.delete, rng)?;
        }
        if self.infill > 0.0 {
            text = infill(&text, self.infill, self.poisson_lambda, mask, rng)?;
        }
        if self.rotate > 0.0 && rng.random::<f64>() < self.rotate {
            text = rotate(&text, rng);
        }
        Ok(text)
    }
}

fn check_lambda(lambda: f64) -> Result<()> {
    if lambda > 0.0 && lambda.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "the Poisson span length mean must be finite and positive, got {lambda}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::example_rng;

    const MASK: u32 = 4;

    /// Words of `lens` tokens with ids counting up from 100, so that each id is unique.
    fn text(lens: &[usize]) -> Segment {
        let mut t = Segment::default();
        let mut id = 100;
        for &n in lens {
            for k in 0..n {
                t.push(&[id], &[k == 0]);
                id += 1;
            }
        }
        t
    }

    fn long_text() -> Segment {
        text(&(0..60).map(|w| 1 + w % 3).collect::<Vec<_>>())
    }

    #[test]
    fn masking_and_deletion_touch_exactly_their_budget() {
        let t = long_text();
        for seed in 0..20 {
            let m = mask_tokens(&t, 0.3, MASK, &mut example_rng(seed, 0, 0)).unwrap();
            let masked = m.ids.iter().filter(|&&id| id == MASK).count();
            assert_eq!(masked, (0.3 * t.len() as f64).ceil() as usize);
            assert!(m.ids.iter().zip(&t.ids).all(|(a, b)| a == b || *a == MASK));

            let d = delete_tokens(&t, 0.3, &mut example_rng(seed, 0, 0)).unwrap();
            assert_eq!(d.len(), t.len() - (0.3 * t.len() as f64).ceil() as usize);
            let mut rest = t.ids.iter();
            assert!(
                d.ids.iter().all(|id| rest.any(|x| x == id)),
                "not a subsequence"
            );
        }
        assert!(mask_tokens(&t, 1.2, MASK, &mut example_rng(0, 0, 0)).is_err());
    }

    #[test]
    fn infilling_removes_whole_words_and_leaves_one_mask_per_span() {
        let t = long_text();
        let words = t.words();
        let mut removed_share = 0.0;
        for seed in 0..200 {
            let out = infill(&t, 0.3, 3.0, MASK, &mut example_rng(seed, 0, 0)).unwrap();
            // Walking the output against the input: every non-mask token is the next kept
            // input token; every mask stands for zero or more whole words.
            let mut w = 0;
            let mut i = 0;
            let mut removed = 0;
            while i < out.len() {
                if out.ids[i] == MASK {
                    i += 1;
                    // Skip whole input words until the next kept token (or the end).
                    let next = out.ids[i..].iter().copied().find(|&id| id != MASK);
                    while w < words.len() && Some(t.ids[words[w].0]) != next {
                        removed += 1;
                        w += 1;
                    }
                } else {
                    let (from, to) = words[w];
                    assert_eq!(&out.ids[i..i + (to - from)], &t.ids[from..to], "word split");
                    i += to - from;
                    w += 1;
                }
            }
            assert_eq!(w, words.len(), "input words lost without a mask");
            assert!(removed <= (0.3 * words.len() as f64).ceil() as usize);
            assert!(out.ids.iter().any(|&id| id == MASK));
            removed_share += removed as f64 / words.len() as f64;
        }
        let mean = removed_share / 200.0;
        assert!((0.15..=0.3).contains(&mean), "mean removed share {mean}");
    }

    #[test]
    fn zero_length_spans_only_insert_masks() {
        // With a tiny mean nearly every span is empty: masks are inserted, one per word at
        // most, and no text is removed.
        let t = long_text();
        let out = infill(&t, 0.25, 1e-4, MASK, &mut example_rng(1, 0, 0)).unwrap();
        let kept: Vec<u32> = out.ids.iter().copied().filter(|&id| id != MASK).collect();
        assert_eq!(kept, t.ids);
        assert_eq!(out.len() - t.len(), t.words().len());
        for lambda in [0.0, -1.0, f64::NAN] {
            assert!(infill(&t, 0.3, lambda, MASK, &mut example_rng(1, 0, 0)).is_err());
        }
    }

    #[test]
    fn infilled_spans_follow_the_poisson_mean_and_the_rate_over_many_draws() {
        // 3000 one-token words at 10 %: spans rarely overlap, so each run of removed words is
        // one span, and masks beyond one per run are empty spans (insertions).
        let t = text(&[1; 3000]);
        let (mut removed, mut runs, mut masks) = (0, 0, 0);
        for seed in 0..20 {
            let out = infill(&t, 0.1, 3.0, MASK, &mut example_rng(seed, 0, 0)).unwrap();
            let kept: Vec<u32> = out.ids.iter().copied().filter(|&id| id != MASK).collect();
            masks += out.len() - kept.len();
            removed += t.len() - kept.len();
            // A run of removed words ends wherever consecutive kept ids jump.
            let mut previous = 99;
            for &id in kept.iter().chain([&3100]) {
                runs += usize::from(id != previous + 1);
                previous = id;
            }
        }
        let rate = removed as f64 / (20.0 * 300.0);
        let mean = removed as f64 / runs as f64;
        let inserts = (masks - runs) as f64 / masks as f64;
        assert!((0.9..=1.0).contains(&rate), "removed {rate} of the budget");
        // E[Poisson(3) | > 0] = 3 / (1 - e^-3) = 3.16; the last span of each text is cut short.
        assert!((2.9..=3.45).contains(&mean), "mean span {mean}");
        // P(0) = e^-3 = 0.05 of the draws are empty spans.
        assert!(
            (0.02..=0.09).contains(&inserts),
            "share of insertions {inserts}"
        );
    }

    #[test]
    fn the_presets_and_their_composition() {
        // Sentences of distinct ids.
        let sentences: Vec<Segment> = (0..8u32)
            .map(|k| {
                let mut s = text(&[1 + k as usize % 3, 2, 1]);
                s.ids.iter_mut().for_each(|id| *id += 100 * k);
                s
            })
            .collect();
        let original = Segment::concat(&sentences);
        for seed in 0..20 {
            let mut rng = example_rng(seed, 0, 0);
            // Permutation alone keeps every sentence whole: the same multiset of sentences.
            let permuted = BartNoise::preset("permute").unwrap();
            let out = permuted.apply(&sentences, MASK, &mut rng).unwrap();
            let mut at = 0;
            let mut seen = Vec::new();
            while at < out.len() {
                let s = sentences
                    .iter()
                    .position(|s| s.ids[0] == out.ids[at])
                    .unwrap();
                assert_eq!(&out.ids[at..at + sentences[s].len()], &sentences[s].ids[..]);
                at += sentences[s].len();
                seen.push(s);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..8).collect::<Vec<_>>());
            // BART's recipe: the kept tokens are original tokens, each once; masks replace
            // the rest.
            let out = BartNoise::BART.apply(&sentences, MASK, &mut rng).unwrap();
            let mut kept: Vec<u32> = out.ids.iter().copied().filter(|&id| id != MASK).collect();
            kept.sort_unstable();
            kept.dedup();
            assert_eq!(kept.len(), out.ids.iter().filter(|&&id| id != MASK).count());
            assert!(kept.iter().all(|id| original.ids.contains(id)));
            assert!(out.ids.contains(&MASK));
            // No noise: the text itself.
            let none = BartNoise::NONE.apply(&sentences, MASK, &mut rng).unwrap();
            assert_eq!(none, original);
        }
    }

    #[test]
    fn bad_rates_lambdas_and_names_are_errors() {
        let s = [text(&[1, 2])];
        let mut rng = example_rng(0, 0, 0);
        let bad = |base: BartNoise, set: fn(&mut BartNoise)| {
            let mut noise = base;
            set(&mut noise);
            noise
        };
        for noise in [
            bad(BartNoise::NONE, |n| n.mask = 1.5),
            bad(BartNoise::NONE, |n| n.delete = -0.1),
            bad(BartNoise::NONE, |n| n.rotate = f64::NAN),
            bad(BartNoise::BART, |n| n.poisson_lambda = 0.0),
            bad(BartNoise::BART, |n| n.poisson_lambda = -2.0),
        ] {
            assert!(noise.validate().is_err(), "{noise:?}");
            assert!(noise.apply(&s, MASK, &mut rng).is_err());
        }
        assert!(BartNoise::preset("shuffle").is_err());
    }

    #[test]
    fn poisson_draws_have_the_right_mean() {
        let mut rng = example_rng(9, 0, 0);
        let mean = (0..20_000).map(|_| poisson(3.0, &mut rng)).sum::<usize>() as f64 / 20_000.0;
        assert!((mean - 3.0).abs() < 0.08, "mean {mean}");
    }

    #[test]
    fn permutation_moves_only_the_chosen_sentences_and_rotation_is_a_rotation() {
        for seed in 0..20 {
            let mut all: Vec<usize> = (0..10).collect();
            permute_sentences(&mut all, 1.0, &mut example_rng(seed, 0, 0)).unwrap();
            let mut sorted = all.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..10).collect::<Vec<_>>());

            let mut some: Vec<usize> = (0..10).collect();
            permute_sentences(&mut some, 0.3, &mut example_rng(seed, 0, 0)).unwrap();
            assert!(some.iter().enumerate().filter(|(i, s)| *i != **s).count() <= 3);

            let t = long_text();
            let r = rotate(&t, &mut example_rng(seed, 0, 0));
            let offset = t.ids.iter().position(|&id| id == r.ids[0]).unwrap();
            assert!(offset > 0);
            assert_eq!(r.ids, [&t.ids[offset..], &t.ids[..offset]].concat());
        }
        let mut none: Vec<usize> = (0..5).collect();
        permute_sentences(&mut none, 0.0, &mut example_rng(0, 0, 0)).unwrap();
        assert_eq!(none, (0..5).collect::<Vec<_>>());
    }
}
