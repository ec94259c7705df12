//! Dynamic masking for masked language modelling: single tokens (BERT, RoBERTa), whole words,
//! n-grams of words (ALBERT) or geometric spans of words (SpanBERT).
//!
//! The replacement split is given as absolute fractions of the selected positions
//! (`mask_replace_prob` = 0.8 and `random_replace_prob` = 0.1 give BERT's 80/10/10), as in HF's
//! newer collator, which avoids the "0.5 should be 0.1" confusion of the conditional form.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::IGNORE_INDEX;

use crate::error::{Error, Result, check_rate};
use crate::util::rng::ExampleRng;

/// What masking selects at a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum MaskUnit {
    /// Single tokens (BERT, RoBERTa).
    Token,
    /// Whole words, in random order, skipping a word that would overflow the budget (BERT's
    /// whole-word masking).
    WholeWord,
    /// Runs of `n` whole words, `n ≤ max_n` drawn with `p ∝ 1/n`, shortened to fit the budget
    /// (ALBERT's n-gram masking; ALBERT uses 3).
    NGram {
        /// Longest n-gram, at least 1.
        max_n: usize,
    },
    /// Spans of whole words whose lengths follow a geometric distribution with parameter `p`
    /// clipped at `max_words` (SpanBERT: 0.2 and 10, mean 3.8 words), anchored at a random
    /// token's word; one `[MASK]`/random/keep decision per span. The budget is met exactly and
    /// no word is split (the reference cuts the last span mid-word to meet it).
    Span {
        /// Success probability of the geometric distribution, in (0, 1).
        p: f64,
        /// Longest span in words, at least 1.
        max_words: usize,
    },
}

impl MaskUnit {
    /// SpanBERT's spans: geometric p = 0.2 clipped at 10 words.
    pub const SPANBERT: Self = Self::Span {
        p: 0.2,
        max_words: 10,
    };

    /// ALBERT's n-grams of up to 3 words.
    pub const ALBERT: Self = Self::NGram { max_n: 3 };

    /// Whether the unit is made of whole words.
    pub fn is_word_level(&self) -> bool {
        !matches!(self, Self::Token)
    }

    /// Checks the distribution's parameters.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Span { p, .. } if !(p > 0.0 && p < 1.0) => Err(Error::InvalidConfig(format!(
                "the span-length distribution's p must lie in (0, 1), got {p}"
            ))),
            Self::Span { max_words: 0, .. } => Err(Error::InvalidConfig(
                "the longest span must be at least 1 word".into(),
            )),
            Self::NGram { max_n: 0 } => Err(Error::InvalidConfig(
                "the longest n-gram must be at least 1 word".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Cumulative probabilities of lengths `1..=max` in words (empty for token and
    /// whole-word masking).
    fn length_cdf(&self) -> Vec<f64> {
        let weights: Vec<f64> = match *self {
            Self::Span { p, max_words } => (0..max_words)
                .map(|i| p * (1.0 - p).powi(i as i32))
                .collect(),
            Self::NGram { max_n } => (1..=max_n).map(|n| 1.0 / n as f64).collect(),
            Self::Token | Self::WholeWord => Vec::new(),
        };
        let total: f64 = weights.iter().sum();
        weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w / total;
                Some(*acc)
            })
            .collect()
    }

    /// The probability of each length `1..=max` in words: for tests and documentation.
    pub fn length_distribution(&self) -> Vec<f64> {
        let mut cdf = self.length_cdf();
        cdf.insert(0, 0.0);
        cdf.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

impl std::str::FromStr for MaskUnit {
    type Err = Error;

    /// `token`, `word`, `ngram` (ALBERT's, up to 3 words) or `span` (SpanBERT's).
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "token" => Ok(Self::Token),
            "word" => Ok(Self::WholeWord),
            "ngram" => Ok(Self::ALBERT),
            "span" => Ok(Self::SPANBERT),
            other => Err(Error::InvalidConfig(format!(
                "unknown mask unit {other:?} (expected token, word, ngram or span)"
            ))),
        }
    }
}

/// How tokens are chosen and replaced for masked LM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlmMasking {
    /// Share of the maskable (non-special) tokens that become targets. Default 0.15.
    pub mask_prob: f64,
    /// Share of the targets whose input becomes `[MASK]`. Default 0.8.
    pub mask_replace_prob: f64,
    /// Share of the targets whose input becomes a random non-special token. Default 0.1; the
    /// rest keep their original token.
    pub random_replace_prob: f64,
    /// What is selected at a time: tokens, whole words (from the tokenizer's word starts),
    /// n-grams or spans of words. Default tokens.
    pub unit: MaskUnit,
}

impl Default for MlmMasking {
    fn default() -> Self {
        Self {
            mask_prob: 0.15,
            mask_replace_prob: 0.8,
            random_replace_prob: 0.1,
            unit: MaskUnit::Token,
        }
    }
}

impl MlmMasking {
    /// ELECTRA's masking: 15 % of the tokens, of which 85 % become `[MASK]` and 15 % stay as
    /// they are; no random tokens (the generator supplies the replacements).
    pub fn electra() -> Self {
        Self {
            mask_prob: 0.15,
            mask_replace_prob: 0.85,
            random_replace_prob: 0.0,
            unit: MaskUnit::Token,
        }
    }

    /// SpanBERT's masking: 15 % of the tokens in geometric spans of whole words (p = 0.2, at
    /// most 10), 80/10/10 decided once per span.
    pub fn spanbert() -> Self {
        Self::default().with_unit(MaskUnit::SPANBERT)
    }

    /// This masking with `unit` as what it selects.
    pub fn with_unit(self, unit: MaskUnit) -> Self {
        Self { unit, ..self }
    }

    /// Checks that the rates are probabilities, the replacement shares add up to at most 1 and
    /// the unit's parameters are valid.
    pub fn validate(&self) -> Result<()> {
        self.unit.validate()?;
        check_rate("mask_prob", self.mask_prob)?;
        check_rate("mask_replace_prob", self.mask_replace_prob)?;
        check_rate("random_replace_prob", self.random_replace_prob)?;
        if self.mask_replace_prob + self.random_replace_prob > 1.0 + 1e-9 {
            return Err(Error::InvalidConfig(format!(
                "mask_replace_prob ({}) + random_replace_prob ({}) exceeds 1",
                self.mask_replace_prob, self.random_replace_prob
            )));
        }
        Ok(())
    }
}

/// A masked example: the corrupted input and, per position, the original token where it is a
/// target or [`IGNORE_INDEX`] elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    /// Input ids after masking.
    pub input: Vec<u32>,
    /// Targets, [`IGNORE_INDEX`] where there is nothing to predict.
    pub targets: Vec<i64>,
}

/// Applies [`MlmMasking`] for one vocabulary.
#[derive(Debug, Clone)]
pub struct MlmMasker {
    masking: MlmMasking,
    mask_id: u32,
    special: Vec<bool>,
    replacements: Vec<u32>,
    /// A uniform `u32` below this becomes `[MASK]`; below `random_cut`, a random token.
    mask_cut: u64,
    random_cut: u64,
    /// Cumulative probabilities of n-gram or span lengths in words.
    lengths: Vec<f64>,
}

/// What a selected token becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replacement {
    Mask,
    Random,
    Keep,
}

impl MlmMasker {
    /// A masker for a vocabulary of `vocab_size` tokens whose special ids are `special_ids`.
    /// Special tokens are never selected and never drawn as random replacements.
    pub fn new(
        masking: MlmMasking,
        vocab_size: usize,
        mask_id: u32,
        special_ids: &[u32],
    ) -> Result<Self> {
        masking.validate()?;
        let mut special = vec![false; vocab_size];
        for &id in special_ids.iter().chain(std::iter::once(&mask_id)) {
            let slot = special.get_mut(id as usize).ok_or(Error::TokenOutOfRange {
                id,
                vocab: vocab_size,
            })?;
            *slot = true;
        }
        let replacements: Vec<u32> = (0..vocab_size as u32)
            .filter(|&id| !special[id as usize])
            .collect();
        if replacements.is_empty() {
            return Err(Error::InvalidConfig(
                "the vocabulary has no non-special token to draw replacements from".into(),
            ));
        }
        let cut = |p: f64| (p * (1u64 << 32) as f64) as u64;
        Ok(Self {
            masking,
            mask_id,
            special,
            replacements,
            mask_cut: cut(masking.mask_replace_prob),
            random_cut: cut(masking.mask_replace_prob + masking.random_replace_prob),
            lengths: masking.unit.length_cdf(),
        })
    }

    /// A masker for `tokenizer`'s vocabulary.
    pub fn for_tokenizer(
        masking: MlmMasking,
        tokenizer: &crate::tokenize::Tokenizer,
    ) -> Result<Self> {
        let s = tokenizer.special();
        Self::new(
            masking,
            tokenizer.vocab_size(),
            s.mask,
            &[s.pad, s.unk, s.cls, s.sep],
        )
    }

    /// The masking settings.
    pub fn masking(&self) -> &MlmMasking {
        &self.masking
    }

    /// Whether `id` is never masked.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false)
    }

    /// Masks `ids` (which may contain special tokens; `word_starts` as from the tokenizer).
    ///
    /// The number of targets is `floor(mask_prob * n + u)` with `u ~ U[0, 1)` and `n` the number
    /// of maskable tokens: exact in expectation, as fairseq's probabilistic rounding, but at least
    /// one when `mask_prob > 0`, as BERT. Tokens and spans meet it exactly; whole words and
    /// n-grams are taken in random order while they fit it (BERT and ALBERT skip a word that
    /// would overflow it), which can leave it a little short. Each selected token is replaced
    /// on its own, except in spans, which share one decision.
    pub fn mask(&self, ids: &[u32], word_starts: &[bool], rng: &mut ExampleRng) -> Result<Masked> {
        if ids.len() != word_starts.len() {
            return Err(Error::InvalidConfig(format!(
                "{} ids but {} word starts",
                ids.len(),
                word_starts.len()
            )));
        }
        // One pass finds the maskable positions and checks every id.
        let mut candidates: Vec<u32> = Vec::with_capacity(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            match self.special.get(id as usize) {
                Some(false) => candidates.push(i as u32),
                Some(true) => {}
                None => {
                    return Err(Error::TokenOutOfRange {
                        id,
                        vocab: self.special.len(),
                    });
                }
            }
        }
        let mut input = ids.to_vec();
        let mut targets = vec![IGNORE_INDEX; ids.len()];
        let maskable = candidates.len();
        let budget = ((self.masking.mask_prob * maskable as f64) + rng.random::<f64>()) as usize;
        // At least one target when the rate is positive (BERT's rule), so that no example is
        // wasted; at most every maskable token.
        let floor = usize::from(self.masking.mask_prob > 0.0);
        let budget = budget.max(floor).min(maskable);
        if budget == 0 {
            return Ok(Masked { input, targets });
        }
        if !self.masking.unit.is_word_level() {
            for k in 0..budget {
                let j = rng.random_range(k..maskable);
                candidates.swap(k, j);
                self.replace(candidates[k] as usize, &mut input, &mut targets, ids, rng);
            }
            return Ok(Masked { input, targets });
        }
        // Word spans [start, end): a maskable token continues the word of the maskable token
        // just before it unless it starts a word itself.
        let mut words: Vec<(u32, u32)> = Vec::with_capacity(maskable);
        for &pos in &candidates {
            match words.last_mut() {
                Some(w) if w.1 == pos && !word_starts[pos as usize] => w.1 += 1,
                _ => words.push((pos, pos + 1)),
            }
        }
        let mut out = Masked { input, targets };
        match self.masking.unit {
            MaskUnit::Span { .. } => {
                self.mask_spans(&words, &candidates, budget, ids, &mut out, rng)
            }
            _ => self.mask_word_runs(&words, budget, ids, &mut out, rng),
        }
        Ok(out)
    }

    /// Whole words or n-grams of them: start words in random order, each taking `n` words
    /// (1 for whole words, drawn for n-grams) shortened until they fit what is left of the
    /// budget; a word already taken is never taken twice.
    fn mask_word_runs(
        &self,
        words: &[(u32, u32)],
        budget: usize,
        ids: &[u32],
        out: &mut Masked,
        rng: &mut ExampleRng,
    ) {
        let n = words.len();
        // Words keep their sequence order; `order` shuffles their indices.
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut taken = vec![false; n];
        let mut left = budget;
        for k in 0..n {
            let j = rng.random_range(k..n);
            order.swap(k, j);
            let first = order[k] as usize;
            if taken[first] {
                continue;
            }
            // The longest run of free, adjacent words from `first`, at most `want` long,
            // that fits the budget.
            let want = self.draw_length(rng);
            let (mut run, mut size) = (0, 0);
            while run < want && first + run < n {
                let (start, end) = words[first + run];
                let adjacent = run == 0 || words[first + run - 1].1 == start;
                let cost = (end - start) as usize;
                if taken[first + run] || !adjacent || size + cost > left {
                    break;
                }
                size += cost;
                run += 1;
            }
            for w in first..first + run {
                taken[w] = true;
                for pos in words[w].0..words[w].1 {
                    self.replace(pos as usize, &mut out.input, &mut out.targets, ids, rng);
                }
            }
            left -= size;
            if left == 0 {
                break;
            }
        }
    }

    /// SpanBERT's spans: a length in words, an anchor token drawn uniformly, then words from
    /// the anchor's on while they are free, adjacent and fit the budget; one replacement
    /// decision for the whole span.
    fn mask_spans(
        &self,
        words: &[(u32, u32)],
        candidates: &[u32],
        budget: usize,
        ids: &[u32],
        out: &mut Masked,
        rng: &mut ExampleRng,
    ) {
        let mut word_of = vec![u32::MAX; ids.len()];
        for (w, &(start, end)) in words.iter().enumerate() {
            word_of[start as usize..end as usize].fill(w as u32);
        }
        let mut taken = vec![false; words.len()];
        let mut left = budget;
        // Rejections (anchors in taken words or in words too long for what is left) grow as
        // the budget fills; past this many, the rest is filled token by token.
        let mut tries = 64 * candidates.len() + 64;
        while left > 0 && tries > 0 {
            tries -= 1;
            let want = self.draw_length(rng);
            let anchor = candidates[rng.random_range(0..candidates.len())];
            let first = word_of[anchor as usize] as usize;
            let fits = |w: usize, left: usize| (words[w].1 - words[w].0) as usize <= left;
            if taken[first] || !fits(first, left) {
                continue;
            }
            let decision = self.decide(rng);
            let mut w = first;
            while w < words.len()
                && w < first + want
                && !taken[w]
                && fits(w, left)
                && (w == first || words[w - 1].1 == words[w].0)
            {
                taken[w] = true;
                for pos in words[w].0..words[w].1 {
                    let pos = pos as usize;
                    out.targets[pos] = i64::from(ids[pos]);
                    out.input[pos] = self.apply(decision, ids[pos], rng);
                }
                left -= (words[w].1 - words[w].0) as usize;
                w += 1;
            }
        }
        // Only a budget that no free word fits gets here: single free tokens meet it.
        for &pos in candidates {
            if left == 0 {
                break;
            }
            let pos = pos as usize;
            if out.targets[pos] == IGNORE_INDEX {
                self.replace(pos, &mut out.input, &mut out.targets, ids, rng);
                left -= 1;
            }
        }
    }

    /// A run length in words from the unit's distribution (1 for whole words).
    fn draw_length(&self, rng: &mut ExampleRng) -> usize {
        if self.lengths.is_empty() {
            return 1;
        }
        let u: f64 = rng.random();
        1 + self.lengths[..self.lengths.len() - 1]
            .iter()
            .take_while(|&&c| c <= u)
            .count()
    }

    /// Makes position `pos` of `input` a target: its original (`ids[pos]`) goes to `targets`
    /// and the input gets its [`replacement`](Self::replacement).
    #[inline]
    fn replace(
        &self,
        pos: usize,
        input: &mut [u32],
        targets: &mut [i64],
        ids: &[u32],
        rng: &mut ExampleRng,
    ) {
        targets[pos] = i64::from(ids[pos]);
        input[pos] = self.replacement(ids[pos], rng);
    }

    /// What a selected token becomes in the input: `[MASK]`, a random non-special token or
    /// `original`, in the masking's shares.
    #[inline]
    pub fn replacement(&self, original: u32, rng: &mut ExampleRng) -> u32 {
        let decision = self.decide(rng);
        self.apply(decision, original, rng)
    }

    /// Draws `[MASK]`, random or keep in the masking's shares.
    #[inline]
    fn decide(&self, rng: &mut ExampleRng) -> Replacement {
        let r = u64::from(rng.random::<u32>());
        if r < self.mask_cut {
            Replacement::Mask
        } else if r < self.random_cut {
            Replacement::Random
        } else {
            Replacement::Keep
        }
    }

    /// The token `original` becomes under `decision` (a random one is drawn per token).
    #[inline]
    fn apply(&self, decision: Replacement, original: u32, rng: &mut ExampleRng) -> u32 {
        match decision {
            Replacement::Mask => self.mask_id,
            Replacement::Random => self.replacements[rng.random_range(0..self.replacements.len())],
            Replacement::Keep => original,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::example_rng;

    const VOCAB: usize = 1000;
    const PAD: u32 = 0;
    const CLS: u32 = 2;
    const SEP: u32 = 3;
    const MASK: u32 = 4;

    fn masker(masking: MlmMasking) -> MlmMasker {
        MlmMasker::new(masking, VOCAB, MASK, &[PAD, 1, CLS, SEP]).unwrap()
    }

    /// `[CLS] w.. [SEP] [PAD]..` with words of 1 to 3 pieces.
    fn example(seed: u64, len: usize) -> (Vec<u32>, Vec<bool>) {
        let mut rng = example_rng(seed, 0, 0);
        let mut ids = vec![CLS];
        let mut starts = vec![true];
        while ids.len() < len - 3 {
            let pieces = rng.random_range(1..=3);
            for p in 0..pieces {
                ids.push(rng.random_range(5..VOCAB as u32));
                starts.push(p == 0);
            }
        }
        ids.push(SEP);
        starts.push(true);
        ids.extend([PAD, PAD]);
        starts.extend([true, true]);
        (ids, starts)
    }

    #[test]
    fn special_and_padding_tokens_are_never_touched() {
        let bert = |unit| MlmMasking {
            mask_prob: 0.9,
            unit,
            ..Default::default()
        };
        let electra = MlmMasking {
            mask_prob: 0.9,
            ..MlmMasking::electra()
        };
        let units = [
            MaskUnit::Token,
            MaskUnit::WholeWord,
            MaskUnit::ALBERT,
            MaskUnit::SPANBERT,
        ];
        for masking in units.map(bert).into_iter().chain([electra]) {
            let m = masker(masking);
            for i in 0..300 {
                let (ids, starts) = example(i, 64);
                let out = m.mask(&ids, &starts, &mut example_rng(1, 0, i)).unwrap();
                for (k, &id) in ids.iter().enumerate() {
                    if [PAD, CLS, SEP].contains(&id) {
                        assert_eq!(out.input[k], id);
                        assert_eq!(out.targets[k], IGNORE_INDEX);
                    }
                }
            }
        }
    }

    #[test]
    fn masked_share_and_80_10_10_split_match_the_rates() {
        check_shares(MlmMasking::default(), [0.8, 0.1, 0.1]);
    }

    #[test]
    fn electra_masks_85_and_keeps_15_percent_with_no_random_tokens() {
        check_shares(MlmMasking::electra(), [0.85, 0.0, 0.15]);
    }

    /// Over many examples: the masked share is `mask_prob` and the targets split into
    /// `[MASK]`, random and kept as `expected` says.
    fn check_shares(masking: MlmMasking, expected: [f64; 3]) {
        let m = masker(masking);
        let (mut maskable, mut selected, mut masked, mut random, mut kept) = (0, 0, 0, 0, 0);
        for i in 0..4000 {
            let (ids, starts) = example(i, 128);
            let out = m.mask(&ids, &starts, &mut example_rng(9, 0, i)).unwrap();
            maskable += ids.iter().filter(|&&id| id > MASK).count();
            for k in 0..ids.len() {
                if out.targets[k] != IGNORE_INDEX {
                    selected += 1;
                    assert_eq!(out.targets[k], i64::from(ids[k]));
                    if out.input[k] == MASK {
                        masked += 1;
                    } else if out.input[k] == ids[k] {
                        kept += 1;
                    } else {
                        random += 1;
                        assert!(
                            out.input[k] > MASK,
                            "random replacement drew a special token"
                        );
                    }
                } else {
                    assert_eq!(out.input[k], ids[k], "a non-target position changed");
                }
            }
        }
        let rate = selected as f64 / maskable as f64;
        assert!((rate - 0.15).abs() < 0.005, "masked share {rate}");
        let share = |n: usize| n as f64 / selected as f64;
        // A random draw equals the original 1 time in 995; it then counts as kept.
        for (name, n, want) in [
            ("mask", masked, expected[0]),
            ("random", random, expected[1]),
            ("kept", kept, expected[2]),
        ] {
            assert!((share(n) - want).abs() < 0.01, "{name} share {}", share(n));
        }
        if expected[1] == 0.0 {
            assert_eq!(random, 0, "random tokens drawn");
        }
    }

    #[test]
    fn whole_words_are_masked_whole_and_rate_holds() {
        for unit in [MaskUnit::WholeWord, MaskUnit::ALBERT, MaskUnit::SPANBERT] {
            let m = masker(MlmMasking::default().with_unit(unit));
            let (mut maskable, mut selected) = (0, 0);
            for i in 0..2000 {
                let (ids, starts) = example(i, 128);
                let out = m.mask(&ids, &starts, &mut example_rng(3, 0, i)).unwrap();
                maskable += ids.iter().filter(|&&id| id > MASK).count();
                selected += out.targets.iter().filter(|&&t| t != IGNORE_INDEX).count();
                for (k, end) in words(&ids, &starts) {
                    let hit: Vec<bool> = (k..end).map(|p| out.targets[p] != IGNORE_INDEX).collect();
                    assert!(
                        hit.iter().all(|&h| h == hit[0]),
                        "{unit:?}: word {k}..{end} split: {hit:?}"
                    );
                }
            }
            let rate = selected as f64 / maskable as f64;
            assert!((rate - 0.15).abs() < 0.01, "{unit:?}: masked share {rate}");
        }
    }

    /// `[start, end)` of the words of an [`example`].
    fn words(ids: &[u32], starts: &[bool]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut k = 1;
        while k < ids.len() && ids[k] > MASK {
            let mut end = k + 1;
            while end < ids.len() && ids[end] > MASK && !starts[end] {
                end += 1;
            }
            out.push((k, end));
            k = end;
        }
        out
    }

    #[test]
    fn spans_meet_the_budget_exactly_and_share_one_decision() {
        let m = masker(MlmMasking::default().with_unit(MaskUnit::SPANBERT));
        let (mut spans, mut mixed) = (0, 0);
        for i in 0..500 {
            let (ids, starts) = example(i, 128);
            let maskable = ids.iter().filter(|&&id| id > MASK).count();
            let mut rng = example_rng(4, 0, i);
            // The budget the masker draws first, replayed on a copy of the stream.
            let u: f64 = rng.clone().random();
            let budget = ((0.15 * maskable as f64 + u) as usize).max(1);
            let out = m.mask(&ids, &starts, &mut rng).unwrap();
            let hits = out.targets.iter().filter(|&&t| t != IGNORE_INDEX).count();
            assert_eq!(hits, budget, "example {i}");
            // Runs of targets are one span or several merged; count runs whose tokens mix
            // [MASK] with kept tokens, which one decision per span makes rare.
            let mut k = 0;
            while k < ids.len() {
                if out.targets[k] == IGNORE_INDEX {
                    k += 1;
                    continue;
                }
                let start = k;
                while k < ids.len() && out.targets[k] != IGNORE_INDEX {
                    k += 1;
                }
                spans += 1;
                let masked = (start..k).filter(|&p| out.input[p] == MASK).count();
                if masked != 0 && masked != k - start {
                    mixed += 1;
                }
            }
        }
        // With per-token decisions over runs averaging ~5 tokens, most runs would mix.
        assert!(
            (mixed as f64) < 0.1 * spans as f64,
            "{mixed} of {spans} runs mix [MASK] with other tokens"
        );
    }

    /// The share of each length `1..=max` in `draws` lengths drawn by `unit`'s masker.
    fn drawn_lengths(unit: MaskUnit, max: usize, draws: u64) -> Vec<f64> {
        let m = masker(MlmMasking::default().with_unit(unit));
        let mut rng = example_rng(6, 0, 0);
        let mut counts = vec![0.0; max];
        for _ in 0..draws {
            counts[m.draw_length(&mut rng) - 1] += 1.0;
        }
        counts.iter().map(|c| c / draws as f64).collect()
    }

    #[test]
    fn span_lengths_follow_the_clipped_geometric_distribution() {
        let expected = MaskUnit::SPANBERT.length_distribution();
        assert_eq!(expected.len(), 10);
        // p (1 - p)^(k - 1), renormalised over 1..=10.
        let norm = 1.0 - 0.8f64.powi(10);
        for (k, &p) in expected.iter().enumerate() {
            assert!((p - 0.2 * 0.8f64.powi(k as i32) / norm).abs() < 1e-12);
        }
        let mean: f64 = expected
            .iter()
            .enumerate()
            .map(|(i, p)| (i + 1) as f64 * p)
            .sum();
        // SpanBERT's paper: a mean of 3.8 words.
        assert!((mean - 3.8).abs() < 0.01, "mean span {mean}");
        let seen = drawn_lengths(MaskUnit::SPANBERT, 10, 200_000);
        for (k, (&s, &p)) in seen.iter().zip(&expected).enumerate() {
            assert!((s - p).abs() < 0.004, "length {}: {s:.4} vs {p:.4}", k + 1);
        }
        let seen = drawn_lengths(MaskUnit::ALBERT, 3, 200_000);
        for (n, p) in [(1, 6.0 / 11.0), (2, 3.0 / 11.0), (3, 2.0 / 11.0)] {
            assert!(
                (seen[n - 1] - p).abs() < 0.004,
                "{n}-grams: {:.4} vs {p:.4}",
                seen[n - 1]
            );
        }
    }

    #[test]
    fn spans_start_at_word_starts_and_run_over_whole_words() {
        // Long spans over words of 1 to 3 pieces: the runs of targets are at least one word
        // and on average several.
        let m = masker(MlmMasking::default().with_unit(MaskUnit::SPANBERT));
        let (mut runs, mut run_words) = (0.0, 0.0);
        for i in 0..300 {
            let (ids, starts) = example(i, 128);
            let out = m.mask(&ids, &starts, &mut example_rng(8, 0, i)).unwrap();
            let hit = |p: usize| out.targets[p] != IGNORE_INDEX;
            let words = words(&ids, &starts);
            let mut k = 0;
            while k < words.len() {
                if !hit(words[k].0) {
                    k += 1;
                    continue;
                }
                let start = k;
                while k < words.len() && hit(words[k].0) {
                    k += 1;
                }
                runs += 1.0;
                run_words += (k - start) as f64;
            }
        }
        let mean = run_words / runs;
        assert!(mean > 2.5, "runs of masked words average {mean}");
    }

    #[test]
    fn bad_span_and_ngram_settings_are_typed_errors() {
        let spans = [(0.0, 10), (1.0, 10), (f64::NAN, 10), (0.2, 0)]
            .map(|(p, max_words)| MaskUnit::Span { p, max_words });
        for unit in spans.into_iter().chain([MaskUnit::NGram { max_n: 0 }]) {
            let masking = MlmMasking::default().with_unit(unit);
            assert!(matches!(
                MlmMasker::new(masking, VOCAB, MASK, &[PAD]),
                Err(Error::InvalidConfig(_))
            ));
        }
    }

    #[test]
    fn same_seed_same_example_and_different_index_differs() {
        let m = masker(MlmMasking::default());
        let (ids, starts) = example(5, 128);
        let a = m.mask(&ids, &starts, &mut example_rng(1, 2, 3)).unwrap();
        let b = m.mask(&ids, &starts, &mut example_rng(1, 2, 3)).unwrap();
        let c = m.mask(&ids, &starts, &mut example_rng(1, 2, 4)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn bad_rates_and_ids_are_typed_errors() {
        let bad = MlmMasking {
            mask_prob: 1.5,
            ..Default::default()
        };
        assert!(matches!(
            MlmMasker::new(bad, VOCAB, MASK, &[PAD]),
            Err(Error::RateOutOfRange {
                name: "mask_prob",
                ..
            })
        ));
        let over = MlmMasking {
            mask_replace_prob: 0.8,
            random_replace_prob: 0.3,
            ..Default::default()
        };
        assert!(matches!(
            MlmMasker::new(over, VOCAB, MASK, &[PAD]),
            Err(Error::InvalidConfig(_))
        ));
        let m = masker(MlmMasking::default());
        let err = m
            .mask(&[CLS, 5000, SEP], &[true; 3], &mut example_rng(0, 0, 0))
            .unwrap_err();
        assert!(matches!(err, Error::TokenOutOfRange { id: 5000, .. }));
    }
}
