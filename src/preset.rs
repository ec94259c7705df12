//! Size presets: a backbone shape with the sequence length, batch size and learning rate that
//! go with it.

use std::str::FromStr;

use crate::blocks::TransformerEncoderConfig;
use crate::error::{Error, Result};

/// A model size with matching training defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// 2 layers of width 64: for tests, seconds per hundred steps.
    Tiny,
    /// 4 layers of width 256, 4 heads, ffn 1024, sequences of 128, batches of 16 (5.5 M
    /// parameters with an 8192 vocabulary): the CPU examples' default.
    Mini,
    /// 4 layers of width 512, 8 heads (BERT-small).
    Small,
    /// 12 layers of width 768, 12 heads (BERT-base): for GPUs.
    Base,
}

impl Preset {
    /// The backbone configuration for a vocabulary of `vocab_size`.
    pub fn encoder(self, vocab_size: usize) -> TransformerEncoderConfig {
        let (hidden, layers, heads, ffn, positions) = self.shape();
        TransformerEncoderConfig::new(vocab_size, hidden, layers, heads, ffn)
            .with_max_positions(positions)
    }

    /// Layers of the backbone (and of an encoder-decoder's decoder).
    pub fn num_layers(self) -> usize {
        self.shape().1
    }

    /// Width, layers, heads, feed-forward width and positions.
    fn shape(self) -> (usize, usize, usize, usize, usize) {
        match self {
            Preset::Tiny => (64, 2, 2, 256, 128),
            Preset::Mini => (256, 4, 4, 1024, 512),
            Preset::Small => (512, 4, 8, 2048, 512),
            Preset::Base => (768, 12, 12, 3072, 512),
        }
    }

    /// Default sequence length.
    pub fn seq_len(self) -> usize {
        match self {
            Preset::Tiny => 64,
            Preset::Mini | Preset::Small => 128,
            Preset::Base => 512,
        }
    }

    /// Default batch size.
    pub fn batch_size(self) -> usize {
        match self {
            Preset::Tiny => 16,
            Preset::Mini => 16,
            Preset::Small | Preset::Base => 32,
        }
    }

    /// Default peak learning rate.
    pub fn learning_rate(self) -> f64 {
        match self {
            Preset::Tiny => 2e-3,
            Preset::Mini => 1e-3,
            Preset::Small => 5e-4,
            Preset::Base => 1e-4,
        }
    }

    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::Mini => "mini",
            Preset::Small => "small",
            Preset::Base => "base",
        }
    }
}

impl FromStr for Preset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "tiny" => Ok(Preset::Tiny),
            "mini" => Ok(Preset::Mini),
            "small" => Ok(Preset::Small),
            "base" => Ok(Preset::Base),
            other => Err(Error::InvalidConfig(format!(
                "unknown preset {other:?} (expected tiny, mini, small or base)"
            ))),
        }
    }
}
