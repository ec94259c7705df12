//! The configuration of one Transformer block — attention, feed-forward network, norms and
//! their placement, positions — held by every stack: the encoder, the decoder, ELECTRA's
//! generator. One field per choice, as x-transformers has one flag per scheme; the default is
//! BERT's block (post-LayerNorm, GELU, biases everywhere, a learned position table).
//!
//! | field | x-transformers | BERT | Llama | ModernBERT |
//! |---|---|---|---|---|
//! | `norm` | `use_rmsnorm` | `LayerNorm` | `RmsNorm` | `LayerNorm` |
//! | `norm_bias` | — | true | — | false |
//! | `norm_first` | `pre_norm` | false | true | true |
//! | `activation`, `glu` | `ff_swish`, `ff_glu` | `Gelu` | `Silu`, true | `Gelu`, true |
//! | `ffn_bias` | `ff_no_bias` | true | false | false |
//! | `qkv_bias`, `output_bias` | — | true | false | false |
//! | `kv_heads` | `attn_kv_heads` | — | 8 of 32 (GQA) | — |
//! | `positions` | `rotary_pos_emb`, `alibi_pos_bias`, `use_abs_pos_emb` | `Learned` | `Rotary` | `Rotary` |

use burn::prelude::*;

use super::attention::MultiHeadAttentionConfig;
use super::feed_forward::{Activation, FeedForward, FeedForwardConfig};
use super::norm::{LayerNorm, NormKind};
use super::positions::{PositionEncoding, Positions};
use crate::error::{Error, Result};

/// The shape of every layer of a stack.
#[derive(Config, Debug)]
pub struct BlockConfig {
    /// Attention (query) heads; must divide the model width unless `head_size` is given.
    pub num_heads: usize,
    /// Inner width of the feed-forward network (of each projection of a gated one).
    pub ffn_size: usize,
    /// Key/value heads, fewer than `num_heads` for grouped-query attention (1: multi-query);
    /// must divide `num_heads`. Default: one per query head.
    #[config(default = "None")]
    pub kv_heads: Option<usize>,
    /// Width of each attention head. Default: the model width over `num_heads`.
    #[config(default = "None")]
    pub head_size: Option<usize>,
    /// Biases on the query, key and value projections. Default true.
    #[config(default = true)]
    pub qkv_bias: bool,
    /// A bias on the attention's output projection. Default true.
    #[config(default = true)]
    pub output_bias: bool,
    /// The feed-forward network's activation. Default the exact GELU (BERT); GPT-2 and ALBERT
    /// use the tanh approximation.
    #[config(default = "Activation::Gelu")]
    pub activation: Activation,
    /// A gated feed-forward network, `act(x·W_gate) ⊙ x·W_up` (GeGLU with GELU, SwiGLU with
    /// SiLU). Default false.
    #[config(default = false)]
    pub glu: bool,
    /// Biases in the feed-forward network. Default true.
    #[config(default = true)]
    pub ffn_bias: bool,
    /// The norm: LayerNorm or RMSNorm. Default LayerNorm.
    #[config(default = "NormKind::LayerNorm")]
    pub norm: NormKind,
    /// The norms' epsilon. Default 1e-12 (BERT).
    #[config(default = 1e-12)]
    pub norm_eps: f64,
    /// A shift in each LayerNorm. Default true.
    #[config(default = true)]
    pub norm_bias: bool,
    /// The norm before each sub-layer, and a final one after the stack (pre-norm: GPT-2,
    /// Llama), instead of after each residual sum (post-norm: BERT). Default false.
    #[config(default = false)]
    pub norm_first: bool,
    /// How positions are encoded. Default a learned table.
    #[config(default = "PositionEncoding::Learned")]
    pub positions: PositionEncoding,
}

impl BlockConfig {
    /// Checks the block at model width `hidden`: the heads, the rotary head width.
    pub fn validate(&self, hidden: usize) -> Result<()> {
        if self.ffn_size == 0 {
            return Err(Error::InvalidConfig("ffn_size must be positive".into()));
        }
        crate::error::check_positive("norm_eps", self.norm_eps)?;
        let attention = self.attention(hidden, 0.0);
        attention.validate()?;
        if let PositionEncoding::Rotary { theta } = self.positions {
            if attention.head_width() % 2 == 1 {
                return Err(Error::InvalidConfig(format!(
                    "rotary positions need an even head width, not {} (they rotate pairs of \
                     features)",
                    attention.head_width()
                )));
            }
            crate::error::check_positive("rotary theta", theta)?;
        }
        Ok(())
    }

    /// The attention of this block at model width `hidden`.
    pub fn attention(&self, hidden: usize, dropout: f64) -> MultiHeadAttentionConfig {
        MultiHeadAttentionConfig::new(hidden, self.num_heads)
            .with_kv_heads(self.kv_heads)
            .with_head_size(self.head_size)
            .with_qkv_bias(self.qkv_bias)
            .with_output_bias(self.output_bias)
            .with_dropout(dropout)
    }

    /// What every layer of this block at model width `hidden` needs to know of positions, for
    /// rows at `queries` `[batch, q]` attending to keys at `keys` `[batch, k]`: computed once
    /// per forward (nothing where positions are added at the input).
    pub fn positions(
        &self,
        hidden: usize,
        queries: &Tensor<2, Int>,
        keys: &Tensor<2, Int>,
    ) -> Positions {
        if self.positions.added() {
            return Positions::none();
        }
        let size = self.attention(hidden, 0.0).head_width();
        Positions::new(self.positions, queries, keys, self.num_heads, size)
    }

    /// The feed-forward network of this block at model width `hidden`.
    pub fn ffn(&self, hidden: usize, device: &Device) -> FeedForward {
        FeedForwardConfig::new(hidden, self.ffn_size)
            .with_activation(self.activation)
            .with_gated(self.glu)
            .with_bias(self.ffn_bias)
            .init(device)
    }

    /// A norm of this block over `width` features.
    pub fn norm(&self, width: usize, device: &Device) -> LayerNorm {
        LayerNorm::new(self.norm, width, self.norm_eps, self.norm_bias, device)
    }

    /// Parameters of one norm over `width` features.
    pub fn norm_params(&self, width: usize) -> usize {
        let shift = self.norm == NormKind::LayerNorm && self.norm_bias;
        width * (1 + usize::from(shift))
    }

    /// Parameters of one attention at model width `hidden`.
    pub fn attention_params(&self, hidden: usize) -> usize {
        let attention = self.attention(hidden, 0.0);
        let (q, kv) = (
            self.num_heads * attention.head_width(),
            attention.kv_head_count() * attention.head_width(),
        );
        let qkv = hidden * (q + 2 * kv) + usize::from(self.qkv_bias) * (q + 2 * kv);
        qkv + q * hidden + usize::from(self.output_bias) * hidden
    }

    /// Parameters of one feed-forward network at model width `hidden`.
    pub fn ffn_params(&self, hidden: usize) -> usize {
        let (f, bias) = (self.ffn_size, usize::from(self.ffn_bias));
        let ups = 1 + usize::from(self.glu);
        ups * (hidden * f + bias * f) + f * hidden + bias * hidden
    }
}
