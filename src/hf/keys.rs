//! Key tables: the regexes that rename a Hugging Face file's keys into pretext's module paths
//! (import) and back (export), built from lists of name pairs, one list per part of a family.

/// A key table: a regex over a file's keys, and the pretext path a matching key becomes.
pub(crate) type KeyTable = Vec<(String, String)>;

/// The embeddings of a BERT-shaped model: HF name (under the model's prefix), pretext path.
/// Import and export both read this one list.
pub(crate) const EMBEDDINGS: &[(&str, &str)] = &[
    ("embeddings.word_embeddings.", "embeddings.tokens."),
    (
        "embeddings.position_embeddings.",
        "embeddings.input.positions.",
    ),
    (
        "embeddings.token_type_embeddings.",
        "embeddings.input.segments.",
    ),
    ("embeddings.LayerNorm.", "embeddings.input.norm."),
];

/// A regex matching `name` literally: as a prefix when it ends in a dot (a module), to its
/// end otherwise (one tensor).
pub(crate) fn literal(name: &str) -> String {
    let escaped = name.replace('.', r"\.");
    if name.ends_with('.') {
        escaped
    } else {
        format!("{escaped}$")
    }
}

/// HF names → pretext paths, each HF name at the start of a key.
pub(crate) fn table(pairs: &[(&str, &str)]) -> KeyTable {
    prefixed("", pairs)
}

/// `table` with every pretext path moved under `root` (`generator.`): a part that sits inside
/// another module.
pub(crate) fn under(mut table: KeyTable, root: &str) -> KeyTable {
    for (_, ours) in &mut table {
        ours.insert_str(0, root);
    }
    table
}

/// HF names → pretext paths, each HF name after an optional `prefix.` (a head class stores its
/// base model under it; a base-model file has none).
pub(crate) fn prefixed(prefix: &str, pairs: &[(&str, &str)]) -> KeyTable {
    pairs
        .iter()
        .map(|(hf, ours)| {
            let from = match prefix {
                "" => format!("^{}", literal(hf)),
                _ => format!(r"^(?:{prefix}\.)?{}", literal(hf)),
            };
            (from, ours.to_string())
        })
        .collect()
}

/// The layers of a stack: each HF name of `pairs` after `{layers}.N.` (under an optional
/// `prefix.`) into the module's layer N at `to` (`layers.`, `decoder.layers.`).
pub(crate) fn layers(prefix: &str, layers: &str, pairs: &[(&str, &str)], to: &str) -> KeyTable {
    let layers = layers.replace('.', r"\.");
    pairs
        .iter()
        .map(|(hf, ours)| {
            let from = format!(r"^(?:{prefix}\.)?{layers}\.([0-9]+)\.{}", literal(hf));
            (from, format!("{to}$1.{ours}"))
        })
        .collect()
}

/// pretext paths under `root` → HF names under `prefix`, for `pairs` (HF, pretext).
pub(crate) fn outward(root: &str, prefix: &str, pairs: &[(&str, &str)]) -> KeyTable {
    pairs
        .iter()
        .map(|(hf, ours)| {
            let from = format!("^{}", literal(&format!("{root}{ours}")));
            (from, format!("{prefix}{hf}"))
        })
        .collect()
}

/// A stack's layers: `{root}{layers}.N.{ours}` → `{prefix}{hf_layers}.N.{hf}`.
pub(crate) fn outward_layers(
    root: &str,
    layers: &str,
    prefix: &str,
    hf_layers: &str,
    pairs: &[(&str, &str)],
) -> KeyTable {
    let stack = format!("{root}{layers}.").replace('.', r"\.");
    pairs
        .iter()
        .map(|(hf, ours)| {
            let from = format!(r"^{stack}([0-9]+)\.{}", literal(ours));
            (from, format!("{prefix}{hf_layers}.$1.{hf}"))
        })
        .collect()
}

/// A stack under `model.`, its layers at `model.layers.N.` (Llama, Qwen2, ModernBERT): the
/// HF names of `embeddings` and of each layer's `layer` parts → pretext paths.
pub(crate) fn model_stack(embeddings: &[(&str, &str)], layer: &[(&str, &str)]) -> KeyTable {
    let mut table = prefixed("model", embeddings);
    table.extend(layers("model", "layers", layer, "layers."));
    table
}

/// The export's names for a `Pretrainer` whose backbone is such a stack and whose objective
/// holds a head whose `head` parts sit at the file's top level.
pub(crate) fn model_stack_out(
    embeddings: &[(&str, &str)],
    layer: &[(&str, &str)],
    head: &[(&str, &str)],
) -> KeyTable {
    let mut names = outward("backbone.", "model.", embeddings);
    names.extend(outward_layers(
        "backbone.",
        "layers",
        "model.",
        "layers",
        layer,
    ));
    names.extend(outward("objective.", "", head));
    names
}
