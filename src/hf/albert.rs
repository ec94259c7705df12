//! ALBERT's key names: BERT's embeddings (narrower, projected up by
//! `embedding_hidden_mapping_in`), one layer of group 0 shared by every depth, a bare-Linear
//! pooler, the MLM head `predictions` and the SOP classifier. [`super::load_bert`] reads them.

use super::keys::{EMBEDDINGS, KeyTable, prefixed};

/// The one shared layer: HF name after `albert.encoder.albert_layer_groups.0.albert_layers.0.`,
/// pretext path after `layers.0.`. `ffn_output` is listed before `ffn`, which is its prefix.
pub(crate) const LAYER: &[(&str, &str)] = &[
    ("attention.query.", "attention.query."),
    ("attention.key.", "attention.key."),
    ("attention.value.", "attention.value."),
    ("attention.dense.", "attention.output."),
    ("attention.LayerNorm.", "attention_norm."),
    ("ffn_output.", "ffn.down."),
    ("ffn.", "ffn.up."),
    ("full_layer_layer_norm.", "ffn_norm."),
];

/// Where the shared layer sits (ALBERT's first group, its first inner layer).
pub(crate) const SHARED_LAYER: &str = "encoder.albert_layer_groups.0.albert_layers.0.";

/// The projection of the narrower embeddings up to the layers' width.
pub(crate) const PROJECTION: &[(&str, &str)] =
    &[("encoder.embedding_hidden_mapping_in.", "projection.")];

/// The MLM head (`AlbertForMaskedLM`, `AlbertForPreTraining`): its dense map goes from the
/// model width down to the embedding width, and the tied decoder is not stored.
pub(crate) const MLM_HEAD: &[(&str, &str)] = &[
    ("predictions.dense.", "head.dense."),
    ("predictions.LayerNorm.", "head.norm."),
    ("predictions.bias", "head.bias"),
];

/// The pooler: a bare Linear, not BERT's `pooler.dense`.
pub(crate) const POOLER: &[(&str, &str)] = &[("pooler.", "pooler.dense.")];

/// The sentence-order classifier (`AlbertForPreTraining`).
pub(crate) const SOP_CLASSIFIER: &[(&str, &str)] = &[("sop_classifier.classifier.", "classifier.")];

/// The encoder: embeddings, the projection and the shared layer.
pub(crate) fn encoder_table() -> KeyTable {
    let mut table = prefixed("albert", EMBEDDINGS);
    table.extend(prefixed("albert", PROJECTION));
    let layer: Vec<(String, String)> = LAYER
        .iter()
        .map(|(hf, ours)| (format!("{SHARED_LAYER}{hf}"), format!("layers.0.{ours}")))
        .collect();
    let pairs: Vec<(&str, &str)> = layer
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    table.extend(prefixed("albert", &pairs));
    table
}
