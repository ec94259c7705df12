//! burn's random stream, held by one user at a time.
//!
//! burn's CPU backend draws every random tensor — initial weights, `Tensor::random` — from one
//! stream for the whole process, and seeding sets that stream. Two threads that each seed and
//! then build a model interleave their draws, and neither gets the weights its seed names:
//! tests run on parallel threads, and a program may load a reward model while another run
//! builds its policy. [`seeded`] holds the stream from the seed until its guard is dropped;
//! [`hold`] holds it unseeded, for code that draws but needs no particular values (a loader
//! initialising a model before it overwrites the weights, a test's random input), so that it
//! does not take draws from under a seeded holder. Recipe runs, the Hugging Face loaders and
//! the tests draw through them; a program that builds its own models on several threads
//! should too. Holding is re-entrant on one thread: a seeded run may call a loader that holds.
//!
//! burn draws a parameter's initial values when the parameter is first read, not when the
//! module is built: [`materialize`] reads them all, and [`init_seeded`] builds a module,
//! materializes it and lets the stream go. Drop a guard before training: training draws
//! nothing from the stream (dropout hashes its own masks, see [`crate::blocks::dropout`]),
//! and a held stream would make every other run in the process wait.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;

static STREAM: Mutex<()> = Mutex::new(());

thread_local! {
    /// How many guards this thread holds; the outermost holds the lock.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// The random stream, held until this guard is dropped (see the module's notes).
#[must_use = "the stream is held only while the guard lives: bind it with `let _draws = …`"]
pub struct Draws {
    lock: Option<MutexGuard<'static, ()>>,
}

impl Drop for Draws {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
        // The lock (if this is the outermost guard) is released after the count falls.
        self.lock.take();
    }
}

/// Holds the random stream without seeding it: what this thread draws next is not taken from
/// under a seeded holder elsewhere.
pub fn hold() -> Draws {
    let outermost = DEPTH.with(|d| d.replace(d.get() + 1) == 0);
    Draws {
        lock: outermost.then(|| STREAM.lock().unwrap_or_else(|e| e.into_inner())),
    }
}

/// Holds the random stream and seeds `device`'s generator with `seed`: what this thread draws
/// until the guard is dropped is the same in every run, whatever else the process does.
pub fn seeded(device: &Device, seed: u64) -> Draws {
    let draws = hold();
    device.seed(seed);
    draws
}

/// Draws the initial values of every parameter of `module` that is still lazy, in the
/// module's order (the order a replica on another device reads them).
pub fn materialize<M: Module>(module: &M) {
    struct Draw;
    impl ModuleVisitor for Draw {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Draw);
}

/// Builds a module with `build` on a stream seeded with `seed`, draws all its initial values
/// and releases the stream: the same weights in every run, whatever else the process draws.
pub fn init_seeded<M: Module>(device: &Device, seed: u64, build: impl FnOnce() -> M) -> M {
    let _draws = seeded(device, seed);
    let module = build();
    materialize(&module);
    module
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn draw(device: &Device) -> Vec<f32> {
        Tensor::<1>::random([16], Distribution::Default, device)
            .into_data()
            .try_to_vec()
            .unwrap()
    }

    #[test]
    fn a_seeded_holder_draws_the_same_whatever_other_threads_draw() {
        let device = Device::flex();
        let alone = {
            let _draws = seeded(&device, 42);
            (draw(&device), draw(&device))
        };
        let thieves: Vec<_> = (0..4)
            .map(|_| {
                let device = device.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let _draws = hold();
                        draw(&device);
                    }
                })
            })
            .collect();
        for _ in 0..50 {
            let _draws = seeded(&device, 42);
            let first = draw(&device);
            std::thread::yield_now();
            assert_eq!((first, draw(&device)), alone);
        }
        for thief in thieves {
            thief.join().unwrap();
        }
    }

    #[test]
    fn a_module_built_seeded_has_its_weights_drawn_before_the_stream_goes() {
        let device = Device::flex();
        let build = || burn::nn::LinearConfig::new(4, 3).init(&device);
        let weights =
            |l: &burn::nn::Linear| l.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let a = init_seeded(&device, 9, build);
        // Draws after the release do not reach the built module's values.
        let _ = draw(&device);
        let b = init_seeded(&device, 9, build);
        let _ = draw(&device);
        assert_eq!(weights(&a), weights(&b));
        let c = init_seeded(&device, 10, build);
        assert_ne!(weights(&a), weights(&c));
    }

    #[test]
    fn holding_is_reentrant_on_one_thread() {
        let device = Device::flex();
        let outer = seeded(&device, 1);
        let inner = hold();
        drop(inner);
        // Still held: another thread waits until the outer guard goes.
        let waiter = std::thread::spawn(|| drop(hold()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished());
        drop(outer);
        waiter.join().unwrap();
    }
}
