//! MASS's masking (`microsoft/MASS`): one contiguous span of about half of a sentence is
//! masked in the encoder's input, and the decoder predicts it, fed at each step the original
//! token before the one it predicts, at that token's position.
//!
//! The sequence is framed as `[CLS] body [SEP]`; only the body is masked. The span's inputs
//! get BERT's 80/10/10 treatment from an [`MlmMasker`] (MASS's `word_mask_keep_rand`). Where
//! the span starts follows the reference's `shuffle_segments`: at the body's start 20 % of the
//! time, at its end 20 %, and anywhere (uniformly) otherwise.

use rand::RngExt;

use super::MlmMasker;

use crate::error::{Error, Result};
use crate::util::rng::ExampleRng;

/// The paper's share of the sentence masked.
pub const DEFAULT_MASS_SHARE: f64 = 0.5;

/// One MASS example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassExample {
    /// The encoder's input: the framed sequence with the span corrupted.
    pub encoder_input: Vec<u32>,
    /// The decoder's input: for each masked position, the original token before it.
    pub decoder_input: Vec<u32>,
    /// Position in the sequence of each decoder input token (one before the position it
    /// predicts).
    pub decoder_positions: Vec<usize>,
    /// The original tokens of the span, which the decoder predicts.
    pub targets: Vec<u32>,
}

/// Checks that a span share lies in (0, 1].
pub fn check_share(share: f64) -> Result<()> {
    if share > 0.0 && share <= 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "the MASS span share must lie in (0, 1], got {share}"
        )))
    }
}

/// Masks `ids` (`[CLS] body [SEP]`) with one contiguous span of `round(share · body)` tokens
/// (at least one). `masker` supplies the 80/10/10 replacement.
pub fn mass_mask(
    ids: &[u32],
    share: f64,
    masker: &MlmMasker,
    rng: &mut ExampleRng,
) -> Result<MassExample> {
    check_share(share)?;
    let body = ids.len().saturating_sub(2);
    if body == 0 {
        return Err(Error::InvalidConfig(format!(
            "a sequence of {} tokens has no text between [CLS] and [SEP] to mask",
            ids.len()
        )));
    }
    let span = ((body as f64 * share).round() as usize).clamp(1, body);
    let last = body - span;
    let u = rng.random::<f64>();
    let start = 1 + if u >= 0.8 {
        0
    } else if u >= 0.6 {
        last
    } else {
        rng.random_range(0..=last)
    };
    let mut encoder_input = ids.to_vec();
    for pos in start..start + span {
        encoder_input[pos] = masker.replacement(ids[pos], rng);
    }
    Ok(MassExample {
        encoder_input,
        decoder_input: ids[start - 1..start + span - 1].to_vec(),
        decoder_positions: (start - 1..start + span - 1).collect(),
        targets: ids[start..start + span].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::MlmMasking;
    use crate::util::rng::example_rng;

    const CLS: u32 = 2;
    const SEP: u32 = 3;
    const MASK: u32 = 4;

    fn masker() -> MlmMasker {
        MlmMasker::new(MlmMasking::default(), 500, MASK, &[0, 1, CLS, SEP]).unwrap()
    }

    fn framed(body: usize) -> Vec<u32> {
        [vec![CLS], (100..100 + body as u32).collect(), vec![SEP]].concat()
    }

    #[test]
    fn one_contiguous_half_span_predicted_from_the_tokens_before_it() {
        let m = masker();
        let mut masked = 0;
        let mut spans = 0;
        for seed in 0..300 {
            let body = 5 + seed as usize % 40;
            let ids = framed(body);
            let e = mass_mask(&ids, 0.5, &m, &mut example_rng(seed, 0, 0)).unwrap();
            let span = e.targets.len();
            assert_eq!(span, ((body as f64) * 0.5).round() as usize);
            let start = e.decoder_positions[0] + 1;
            assert!(
                start >= 1 && start + span <= ids.len() - 1,
                "span outside the body"
            );
            assert_eq!(e.targets, ids[start..start + span]);
            for (k, &p) in e.decoder_positions.iter().enumerate() {
                assert_eq!(p, start - 1 + k);
                assert_eq!(
                    e.decoder_input[k], ids[p],
                    "decoder input is not the token before"
                );
            }
            for (i, (&a, &b)) in e.encoder_input.iter().zip(&ids).enumerate() {
                if !(start..start + span).contains(&i) {
                    assert_eq!(a, b, "position {i} outside the span changed");
                }
            }
            masked += e.encoder_input[start..start + span]
                .iter()
                .filter(|&&id| id == MASK)
                .count();
            spans += span;
        }
        let share = masked as f64 / spans as f64;
        assert!((share - 0.8).abs() < 0.04, "[MASK] share {share}");
    }

    #[test]
    fn the_span_is_pinned_to_either_end_a_fifth_of_the_time_each() {
        let (m, ids) = (masker(), framed(40));
        let starts: Vec<usize> = (0..4000)
            .map(|seed| mass_mask(&ids, 0.5, &m, &mut example_rng(seed, 0, 0)).unwrap())
            .map(|e| e.decoder_positions[0] + 1)
            .collect();
        // 21 possible starts: 0.2 + 0.6 / 21 ≈ 0.229 at each end, 0.6 / 21 ≈ 0.029 elsewhere.
        let share = |s: usize| starts.iter().filter(|&&x| x == s).count() as f64 / 4000.0;
        assert!((share(1) - 0.229).abs() < 0.03, "start {}", share(1));
        assert!((share(21) - 0.229).abs() < 0.03, "end {}", share(21));
        assert!((share(11) - 0.029).abs() < 0.015, "middle {}", share(11));
    }

    #[test]
    fn too_short_or_bad_shares_are_errors() {
        let m = masker();
        assert!(mass_mask(&[CLS, SEP], 0.5, &m, &mut example_rng(0, 0, 0)).is_err());
        for share in [0.0, -0.5, 1.5, f64::NAN] {
            assert!(mass_mask(&framed(10), share, &m, &mut example_rng(0, 0, 0)).is_err());
        }
        let one = mass_mask(&framed(1), 0.5, &m, &mut example_rng(0, 0, 0)).unwrap();
        assert_eq!((one.targets, one.decoder_input), (vec![100], vec![CLS]));
    }
}
