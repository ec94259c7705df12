//! Composable Transformer blocks: burn modules, each with a `Config` and `init(&device)`.

pub mod attention;
pub mod block;
pub mod decoder;
pub mod dropout;
pub mod embedding;
pub mod encoder;
pub mod encoder_decoder;
pub mod feed_forward;
pub mod kv_cache;
pub mod layer;
pub mod lm_head;
pub mod mask;
pub mod norm;
pub mod pooler;
pub mod positions;
pub mod relative_bias;
pub mod two_stream;
pub mod vision;

pub use attention::{MultiHeadAttention, MultiHeadAttentionConfig, Relations};
pub use block::BlockConfig;
pub use decoder::{DecoderLayer, TransformerDecoder};
pub use dropout::{Dropout, seed_dropout, with_dropout_rows};
pub use embedding::{Embeddings, EmbeddingsConfig, InputEncoding};
pub use encoder::{
    EncoderBackbone, EncoderLayer, LayerStates, StackInput, TransformerEncoder,
    TransformerEncoderConfig, default_positions,
};
pub use encoder_decoder::{EncoderDecoder, EncoderDecoderConfig, Seq2SeqBackbone};
pub use feed_forward::{Activation, FeedForward, FeedForwardConfig};
pub use kv_cache::{KeysValues, KvCache};
pub use lm_head::{LmHead, LmHeadConfig, states_at};
pub use mask::AttentionMask;
pub use norm::{LayerNorm, NormKind};
pub use pooler::{Pooler, PoolerActivation, PoolerConfig};
pub use positions::{PositionEncoding, Positions};
pub use relative_bias::RelativeBias;
pub use two_stream::{StreamInput, TwoStreamBackbone};
pub use vision::{
    VisionTransformer, VisionTransformerConfig, patch_stack, patchify, sincos_2d, unpatchify,
};

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::{Device, Tensor};

/// `linear` applied to every position of `x` `[batch, len, d_in]` as one `[batch · len, d_in]`
/// matmul. burn keeps a 3-D input batched when `len` is a multiple of 32, and its CPU backend
/// then runs one small matmul per sequence, packing the weight again for each.
pub fn linear_3d(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [batch, len, d_in] = x.dims();
    let y = linear.forward(x.reshape([batch * len, d_in]));
    let d_out = y.dims()[1];
    y.reshape([batch, len, d_out])
}

/// Every row of `x` `[n, d]` scaled to unit length (a zero row stays zero): what cosine
/// similarities are dot products of (SimCLR's projections, kNN's vectors).
pub fn unit_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    x / norm
}

/// A `d_in → d_out` linear map with weights from `Normal(0, std)`, as BERT initialises every
/// dense layer (burn's default is Kaiming-uniform).
pub fn normal_linear(d_in: usize, d_out: usize, std: f64, device: &Device) -> Linear {
    normal_linear_with_bias(d_in, d_out, std, true, device)
}

/// [`normal_linear`] with a bias or without one (Llama's and ModernBERT's projections).
pub fn normal_linear_with_bias(
    d_in: usize,
    d_out: usize,
    std: f64,
    bias: bool,
    device: &Device,
) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device)
}
