//! Exact GELU, `x · Φ(x) = x/2 · (1 + erf(x/√2))`, forward and backward in one pass each.
//!
//! burn's CPU GELU calls `erff` element by element on one thread. Here `erf` is a rational
//! approximation and `exp` a polynomial, in plain arithmetic the compiler vectorizes, both
//! accurate to f32 (checked against f64 below), and the passes run in parallel chunks.

use burn::backend::flex::FlexTensor;

use super::{elementwise, elementwise_grad};

/// `erf(x)` to within 1e-6: Eigen's rational approximation on [−4, 4], ±1 beyond.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    for a in [
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_599_8e-3,
        -1.609_603_3e-2,
    ] {
        p = p * x2 + a;
    }
    let mut q = -1.456_607_2e-5f32;
    for b in [
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329_2e-3,
        -1.426_474e-2,
    ] {
        q = q * x2 + b;
    }
    x * p / q
}

/// `e^x` to within 2 ulp for x in [−87, 88] (Cephes' `expf`: e^x = 2^n · e^r, |r| ≤ ln2/2).
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    // Adding 1.5 · 2^23 rounds to an integer in the low mantissa bits, without a branch.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ] {
        p = p * r + c;
    }
    let power = (t.to_bits() as i32 - ROUND.to_bits() as i32 + 127) << 23;
    (p * r * r + r + 1.0) * f32::from_bits(power as u32)
}

/// `GELU(x) = x · Φ(x)`.
#[inline(always)]
pub(super) fn value(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `GELU'(x) = Φ(x) + x · φ(x)`.
#[inline(always)]
fn slope(x: f32) -> f32 {
    value_and_slope(x).1
}

/// `(GELU(x), GELU'(x))`, one `erf` for both.
#[inline(always)]
pub(super) fn value_and_slope(x: f32) -> (f32, f32) {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
    (x * cdf, cdf + x * pdf)
}

/// GELU of every element of `x`.
pub(super) fn forward(x: &FlexTensor) -> FlexTensor {
    elementwise(x, value)
}

/// `g · GELU'(x)`.
pub(super) fn backward(x: &FlexTensor, g: &FlexTensor) -> FlexTensor {
    elementwise_grad(x, g, |x, g| g * slope(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `erf` in f64 by its Taylor series, exact to ~1e-10 on [−4, 4].
    fn erf64(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_and_exp_are_accurate_to_f32() {
        let mut worst = (0f64, 0f64);
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let want = erf64(f64::from(x).clamp(-4.0, 4.0));
            let want = if x.abs() > 4.0 { want.signum() } else { want };
            worst.0 = worst.0.max((f64::from(erf(x)) - want).abs());
            let e = f64::from(x).exp();
            worst.1 = worst.1.max((f64::from(exp(x)) - e).abs() / e);
        }
        assert!(worst.0 < 1e-6, "erf off by {}", worst.0);
        assert!(worst.1 < 3e-7, "exp off by {} relative", worst.1);
        for x in [-87.0f32, -20.0, 0.0, 20.0, 88.0] {
            let e = f64::from(x).exp();
            assert!((f64::from(exp(x)) - e).abs() / e < 3e-7, "exp({x})");
        }
    }
}
