//! Token tasks made of one part that differs, how an example is made (masked segments,
//! shifted segments, labelled texts, tagged sentences), and one that does not: counting,
//! padding and collating [`TokenExample`]s into a [`TokenBatch`].

use burn::prelude::Device;

use super::{Task, TokenBatch, TokenExample};
use crate::error::Result;
use crate::util::rng::ExampleRng;

/// How a token task makes example `index`; [`TokenTaskOf`] makes it a [`Task`].
pub trait TokenSource: Send + Sync {
    /// Number of distinct examples in one epoch.
    fn num_examples(&self) -> usize;

    /// Example `index` (`< num_examples()`) with the given random stream.
    fn token_example(&self, index: usize, rng: &mut ExampleRng) -> Result<TokenExample>;
}

/// The [`Task`] of a [`TokenSource`]: its examples, padded with `pad` into a [`TokenBatch`].
#[derive(Debug, Clone)]
pub struct TokenTaskOf<S> {
    source: S,
    pad: u32,
}

impl<S: TokenSource> TokenTaskOf<S> {
    /// The task of `source`, padding with `pad`.
    pub fn of(source: S, pad: u32) -> Self {
        Self { source, pad }
    }

    /// The source of the examples.
    pub fn source(&self) -> &S {
        &self.source
    }
}

impl<S: TokenSource> Task for TokenTaskOf<S> {
    type Example = TokenExample;
    type Batch = TokenBatch;

    fn num_examples(&self) -> usize {
        self.source.num_examples()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<TokenExample> {
        self.source.token_example(index, rng)
    }

    fn collate(&self, examples: &[TokenExample], device: &Device) -> Result<TokenBatch> {
        TokenBatch::collate(examples, self.pad, device)
    }
}
