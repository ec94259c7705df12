//! A run directory, the one place that knows its layout: `config.json` (the run's whole
//! recipe), `metrics.jsonl`, `checkpoint/` (swapped in whole, see
//! [`crate::train::checkpoint`]), `encoder.bpk` (the encoder fine-tuning loads) and, for a
//! LoRA run, `adapters.bpk` (the adapters alone).
//!
//! Starting or resuming a run writes its recipe here atomically, after checking that a resume
//! trains the same model; everything that reads a run back — fill-mask, generation,
//! fine-tuning, export, the reward model, causal starts — opens it with [`RunDir::open`].

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleDisplay};
use burn::prelude::Device;

use super::{Recipe, TokenizerSource};
use crate::blocks::{TransformerEncoder, TransformerEncoderConfig};

use crate::error::{Error, Result};
use crate::pretrainer::Pretrainer;
use crate::tokenize::Tokenizer;
use crate::train::checkpoint::{CHECKPOINT_DIR, MODEL_FILE, load_state, load_weights, locate};

/// The run's recipe.
pub const CONFIG_FILE: &str = "config.json";
/// The trained encoder alone, which fine-tuning loads.
pub const ENCODER_FILE: &str = "encoder.bpk";
/// A LoRA run's adapters alone ([`crate::lora::save_adapters`]); its encoder file holds them
/// merged.
pub const ADAPTERS_FILE: &str = "adapters.bpk";

/// A trained encoder read from a directory, with its shape and the tokenizer it reads.
#[derive(Debug)]
pub struct TrainedEncoder {
    /// The tokenizer its token ids come from.
    pub tokenizer: Tokenizer,
    /// Its shape.
    pub config: TransformerEncoderConfig,
    /// The encoder, its weights loaded.
    pub encoder: TransformerEncoder,
    /// What was loaded, in words.
    pub report: String,
}

impl TrainedEncoder {
    /// The encoder in `dir`, a Hugging Face model directory (a BERT, RoBERTa, ALBERT, GPT-2,
    /// ModernBERT, Llama or ELECTRA discriminator) or a pretext run (its `encoder.bpk`, with
    /// `dropout` where given, else the run's own), on `device`: what fine-tuning starts from
    /// and distillation learns from.
    pub fn read(dir: &Path, dropout: Option<f64>, device: &Device) -> Result<Self> {
        let (tokenizer, config) = Self::shape(dir)?;
        let tokenizer = tokenizer.load()?;
        if crate::hf::is_model_dir(dir) {
            let (encoder, report) = crate::hf::load_encoder_from(dir, device)?;
            let report = format!("{}: {report}", dir.display());
            return Ok(Self {
                tokenizer,
                config,
                encoder,
                report,
            });
        }
        let config = match dropout {
            Some(dropout) => config.with_dropout(dropout),
            None => config,
        };
        let path = dir.join(ENCODER_FILE);
        Ok(Self {
            tokenizer,
            encoder: load_weights(&path, config.init(device)?)?,
            config,
            report: format!("{}: the encoder loaded", path.display()),
        })
    }

    /// Where the tokenizer of the encoder in `dir` (as [`read`](Self::read) takes it) comes
    /// from, and the encoder's shape, read without its weights.
    pub fn shape(dir: &Path) -> Result<(TokenizerSource, TransformerEncoderConfig)> {
        if crate::hf::is_model_dir(dir) {
            let tokenizer = TokenizerSource {
                file: Some(crate::tokenize::model_dir_file(dir)),
                sentinels: 0,
            };
            return Ok((tokenizer, crate::hf::HfConfig::read(dir)?.encoder(dir)?));
        }
        // The run's tokenizer (T5's has its sentinels, whose rows the encoder keeps).
        let recipe = RunDir::open(dir)?.recipe;
        Ok((recipe.tokenizer, recipe.encoder))
    }
}

/// A pretext run directory and the recipe it was trained with.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    /// The recipe in its `config.json`, read as it is (not checked: a program that needs only
    /// the encoder's shape or the tokenizer need not have the run's data at hand).
    pub recipe: Recipe,
}

impl RunDir {
    /// Whether `dir` holds a pretext run: a `config.json` that is not a Hugging Face model's.
    pub fn is_run(dir: &Path) -> bool {
        dir.join(CONFIG_FILE).is_file() && !crate::hf::is_model_dir(dir)
    }

    /// The run in `dir`, its recipe read back.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let path = dir.into();
        let recipe = Recipe::read(path.join(CONFIG_FILE))?;
        Ok(Self { path, recipe })
    }

    /// Makes `out` the directory of a run of `recipe` and writes the recipe there. When
    /// `resume`, a checkpoint must be there, trained with the recipe's training settings, and
    /// a recipe already there must train the same model ([`Recipe::check_resumes`]): checked
    /// here, before any text is read, rather than when training starts.
    pub(crate) fn create(out: &Path, recipe: &Recipe, resume: bool) -> Result<()> {
        let config = out.join(CONFIG_FILE);
        if resume {
            if let Ok(saved) = std::fs::read_to_string(&config) {
                recipe.check_resumes(&saved)?;
            }
            let ckpt = locate(out).ok_or_else(|| Error::Checkpoint {
                path: out.join(CHECKPOINT_DIR),
                reason: "no checkpoint to resume from; without --resume the run starts afresh"
                    .into(),
            })?;
            load_state(&ckpt)?.check_resumes(&recipe.train)?;
        }
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        crate::util::atomic_file::write(&config, recipe.to_json())
    }

    /// The run's tokenizer.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        self.recipe.tokenizer.load()
    }

    /// Where the run saved its encoder.
    pub fn encoder_file(&self) -> PathBuf {
        self.path.join(ENCODER_FILE)
    }

    /// The model the run's checkpoint holds, read into `template` (of the run's shape).
    pub fn checkpoint<M: Module>(&self, template: M) -> Result<M> {
        read_checkpoint(&self.path, template)
    }
}

/// The model a run of `recipe` left in `dir`, read into `template` (of the run's shape) as
/// [`read_checkpoint`] reads it; a LoRA run's backbone adapted as it trained, then read, then
/// its adapters merged into its weights.
pub fn read_trained<B: Module + ModuleDisplay, H: Module + ModuleDisplay>(
    dir: &Path,
    recipe: &Recipe,
    template: Pretrainer<B, H>,
) -> Result<Pretrainer<B, H>> {
    let Some(lora) = &recipe.lora else {
        return read_checkpoint(dir, template);
    };
    // Adapting reads the template's weights and draws its adapters, all overwritten by the
    // checkpoint: drawn holding the stream, not from under a seeded run on another thread.
    let _draws = crate::util::random::hold();
    let adapted = Pretrainer {
        backbone: lora.adapt(template.backbone)?,
        objective: template.objective,
    };
    let trained = read_checkpoint(dir, adapted)?;
    Ok(Pretrainer {
        backbone: crate::lora::merged(trained.backbone),
        objective: trained.objective,
    })
}

/// The model the checkpoint of the run in `dir` (a recipe's run or a loop's, as PPO's) holds,
/// read into `template`: the checkpoint as resuming finds it (the previous one if a crash
/// interrupted the swap), its weights checked against `template`'s shapes.
pub fn read_checkpoint<M: Module>(dir: &Path, template: M) -> Result<M> {
    let ckpt = locate(dir).ok_or_else(|| Error::Checkpoint {
        path: dir.to_path_buf(),
        reason: "the run has no checkpoint".into(),
    })?;
    load_weights(&ckpt.join(MODEL_FILE), template)
}
