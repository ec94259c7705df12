//! The global level of data parallelism: ranks, processes that may sit on several machines,
//! each running its share of every step and adding up what the shares computed.
//!
//! The [`Trainer`](super::Trainer) needs very little from the engine underneath, so it asks
//! for it through [`Collective`]: who am I, how many are we, sum these numbers, give me what
//! everyone has. [`Solo`] is one process alone (the default); [`LocalRank`]s are ranks on
//! threads of one process, which show that a run over ranks trains the model one process
//! trains without a cluster to hand; the `mpi` feature adds ranks launched by `mpirun`. Another
//! engine (a job scheduler's own, NCCL across nodes) needs only these four methods.
//!
//! Every rank must call the same collectives in the same order: a rank that skips one leaves
//! the others waiting for it.

use std::sync::{Arc, Condvar, Mutex};

/// What a training loop needs from the ranks it runs on.
pub trait Collective: Send + Sync + std::fmt::Debug {
    /// This rank, from 0 to [`size`](Self::size) − 1.
    fn rank(&self) -> usize;

    /// Number of ranks.
    fn size(&self) -> usize;

    /// Sums `values` element by element over the ranks, in place; every rank ends with the
    /// same sums. Each rank passes the same number of values.
    fn sum_f32(&self, values: &mut [f32]);

    /// [`sum_f32`](Self::sum_f32) in double precision: exact for counts below 2⁵³.
    fn sum_f64(&self, values: &mut [f64]);

    /// Every rank's `bytes`, in rank order (this rank's among them), on every rank.
    fn gather(&self, bytes: &[u8]) -> Vec<Vec<u8>>;
}

/// The number of ranks a launcher started this process among, read from the variables it
/// sets (Open MPI's `OMPI_COMM_WORLD_SIZE`, MPICH's and Slurm's `PMI_SIZE`); `None` when none
/// did. A program built without the `mpi` feature checks it, so that ranks launched by
/// `mpirun` fail at once rather than each train a model of its own into the same directory.
pub fn launched_ranks() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
}

/// One process alone: rank 0 of 1, every collective a no-op.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn sum_f32(&self, _values: &mut [f32]) {}

    fn sum_f64(&self, _values: &mut [f64]) {}

    fn gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        vec![bytes.to_vec()]
    }
}

/// A rank on a thread of one process, one of [`LocalRank::all`]: the collectives of a cluster
/// without one. A rank that leaves (its thread ends or panics) while the others wait in a
/// collective makes them panic with its number instead of waiting for ever.
///
/// ```
/// use pretext::train::{Collective, LocalRank};
///
/// let sums = std::thread::scope(|scope| {
///     let handles: Vec<_> = LocalRank::all(3)
///         .into_iter()
///         .map(|rank| {
///             scope.spawn(move || {
///                 let mut values = [rank.rank() as f32, 1.0];
///                 rank.sum_f32(&mut values);
///                 values
///             })
///         })
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
/// });
/// assert!(sums.iter().all(|s| *s == [3.0, 3.0]));
/// ```
#[derive(Debug)]
pub struct LocalRank {
    rank: usize,
    shared: Arc<Meeting>,
}

impl LocalRank {
    /// `size` ranks (at least 1), to hand one to each thread.
    pub fn all(size: usize) -> Vec<LocalRank> {
        let size = size.max(1);
        let shared = Arc::new(Meeting {
            size,
            state: Mutex::new(MeetingState {
                slots: vec![Vec::new(); size],
                arrived: 0,
                round: 0,
                left: None,
            }),
            turn: Condvar::new(),
        });
        (0..size)
            .map(|rank| LocalRank {
                rank,
                shared: Arc::clone(&shared),
            })
            .collect()
    }
}

#[derive(Debug)]
struct Meeting {
    size: usize,
    state: Mutex<MeetingState>,
    turn: Condvar,
}

#[derive(Debug)]
struct MeetingState {
    /// What each rank brought to the current round.
    slots: Vec<Vec<u8>>,
    arrived: usize,
    /// Rounds completed; a waiter is released when it moves on.
    round: u64,
    /// The first rank that left.
    left: Option<usize>,
}

impl Meeting {
    /// Waits until every rank has arrived in the current round.
    fn wait<'a>(
        &'a self,
        rank: usize,
        mut state: std::sync::MutexGuard<'a, MeetingState>,
    ) -> std::sync::MutexGuard<'a, MeetingState> {
        let round = state.round;
        state.arrived += 1;
        if state.arrived == self.size {
            state.arrived = 0;
            state.round += 1;
            self.turn.notify_all();
            return state;
        }
        loop {
            if state.round != round {
                return state;
            }
            if let Some(left) = state.left {
                panic!("rank {rank}: rank {left} left while the others waited for it");
            }
            state = self.turn.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl LocalRank {
    /// Every rank's `bytes`: each puts its own in its slot, all wait, each copies the slots
    /// out, and all wait again so that no slot is overwritten by the next round before every
    /// rank has read it.
    fn exchange(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let meeting = &self.shared;
        let mut state = meeting.state.lock().unwrap_or_else(|e| e.into_inner());
        state.slots[self.rank] = bytes.to_vec();
        state = meeting.wait(self.rank, state);
        let all = state.slots.clone();
        drop(meeting.wait(self.rank, state));
        all
    }
}

impl Drop for LocalRank {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.left.get_or_insert(self.rank);
        self.shared.turn.notify_all();
    }
}

impl Collective for LocalRank {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn sum_f32(&self, values: &mut [f32]) {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        values.fill(0.0);
        // In rank order, so every rank adds in the same order and gets the same bits.
        for theirs in self.exchange(&bytes) {
            for (v, b) in values.iter_mut().zip(theirs.chunks_exact(4)) {
                *v += f32::from_le_bytes(b.try_into().expect("4 bytes"));
            }
        }
    }

    fn sum_f64(&self, values: &mut [f64]) {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        values.fill(0.0);
        for theirs in self.exchange(&bytes) {
            for (v, b) in values.iter_mut().zip(theirs.chunks_exact(8)) {
                *v += f64::from_le_bytes(b.try_into().expect("8 bytes"));
            }
        }
    }

    fn gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.exchange(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::on_local_ranks;

    #[test]
    fn sums_and_gathers_agree_on_every_rank_round_after_round() {
        let results = on_local_ranks(3, |rank| {
            let r = rank.rank();
            let mut out = Vec::new();
            for round in 0..50u32 {
                let mut floats = [r as f32 + 0.5, round as f32];
                rank.sum_f32(&mut floats);
                let mut doubles = [f64::from(round) * 1e12 + r as f64];
                rank.sum_f64(&mut doubles);
                let gathered = rank.gather(&[r as u8, round as u8][..=r.min(1)]);
                out.push((floats, doubles, gathered));
            }
            out
        });
        for (r, rounds) in results.iter().enumerate() {
            for (round, (floats, doubles, gathered)) in rounds.iter().enumerate() {
                assert_eq!(
                    *floats,
                    [4.5, 3.0 * round as f32],
                    "rank {r}, round {round}"
                );
                assert_eq!(doubles[0], 3.0 * round as f64 * 1e12 + 3.0);
                let want = vec![vec![0u8], vec![1, round as u8], vec![2, round as u8]];
                assert_eq!(*gathered, want, "rank {r}, round {round}");
            }
        }
    }

    #[test]
    fn solo_is_rank_zero_of_one_and_changes_nothing() {
        let mut values = [1.5f32, -2.0];
        Solo.sum_f32(&mut values);
        assert_eq!(values, [1.5, -2.0]);
        assert_eq!((Solo.rank(), Solo.size()), (0, 1));
        assert_eq!(Solo.gather(b"ab"), vec![b"ab".to_vec()]);
    }

    #[test]
    fn a_rank_that_leaves_releases_the_others_with_its_number() {
        let outcome = std::thread::scope(|scope| {
            let mut ranks = LocalRank::all(2).into_iter();
            let (first, second) = (ranks.next().unwrap(), ranks.next().unwrap());
            let waiter = scope.spawn(move || {
                let mut values = [1.0f32];
                first.sum_f32(&mut values);
            });
            drop(second);
            waiter.join()
        });
        let message = outcome.expect_err("the waiting rank must not hang or succeed");
        let message = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("rank 1 left"), "{message}");
    }
}
