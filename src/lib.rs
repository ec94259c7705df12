//! # pretext
//!
//! Pretraining Transformer language models with pluggable self-supervised objectives, on burn.
//!
//! The crate follows the way data flow: [`corpus`] (text files → documents → sentences),
//! [`tokenize`] (WordPiece with word starts), [`dataset`] (documents read and tokenized once,
//! prepared datasets, data files), [`noise`] (pure, seeded corruption such as MLM masking),
//! [`data`] (tasks, segments, examples and batches), [`blocks`] (Transformer modules),
//! [`objectives`] (heads and losses behind one [`Objective`] trait), [`Pretrainer`] (a backbone
//! paired with an objective), [`train`] (one loop for every objective) and [`recipe`] (a whole
//! run as one serialisable value, and the registry of named objectives). [`hf`] loads Hugging
//! Face checkpoints and exports them back; [`fill_mask`] asks a masked LM for its guesses,
//! [`generate`] samples from a causal one, [`quantize`] stores a trained model's weights in
//! int8 for inference, and [`lora`] trains low-rank adapters on a frozen backbone.
//!
//! Attention masks follow burn's convention, `true` = blocked, and only travel as
//! [`blocks::AttentionMask`]. Targets use one ignore value, [`noise::IGNORE_INDEX`].
//!
//! ## From another crate
//!
//! A crate that depends on `pretext` alone has burn and rand through it, as [`burn`] and
//! [`rand`]. burn's derives (`#[derive(Module)]`, `#[derive(Config)]`) write paths that begin
//! with `burn::`, so bring the name into scope in each file that uses them:
//!
//! ```
//! use pretext::burn;
//! use pretext::burn::prelude::*;
//!
//! /// A head of one's own, with its parameters.
//! #[derive(Module, Debug)]
//! struct Scorer {
//!     linear: burn::nn::Linear,
//! }
//!
//! let device = Device::flex();
//! let scorer = Scorer { linear: burn::nn::LinearConfig::new(4, 1).init(&device) };
//! assert_eq!(scorer.num_params(), 5);
//! ```

#![warn(missing_docs)]

pub mod align;
#[doc = include_str!("architecture.md")]
pub mod architecture {}
pub mod blocks;
pub mod corpus;
pub mod data;
pub mod dataset;
pub mod device;
pub mod error;
pub mod fill_mask;
pub mod finetune;
pub mod generate;
pub mod hf;
pub mod kernels;
pub mod lora;
pub mod noise;
pub mod objectives;
pub mod preset;
pub mod pretrainer;
pub mod quantize;
pub mod recipe;
pub mod tokenize;
pub mod train;
pub mod util;

#[cfg(test)]
mod test_support;

/// The burn pretext is built on, re-exported so that users need no separate dependency
/// (`use pretext::burn;` puts it in scope for burn's derives).
pub use burn;
pub use error::{Error, Result};
pub use objectives::{Objective, ObjectiveOutput};
pub use preset::Preset;
pub use pretrainer::Pretrainer;
/// The rand pretext draws with, re-exported for the traits [`util::rng::ExampleRng`] needs
/// (`use pretext::rand::RngExt;`).
pub use rand;
pub use recipe::Recipe;
pub use tokenize::Tokenizer;

/// An example's exit: success, or the error printed as text (its `Display`, written to be read,
/// rather than the `Debug` a `main` returning `Result` prints) and a failure code.
pub fn exit_with(
    result: std::result::Result<(), Box<dyn std::error::Error>>,
) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The README's code blocks, compiled as doctests so that its example keeps building.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
