//! LoRA adapters in and out as `peft` adapter directories (`adapter_config.json`,
//! `adapter_model.safetensors`), for the layers of BERT-shaped encoders (BERT, RoBERTa): what
//! `PeftModel.from_pretrained` puts on the encoder exported as `BertModel` / `RobertaModel`.
//!
//! A torch `Linear` keeps its weight as `[out, in]`, burn's as `[in, out]`: `peft`'s
//! `lora_A.weight` (`[rank, in]`) is pretext's `a` transposed, `lora_B.weight`
//! (`[out, rank]`) its `b` transposed, and both scale by `lora_alpha / r`. The keys are the
//! adapted module's Hugging Face name under `base_model.model.`, without the adapter's name
//! (`base_model.model.encoder.layer.0.attention.self.query.lora_A.weight`).

use std::path::Path;

use burn::prelude::*;
use burn::store::{ModuleStore, SafetensorsStore, bridge};
use serde_json::{Value, json};

use super::bert::{LAYER, exported_family};
use super::convert::Weights;
use super::model_error;
use crate::blocks::{TransformerEncoder, TransformerEncoderConfig};
use crate::error::{Error, Result};
use crate::lora::{Adapter, LoraConfig, adapters, with_adapters};

/// The adapter directory's configuration file.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";

/// The adapter directory's weights file.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// Where `peft` keeps the base model's modules in an adapter's keys.
const BASE: &str = "base_model.model.";

/// The Hugging Face name of the pretext module `ours` of a BERT-shaped encoder
/// (`layers.3.attention.query` → `encoder.layer.3.attention.self.query`), if it has one.
fn hf_module(ours: &str) -> Option<String> {
    let (layer, rest) = ours.strip_prefix("layers.")?.split_once('.')?;
    layer.parse::<usize>().ok()?;
    let rest = format!("{rest}.");
    let (hf, _) = LAYER.iter().find(|(_, pretext)| *pretext == rest)?;
    Some(format!(
        "encoder.layer.{layer}.{}",
        hf.trim_end_matches('.')
    ))
}

/// The pretext module of the Hugging Face module `hf` of a BERT-shaped encoder, if any (the
/// model class's prefix, `bert.` or `roberta.`, allowed before it).
fn our_module(hf: &str) -> Option<String> {
    let hf = ["bert.", "roberta."]
        .iter()
        .find_map(|prefix| hf.strip_prefix(prefix))
        .unwrap_or(hf);
    let (layer, rest) = hf.strip_prefix("encoder.layer.")?.split_once('.')?;
    layer.parse::<usize>().ok()?;
    let rest = format!("{rest}.");
    let (_, ours) = LAYER.iter().find(|(theirs, _)| *theirs == rest)?;
    Some(format!("layers.{layer}.{}", ours.trim_end_matches('.')))
}

/// Writes the adapters of `encoder` (of shape `config`, adapted as `lora` says) as a `peft`
/// adapter directory `dir` for the encoder exported as `BertModel` or `RobertaModel` with
/// `pad` its tokenizer's padding id. Refuses an encoder those classes cannot express, an
/// adapter outside the layers' linear maps (`peft` names embedding adapters otherwise), an
/// encoder without adapters and a directory that is not empty unless `force`.
pub fn export_peft(
    config: &TransformerEncoderConfig,
    encoder: &TransformerEncoder,
    lora: &LoraConfig,
    pad: u32,
    dir: &Path,
    force: bool,
) -> Result<()> {
    super::check_export_dir(dir, force)?;
    let (model_type, _) = exported_family(config, pad, dir)?;
    if model_type == "albert" {
        let reason = "adapters on ALBERT's shared layer: peft names them by ALBERT's layer \
                      groups, which this export does not write";
        return Err(model_error(dir, &reason));
    }
    let found = adapters(encoder);
    if found.is_empty() {
        return Err(model_error(
            dir,
            &"the encoder has no LoRA adapters to export",
        ));
    }
    let mut tensors = Vec::new();
    let mut modules = Vec::new();
    for Adapter { weight, a, b } in found {
        let module = weight.strip_suffix(".weight").unwrap_or(&weight);
        let hf = hf_module(module).ok_or_else(|| {
            let reason = format!(
                "the adapter on {weight} has no peft name (only the layers' linear maps do)"
            );
            model_error(dir, &reason)
        })?;
        if a.dims()[1] != lora.rank {
            let reason = format!(
                "the adapter on {weight} has rank {} where the LoRA settings say {}",
                a.dims()[1],
                lora.rank
            );
            return Err(model_error(dir, &reason));
        }
        let key = |factor: &str| format!("{BASE}{hf}.lora_{factor}.weight");
        tensors.push((key("A"), a.transpose().into_data().convert::<f32>()));
        tensors.push((key("B"), b.transpose().into_data().convert::<f32>()));
        modules.push(hf);
    }
    let adapter_config = json!({
        "peft_type": "LORA",
        "task_type": null,
        "base_model_name_or_path": null,
        "r": lora.rank,
        "lora_alpha": lora.alpha,
        "target_modules": modules,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": false,
        "use_rslora": false,
        "use_dora": false,
        "modules_to_save": null,
        "inference_mode": true,
    });
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    Weights { tensors }.write(&dir.join(ADAPTER_WEIGHTS))?;
    let text = serde_json::to_string_pretty(&adapter_config).expect("JSON values serialize");
    crate::util::atomic_file::write(&dir.join(ADAPTER_CONFIG), text)
}

/// Reads the `peft` LoRA adapter directory `dir` onto `encoder` (a BERT-shaped encoder, as
/// [`load_bert`](super::load_bert) reads the adapter's base): returns the encoder with the
/// file's adapters on its weights, frozen but for them, and their settings. Refuses a
/// configuration pretext does not compute the same way (rsLoRA, DoRA, `fan_in_fan_out`, a
/// type other than LoRA) and an adapter on a module it has no name for.
pub fn load_peft(
    dir: &Path,
    encoder: TransformerEncoder,
) -> Result<(TransformerEncoder, LoraConfig)> {
    let text = std::fs::read_to_string(dir.join(ADAPTER_CONFIG))
        .map_err(|e| model_error(dir, &format!("{ADAPTER_CONFIG}: {e}")))?;
    let settings: Value = serde_json::from_str(&text)
        .map_err(|e| model_error(dir, &format!("{ADAPTER_CONFIG}: {e}")))?;
    let field = |name: &str| settings.get(name).filter(|v| !v.is_null());
    if let Some(kind) = field("peft_type").and_then(Value::as_str)
        && kind != "LORA"
    {
        let reason = format!("{ADAPTER_CONFIG} is a {kind} adapter, not LoRA");
        return Err(model_error(dir, &reason));
    }
    for unsupported in ["use_rslora", "use_dora", "fan_in_fan_out"] {
        if field(unsupported).and_then(Value::as_bool) == Some(true) {
            let reason = format!("{ADAPTER_CONFIG} sets {unsupported}, which pretext does not do");
            return Err(model_error(dir, &reason));
        }
    }
    let number = |name: &str| {
        field(name)
            .and_then(Value::as_f64)
            .ok_or_else(|| model_error(dir, &format!("{ADAPTER_CONFIG} has no number {name:?}")))
    };
    let (rank, alpha) = (number("r")? as usize, number("lora_alpha")?);

    // Read as the model loader reads weights: through burn's store, any float type cast to
    // f32.
    let path = dir.join(ADAPTER_WEIGHTS);
    let unreadable =
        |e: &dyn std::fmt::Display| model_error(dir, &format!("{ADAPTER_WEIGHTS}: {e}"));
    let tensors = SafetensorsStore::from_file(&path)
        .get_all_tensors()
        .map_err(|e| unreadable(&e))?
        .clone();
    let device = encoder_device(&encoder);
    let factor = |key: &str| -> Result<Tensor<2>> {
        let tensor = tensors
            .get(key)
            .cloned()
            .ok_or_else(|| unreadable(&format!("no {key}")))?;
        let data = bridge::into_data(tensor)
            .map_err(|e| unreadable(&e))?
            .convert::<f32>();
        if data.shape().len() != 2 {
            return Err(unreadable(&format!("{key} is not a matrix")));
        }
        // The file's factors are torch's, transposed from burn's.
        Ok(Tensor::<2>::from_data(data, &device).transpose())
    };
    let mut names: Vec<&str> = tensors.keys().map(String::as_str).collect();
    names.sort();
    let mut found = Vec::new();
    let mut targets = Vec::new();
    for key in names {
        let Some(module) = key
            .strip_prefix(BASE)
            .and_then(|k| k.strip_suffix(".lora_A.weight"))
        else {
            if key.ends_with(".lora_B.weight") {
                continue;
            }
            let reason = format!("{ADAPTER_WEIGHTS}: {key} is not a LoRA factor pretext reads");
            return Err(model_error(dir, &reason));
        };
        let ours = our_module(module).ok_or_else(|| {
            let reason = format!("{ADAPTER_WEIGHTS}: no pretext module is named {module}");
            model_error(dir, &reason)
        })?;
        let a = factor(key)?;
        let b = factor(&format!("{BASE}{module}.lora_B.weight"))?;
        if a.dims()[1] != rank || b.dims()[0] != rank {
            let reason = format!("{ADAPTER_WEIGHTS}: {module}'s factors are not of rank {rank}");
            return Err(model_error(dir, &reason));
        }
        found.push(Adapter {
            weight: format!("{ours}.weight"),
            a,
            b,
        });
        targets.push(ours);
    }
    let lora = LoraConfig::new()
        .with_rank(rank)
        .with_alpha(alpha)
        .with_targets(targets);
    let adapted = lora
        .adapt(encoder)
        .and_then(|encoder| with_adapters(encoder, &found))
        .map_err(|e| match e {
            Error::InvalidConfig(reason) => model_error(dir, &reason),
            other => other,
        })?;
    Ok((adapted, lora))
}

/// The device `encoder`'s weights are on.
fn encoder_device(encoder: &TransformerEncoder) -> Device {
    encoder
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(Device::flex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_modules_have_names_both_ways() {
        for (ours, theirs) in [
            (
                "layers.0.attention.query",
                "encoder.layer.0.attention.self.query",
            ),
            (
                "layers.11.attention.value",
                "encoder.layer.11.attention.self.value",
            ),
            (
                "layers.2.attention.output",
                "encoder.layer.2.attention.output.dense",
            ),
            ("layers.1.ffn.up", "encoder.layer.1.intermediate.dense"),
            ("layers.1.ffn.down", "encoder.layer.1.output.dense"),
        ] {
            assert_eq!(hf_module(ours).as_deref(), Some(theirs));
            assert_eq!(our_module(theirs).as_deref(), Some(ours));
        }
        assert_eq!(
            our_module("bert.encoder.layer.4.attention.self.key").as_deref(),
            Some("layers.4.attention.key")
        );
        assert_eq!(hf_module("embeddings.tokens"), None);
        assert_eq!(our_module("classifier"), None);
        assert_eq!(our_module("encoder.layer.x.attention.self.query"), None);
    }
}
