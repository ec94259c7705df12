//! BERT/RoBERTa dynamic masking for masked language modelling, token- or whole-word-level.
//!
//! The replacement split is given as absolute fractions of the selected positions
//! (`mask_replace_prob` = 0.8 and `random_replace_prob` = 0.1 give BERT's 80/10/10), as in HF's
//! newer collator, which avoids the "0.5 should be 0.1" confusion of the conditional form.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{ExampleRng, IGNORE_INDEX};
use crate::error::{Error, Result, check_rate};

/// How tokens are chosen and replaced for masked LM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MlmMasking {
    /// Share of the maskable (non-special) tokens that become targets. Default 0.15.
    pub mask_prob: f64,
    /// Share of the targets whose input becomes `[MASK]`. Default 0.8.
    pub mask_replace_prob: f64,
    /// Share of the targets whose input becomes a random non-special token. Default 0.1; the
    /// rest keep their original token.
    pub random_replace_prob: f64,
    /// Select whole words (from the tokenizer's word starts) rather than single tokens.
    /// Default false.
    pub whole_word: bool,
}

impl Default for MlmMasking {
    fn default() -> Self {
        Self {
            mask_prob: 0.15,
            mask_replace_prob: 0.8,
            random_replace_prob: 0.1,
            whole_word: false,
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
            whole_word: false,
        }
    }

    /// Checks that the rates are probabilities and the replacement shares add up to at most 1.
    pub fn validate(&self) -> Result<()> {
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
        })
    }

    /// A masker for `tokenizer`'s vocabulary.
    pub fn for_tokenizer(masking: MlmMasking, tokenizer: &crate::Tokenizer) -> Result<Self> {
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
    /// one when `mask_prob > 0`, as BERT. With whole
    /// words, words are taken in random order while they fit that budget (BERT skips a word that
    /// would overflow it). Each selected token is then replaced independently.
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
        if self.masking.whole_word {
            // Word spans [start, end): a maskable token continues the word of the maskable
            // token just before it unless it starts a word itself.
            let mut words: Vec<(u32, u32)> = Vec::with_capacity(maskable);
            for &pos in &candidates {
                match words.last_mut() {
                    Some(w) if w.1 == pos && !word_starts[pos as usize] => w.1 += 1,
                    _ => words.push((pos, pos + 1)),
                }
            }
            let mut left = budget;
            let n = words.len();
            for k in 0..n {
                let j = rng.random_range(k..n);
                words.swap(k, j);
                let (start, end) = words[k];
                let len = (end - start) as usize;
                if len <= left {
                    for pos in start..end {
                        self.replace(pos as usize, &mut input, &mut targets, ids, rng);
                    }
                    left -= len;
                    if left == 0 {
                        break;
                    }
                }
            }
        } else {
            for k in 0..budget {
                let j = rng.random_range(k..maskable);
                candidates.swap(k, j);
                self.replace(candidates[k] as usize, &mut input, &mut targets, ids, rng);
            }
        }
        Ok(Masked { input, targets })
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
        let r = u64::from(rng.random::<u32>());
        if r < self.mask_cut {
            self.mask_id
        } else if r < self.random_cut {
            self.replacements[rng.random_range(0..self.replacements.len())]
        } else {
            original
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::example_rng;

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
        let bert = |whole_word| MlmMasking {
            mask_prob: 0.9,
            whole_word,
            ..Default::default()
        };
        let electra = MlmMasking {
            mask_prob: 0.9,
            ..MlmMasking::electra()
        };
        for masking in [bert(false), bert(true), electra] {
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
        let m = masker(MlmMasking {
            whole_word: true,
            ..Default::default()
        });
        let (mut maskable, mut selected) = (0, 0);
        for i in 0..2000 {
            let (ids, starts) = example(i, 128);
            let out = m.mask(&ids, &starts, &mut example_rng(3, 0, i)).unwrap();
            maskable += ids.iter().filter(|&&id| id > MASK).count();
            selected += out.targets.iter().filter(|&&t| t != IGNORE_INDEX).count();
            // Every word is either wholly a target or wholly not.
            let mut k = 1;
            while k < ids.len() && ids[k] > MASK {
                let mut end = k + 1;
                while end < ids.len() && ids[end] > MASK && !starts[end] {
                    end += 1;
                }
                let hit: Vec<bool> = (k..end).map(|p| out.targets[p] != IGNORE_INDEX).collect();
                assert!(
                    hit.iter().all(|&h| h == hit[0]),
                    "word {k}..{end} split: {hit:?}"
                );
                k = end;
            }
        }
        let rate = selected as f64 / maskable as f64;
        assert!((rate - 0.15).abs() < 0.01, "whole-word masked share {rate}");
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
