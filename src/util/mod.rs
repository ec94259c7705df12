//! The bottom of the crate: what every layer may use and which uses nothing of the crate but
//! its error type.
//!
//! - [`rng`]: seeded per-example random streams, hashing, weighted picks.
//! - [`random`]: burn's process-wide random stream, held by one user at a time.
//! - `atomic_file`: files written whole or not at all.
//! - `json`: unknown fields, a field's place in a file, setting a field by its dotted path,
//!   and the first field where two values differ.

pub(crate) mod atomic_file;
pub(crate) mod json;
pub mod random;
pub mod rng;
