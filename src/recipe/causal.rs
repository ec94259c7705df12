//! The recipes of causal models after pretraining — `sft`, `reward` and `dpo` — and what they
//! share: the causal model a run starts from (a pretext `clm` or `sft` run, or a Hugging Face
//! GPT-2), its head's shape, and writing the tuned model out as GPT-2. `generate` and `align`
//! read causal runs back through `causal_run`.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use super::registry::{ObjectiveRecipe, ObjectiveSettings};
use super::{Recipe, Run, RunDir, RunReport};
use crate::blocks::TransformerEncoder;
use crate::dataset::instructions;
use crate::dataset::preferences::{self, Preference};
use crate::error::{Error, Result};
use crate::objectives::clm::ClmSettings;
use crate::objectives::dpo::{Dpo, DpoSettings, DpoTask, check_beta};
use crate::objectives::reward::{RewardSettings, RewardTask, check_center};
use crate::objectives::sft::{Sft, SftFormat, SftSettings, SftTask};
use crate::objectives::{Clm, ClmConfig};
use crate::preset::Preset;
use crate::tokenize::Tokenizer;

/// What of a causal model of `recipe` (with GPT-2's head or not) its family (GPT-2, or Llama
/// and Qwen2 with rotary positions) cannot express.
pub(crate) fn gpt2_misfit(recipe: &Recipe, gpt2_head: bool) -> Option<String> {
    let head = (!gpt2_head).then(|| {
        "an LM head with BERT's transform and a bias, which GPT-2 and Llama have not \
         (objective.settings.gpt2_head is false)"
            .to_string()
    });
    crate::hf::causal_misfit(&recipe.encoder).or(head)
}

/// `sft`: GPT-2's pre-LN encoder, as `clm` trains it; `init` names the causal model to start
/// from.
pub(super) fn sft(preset: Preset) -> Result<Recipe> {
    let mut recipe = Recipe::new(ObjectiveRecipe::Sft(SftSettings::default()), preset)?;
    recipe.encoder.block.norm_first = true;
    Ok(recipe)
}

/// The encoder and LM head that an `sft` or `dpo` run of `recipe` (with GPT-2's head when
/// `gpt2_head`) left in `run_dir`, on `device`. Both runs hold the same record, the head under
/// the objective's `clm` (DPO's β and loss are settings, not weights), so one template reads
/// either.
fn tuned_causal(
    recipe: &Recipe,
    gpt2_head: bool,
    run_dir: &Path,
    device: &Device,
) -> Result<(TransformerEncoder, Clm)> {
    let encoder = recipe.encoder.init(device)?;
    let head = Sft::new(causal_head(
        &encoder,
        gpt2_head,
        untied_head(recipe),
        device,
    ));
    let template = crate::pretrainer::Pretrainer::new(encoder, head);
    let trained = super::read_trained(run_dir, recipe, template)?;
    Ok((trained.backbone, trained.objective.clm().clone()))
}

/// Writes the `sft` or `dpo` run of `recipe` in `run_dir` as a Hugging Face GPT-2 in `out`.
pub(crate) fn export_tuned_causal(
    recipe: &Recipe,
    gpt2_head: bool,
    run_dir: &Path,
    out: &Path,
    force: bool,
) -> Result<&'static str> {
    let (encoder, clm) = tuned_causal(recipe, gpt2_head, run_dir, &Device::flex())?;
    export_causal(recipe, &encoder, &clm, out, force)
}

/// The causal model a run of `run.recipe` starts from: the encoder and LM head of the pretext
/// run its `init` names, the encoder of a Hugging Face GPT-2 (whose tied head has no weights
/// of its own) with a head of that shape, or fresh ones.
pub(crate) fn causal_start(run: &Run, gpt2_head: bool) -> Result<(TransformerEncoder, Clm)> {
    let device = run.device();
    match &run.recipe.init {
        Some(dir) if !crate::hf::is_model_dir(dir) => {
            let (trained, clm) = causal_run(dir, device)?;
            // The recipe's own shape (its dropout), with the run's weights.
            Ok((run.encoder_like(trained)?, clm))
        }
        // An untied head is the file's own table, which a fresh head would not be.
        Some(dir) if untied_head(run.recipe) => {
            let llama = crate::hf::load_llama(dir, device)?;
            Ok((run.encoder_like(llama.encoder)?, llama.clm))
        }
        _ => {
            let encoder = run.encoder()?;
            let clm = causal_head(&encoder, gpt2_head, false, device);
            Ok((encoder, clm))
        }
    }
}

/// Whether a causal model of `recipe` (`clm`, `sft`, `dpo`) has an LM head untied from the
/// token table, as the model it started from has.
fn untied_head(recipe: &Recipe) -> bool {
    match &recipe.objective {
        ObjectiveRecipe::Clm(ClmSettings { untied_head, .. })
        | ObjectiveRecipe::Sft(SftSettings { untied_head, .. })
        | ObjectiveRecipe::Dpo(DpoSettings { untied_head, .. }) => *untied_head,
        _ => false,
    }
}

/// Whether the causal model in `dir` has an untied LM head: a Hugging Face Llama or Qwen2
/// whose `tie_word_embeddings` is false, or a pretext `sft` or `dpo` run that started from one.
pub(crate) fn untied_head_of(dir: &Path) -> Result<bool> {
    if crate::hf::is_model_dir(dir) {
        return Ok(!crate::hf::HfConfig::read(dir)?.tie_word_embeddings);
    }
    Ok(untied_head(&RunDir::open(dir)?.recipe))
}

/// A fresh causal LM head for `encoder`: GPT-2's (the projection alone) or pretext's (BERT's
/// transform and a bias), tied to the token table or with a table of its own (`untied`).
pub(crate) fn causal_head(
    encoder: &TransformerEncoder,
    gpt2_head: bool,
    untied: bool,
    device: &Device,
) -> Clm {
    let plain = !gpt2_head;
    ClmConfig::new()
        .with_transform(plain)
        .with_bias(plain)
        .with_tied(!untied)
        .init(encoder, device)
}

/// The encoder and causal head of the pretext run in `dir` (a `clm` or an `sft` run).
pub(crate) fn causal_run(dir: &Path, device: &Device) -> Result<(TransformerEncoder, Clm)> {
    let recipe = RunDir::open(dir)?.recipe;
    match &recipe.objective {
        ObjectiveRecipe::Sft(SftSettings { gpt2_head, .. })
        | ObjectiveRecipe::Dpo(DpoSettings { gpt2_head, .. }) => {
            tuned_causal(&recipe, *gpt2_head, dir, device)
        }
        ObjectiveRecipe::Clm(_) => {
            let (encoder, head) = recipe.load_trained(dir, device)?;
            let clm = head.clm().cloned().expect("a clm run has a causal head");
            Ok((encoder, clm))
        }
        other => Err(Error::NoCausalPath(format!(
            "{} (a `{}` run)",
            dir.display(),
            other.name()
        ))),
    }
}

impl ObjectiveSettings for SftSettings {
    fn data_file(&self) -> Option<PathBuf> {
        Some(self.data_path())
    }

    fn check(&self, recipe: &Recipe, _tokenizer: &Tokenizer) -> Result<()> {
        check_start(recipe, self.gpt2_head)
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        let (encoder, clm) = causal_start(run, self.gpt2_head)?;
        let data = instructions::load_from(&self.data_path())?;
        let format = SftFormat {
            seq_len: run.seq_len(),
            completion_only: self.completion_only,
            packing: self.packing,
        };
        let tokenizer = run.tokenizer;
        let (train, valid) = data.tasks(|pairs| SftTask::new(pairs, tokenizer, format))?;
        run.note_cut(train.truncated() + valid.truncated());
        Ok(run.fit_tasks(encoder, Sft::new(clm), train, valid)?.into())
    }

    fn tuned_causal_head(&self) -> Option<bool> {
        Some(self.gpt2_head)
    }
}

/// Writes a causal model of `recipe` as `GPT2LMHeadModel` in `out`.
pub(crate) fn export_causal(
    recipe: &Recipe,
    encoder: &TransformerEncoder,
    clm: &Clm,
    out: &Path,
    force: bool,
) -> Result<&'static str> {
    let model = crate::hf::Exportable::Causal {
        config: &recipe.encoder,
        encoder,
        clm,
    };
    crate::hf::export(model, &recipe.tokenizer.load()?, out, force)
}

/// Checks that the causal model `recipe.init` names (if any) has the head `gpt2_head` says.
pub(crate) fn check_start(recipe: &Recipe, gpt2_head: bool) -> Result<()> {
    let Some(dir) = &recipe.init else {
        return Ok(());
    };
    let gpt2 = self::gpt2_head(dir)?;
    if gpt2 != gpt2_head {
        let has = if gpt2 {
            "GPT-2's"
        } else {
            "BERT's transform in its"
        };
        return Err(Error::Recipe {
            field: "objective.settings.gpt2_head".into(),
            reason: format!(
                "{} has {has} LM head; build the recipe with Recipe::init_from",
                dir.display()
            ),
        });
    }
    Ok(())
}

/// Whether the causal model in `dir` has GPT-2's head (no transform, no bias): a Hugging Face
/// GPT-2, Llama or Qwen2 does; a pretext `clm` or `sft` run as its settings say. Anything else is not a causal model.
pub(crate) fn gpt2_head(dir: &Path) -> Result<bool> {
    if crate::hf::is_model_dir(dir) {
        let model_type = crate::hf::HfConfig::read(dir)?.model_type;
        return match model_type.as_str() {
            "gpt2" | "llama" | "qwen2" => Ok(true),
            _ => Err(Error::NoCausalPath(format!(
                "{} (a Hugging Face {model_type})",
                dir.display()
            ))),
        };
    }
    match RunDir::open(dir)?.recipe.objective {
        ObjectiveRecipe::Clm(clm) => Ok(clm.gpt2_head),
        ObjectiveRecipe::Sft(sft) => Ok(sft.gpt2_head),
        ObjectiveRecipe::Dpo(dpo) => Ok(dpo.gpt2_head),
        other => Err(Error::NoCausalPath(format!(
            "{} (a `{}` run)",
            dir.display(),
            other.name()
        ))),
    }
}

/// `dpo`: the causal encoder `clm` and `sft` train (start it from an SFT run with
/// `init`), the policy's reference its own starting weights, and no dropout (TRL's
/// `disable_dropout`: with it, the policy would differ from its reference at the first step).
pub(super) fn dpo(preset: Preset) -> Result<Recipe> {
    let mut recipe = Recipe::new(ObjectiveRecipe::Dpo(DpoSettings::default()), preset)?;
    recipe.encoder.block.norm_first = true;
    recipe.encoder.dropout = 0.0;
    Ok(recipe)
}

impl ObjectiveSettings for DpoSettings {
    fn data_file(&self) -> Option<PathBuf> {
        Some(self.data_path())
    }

    fn check(&self, recipe: &Recipe, _tokenizer: &Tokenizer) -> Result<()> {
        check_beta(self.beta).map_err(|e| e.in_field("objective.settings.beta"))?;
        check_start(recipe, self.gpt2_head)
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        let (encoder, clm) = causal_start(run, self.gpt2_head)?;
        let data = preferences::load_from(&self.data_path())?;
        // The reference is the policy as it starts: its log-probabilities, once, without
        // gradients or dropout.
        let inner = run.device().clone().inner();
        let reference = (encoder.valid(), clm.valid());
        let reference = (&reference.0, &reference.1);
        let task = |pairs: &[Preference]| {
            DpoTask::new(pairs, run.tokenizer, run.seq_len(), reference, &inner)
        };
        let (train, valid) = data.tasks(task)?;
        run.note_cut(train.truncated() + valid.truncated());
        let dpo = Dpo::new(clm, self.beta, self.loss)?;
        Ok(run.fit_tasks(encoder, dpo, train, valid)?.into())
    }

    fn tuned_causal_head(&self) -> Option<bool> {
        Some(self.gpt2_head)
    }
}

/// `reward`: the causal encoder `clm` and `sft` train (start it from one with
/// `init`), a fresh scalar head.
pub(super) fn reward(preset: Preset) -> Result<Recipe> {
    let mut recipe = Recipe::new(ObjectiveRecipe::Reward(RewardSettings::default()), preset)?;
    recipe.encoder.block.norm_first = true;
    Ok(recipe)
}

impl ObjectiveSettings for RewardSettings {
    fn data_file(&self) -> Option<PathBuf> {
        Some(self.data_path())
    }

    fn check(&self, _recipe: &Recipe, _tokenizer: &Tokenizer) -> Result<()> {
        check_center(self.center_rewards_coefficient)
            .map_err(|e| e.in_field("objective.settings.center_rewards_coefficient"))
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        let encoder = run.encoder()?;
        let head = self.head_config().init(&encoder, run.device())?;
        let data = preferences::load_rankings(&self.data_path())?;
        let (train, valid) =
            data.tasks(|rankings| RewardTask::new(rankings, run.tokenizer, run.seq_len()))?;
        run.note_cut(train.truncated() + valid.truncated());
        Ok(run.fit_tasks(encoder, head, train, valid)?.into())
    }

    fn hf_misfit(&self, _recipe: &Recipe) -> Option<String> {
        Some("a reward head, which pretext does not export".into())
    }
}
