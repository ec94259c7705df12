//! Composable Transformer blocks: burn modules, each with a `Config` and `init(&device)`.

pub mod attention;
pub mod dropout;
pub mod embedding;
pub mod encoder;
pub mod feed_forward;
pub mod lm_head;
pub mod mask;

pub use attention::{MultiHeadAttention, MultiHeadAttentionConfig};
pub use dropout::{Dropout, seed_dropout};
pub use embedding::{Embeddings, EmbeddingsConfig, PositionEncoding};
pub use encoder::{EncoderBackbone, EncoderLayer, TransformerEncoder, TransformerEncoderConfig};
pub use feed_forward::{FeedForward, FeedForwardConfig};
pub use lm_head::{LmHead, LmHeadConfig};
pub use mask::AttentionMask;
