//! What every family's export is made of: the [`Converted`] model (class, `config.json`
//! fields, tensors under the family's names), the round trip that finds what a family cannot
//! express, the checks of an LM head, and the writing of a safetensors file.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, bridge};
use burn::tensor::TensorData;
use serde_json::{Value, json};

use super::keys::KeyTable;
use super::{HfConfig, model_error};
use crate::blocks::{Activation, LmHead, TransformerEncoderConfig};
use crate::error::{Error, Result};

/// What a family makes of a model: its class, the shape fields of its `config.json` and
/// its tensors under the family's names.
pub(super) struct Converted {
    /// The class written, e.g. `BertForMaskedLM`.
    pub(super) class: &'static str,
    /// `config.json`'s fields but for the vocabulary and the special tokens.
    pub(super) config: Value,
    /// The tensors.
    pub(super) weights: Weights,
}

/// What of `ours` the family `family` (its display name) cannot express, found by reading
/// the `config.json` fields the family writes for it (`fields`) back as pretext reads a
/// checkpoint of that family, and naming each field that does not come back the same; `None`
/// when everything does.
pub(super) fn round_trip(
    family: &str,
    ours: &TransformerEncoderConfig,
    fields: &Value,
) -> Option<String> {
    let mut file = fields.clone();
    file["vocab_size"] = json!(ours.vocab_size);
    let here = Path::new(family);
    let theirs = match HfConfig::from_json(file, here).and_then(|c| c.encoder(here)) {
        Ok(theirs) => theirs,
        Err(Error::HfModel { reason, .. }) => return Some(reason),
        Err(other) => return Some(other.to_string()),
    };
    let (ours, theirs) = (flat(ours), flat(&theirs));
    let (have, has): (Vec<String>, Vec<String>) = ours
        .iter()
        .filter(|(field, value)| theirs.get(*field) != Some(value))
        .map(|(field, value)| {
            let other = theirs.get(field).unwrap_or(&Value::Null);
            (describe(field, value), describe(field, other))
        })
        .unzip();
    (!have.is_empty()).then(|| {
        format!(
            "{} where {family} has {}",
            have.join(" and "),
            has.join(" and ")
        )
    })
}

/// An encoder's configuration as one level of fields, its block's beside the stack's.
fn flat(config: &TransformerEncoderConfig) -> serde_json::Map<String, Value> {
    let value = serde_json::to_value(config).expect("a config serializes");
    let mut fields = value.as_object().cloned().unwrap_or_default();
    if let Some(Value::Object(block)) = fields.remove("block") {
        fields.extend(block);
    }
    fields
}

/// The reason `head` does not fit a family that has BERT's transform with `activation`
/// (`Some`) or none (`None`), and a bias if `bias_allowed`.
pub(super) fn head_misfit(
    head: &LmHead,
    want: Option<Activation>,
    bias_allowed: bool,
) -> Option<String> {
    let have = head.transform();
    if have != want {
        return Some(match want {
            Some(a) => format!("an LM head whose transform is {have:?}, not {a:?}"),
            None => "an LM head with BERT's transform".into(),
        });
    }
    (!bias_allowed && head.bias().is_some()).then(|| "an LM head with a bias".into())
}

/// The error refusing to export a model as `family` because it has `what`.
pub(super) fn refuse(dir: &Path, family: &str, what: &str) -> Error {
    model_error(
        dir,
        &format!("the model has {what}: it cannot be exported as {family}"),
    )
}

/// One field of an encoder's configuration, in words.
fn describe(field: &str, value: &Value) -> String {
    let on = value.as_bool() == Some(true);
    let pick = |yes: &str, no: &str| if on { yes } else { no }.to_string();
    match field {
        "norm_first" => pick("pre-LN layers", "post-LN layers"),
        "share_layers" => pick("one layer shared across depth", "a layer per depth"),
        "embedding_norm" => pick("an embedding LayerNorm", "no embedding LayerNorm"),
        "num_segments" if value == 0 => "no segment embeddings".into(),
        "num_segments" => format!("{value} segment embeddings"),
        "embedding_size" if value.is_null() => "embeddings as wide as the layers".into(),
        "embedding_size" => format!("a factorized embedding {value} wide"),
        // A unit variant is its name; one with settings (`{"Rotary": {…}}`) its one key.
        "positions" => {
            let kind =
                (value.as_str()).or_else(|| value.as_object()?.keys().next().map(|k| k.as_str()));
            format!("{} positions", kind.unwrap_or("?").to_lowercase())
        }
        "position_offset" => format!("positions offset by {value} rows"),
        "embedding_scale" => format!("token embeddings scaled by {value}"),
        "norm_eps" => format!("a norm epsilon of {value}"),
        "activation" => format!("the {} activation", value.as_str().unwrap_or("?")),
        other => format!("{other} {value}"),
    }
}

/// A model's tensors under their Hugging Face names, in PyTorch's layouts, as f32.
pub(crate) struct Weights {
    /// Name → values.
    pub(crate) tensors: Vec<(String, TensorData)>,
}

impl Weights {
    /// `module`'s tensors renamed by `table` (pretext path regex → HF name); a tensor no
    /// pattern names must sit under one of `omitted` (parts the class does not hold).
    pub(super) fn of<M: Module>(module: &M, table: KeyTable, omitted: &[&str]) -> Result<Self> {
        // Collecting reads every value: a lazy parameter's are drawn, holding the stream.
        let collected = {
            let _draws = crate::util::random::hold();
            module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        };
        let remapper = KeyRemapper::from_patterns(table).expect("export tables are valid regexes");
        let regexes = remapper.to_regex_pairs();
        let (kept, left): (Vec<PackTensor>, Vec<PackTensor>) = collected
            .into_iter()
            .partition(|t| regexes.iter().any(|(r, _)| r.is_match(&t.name)));
        if let Some(stray) = left
            .iter()
            .find(|t| !omitted.iter().any(|o| t.name.starts_with(o)))
        {
            return Err(Error::InvalidConfig(format!(
                "no Hugging Face name for the tensor {}",
                stray.name
            )));
        }
        let (renamed, _) = remapper.remap(kept);
        let tensors = renamed
            .into_iter()
            .map(|t| {
                let name = t.name.clone();
                bridge::into_data(t)
                    .map(|data| (name.clone(), data.convert::<f32>()))
                    .map_err(|e| Error::InvalidConfig(format!("{name}: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Self { tensors })
    }

    /// Writes the tensors as a safetensors file with metadata `format: pt`, atomically.
    pub(super) fn write(&self, path: &Path) -> Result<()> {
        let views = self
            .tensors
            .iter()
            .map(|(name, data)| {
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    data.shape().to_vec(),
                    data.as_bytes(),
                )
                .map_err(|e| Error::InvalidConfig(format!("{name}: {e}")))?;
                Ok((name.clone(), view))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        let bytes =
            safetensors::serialize(views, Some(metadata)).map_err(|e| model_error(path, &e))?;
        crate::util::atomic_file::write(path, bytes)
    }
}
