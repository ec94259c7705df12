//! ELECTRA: the discriminator (`ElectraForPreTraining`: the encoder, factorized when its
//! embeddings are narrower than its layers, and the replaced-token head) and the generator
//! (`ElectraForMaskedLM`: its projection, layers and MLM head; its embeddings are the
//! discriminator's, which ELECTRA shares between the two); and a generator directory on its
//! own as the masked LM it is.

use std::path::Path;

use burn::prelude::Device;

use super::bert::{LAYER, encoder_out, encoder_table, hf_fields};
use super::convert::{Converted, Weights, refuse, round_trip};
use super::keys::{KeyTable, layers, outward, prefixed, table, under};
use super::loader::{LoadReport, Loader};
use super::{HfConfig, model_error};
use crate::blocks::{Activation, TransformerEncoder, TransformerEncoderConfig};
use crate::error::Result;
use crate::objectives::{Electra, ElectraConfig, Mlm, MlmConfig};
use crate::pretrainer::Pretrainer;

/// The discriminator's head: dense + activation, then one logit per token.
pub(crate) const DISCRIMINATOR_HEAD: &[(&str, &str)] = &[
    ("discriminator_predictions.dense.", "discriminator.dense."),
    (
        "discriminator_predictions.dense_prediction.",
        "discriminator.output.",
    ),
];

/// The generator's MLM head (`ElectraForMaskedLM`): dense down to the embedding width, GELU,
/// LayerNorm, the projection tied to the token table plus a bias.
const GENERATOR_HEAD: &[(&str, &str)] = &[
    ("generator_predictions.dense.", "head.dense."),
    ("generator_predictions.LayerNorm.", "head.norm."),
    ("generator_lm_head.bias", "head.bias"),
];

/// The generator but for its embeddings: projection, layers, MLM head.
fn generator_table() -> KeyTable {
    let projection = [("embeddings_project.", "generator.projection.")];
    let mut keys = prefixed("electra", &projection);
    keys.extend(under(table(GENERATOR_HEAD), "generator."));
    keys.extend(layers(
        "electra",
        "encoder.layer",
        LAYER,
        "generator.layers.",
    ));
    keys
}

/// An ELECTRA checkpoint in pretext's modules.
#[derive(Debug)]
pub struct HfElectra {
    /// The discriminator's `config.json`.
    pub config: HfConfig,
    /// The discriminator: the encoder one fine-tunes.
    pub encoder: TransformerEncoder,
    /// The objective: the generator (afresh without a generator directory) and the
    /// discriminator's head.
    pub electra: Electra,
    /// What came from the files.
    pub report: LoadReport,
}

/// Loads ELECTRA's discriminator directory `discriminator` and, if given, its generator
/// directory, onto `device`. The generator's shape must be the one pretext derives from its
/// width and depth shares (heads = width / 64, feed-forward 4 × width, as ELECTRA's own).
pub fn load_electra(
    discriminator: &Path,
    generator: Option<&Path>,
    device: &Device,
) -> Result<HfElectra> {
    let config = HfConfig::read(discriminator)?;
    config.expect("electra", discriminator)?;
    let mut encoder = config.encoder(discriminator)?.init(device)?;
    let mut objective = ElectraConfig::new();
    let generator_config = generator.map(HfConfig::read).transpose()?;
    if let Some(g) = &generator_config {
        objective = objective
            .with_generator_size(g.hidden_size as f64 / config.hidden_size as f64)
            .with_generator_layers(g.num_hidden_layers as f64 / config.num_hidden_layers as f64);
    }
    let mut electra = objective.init(&encoder, device)?;
    let mut loader = Loader::new(discriminator, device)?;
    let (keys, head_keys) = (encoder_table("electra"), table(DISCRIMINATOR_HEAD));
    loader.part("discriminator", &mut encoder, &keys, true)?;
    loader.part("discriminator head", &mut electra, &head_keys, false)?;
    let mut report = loader.finish();
    match (generator, &generator_config) {
        (Some(dir), Some(g)) => {
            g.expect("electra", dir)?;
            let ours = objective.generator_encoder(&encoder);
            let theirs = (g.num_attention_heads, g.intermediate_size);
            if theirs != (ours.block.num_heads, ours.block.ffn_size) {
                return Err(model_error(
                    dir,
                    &format!(
                        "a generator of width {} has {} heads and a feed-forward {} wide; \
                         pretext's generator of that width has {} and {}",
                        g.hidden_size,
                        theirs.0,
                        theirs.1,
                        ours.block.num_heads,
                        ours.block.ffn_size
                    ),
                ));
            }
            let mut loader = Loader::new(dir, device)?;
            loader.part("generator", &mut electra, &generator_table(), true)?;
            report.extend(loader.finish());
        }
        _ => report.initialised.push("generator".into()),
    }
    Ok(HfElectra {
        config,
        encoder,
        electra,
        report,
    })
}

/// ELECTRA's generator read on its own: a masked LM.
#[derive(Debug)]
pub struct HfElectraGenerator {
    /// Its `config.json`.
    pub config: HfConfig,
    /// The generator's encoder (factorized when its embeddings are narrower).
    pub encoder: TransformerEncoder,
    /// Its MLM head.
    pub mlm: Mlm,
    /// What came from the file.
    pub report: LoadReport,
}

/// Loads the `ElectraForMaskedLM` directory `dir` (a generator, published on its own) onto
/// `device`: its encoder and its MLM head (afresh, as the report says, where the file has
/// none: a discriminator's directory).
pub fn load_electra_generator(dir: &Path, device: &Device) -> Result<HfElectraGenerator> {
    let config = HfConfig::read(dir)?;
    config.expect("electra", dir)?;
    let mut encoder = config.encoder(dir)?.init(device)?;
    // ELECTRA's generator head computes the exact GELU whatever hidden_act says.
    let mut mlm = MlmConfig::new()
        .with_layer_norm_eps(Some(config.layer_norm_eps))
        .init(&encoder, device);
    let mut loader = Loader::new(dir, device)?;
    loader.part("encoder", &mut encoder, &encoder_table("electra"), true)?;
    loader.part("MLM head", &mut mlm, &table(GENERATOR_HEAD), false)?;
    Ok(HfElectraGenerator {
        config,
        encoder,
        mlm,
        report: loader.finish(),
    })
}

/// What a discriminator of shape `config` has that ELECTRA's cannot express, if anything.
pub fn electra_misfit(config: &TransformerEncoderConfig) -> Option<String> {
    round_trip("ELECTRA", config, &hf_fields(config, "electra")).or_else(|| {
        // ELECTRA's discriminator head computes the exact GELU whatever hidden_act says.
        (config.block.activation != Activation::Gelu)
            .then(|| "the tanh GELU where ELECTRA's head computes the exact one".into())
    })
}

/// ELECTRA's discriminator (of shape `config`) and its head as `ElectraForPreTraining`; the
/// generator stays.
pub(super) fn export(
    config: &TransformerEncoderConfig,
    encoder: &TransformerEncoder,
    electra: &Electra,
    dir: &Path,
) -> Result<Converted> {
    if let Some(what) = electra_misfit(config) {
        return Err(refuse(dir, "ELECTRA", &what));
    }
    let mut table = encoder_out(config, "backbone.", "electra.", "electra");
    table.extend(outward("objective.", "", DISCRIMINATOR_HEAD));
    let module = Pretrainer {
        backbone: encoder.clone(),
        objective: electra.clone(),
    };
    Ok(Converted {
        class: "ElectraForPreTraining",
        config: hf_fields(config, "electra"),
        weights: Weights::of(&module, table, &["objective.generator."])?,
    })
}
