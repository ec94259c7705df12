//! Row reductions that the compiler vectorizes. One running f32 sum is a chain of additions
//! that it may not reorder, so a loop that sums (and any work feeding the sum, such as an
//! `exp`) runs one element at a time; kept in [`LANES`] independent partial results, the
//! same loop runs a vector at a time.

/// Partial results per reduction: a 512-bit vector of f32.
const LANES: usize = 16;

/// `Σ f(x)` over `xs`.
#[inline(always)]
pub(super) fn sum_of(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    let mut lanes = [0f32; LANES];
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f(x);
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().map(|&x| f(x)).sum::<f32>()
}

/// `Σ a ⊙ b` over two slices of one length.
#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(a, b)| a * b)
        .sum();
    let mut lanes = [0f32; LANES];
    for (a, b) in a_chunks.zip(b_chunks) {
        for ((lane, a), b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += a * b;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// The largest of `xs` (−∞ for none).
#[inline(always)]
pub(super) fn max_of(xs: &[f32]) -> f32 {
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    let mut lanes = [f32::NEG_INFINITY; LANES];
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(x);
        }
    }
    lanes
        .iter()
        .chain(rest)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reductions_agree_with_plain_loops_at_every_length() {
        for n in [0, 1, 15, 16, 17, 33, 256, 1000] {
            let xs: Vec<f32> = (0..n)
                .map(|i| ((i * 37) % 101) as f32 / 7.0 - 6.0)
                .collect();
            let ys: Vec<f32> = (0..n).map(|i| ((i * 11) % 13) as f32 - 6.5).collect();
            let plain_sum: f64 = xs.iter().map(|&x| f64::from(x * x)).sum();
            let plain_dot: f64 = xs.iter().zip(&ys).map(|(x, y)| f64::from(x * y)).sum();
            let plain_max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let close = |a: f32, b: f64| (f64::from(a) - b).abs() <= 1e-5 * b.abs().max(1.0);
            assert!(close(sum_of(&xs, |x| x * x), plain_sum), "sum, n = {n}");
            assert!(close(dot(&xs, &ys), plain_dot), "dot, n = {n}");
            assert_eq!(max_of(&xs), plain_max, "max, n = {n}");
        }
    }
}
