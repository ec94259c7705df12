//! The bottom of the crate: what every layer may use and which uses nothing of the crate but
//! its error type.
//!
//! - [`rng`]: seeded per-example random streams, hashing, weighted picks.
//! - [`random`]: burn's process-wide random stream, held by one user at a time.
//! - `atomic_file`: files written whole or not at all.
//! - `json`: unknown fields, a field's place in a file, setting a field by its dotted path,
//!   and the first field where two values differ.
//! - `floats` and `ints`: a tensor's values read back to the host.

pub(crate) mod atomic_file;
pub(crate) mod json;
pub mod random;
pub mod rng;

/// The values of `tensor`, read back to the host as `f32`.
pub(crate) fn floats<const D: usize>(tensor: burn::prelude::Tensor<D>) -> Vec<f32> {
    let data = tensor.into_data().convert::<f32>();
    data.try_to_vec().expect("floats")
}

/// The values of the integer `tensor`, read back to the host as `i64`.
pub(crate) fn ints<const D: usize>(
    tensor: burn::prelude::Tensor<D, burn::prelude::Int>,
) -> Vec<i64> {
    let data = tensor.into_data().convert::<i64>();
    data.try_to_vec().expect("integers")
}
