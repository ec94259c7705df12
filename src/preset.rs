//! Size presets: a backbone shape with the sequence length, batch size and learning rate that
//! go with it.

use std::str::FromStr;

use crate::blocks::{BlockConfig, TransformerEncoderConfig};
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
        let (_, [hidden, layers, heads, ffn, positions], ..) = self.row();
        TransformerEncoderConfig::new(vocab_size, hidden, layers, BlockConfig::new(heads, ffn))
            .with_max_positions(positions)
    }

    /// Layers of the backbone (and of an encoder-decoder's decoder).
    pub fn num_layers(self) -> usize {
        self.row().1[1]
    }

    /// Inner width of the (plain) feed-forward network.
    pub fn ffn_size(self) -> usize {
        self.row().1[3]
    }

    /// Name; width, layers, heads, feed-forward width and positions; sequence length, batch
    /// size and peak learning rate.
    fn row(self) -> (&'static str, [usize; 5], usize, usize, f64) {
        match self {
            Preset::Tiny => ("tiny", [64, 2, 2, 256, 128], 64, 16, 2e-3),
            Preset::Mini => ("mini", [256, 4, 4, 1024, 512], 128, 16, 1e-3),
            Preset::Small => ("small", [512, 4, 8, 2048, 512], 128, 32, 5e-4),
            Preset::Base => ("base", [768, 12, 12, 3072, 512], 512, 32, 1e-4),
        }
    }

    /// Default sequence length.
    pub fn seq_len(self) -> usize {
        self.row().2
    }

    /// Default batch size.
    pub fn batch_size(self) -> usize {
        self.row().3
    }

    /// Default peak learning rate.
    pub fn learning_rate(self) -> f64 {
        self.row().4
    }

    /// The preset's name.
    pub fn name(self) -> &'static str {
        self.row().0
    }
}

impl FromStr for Preset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        [Preset::Tiny, Preset::Mini, Preset::Small, Preset::Base]
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "unknown preset {s:?} (expected tiny, mini, small or base)"
                ))
            })
    }
}
