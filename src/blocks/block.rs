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
//! | `window`, `global_every`, `local_theta` | `local_attn_window_size` | — | — | 64, 3, 10 000 |
//! | `qk_norm` | `qk_norm` | false | false | false |

use burn::prelude::*;

use super::attention::MultiHeadAttentionConfig;
use super::feed_forward::{Activation, FeedForward, FeedForwardConfig};
use super::norm::{LayerNorm, NormKind};
use super::positions::{PositionEncoding, Positions};
use super::relative_bias::RelativeBias;
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
    /// With pre-norm, the first layer's attention norms its input too; false reads the
    /// normalised embeddings as they are (ModernBERT). Default true.
    #[config(default = true)]
    pub first_attention_norm: bool,
    /// How positions are encoded. Default a learned table.
    #[config(default = "PositionEncoding::Learned")]
    pub positions: PositionEncoding,
    /// Local attention: a local layer's token sees only the keys at most this many positions
    /// away, either side (ModernBERT: 64, half its `local_attention`; in a causal stack, the
    /// earlier side only is left). Default none: every layer global.
    #[config(default = "None")]
    pub window: Option<usize>,
    /// With a window, layers 0, n, 2n, … stay global and the others are local (ModernBERT:
    /// 3); 0 makes every layer local. Default 0.
    #[config(default = 0)]
    pub global_every: usize,
    /// The rotary base of local layers where it is not the global one (ModernBERT: 10 000
    /// local, 160 000 global). Default none.
    #[config(default = "None")]
    pub local_theta: Option<f64>,
    /// The factor on the query·key scores. Default none: `1/√head width`; T5 uses 1 (its
    /// initialisation folds the scale into the queries).
    #[config(default = "None")]
    pub attention_scale: Option<f64>,
    /// A norm (the block's kind and epsilon) over each head's queries and keys before their
    /// positions (OLMo 2, Qwen3). Default false.
    #[config(default = false)]
    pub qk_norm: bool,
}

impl BlockConfig {
    /// This block laid out as T5's: pre-RMSNorm (ε 1e-6), no biases, a relative bias table
    /// per stack (32 buckets up to a distance of 128), unscaled attention; its heads, widths
    /// and activation kept (T5 v1.0: ReLU; v1.1: a gated tanh GELU).
    pub fn t5_layout(self) -> Self {
        self.with_norm(NormKind::RmsNorm)
            .with_norm_eps(1e-6)
            .with_norm_first(true)
            .with_qkv_bias(false)
            .with_output_bias(false)
            .with_ffn_bias(false)
            .with_positions(PositionEncoding::Relative {
                buckets: 32,
                max_distance: 128,
            })
            .with_attention_scale(Some(1.0))
    }

    /// Checks the block at model width `hidden`: the heads, the rotary head width.
    pub fn validate(&self, hidden: usize) -> Result<()> {
        if self.ffn_size == 0 {
            return Err(Error::InvalidConfig("ffn_size must be positive".into()));
        }
        crate::error::check_positive("norm_eps", self.norm_eps)?;
        if !self.first_attention_norm && !self.norm_first {
            return Err(Error::InvalidConfig(
                "first_attention_norm false needs norm_first: a post-norm layer's norm follows \
                 its residual sum"
                    .into(),
            ));
        }
        if self.window == Some(0) {
            return Err(Error::InvalidConfig(
                "window must be positive: a window of 0 lets a token see only itself".into(),
            ));
        }
        if let Some(theta) = self.local_theta {
            crate::error::check_positive("local_theta", theta)?;
        }
        if let Some(scale) = self.attention_scale {
            crate::error::check_positive("attention_scale", scale)?;
        }
        if let PositionEncoding::Relative {
            buckets,
            max_distance,
        } = self.positions
        {
            // A bidirectional stack's exact buckets are a quarter of them; the logarithmic
            // ones need a maximum distance beyond.
            if buckets < 4 || max_distance <= buckets / 2 {
                return Err(Error::InvalidConfig(format!(
                    "relative positions need at least 4 buckets and a max_distance above half                      of them, not {buckets} buckets up to {max_distance}"
                )));
            }
        }
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

    /// The attention of this block at model width `hidden` (global; see
    /// [`is_local`](Self::is_local)).
    pub fn attention(&self, hidden: usize, dropout: f64) -> MultiHeadAttentionConfig {
        MultiHeadAttentionConfig::new(hidden, self.num_heads)
            .with_kv_heads(self.kv_heads)
            .with_head_size(self.head_size)
            .with_qkv_bias(self.qkv_bias)
            .with_output_bias(self.output_bias)
            .with_scale(self.attention_scale)
            .with_qk_norm(
                self.qk_norm
                    .then_some((self.norm, self.norm_eps, self.norm_bias)),
            )
            .with_dropout(dropout)
    }

    /// The relative bias table a stack of this block owns, if its positions are relative:
    /// with buckets for earlier keys only if `causal` (a decoder's).
    pub fn relative_bias(&self, causal: bool, device: &Device) -> Option<RelativeBias> {
        match self.positions {
            PositionEncoding::Relative {
                buckets,
                max_distance,
            } => Some(RelativeBias::new(
                buckets,
                max_distance,
                self.num_heads,
                causal,
                device,
            )),
            _ => None,
        }
    }

    /// What every layer of this block at model width `hidden` needs to know of positions, for
    /// rows at `queries` `[batch, q]` attending to keys at `keys` `[batch, k]`: computed once
    /// per forward (nothing where positions are added at the input), with the stack's
    /// `relative` bias where it has one, and local layers' own where the block has a window.
    pub fn positions(
        &self,
        hidden: usize,
        queries: &Tensor<2, Int>,
        keys: &Tensor<2, Int>,
        relative: Option<&RelativeBias>,
    ) -> Positions {
        let size = self.attention(hidden, 0.0).head_width();
        let of = |encoding: PositionEncoding| match encoding.added() {
            true => Positions::none(),
            false => Positions::new(encoding, queries, keys, self.num_heads, size),
        };
        let mut global = of(self.positions);
        if let Some(relative) = relative {
            global = global.with_bias(relative.bias(queries, keys));
        }
        let Some(window) = self.window else {
            return global;
        };
        let local = match (self.positions, self.local_theta) {
            (PositionEncoding::Rotary { .. }, Some(theta)) => {
                of(PositionEncoding::Rotary { theta })
            }
            _ => global.clone(),
        };
        global.with_local(local, window, queries, keys)
    }

    /// Whether its positions read the keys' positions (ALiBi's distances, a window), which a
    /// KV cache must then keep; rotary tables need only the rows' own.
    pub fn reads_key_positions(&self) -> bool {
        let biased = matches!(
            self.positions,
            PositionEncoding::Alibi | PositionEncoding::Relative { .. }
        );
        biased || self.window.is_some()
    }

    /// Whether the layer at `depth` norms the input of its attention.
    pub fn attention_norm_at(&self, depth: usize) -> bool {
        depth > 0 || self.first_attention_norm
    }

    /// Whether the layer at `depth` attends locally (within the window).
    pub fn is_local(&self, depth: usize) -> bool {
        self.window.is_some() && (self.global_every == 0 || depth % self.global_every != 0)
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
        let qk_norms = usize::from(self.qk_norm) * 2 * self.norm_params(attention.head_width());
        qkv + q * hidden + usize::from(self.output_bias) * hidden + qk_norms
    }

    /// Parameters of the relative bias table a stack of this block owns (none without one).
    pub fn relative_bias_params(&self) -> usize {
        match self.positions {
            PositionEncoding::Relative { buckets, .. } => buckets * self.num_heads,
            _ => 0,
        }
    }

    /// Parameters of one feed-forward network at model width `hidden`.
    pub fn ffn_params(&self, hidden: usize) -> usize {
        let (f, bias) = (self.ffn_size, usize::from(self.ffn_bias));
        let ups = 1 + usize::from(self.glu);
        ups * (hidden * f + bias * f) + f * hidden + bias * hidden
    }
}
