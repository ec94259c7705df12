//! Timing each call inside criterion's loop, for the medians a bench prints beside
//! criterion's own figures (and the ratios between them, measured in the same run).

use std::time::{Duration, Instant};

/// Runs `call` `iters` times, pushing each call's seconds onto `calls`: the body of
/// criterion's `iter_custom`, whose total it returns.
pub fn timed(iters: u64, calls: &mut Vec<f64>, mut call: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let one = Instant::now();
        call();
        calls.push(one.elapsed().as_secs_f64());
    }
    start.elapsed()
}

/// The median of `calls` in seconds, or none when the bench was filtered out.
pub fn median(mut calls: Vec<f64>) -> Option<f64> {
    calls.sort_by(f64::total_cmp);
    calls.get(calls.len() / 2).copied()
}
