//! A Hugging Face `config.json`, read into one shape for every family pretext loads: GPT-2's
//! `n_embd`, BART's `d_model` and BERT's `hidden_size` are one field here, and each family's
//! defaults fill what its file leaves out.

use std::path::Path;

use serde::Deserialize;

use super::model_error;
use crate::blocks::{
    Activation, BlockConfig, NormKind, PositionEncoding, TransformerEncoderConfig,
};
use crate::error::{Error, Result};

/// The families pretext loads, by `model_type`.
pub const FAMILIES: &[&str] = &[
    "bert",
    "roberta",
    "electra",
    "albert",
    "gpt2",
    "bart",
    "llama",
    "qwen2",
    "modernbert",
    "t5",
];

/// The families whose blocks are Llama's: pre-RMSNorm, rotary positions, grouped-query
/// attention, SwiGLU.
pub(crate) const ROTARY_DECODERS: &[&str] = &["llama", "qwen2"];

/// The fields of a Hugging Face `config.json` that pretext reads (the file holds many more,
/// which are ignored), with each family's names and defaults resolved.
#[derive(Debug, Clone)]
pub struct HfConfig {
    /// The family: one of [`FAMILIES`].
    pub model_type: String,
    /// The classes the checkpoint was saved from, e.g. `BertForPreTraining`.
    pub architectures: Vec<String>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width (`n_embd`, `d_model`).
    pub hidden_size: usize,
    /// Width of the embedding tables (ELECTRA, ALBERT), projected up to `hidden_size`.
    pub embedding_size: Option<usize>,
    /// Layers (BART: encoder layers).
    pub num_hidden_layers: usize,
    /// Decoder layers (BART).
    pub decoder_layers: Option<usize>,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward width (`n_inner`, 4 × width when GPT-2 leaves it null; BART's
    /// `encoder_ffn_dim`).
    pub intermediate_size: usize,
    /// The activation (`hidden_act`, `activation_function`).
    pub hidden_act: String,
    /// Rows of the position table (BART's holds 2 more, for its offset).
    pub max_position_embeddings: usize,
    /// Token types (segments); 0 for GPT-2 and BART.
    pub type_vocab_size: usize,
    /// LayerNorm epsilon (BART's is fixed at 1e-5).
    pub layer_norm_eps: f64,
    /// Dropout of the hidden states.
    pub hidden_dropout_prob: f64,
    /// The padding id: RoBERTa's positions start just after it.
    pub pad_token_id: Option<usize>,
    /// BART: token vectors multiplied by √width.
    pub scale_embedding: bool,
    /// The token the decoder starts from (BART).
    pub decoder_start_token_id: Option<usize>,
    /// A classifier's label names by class id (`id2label`); empty when the file has none.
    pub labels: Vec<String>,
    /// Key/value heads (Llama, Qwen2: grouped-query attention).
    pub num_key_value_heads: Option<usize>,
    /// Width of each head where it is not the width over the heads (Llama).
    pub head_dim: Option<usize>,
    /// The rotary embeddings' base (Llama, Qwen2).
    pub rope_theta: Option<f64>,
    /// Whether the LM head is the token table (Llama: usually not).
    pub tie_word_embeddings: bool,
    /// Biases on the attention's projections: Llama's four, or Qwen2's query, key and value.
    pub attention_bias: bool,
    /// Biases on the feed-forward projections (Llama, ModernBERT).
    pub mlp_bias: bool,
    /// ModernBERT: the keys a local layer sees either side (half its `local_attention`).
    pub local_window: Option<usize>,
    /// ModernBERT: layers 0, n, 2n, … attend globally.
    pub global_every: usize,
    /// ModernBERT: the rotary base of its local layers.
    pub local_rope_theta: Option<f64>,
    /// Shifts in the LayerNorms (ModernBERT's `norm_bias`; BERT's always have them).
    pub norm_bias: bool,
    /// ModernBERT's MLM head: a bias on its dense map (`classifier_bias`).
    pub head_bias: bool,
    /// ModernBERT's MLM head: its activation (`classifier_activation`).
    pub head_act: Option<String>,
    /// A gated feed-forward network (T5's `gated-…` `feed_forward_proj`; Llama's always).
    pub glu: bool,
    /// T5's relative bias: its buckets and the distance from which offsets share the last.
    pub relative_attention: Option<(usize, usize)>,
    /// T5: the decoder's output scaled by `d_model^-0.5` before a tied LM head.
    pub scale_decoder_outputs: bool,
}

/// `rope_parameters` as Llama writes it, or one per layer type as ModernBERT does.
#[derive(Deserialize)]
#[serde(untagged)]
enum RopeField {
    ByLayerType(std::collections::BTreeMap<String, RopeParameters>),
    One(RopeParameters),
}

impl RopeField {
    /// The parameters of layers of `kind` (`full_attention`, `sliding_attention`), or the
    /// one set.
    fn of(&self, kind: &str) -> Option<&RopeParameters> {
        match self {
            Self::One(one) => Some(one),
            Self::ByLayerType(by) => by.get(kind),
        }
    }

    /// Every set it holds.
    fn all(&self) -> Vec<&RopeParameters> {
        match self {
            Self::One(one) => vec![one],
            Self::ByLayerType(by) => by.values().collect(),
        }
    }
}

/// `rope_parameters` (transformers 5) or `rope_scaling` (4): the rotary scheme.
#[derive(Deserialize, Default)]
struct RopeParameters {
    rope_theta: Option<f64>,
    rope_type: Option<String>,
    #[serde(alias = "type")]
    kind: Option<String>,
}

/// The file as written, every family's names accepted.
#[derive(Deserialize)]
struct RawConfig {
    model_type: String,
    #[serde(default)]
    architectures: Vec<String>,
    vocab_size: usize,
    #[serde(alias = "n_embd", alias = "d_model")]
    hidden_size: usize,
    embedding_size: Option<usize>,
    #[serde(alias = "n_layer", alias = "encoder_layers", alias = "num_layers")]
    num_hidden_layers: usize,
    #[serde(alias = "num_decoder_layers")]
    decoder_layers: Option<usize>,
    #[serde(
        alias = "n_head",
        alias = "encoder_attention_heads",
        alias = "num_heads"
    )]
    num_attention_heads: usize,
    decoder_attention_heads: Option<usize>,
    #[serde(alias = "n_inner", alias = "encoder_ffn_dim", alias = "d_ff")]
    intermediate_size: Option<usize>,
    decoder_ffn_dim: Option<usize>,
    #[serde(alias = "activation_function", alias = "hidden_activation")]
    hidden_act: Option<String>,
    #[serde(alias = "n_positions")]
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    #[serde(
        alias = "layer_norm_epsilon",
        alias = "rms_norm_eps",
        alias = "norm_eps"
    )]
    layer_norm_eps: Option<f64>,
    #[serde(alias = "resid_pdrop", alias = "dropout", alias = "dropout_rate")]
    hidden_dropout_prob: Option<f64>,
    attention_dropout: Option<f64>,
    position_embedding_type: Option<String>,
    pad_token_id: Option<usize>,
    #[serde(default)]
    scale_embedding: bool,
    decoder_start_token_id: Option<usize>,
    num_hidden_groups: Option<usize>,
    inner_group_num: Option<usize>,
    #[serde(default)]
    id2label: std::collections::BTreeMap<String, String>,
    num_key_value_heads: Option<usize>,
    #[serde(alias = "d_kv")]
    head_dim: Option<usize>,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeField>,
    rope_scaling: Option<RopeParameters>,
    partial_rotary_factor: Option<f64>,
    tie_word_embeddings: Option<bool>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    #[serde(default)]
    use_sliding_window: bool,
    local_attention: Option<usize>,
    global_attn_every_n_layers: Option<usize>,
    global_rope_theta: Option<f64>,
    local_rope_theta: Option<f64>,
    layer_types: Option<Vec<String>>,
    norm_bias: Option<bool>,
    #[serde(default)]
    classifier_bias: bool,
    classifier_activation: Option<String>,
    decoder_bias: Option<bool>,
    feed_forward_proj: Option<String>,
    relative_attention_num_buckets: Option<usize>,
    relative_attention_max_distance: Option<usize>,
    scale_decoder_outputs: Option<bool>,
}

impl HfConfig {
    /// Reads `dir/config.json`: a family of [`FAMILIES`] whose shape pretext's blocks compute,
    /// or an error naming what does not fit.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| model_error(dir, &format!("config.json: {e}")))?;
        let raw: RawConfig = serde_json::from_str(&text).map_err(|e| Error::ConfigFile {
            path: path.clone(),
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })?;
        Self::resolve(raw, dir)
    }

    /// Reads a `config.json`'s contents, `value`, as [`read`](Self::read) reads the file of
    /// `dir`: what an export's fields come back as.
    pub(crate) fn from_json(value: serde_json::Value, dir: &Path) -> Result<Self> {
        let raw: RawConfig = serde_json::from_value(value).map_err(|e| model_error(dir, &e))?;
        Self::resolve(raw, dir)
    }

    fn resolve(raw: RawConfig, dir: &Path) -> Result<Self> {
        let family = raw.model_type.as_str();
        if !FAMILIES.contains(&family) {
            return Err(model_error(
                dir,
                &format!(
                    "model_type {family:?} is not one pretext loads ({})",
                    FAMILIES.join(", ")
                ),
            ));
        }
        let unsupported = |what: String| Err(model_error(dir, &what));
        if let Some(kind) = raw.position_embedding_type.as_deref()
            && kind != "absolute"
        {
            return unsupported(format!(
                "position_embedding_type {kind:?}: only absolute positions load"
            ));
        }
        // ALBERT's groups: pretext shares one layer across every depth, ALBERT's default.
        if raw.num_hidden_groups.unwrap_or(1) != 1 || raw.inner_group_num.unwrap_or(1) != 1 {
            return unsupported(
                "num_hidden_groups and inner_group_num other than 1: pretext shares one layer \
                 across every depth"
                    .into(),
            );
        }
        // Families with rotary positions (Llama, Qwen2, ModernBERT), whose rope fields are read.
        let rope_family = ROTARY_DECODERS.contains(&family) || family == "modernbert";
        if let Some(what) = rope_family.then(|| rotary_misfit(&raw)).flatten() {
            return unsupported(what);
        }
        let heads = raw.num_attention_heads;
        let ffn = match (family, raw.intermediate_size) {
            ("gpt2", None) => 4 * raw.hidden_size,
            (_, Some(size)) => size,
            (_, None) => return unsupported("config.json has no intermediate_size".into()),
        };
        // BART's decoder layers take the encoder's shape: pretext builds both from one config.
        for (name, theirs, ours) in [
            (
                "decoder_attention_heads",
                raw.decoder_attention_heads,
                heads,
            ),
            ("decoder_ffn_dim", raw.decoder_ffn_dim, ffn),
        ] {
            if let Some(theirs) = theirs
                && theirs != ours
            {
                return unsupported(format!(
                    "{name} {theirs} differs from the encoder's {ours}: pretext's decoder \
                     layers are shaped as its encoder's"
                ));
            }
        }
        let (act, eps, types, positions) = match family {
            "gpt2" => ("gelu_new", 1e-5, 0, 1024),
            "bart" => ("gelu", 1e-5, 0, 1024),
            "albert" => ("gelu_new", 1e-12, 2, 512),
            "llama" => ("silu", 1e-6, 0, 2048),
            "qwen2" => ("silu", 1e-6, 0, 32768),
            "modernbert" => ("gelu", 1e-5, 0, 8192),
            "t5" => ("relu", 1e-6, 0, 512),
            _ => ("gelu", 1e-12, 2, 512),
        };
        let global_every = raw.global_attn_every_n_layers.unwrap_or(1);
        if let Some(types) = &raw.layer_types {
            for (depth, kind) in types.iter().enumerate() {
                let global = global_every > 0 && depth % global_every == 0;
                if (kind == "full_attention") != global {
                    return unsupported(format!(
                        "layer_types: layer {depth} is {kind:?}, where pretext makes every \
                         {global_every}th layer from the first global and the others local"
                    ));
                }
            }
        }
        let theta_of = |kind: &str| {
            let field = raw.rope_parameters.as_ref().and_then(|r| r.of(kind));
            field
                .or(raw.rope_scaling.as_ref())
                .and_then(|r| r.rope_theta)
        };
        // T5 names its feed-forward network `relu` or `gated-gelu` (whose GELU is the tanh
        // one), `gated-silu`, …
        let proj = raw.feed_forward_proj.as_deref();
        let (t5_gated, t5_act) = match proj.map(|p| (p, p.strip_prefix("gated-"))) {
            Some((_, Some("gelu"))) => (true, Some("gelu_new")),
            Some((_, Some(act))) => (true, Some(act)),
            Some((act, None)) => (false, Some(act)),
            None => (false, None),
        };
        let t5 = family == "t5";
        let config = Self {
            model_type: raw.model_type.clone(),
            architectures: raw.architectures,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            embedding_size: raw.embedding_size,
            num_hidden_layers: raw.num_hidden_layers,
            decoder_layers: raw.decoder_layers,
            num_attention_heads: heads,
            intermediate_size: ffn,
            hidden_act: t5_act
                .map(String::from)
                .or(raw.hidden_act)
                .unwrap_or_else(|| act.into()),
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(positions),
            type_vocab_size: match family {
                "gpt2" | "bart" | "llama" | "qwen2" | "t5" => 0,
                _ => raw.type_vocab_size.unwrap_or(types),
            },
            // BART's LayerNorms are nn.LayerNorm(d_model): 1e-5 whatever the file says.
            layer_norm_eps: match family {
                "bart" => eps,
                _ => raw.layer_norm_eps.unwrap_or(eps),
            },
            // Llama's only dropout is on the attention weights, 0 by default.
            hidden_dropout_prob: match rope_family {
                true => raw.attention_dropout.unwrap_or(0.0),
                false => raw.hidden_dropout_prob.unwrap_or(0.1),
            },
            pad_token_id: raw.pad_token_id,
            scale_embedding: raw.scale_embedding,
            decoder_start_token_id: raw.decoder_start_token_id,
            labels: labels(&raw.id2label, dir)?,
            num_key_value_heads: raw.num_key_value_heads,
            head_dim: raw.head_dim,
            rope_theta: raw
                .rope_theta
                .or(raw.global_rope_theta)
                .or(theta_of("full_attention"))
                .or(rope_family.then_some(10_000.0)),
            // Llama's default is untied, Qwen2's (and every BERT-shaped family's) tied.
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(family != "llama"),
            attention_bias: raw.attention_bias || family == "qwen2",
            mlp_bias: raw.mlp_bias,
            // Every layer global (n = 1) is a block without a window.
            local_window: raw
                .local_attention
                .map(|w| w / 2)
                .filter(|_| global_every != 1),
            global_every: match global_every {
                1 => 0,
                n => n,
            },
            local_rope_theta: raw.local_rope_theta.or(theta_of("sliding_attention")),
            norm_bias: raw.norm_bias.unwrap_or(family != "modernbert"),
            head_bias: raw.classifier_bias,
            head_act: raw.classifier_activation,
            glu: ROTARY_DECODERS.contains(&family) || family == "modernbert" || t5_gated,
            relative_attention: t5.then(|| {
                let buckets = raw.relative_attention_num_buckets.unwrap_or(32);
                (buckets, raw.relative_attention_max_distance.unwrap_or(128))
            }),
            // T5Config's rule: scaled unless the file says the head is untied.
            scale_decoder_outputs: raw
                .scale_decoder_outputs
                .unwrap_or(raw.tie_word_embeddings != Some(false)),
        };
        if family == "modernbert" && raw.decoder_bias == Some(false) {
            return unsupported("decoder_bias false: pretext's MLM head has an output bias".into());
        }
        config.activation(dir)?;
        config.encoder(dir)?;
        Ok(config)
    }

    /// The activation of the layers, or an error naming one pretext's blocks do not compute.
    pub fn activation(&self, dir: &Path) -> Result<Activation> {
        // T5 names its activation inside feed_forward_proj (`gated-gelu`).
        let field = match self.model_type.as_str() {
            "t5" => "feed_forward_proj",
            _ => "hidden_act",
        };
        Activation::from_hf(&self.hidden_act).ok_or_else(|| {
            model_error(
                dir,
                &format!(
                    "{field} {:?}: pretext's blocks compute gelu, gelu_new, relu and silu only",
                    self.hidden_act
                ),
            )
        })
    }

    /// The pretext encoder of this shape (BART: its encoder, whose shape the decoder layers
    /// take too).
    pub fn encoder(&self, dir: &Path) -> Result<TransformerEncoderConfig> {
        let family = self.model_type.as_str();
        // RoBERTa numbers positions from the padding id + 1 (fairseq's make_positions); BART's
        // table holds two rows before its first position.
        let (position_offset, extra_rows) = match family {
            "roberta" => (self.pad_token_id.unwrap_or(1) + 1, 0),
            "bart" => (2, 2),
            _ => (0, 0),
        };
        // ALBERT always projects its embeddings up; ELECTRA only when they are narrower.
        let embedding_size = match family {
            "albert" => self.embedding_size,
            _ => self.embedding_size.filter(|&e| e != self.hidden_size),
        };
        let scale = match self.scale_embedding {
            true => (self.hidden_size as f64).sqrt(),
            false => 1.0,
        };
        let mut block = BlockConfig::new(self.num_attention_heads, self.intermediate_size)
            .with_norm_eps(self.layer_norm_eps)
            .with_activation(self.activation(dir)?)
            .with_norm_first(family == "gpt2");
        let rotary = ROTARY_DECODERS.contains(&family);
        if rotary {
            block = self.rotary_block(block);
        }
        let modern = family == "modernbert";
        if modern {
            block = self.modernbert_block(block);
        }
        let t5 = family == "t5";
        if t5 {
            block = self.t5_block(block);
        }
        let encoder = TransformerEncoderConfig::new(
            self.vocab_size,
            self.hidden_size,
            self.num_hidden_layers,
            block,
        )
        .with_embedding_size(embedding_size)
        .with_share_layers(family == "albert")
        .with_max_positions(self.max_position_embeddings + extra_rows)
        .with_position_offset(position_offset)
        .with_num_segments(self.type_vocab_size)
        .with_dropout(self.hidden_dropout_prob)
        .with_embedding_norm(family != "gpt2" && !rotary && !t5)
        .with_embedding_scale(scale);
        encoder.validate().map_err(|e| model_error(dir, &e))?;
        Ok(encoder)
    }

    /// `block` as Llama's: pre-RMSNorm, SwiGLU, rotary positions, grouped-query attention,
    /// biases as the file says (Qwen2: on the query, key and value only).
    fn rotary_block(&self, block: BlockConfig) -> BlockConfig {
        let qwen2 = self.model_type == "qwen2";
        // A head width that is the width over the heads is the block's default.
        let (heads, hidden) = (self.num_attention_heads, self.hidden_size);
        let head_size = self.head_dim.filter(|&d| d * heads != hidden);
        // As many key/value heads as query heads is plain multi-head attention.
        let kv_heads = self.num_key_value_heads.filter(|&kv| kv != heads);
        block
            .with_kv_heads(kv_heads)
            .with_head_size(head_size)
            .with_qkv_bias(self.attention_bias)
            .with_output_bias(self.attention_bias && !qwen2)
            .with_glu(self.glu)
            .with_ffn_bias(self.mlp_bias)
            .with_norm(NormKind::RmsNorm)
            .with_norm_first(true)
            .with_positions(PositionEncoding::Rotary {
                theta: self.rope_theta.unwrap_or(10_000.0),
            })
    }

    /// `block` as ModernBERT's: pre-norm with LayerNorms (shifted or not), none before the
    /// first layer's attention, GeGLU, rotary positions, layers 0, n, 2n… global and the
    /// others local with their own rotary base.
    fn modernbert_block(&self, block: BlockConfig) -> BlockConfig {
        let theta = self.rope_theta.unwrap_or(160_000.0);
        block
            .with_qkv_bias(self.attention_bias)
            .with_output_bias(self.attention_bias)
            .with_glu(self.glu)
            .with_ffn_bias(self.mlp_bias)
            .with_norm_bias(self.norm_bias)
            .with_norm_first(true)
            .with_first_attention_norm(false)
            .with_positions(PositionEncoding::Rotary { theta })
            .with_window(self.local_window)
            .with_global_every(self.global_every)
            .with_local_theta(self.local_rope_theta.filter(|&t| t != theta))
    }

    /// `block` as T5's: pre-RMSNorm, no biases, a relative bias table per stack, unscaled
    /// attention, a head width of `d_kv`, a gated network or not.
    fn t5_block(&self, block: BlockConfig) -> BlockConfig {
        let (heads, hidden) = (self.num_attention_heads, self.hidden_size);
        let (buckets, max_distance) = self.relative_attention.unwrap_or((32, 128));
        block
            .t5_layout()
            .with_norm_eps(self.layer_norm_eps)
            .with_head_size(self.head_dim.filter(|&d| d * heads != hidden))
            .with_glu(self.glu)
            .with_positions(PositionEncoding::Relative {
                buckets,
                max_distance,
            })
    }

    /// Checks that this is of the family `family`.
    pub(crate) fn expect(&self, family: &str, dir: &Path) -> Result<()> {
        if self.model_type == family {
            return Ok(());
        }
        Err(model_error(
            dir,
            &format!(
                "model_type {:?} where {family} was expected",
                self.model_type
            ),
        ))
    }
}

/// What a Llama- or ModernBERT-shaped file asks that pretext's rotary blocks do not compute,
/// if anything.
fn rotary_misfit(raw: &RawConfig) -> Option<String> {
    let mut ropes = raw.rope_parameters.as_ref().map_or(vec![], RopeField::all);
    ropes.extend(&raw.rope_scaling);
    for rope in ropes {
        let kind = rope.rope_type.as_deref().or(rope.kind.as_deref());
        if let Some(kind) = kind.filter(|k| *k != "default") {
            return Some(format!(
                "rope_type {kind:?}: pretext's rotary embeddings are the default ones (no \
                 scaling)"
            ));
        }
    }
    if raw.partial_rotary_factor.is_some_and(|f| f != 1.0) {
        return Some("partial_rotary_factor: pretext rotates the whole head".into());
    }
    raw.use_sliding_window
        .then(|| "use_sliding_window: pretext's causal stacks attend to every earlier token".into())
}

/// The label names of `id2label` in class order: ids 0 to n - 1, each once.
fn labels(
    id2label: &std::collections::BTreeMap<String, String>,
    dir: &Path,
) -> Result<Vec<String>> {
    (0..id2label.len())
        .map(|id| {
            id2label.get(&id.to_string()).cloned().ok_or_else(|| {
                model_error(
                    dir,
                    &format!("id2label has no class {id} of {}", id2label.len()),
                )
            })
        })
        .collect()
}
