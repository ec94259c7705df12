//! Learning-rate schedule: linear warmup from zero, then linear decay to zero (BERT's).

/// Learning rate for optimizer update `step` (0-based) of `total` updates.
pub fn warmup_linear_decay(peak: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        let left = total.saturating_sub(step) as f64;
        let span = total.saturating_sub(warmup).max(1) as f64;
        peak * (left / span).clamp(0.0, 1.0)
    }
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
}
