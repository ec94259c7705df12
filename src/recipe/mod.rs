//! Recipes: a whole pretraining run as one serialisable value — the objective and its
//! settings, the backbone, the tokenizer, the data, the sequence length, the float type and the
//! training config — that checks and runs itself.
//!
//! [`Recipe::named`] gives an objective's reference defaults from the [`registry`]; a run
//! writes its complete recipe as `OUT/config.json`, and [`Recipe::from_file`] reads it back, so
//! a run's `config.json` replays it exactly.
//!
//! ```no_run
//! use pretext::burn::prelude::*;
//! use pretext::Preset;
//! use pretext::recipe::{Recipe, RunOptions};
//!
//! # fn main() -> pretext::Result<()> {
//! let mut recipe = Recipe::named("electra", Preset::Tiny)?; // ELECTRA's reference defaults
//! recipe.train.steps = 100; // one changed field
//! let report = recipe.run(&RunOptions::new("runs/electra", Device::flex().autodiff()))?;
//! println!("{:?}", report.history.last());
//! # Ok(()) }
//! ```

pub mod causal;
pub mod images;
pub mod multitask;
pub mod registry;
pub mod run;
pub mod run_dir;
pub mod sources;

pub use multitask::TaskSpec;
pub use registry::{Entry, OBJECTIVES, ObjectiveRecipe, ObjectiveSettings, TokenTaskSettings};
pub use run::{HasEncoder, Run, RunOptions, RunReport, Sample};
pub use run_dir::{RunDir, TrainedEncoder, read_checkpoint, read_trained};
pub use sources::{DataSource, TokenizerSource};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::util::json;

use crate::blocks::{TransformerEncoder, TransformerEncoderConfig};
use crate::device::FloatType;
use crate::error::{Error, Result};
use crate::lora::LoraConfig;
use crate::objectives::multitask::TaskHead;
use crate::preset::Preset;
use crate::pretrainer::Pretrainer;
use crate::tokenize::Tokenizer;
use crate::train::TrainConfig;

/// A whole pretraining run. Its JSON form is what `pretrain` writes as `config.json` and reads
/// with `--config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The objective, by name, and its settings.
    pub objective: ObjectiveRecipe,
    /// The backbone (an encoder-decoder objective adds its decoder to this encoder).
    pub encoder: TransformerEncoderConfig,
    /// The tokenizer; its vocabulary must be the encoder's.
    pub tokenizer: TokenizerSource,
    /// The text.
    pub data: DataSource,
    /// Tokens per example, special tokens included; at most the encoder's positions.
    pub seq_len: usize,
    /// The float type of every tensor.
    pub float: FloatType,
    /// Steps, batches, optimizer, schedule, validation, checkpoints and seed.
    pub train: TrainConfig,
    /// A Hugging Face directory (a BERT, a RoBERTa, ELECTRA's discriminator or a GPT-2) or a
    /// pretext run directory whose weights start the encoder (continued pretraining, SFT);
    /// `None` for random weights. [`Recipe::init_from`] sets it with the encoder's shape and
    /// the tokenizer to match.
    pub init: Option<PathBuf>,
    /// Low-rank adapters: the backbone frozen and adapters on these modules trained with the
    /// objective's head (LoRA, for SFT, DPO or any objective). The run saves the adapters
    /// (`adapters.bpk`) and the encoder with them merged (`encoder.bpk`). `None` (the default)
    /// trains every weight.
    #[serde(default)]
    pub lora: Option<LoraConfig>,
}

/// The encoder fields that moved into `encoder.block` (the layers' shape), with their names
/// there.
const BLOCK_FIELDS: [(&str, &str); 6] = [
    ("num_heads", "num_heads"),
    ("ffn_size", "ffn_size"),
    ("norm_first", "norm_first"),
    ("layer_norm_eps", "norm_eps"),
    ("activation", "activation"),
    ("positions", "positions"),
];

/// Rewrites a recipe written before the encoder had a block configuration (its layer fields
/// beside the stack's), or before the block had all of today's fields, into today's form: the
/// same model, new fields at their defaults (burn's `Config` reads no default for a missing
/// field). Returns whether anything changed. Every earlier run directory stays readable,
/// resumable and exportable.
fn upgrade(recipe: &mut Value) -> bool {
    let Some(encoder) = recipe.get_mut("encoder").and_then(Value::as_object_mut) else {
        return false;
    };
    let mut changed = false;
    if !encoder.contains_key("block") && encoder.contains_key("num_heads") {
        let mut block = serde_json::Map::new();
        for (old, new) in BLOCK_FIELDS {
            if let Some(value) = encoder.remove(old) {
                block.insert(new.to_string(), value);
            }
        }
        encoder.insert("block".into(), Value::Object(block));
        changed = true;
    }
    let Some(block) = encoder.get_mut("block").and_then(Value::as_object_mut) else {
        return changed;
    };
    let defaults =
        serde_json::to_value(crate::blocks::BlockConfig::new(1, 1)).expect("a block serializes");
    for (key, value) in defaults.as_object().expect("a block is an object") {
        if !block.contains_key(key) {
            block.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    changed
}

impl Recipe {
    /// The recipe of `objective` at the size and training defaults of `preset`: the bundled
    /// tokenizer and corpus, 300 steps, one shard per core. Named recipes start here and
    /// change what their objective needs.
    pub fn new(objective: ObjectiveRecipe, preset: Preset) -> Result<Self> {
        let tokenizer = TokenizerSource::default();
        let vocab = tokenizer.load()?.vocab_size();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            objective,
            encoder: preset.encoder(vocab),
            tokenizer,
            data: DataSource::default(),
            seq_len: preset.seq_len(),
            float: FloatType::F32,
            train: TrainConfig::new(300, preset.batch_size())
                .with_learning_rate(preset.learning_rate())
                .with_valid_batches(16)
                .with_shards(cores),
            init: None,
            lora: None,
        })
    }

    /// The reference defaults of the objective called `name` in the [`registry`] (`mlm`,
    /// `albert`, `electra`, …) at the size of `preset`.
    pub fn named(name: &str, preset: Preset) -> Result<Self> {
        (registry::find(name)?.recipe)(preset)
    }

    /// This recipe with another tokenizer, the encoder's vocabulary resized to it.
    pub fn with_tokenizer(mut self, tokenizer: TokenizerSource) -> Result<Self> {
        self.encoder.vocab_size = tokenizer.load()?.vocab_size();
        self.tokenizer = tokenizer;
        Ok(self)
    }

    /// This `distill` recipe learning from the teacher in `dir` (a pretext run or a Hugging
    /// Face encoder directory): the student takes the teacher's shape and tokenizer with half
    /// its layers, started from every other one of the teacher's, the first and the last kept
    /// (DistilBERT's rule: layers 0, 2 and 5 of 6).
    pub fn with_teacher(mut self, dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let ObjectiveRecipe::Distill(settings) = &mut self.objective else {
            return Err(Error::Recipe {
                field: "objective".into(),
                reason: format!(
                    "a teacher is for `distill`, not `{}`",
                    self.objective.name()
                ),
            });
        };
        let (tokenizer, teacher) = TrainedEncoder::shape(&dir)?;
        let layers =
            registry::every_other_layer(teacher.num_layers, (teacher.num_layers / 2).max(1));
        self.encoder = TransformerEncoderConfig {
            num_layers: layers.len(),
            ..teacher
        };
        self.tokenizer = tokenizer;
        settings.teacher = Some(dir);
        settings.student_layers = Some(layers);
        Ok(self)
    }

    /// This recipe continuing the pretraining of the Hugging Face checkpoint in `dir` (a BERT,
    /// a RoBERTa or ELECTRA's discriminator): its
    /// encoder takes the checkpoint's shape (dropout and LayerNorm placement as the checkpoint
    /// has them) and weights, and the directory's `tokenizer.json` (its sentinels added, if the
    /// recipe has any). The objective's heads start afresh.
    ///
    /// `dir` may also be a pretext `clm` or `sft` run, which `sft` starts from: the encoder
    /// then takes the run's shape (this recipe's dropout kept) and the run's tokenizer, and
    /// `sft` the run's LM head. `clm` from a Hugging Face GPT-2, Llama or Qwen2 goes on with
    /// the checkpoint's own head (Llama's untied `lm_head` included).
    pub fn init_from(mut self, dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        match &mut self.objective {
            ObjectiveRecipe::Sft(sft) => {
                sft.gpt2_head = causal::gpt2_head(&dir)?;
                sft.untied_head = causal::untied_head_of(&dir)?;
            }
            ObjectiveRecipe::Dpo(dpo) => {
                dpo.gpt2_head = causal::gpt2_head(&dir)?;
                dpo.untied_head = causal::untied_head_of(&dir)?;
            }
            // A Hugging Face causal LM goes on with its own head (an encoder of another family
            // takes a fresh one).
            ObjectiveRecipe::Clm(clm)
                if crate::hf::is_model_dir(&dir) && causal::gpt2_head(&dir).unwrap_or(false) =>
            {
                clm.gpt2_head = true;
                clm.untied_head = causal::untied_head_of(&dir)?;
            }
            _ => {}
        }
        if RunDir::is_run(&dir) {
            let run = RunDir::open(&dir)?.recipe;
            self.encoder = run.encoder.with_dropout(self.encoder.dropout);
            self.tokenizer = run.tokenizer;
            self.init = Some(dir);
            return Ok(self);
        }
        self.encoder = crate::hf::HfConfig::read(&dir)?.encoder(&dir)?;
        let tokenizer = TokenizerSource {
            file: Some(crate::tokenize::model_dir_file(&dir)),
            sentinels: self.tokenizer.sentinels,
        };
        self.init = Some(dir);
        let vocab = self.encoder.vocab_size;
        let recipe = self.with_tokenizer(tokenizer)?;
        if recipe.encoder.vocab_size != vocab {
            return Err(Error::Recipe {
                field: "tokenizer.file".into(),
                reason: format!(
                    "the checkpoint's vocabulary has {vocab} tokens but its tokenizer {}",
                    recipe.encoder.vocab_size
                ),
            });
        }
        Ok(recipe)
    }

    /// Parses a recipe from JSON; faults name their line and column.
    pub fn parse(json: &str) -> Result<Self> {
        Self::parse_at(json, Path::new("<string>"))
    }

    /// Reads the recipe file at `path` without checking that its parts agree: what a program
    /// that only needs some of it (the encoder's shape, the tokenizer) reads.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::parse_at(&read_text(path)?, path)
    }

    /// Reads the recipe file at `path` and checks it ([`Recipe::check`]); faults name their
    /// line and column in the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_text(path)?;
        let recipe = Self::parse_at(&text, path)?;
        match recipe.check() {
            Ok(_) => Ok(recipe),
            Err(Error::Recipe { field, reason }) => {
                let (line, column) = json::locate(&text, &field);
                Err(Error::ConfigFile {
                    path: path.to_path_buf(),
                    line,
                    column,
                    reason: format!("`{field}`: {reason}"),
                })
            }
            Err(other) => Err(other),
        }
    }

    fn parse_at(text: &str, path: &Path) -> Result<Self> {
        let at = |line, column, reason| Error::ConfigFile {
            path: path.to_path_buf(),
            line,
            column,
            reason,
        };
        let migrated = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|mut value| upgrade(&mut value).then(|| value.to_string()));
        let text = migrated.as_deref().unwrap_or(text);
        let recipe: Recipe =
            serde_json::from_str(text).map_err(|e| at(e.line(), e.column(), e.to_string()))?;
        let given: Value =
            serde_json::from_str(text).map_err(|e| at(e.line(), e.column(), e.to_string()))?;
        if let Some(field) = json::unknown_field(&given, &recipe.to_value(), "") {
            let (line, column) = json::locate(text, &field);
            return Err(at(line, column, format!("unknown field `{field}`")));
        }
        Ok(recipe)
    }

    /// The recipe as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a recipe serializes")
    }

    /// Every field where `other` differs from this recipe, in key order: its dotted path (as
    /// [`Recipe::set`] takes it), this recipe's value and `other`'s. What an ablation row
    /// changes from its baseline:
    ///
    /// ```
    /// use pretext::{Preset, recipe::Recipe};
    /// let mlm = Recipe::named("mlm", Preset::Mini).unwrap();
    /// let mut rotary = mlm.clone();
    /// rotary.set("encoder.block.positions", serde_json::json!({"Rotary": {"theta": 1e4}})).unwrap();
    /// let changed = mlm.differences(&rotary);
    /// assert_eq!(changed.len(), 1);
    /// assert_eq!(changed[0].0, "encoder.block.positions");
    /// ```
    pub fn differences(&self, other: &Recipe) -> Vec<(String, Value, Value)> {
        crate::util::json::differences(&self.to_value(), &other.to_value(), "")
    }

    /// The recipe as pretty-printed JSON, as `config.json` holds it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a recipe serializes")
    }

    /// Checks that a run of this recipe may resume the run whose recipe was `saved` (its
    /// `config.json`): they must agree in everything but the training fields
    /// [`RESUMABLE`](crate::train::RESUMABLE) names (the step budget, the output cadence); a resume that would train another model is an [`Error::Recipe`]
    /// naming the first field that differs.
    pub fn check_resumes(&self, saved: &str) -> Result<()> {
        let mut saved: Value = serde_json::from_str(saved).map_err(|e| Error::Recipe {
            field: "config.json".into(),
            reason: format!("the run being resumed has an unreadable recipe: {e}"),
        })?;
        // Read back as a recipe, so that fields added since it was written (a block's, `lora`)
        // take their defaults, the values that run trained with.
        upgrade(&mut saved);
        if let Ok(recipe) = serde_json::from_value::<Recipe>(saved.clone()) {
            saved = recipe.to_value();
        }
        let now = serde_json::to_value(self).expect("a recipe serializes");
        match crate::train::resume_difference(&saved, &now, "train") {
            None => Ok(()),
            Some((field, was, is)) => Err(Error::Recipe {
                field,
                reason: format!(
                    "the run being resumed has {was}, this recipe {is}; a resume may change only \
                     train.{} (start a new run with a fresh --out instead)",
                    crate::train::RESUMABLE.join(", train.")
                ),
            }),
        }
    }

    /// Sets the field at the dotted `path` (e.g. `train.steps`,
    /// `objective.settings.masking.unit`) to `value`: how a command line overrides any field.
    /// A path that names no field, or a value of the wrong type, is an error naming it.
    pub fn set(&mut self, path: &str, value: Value) -> Result<()> {
        let field = |reason: String| Error::Recipe {
            field: path.to_string(),
            reason,
        };
        let mut json = self.to_value();
        json::set_path(&mut json, path, value).map_err(field)?;
        *self = serde_json::from_value(json).map_err(|e| field(e.to_string()))?;
        Ok(())
    }

    /// Checks that the parts agree — the tokenizer's vocabulary is the encoder's, sequences fit
    /// its positions, it has the segment embeddings the objective reads, every setting is in
    /// range — before any text is read. Returns the loaded tokenizer. Errors name the field.
    pub fn check(&self) -> Result<Tokenizer> {
        let tokenizer = self.tokenizer.load()?;
        self.encoder.validate().map_err(|e| e.in_field("encoder"))?;
        if self.encoder.vocab_size != tokenizer.vocab_size() {
            return Err(Error::Recipe {
                field: "encoder.vocab_size".into(),
                reason: format!(
                    "the encoder has {} tokens but the tokenizer ({} sentinels added) has {}",
                    self.encoder.vocab_size,
                    self.tokenizer.sentinels,
                    tokenizer.vocab_size()
                ),
            });
        }
        let positions = self
            .encoder
            .max_positions
            .saturating_sub(self.encoder.position_offset);
        if self.seq_len > positions || self.seq_len < 8 {
            return Err(Error::Recipe {
                field: "seq_len".into(),
                reason: format!(
                    "{} tokens: a sequence needs at least 8 and at most the encoder's {} \
                     positions",
                    self.seq_len, positions
                ),
            });
        }
        self.train.validate().map_err(|e| e.in_field("train"))?;
        if let Some(lora) = &self.lora {
            lora.validate().map_err(|e| e.in_field("lora"))?;
        }
        if let Some(dir) = &self.data.dir
            && !dir.exists()
        {
            return Err(Error::Recipe {
                field: "data.dir".into(),
                reason: format!("{} is neither a file nor a folder", dir.display()),
            });
        }
        let fraction = self.data.valid_fraction;
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::Recipe {
                field: "data.valid_fraction".into(),
                reason: format!("must lie in (0, 1), got {fraction}"),
            });
        }
        let settings = self.objective.settings();
        if let Some(dir) = &self.init {
            self.check_init(dir, settings.encoder_decoder())?;
        }
        // An encoder without segment embeddings (GPT-2, ModernBERT, Llama) reads none, and
        // ignores the ids; one with too few would index past its table.
        let segments = settings.segments();
        if self.encoder.num_segments > 0 && self.encoder.num_segments < segments {
            return Err(Error::Recipe {
                field: "encoder.num_segments".into(),
                reason: format!(
                    "{} reads segment ids 0 to {}, but the encoder has {} segment embeddings",
                    self.objective.name(),
                    segments - 1,
                    self.encoder.num_segments
                ),
            });
        }
        if settings.masks() && !tokenizer.has_mask() {
            return Err(Error::Recipe {
                field: "tokenizer".into(),
                reason: format!(
                    "{} masks tokens, but the tokenizer has no mask token",
                    self.objective.name()
                ),
            });
        }
        if let Some(path) = settings.data_file() {
            crate::dataset::labelled::check_data_file(&path)?;
        }
        settings.check(self, &tokenizer)?;
        Ok(tokenizer)
    }

    /// Checks that the checkpoint in `dir` can start this recipe's encoder.
    fn check_init(&self, dir: &Path, encoder_decoder: bool) -> Result<()> {
        let field = |reason: String| Error::Recipe {
            field: "init".into(),
            reason,
        };
        if encoder_decoder {
            return Err(field(format!(
                "{} trains an encoder-decoder; a BERT or ELECTRA checkpoint starts encoders only",
                self.objective.name()
            )));
        }
        let theirs = if crate::hf::is_model_dir(dir) {
            crate::hf::HfConfig::read(dir).and_then(|c| c.encoder(dir))
        } else {
            RunDir::open(dir).map(|run| run.recipe.encoder)
        };
        let theirs = theirs
            .map_err(|e| field(e.to_string()))?
            .with_dropout(self.encoder.dropout);
        // Every field but dropout, which a run may set as it likes, is the checkpoint's.
        if theirs.to_string() != self.encoder.to_string() {
            return Err(field(format!(
                "the checkpoint's encoder is {theirs}, the recipe's {}: build the recipe with \
                 Recipe::init_from (pretrain --init-from)",
                self.encoder
            )));
        }
        Ok(())
    }

    /// The encoder and the objective's head that a run of this recipe left in `run_dir`'s
    /// checkpoint, on `device`: token objectives only (`mlm`, `clm`, `nsp`, `sop`, `bert`,
    /// `albert`), whose head one can name without the run.
    pub fn load_trained(
        &self,
        run_dir: &Path,
        device: &burn::prelude::Device,
    ) -> Result<(TransformerEncoder, TaskHead)> {
        let settings = self
            .objective
            .settings()
            .token_task()
            .ok_or_else(|| Error::Recipe {
                field: "objective".into(),
                reason: format!(
                    "{} is not a token objective: only encoder.bpk of its run is read back",
                    self.objective.name()
                ),
            })?;
        let encoder = self.encoder.init(device)?;
        let head = settings.head(&encoder, device)?;
        let trained = read_trained(run_dir, self, Pretrainer::new(encoder, head))?;
        Ok((trained.backbone, trained.objective))
    }

    /// What of the model a run of this recipe trains its Hugging Face family cannot express,
    /// if anything (see [`ObjectiveSettings::hf_misfit`]).
    pub fn hf_misfit(&self) -> Option<String> {
        self.objective.settings().hf_misfit(self)
    }

    /// Writes the model a run of this recipe left in `run_dir` as a Hugging Face directory
    /// `out` with the recipe's tokenizer (see [`crate::hf::export`]), as the objective says
    /// ([`ObjectiveSettings::export_hf`]): `bert` and `albert` runs as `BertForPreTraining` and
    /// `AlbertForPreTraining`, an MLM run as `BertForMaskedLM`, ELECTRA as
    /// `ElectraForPreTraining`, a GPT-2-shaped `clm` run as `GPT2LMHeadModel`, any other
    /// encoder as `BertModel`. What the family cannot express is
    /// an error naming it. Returns the class written.
    pub fn export_hf(&self, run_dir: &Path, out: &Path, force: bool) -> Result<&'static str> {
        if let Some(what) = self.hf_misfit() {
            return Err(Error::HfModel {
                path: out.to_path_buf(),
                reason: format!("the model has {what}: it has no Hugging Face form"),
            });
        }
        self.objective
            .settings()
            .export_hf(self, run_dir, out, force)
    }

    /// The default export of a run in `run_dir`: a token objective's trained encoder and head
    /// (an MLM head as BERT or ALBERT, a causal LM as GPT-2), or `encoder.bpk` alone.
    pub(crate) fn export_trained(
        &self,
        run_dir: &Path,
        out: &Path,
        force: bool,
    ) -> Result<&'static str> {
        use crate::hf::{Exportable, export};
        let tokenizer = self.tokenizer.load()?;
        let device = burn::prelude::Device::flex();
        let config = &self.encoder;
        if self.objective.settings().token_task().is_some() {
            let (encoder, head) = self.load_trained(run_dir, &device)?;
            let model = match &head {
                TaskHead::Clm(clm) => Exportable::Causal {
                    config,
                    encoder: &encoder,
                    clm,
                },
                _ => Exportable::Encoder {
                    config,
                    encoder: &encoder,
                    mlm: head.mlm(),
                    pair: head.pair(),
                },
            };
            return export(model, &tokenizer, out, force);
        }
        let encoder = crate::train::checkpoint::load_weights(
            &run_dir.join(run_dir::ENCODER_FILE),
            config.init(&device)?,
        )?;
        let model = Exportable::Encoder {
            config,
            encoder: &encoder,
            mlm: None,
            pair: None,
        };
        export(model, &tokenizer, out, force)
    }

    /// About how many bytes a training step of this recipe holds at its peak: the weights,
    /// their gradients and Adam's two moments (16 bytes a parameter), the activations
    /// backpropagation keeps (per layer, Korthikanti et al.'s s·b·h·(34 + 5·a·s/h) in 16-bit
    /// values, scaled to the float type: the attention term grows with the square of the
    /// sequence; the 16 of the 34 that are the feed-forward network's two inner tensors at 4h
    /// scaled to its width, and doubled for a gated one's four) and the logits over the
    /// vocabulary. An estimate to refuse what cannot fit,
    /// not a measurement.
    pub fn step_memory(&self) -> f64 {
        let (fixed, linear, attention) = self.step_memory_parts();
        fixed + linear + attention
    }

    /// [`step_memory`](Self::step_memory) in three parts: what does not grow with the
    /// sequence's square (weights, optimizer state, logits), the activations that grow with
    /// its length, and attention's, which grow with its square.
    fn step_memory_parts(&self) -> (f64, f64, f64) {
        let e = &self.encoder;
        let value = match self.float {
            FloatType::F32 => 4.0,
            _ => 2.0,
        };
        // Activations of all layers per unit of Korthikanti et al.'s bracket.
        let tokens = self.seq_len as f64 * self.train.batch_size as f64;
        let per = e.num_layers as f64 * tokens * e.hidden_size as f64 * value / 2.0;
        let inner_tensors = 2.0 + 2.0 * f64::from(u8::from(e.block.glu));
        let ffn = inner_tensors * 2.0 * e.block.ffn_size as f64 / e.hidden_size as f64;
        let linear = per * (18.0 + ffn);
        let attention =
            per * 5.0 * e.block.num_heads as f64 * self.seq_len as f64 / e.hidden_size as f64;
        let fixed = 16.0 * e.num_params() as f64 + 3.0 * tokens * e.vocab_size as f64 * value;
        (fixed, linear, attention)
    }

    /// Checks that a step's memory ([`step_memory`](Self::step_memory)) fits in `available`
    /// bytes, naming the field to lower: `seq_len` when attention's square term is the larger
    /// share of the activations, `train.batch_size` otherwise.
    pub fn check_memory(&self, available: u64) -> Result<()> {
        let (fixed, linear, attention) = self.step_memory_parts();
        let needed = fixed + linear + attention;
        if needed <= available as f64 {
            return Ok(());
        }
        let field = match attention > linear {
            true => "seq_len",
            false => "train.batch_size",
        };
        let gib = |bytes: f64| bytes / (1u64 << 30) as f64;
        Err(Error::Recipe {
            field: field.into(),
            reason: format!(
                "a training step needs about {:.1} GiB ({} examples of {} tokens through {} \
                 layers) where this machine has {:.1} GiB: lower seq_len or train.batch_size",
                gib(needed),
                self.train.batch_size,
                self.seq_len,
                self.encoder.num_layers,
                gib(available as f64)
            ),
        })
    }

    /// Runs the recipe: checks it, writes it as `OUT/config.json`, reads and tokenizes the
    /// text, builds the backbone and the objective, trains, and saves the encoder one
    /// fine-tunes as `OUT/encoder.bpk`.
    pub fn run(&self, options: &RunOptions) -> Result<RunReport> {
        let tokenizer = self.check()?;
        Run::start(self, &tokenizer, options)?.go()
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipe_written_before_lora_reads_and_resumes_as_one_without() {
        let recipe = Recipe::named("mlm", Preset::Tiny).unwrap();
        let mut value = recipe.to_value();
        value.as_object_mut().unwrap().remove("lora");
        let text = value.to_string();
        let read = Recipe::parse_at(&text, Path::new("config.json")).unwrap();
        assert!(read.lora.is_none());
        recipe.check_resumes(&text).unwrap();
        let mut adapted = recipe.clone();
        adapted.lora = Some(LoraConfig::new());
        let refused = adapted.check_resumes(&text).unwrap_err();
        assert!(
            matches!(&refused, Error::Recipe { field, .. } if field.starts_with("lora")),
            "{refused}"
        );
        let mut bad = adapted;
        bad.lora = Some(LoraConfig::new().with_rank(0));
        assert!(matches!(bad.check(), Err(Error::Recipe { field, .. }) if field == "lora"));
    }

    #[test]
    fn every_named_recipe_round_trips_through_json_and_passes_its_checks() {
        for entry in registry::OBJECTIVES {
            let recipe = Recipe::named(entry.name, Preset::Tiny).unwrap();
            assert_eq!(recipe.objective.name(), entry.name);
            match (entry.name, recipe.check()) {
                // A teacher is the one setting no default can give.
                ("distill", Err(Error::Recipe { field, .. })) => {
                    assert_eq!(field, "objective.settings.teacher")
                }
                (name, checked) => {
                    checked.unwrap_or_else(|e| panic!("{name}: {e}"));
                }
            }
            let again = Recipe::parse(&recipe.to_json()).unwrap();
            assert_eq!(again.to_value(), recipe.to_value(), "{}", entry.name);
        }
        assert!(matches!(
            Recipe::named("gpt5", Preset::Tiny),
            Err(Error::Recipe { .. })
        ));
    }

    #[test]
    fn the_named_defaults_are_the_references() {
        let albert = Recipe::named("albert", Preset::Mini).unwrap();
        assert_eq!(albert.encoder.embedding_size, Some(128));
        assert!(albert.encoder.share_layers);
        assert_eq!(albert.train.steps, 1000);
        let t5 = Recipe::named("t5", Preset::Tiny).unwrap();
        assert_eq!(t5.tokenizer.sentinels, 100);
        assert_eq!(
            t5.encoder.vocab_size,
            Tokenizer::bundled().unwrap().vocab_size() + 100
        );
        assert!(
            Recipe::named("clm", Preset::Tiny)
                .unwrap()
                .encoder
                .block
                .norm_first
        );
        assert_eq!(
            Recipe::named("unilm", Preset::Tiny)
                .unwrap()
                .encoder
                .num_segments,
            6
        );
    }

    #[test]
    fn set_changes_one_field_and_names_a_bad_one() {
        let mut recipe = Recipe::named("albert", Preset::Tiny).unwrap();
        recipe.set("train.steps", 7.into()).unwrap();
        recipe
            .set("objective.settings.pair_weight", 2.5.into())
            .unwrap();
        assert_eq!(recipe.train.steps, 7);
        let ObjectiveRecipe::Albert(settings) = &recipe.objective else {
            panic!("{:?}", recipe.objective)
        };
        assert_eq!(settings.pair_weight, 2.5);
        // A schedule by its JSON form, as `--set` gives it.
        let cycle = serde_json::json!({"OneCycle": {"start": 0.25}});
        recipe.set("train.schedule", cycle).unwrap();
        assert_eq!(
            recipe.train.schedule,
            crate::train::Schedule::OneCycle { start: 0.25 }
        );
        for (path, value) in [
            ("train.stepz", Value::from(1)),
            ("train.steps", Value::from("many")),
            ("objective.settings.noise", Value::from(1)),
        ] {
            match recipe.set(path, value) {
                Err(Error::Recipe { field, .. }) => assert_eq!(field, path),
                other => panic!("{path}: {other:?}"),
            }
        }
    }
}
