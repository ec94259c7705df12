//! Ranks launched by `mpirun` (cargo feature `mpi`): MPI's world as a [`Collective`].
//!
//! ```text
//! cargo build --release --features mpi --example pretrain
//! mpirun -np 2 --bind-to none target/release/examples/pretrain --shards 1
//! ```
//!
//! MPI's errors are fatal, and so must a rank's be: a rank that stops while the others wait
//! for it in a collective leaves them waiting for ever (an unwinding panic is the worst case:
//! it drops the [`Universe`], whose `MPI_Finalize` waits for the others). So [`Mpi::init`]
//! installs a panic hook that aborts the whole job, and a program ends a run that failed on
//! one rank with [`Mpi::abort`], one that succeeded with [`Mpi::finish`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::datatype::{Equivalence, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::collective::Collective;
use crate::error::{Error, Result};

/// Values reduced in one call: MPI counts in 32 bits, and a bounded chunk bounds the receive
/// buffer (64 MiB of f32).
const CHUNK: usize = 1 << 24;

/// MPI, initialized for this process: its rank in the world of an `mpirun` launch (rank 0 of
/// 1 when started alone).
pub struct Mpi {
    universe: Universe,
    rank: usize,
    size: usize,
    spent: Arc<Mutex<Spent>>,
}

/// Time spent in this process's collectives, and the bytes they sent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// Wall time inside MPI's calls (waiting for slower ranks included).
    pub time: Duration,
    /// Bytes this rank contributed to them.
    pub bytes: u64,
    /// Calls.
    pub calls: u64,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mpi(rank {} of {})", self.rank, self.size)
    }
}

impl Mpi {
    /// Initializes MPI (once a process), with calls from any thread taken one at a time, and
    /// makes a panic on any thread abort the whole job.
    pub fn init() -> Result<Self> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| Error::InvalidConfig("MPI is already initialized".into()))?;
        if matches!(threading, Threading::Single | Threading::Funneled) {
            return Err(Error::InvalidConfig(format!(
                "this MPI offers threads only {threading:?} support; training calls it from \
                 the thread that runs the loop, so it needs Serialized"
            )));
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            eprintln!("rank {rank}: panicked; aborting every rank");
            SimpleCommunicator::world().abort(101);
        }));
        Ok(Self {
            universe,
            rank,
            size,
            spent: Arc::default(),
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The world's collectives, for [`Trainer::ranks`](super::Trainer::ranks).
    pub fn ranks(&self) -> Arc<dyn Collective> {
        Arc::new(MpiRanks {
            rank: self.rank,
            size: self.size,
            spent: Arc::clone(&self.spent),
        })
    }

    /// What this process's collectives have cost so far: the price of training over ranks.
    pub fn spent(&self) -> Spent {
        *self.spent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a run that succeeded: waits for every rank, then finalizes MPI.
    pub fn finish(self) {
        self.universe.world().barrier();
    }

    /// Ends the whole job with exit status `code`: how a rank ends a run that failed on it,
    /// so that the others do not wait for it.
    pub fn abort(&self, code: i32) -> ! {
        self.universe.world().abort(code)
    }
}

/// The world communicator as a [`Collective`]. MPI's calls are made one at a time (the
/// threading level asked for is Serialized), under the lock of their cost's account.
#[derive(Debug)]
struct MpiRanks {
    rank: usize,
    size: usize,
    spent: Arc<Mutex<Spent>>,
}

impl MpiRanks {
    /// Runs `call`, which sends `bytes`, alone and on the account.
    fn timed<R>(&self, bytes: usize, call: impl FnOnce(SimpleCommunicator) -> R) -> R {
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let result = call(SimpleCommunicator::world());
        spent.time += started.elapsed();
        spent.bytes += bytes as u64;
        spent.calls += 1;
        result
    }

    /// `values` summed over the world, in chunks (MPI has no in-place reduction here, so each
    /// chunk goes out and comes back through a buffer of its own).
    fn sum<T: Equivalence + Copy + Default>(&self, values: &mut [T]) {
        self.timed(std::mem::size_of_val(values), |world| {
            Self::sum_on(&world, values);
        });
    }

    fn sum_on<T: Equivalence + Copy + Default>(world: &SimpleCommunicator, values: &mut [T]) {
        let mut out = vec![T::default(); CHUNK.min(values.len())];
        for part in values.chunks_mut(CHUNK) {
            let out = &mut out[..part.len()];
            world.all_reduce_into(&part[..], &mut out[..], SystemOperation::sum());
            part.copy_from_slice(out);
        }
    }

    /// Every rank's `bytes`: their lengths first, then the bytes into one buffer.
    fn gather_on(&self, world: &SimpleCommunicator, bytes: &[u8]) -> Vec<Vec<u8>> {
        let length = i32::try_from(bytes.len()).expect("a gathered record fits MPI's counts");
        let mut lengths = vec![0i32; self.size];
        world.all_gather_into(&length, &mut lengths[..]);
        let starts: Vec<i32> = lengths
            .iter()
            .scan(0i32, |at, &n| {
                let start = *at;
                *at += n;
                Some(start)
            })
            .collect();
        let total = lengths.iter().map(|&n| n as usize).sum();
        let mut all = vec![0u8; total];
        let mut partition = PartitionMut::new(&mut all[..], &lengths[..], &starts[..]);
        world.all_gather_varcount_into(bytes, &mut partition);
        starts
            .iter()
            .zip(&lengths)
            .map(|(&start, &n)| all[start as usize..(start + n) as usize].to_vec())
            .collect()
    }
}

impl Collective for MpiRanks {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum_f32(&self, values: &mut [f32]) {
        self.sum(values);
    }

    fn sum_f64(&self, values: &mut [f64]) {
        self.sum(values);
    }

    fn gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.timed(bytes.len(), |world| self.gather_on(&world, bytes))
    }
}
