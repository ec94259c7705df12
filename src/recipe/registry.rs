//! The registry of named objectives: the one list of their names, what each means in one line,
//! where its reference defaults come from, and the settings a recipe holds for it.
//!
//! The registry sits above the objectives, as fairseq's does beside its criteria: an
//! objective's file in `objectives/` holds its heads, loss, task and settings type, and knows
//! nothing of recipes; its entry here says what a recipe of it defaults to, checks and runs.
//!
//! Adding an objective: its file in `objectives/` (model, task, a serde settings struct),
//! then its entry here — one row of the `registry!` table (variant, name, defaults function,
//! one line of what it is), that function, and one `impl ObjectiveSettings` saying what its
//! run checks and builds. `src/architecture.md` walks through a real one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::causal;
use super::images::{self, BeitSettings, MaeSettings, RotationSettings, SimclrSettings};
use super::multitask::{self, MultiTaskSettings};
use super::{Recipe, Run, RunReport, TokenizerSource};
use crate::blocks::{
    Activation, BlockConfig, EncoderDecoderConfig, PositionEncoding, TransformerEncoder,
};
use crate::data::PairKind;
use crate::dataset::Documents;
use crate::error::{Error, Result, check_weight, in_setting};
use crate::noise::mass::check_share;
use crate::noise::t5::{num_noise_spans, span_corruption_lengths};
use crate::noise::{MaskUnit, MlmMasking, PermutationMasking};
use crate::objectives::bart::{BartSettings, BartTask};
use crate::objectives::clm::{ClmSettings, ClmTask};
use crate::objectives::distill::{DistillConfig, DistillSettings, Teacher};
use crate::objectives::dpo::DpoSettings;
use crate::objectives::electra::{ElectraConfig, ElectraSettings, ElectraTask};
use crate::objectives::mass::{MassSettings, MassTask};
use crate::objectives::mlm::{MlmSettings, MlmTask};
use crate::objectives::multitask::{TaskHead, TokenTask};
use crate::objectives::plm::{PermutationTask, PermutedLmConfig, PermutedSettings};
use crate::objectives::reward::RewardSettings;
use crate::objectives::sentence_pair::{
    BertSettings, PairHeadConfig, PairSettings, PairTaskConfig, SentencePairTask,
};
use crate::objectives::sft::SftSettings;
use crate::objectives::spanbert::{SboHeadConfig, SpanBertConfig, SpanBertSettings, SpanBertTask};
use crate::objectives::t5::{SpanCorruption, T5_SENTINELS, T5Settings, T5Task};
use crate::objectives::unilm::{
    UNILM_SEGMENTS, UnilmConfig, UnilmSettings, UnilmShares, UnilmTask,
};
use crate::objectives::{Mix, MlmConfig};
use crate::preset::Preset;
use crate::tokenize::Tokenizer;
use crate::train::Schedule;
use burn::prelude::Device;

/// The recipe side of an objective: what it checks, and how a run of it goes.
pub trait ObjectiveSettings {
    /// A data file of its own (instruction or preference pairs, JSON lines) that a run reads
    /// instead of the recipe's corpus; `Recipe::check` checks that it is a file. Default none.
    fn data_file(&self) -> Option<PathBuf> {
        None
    }

    /// The segment ids its examples read: the encoder needs this many segment embeddings.
    /// Default 2 (`[CLS] A [SEP] B [SEP]`), or 0 for an encoder-decoder (its encoder reads
    /// one segment) and for an objective with a data file of its own (its texts are framed
    /// whole, `[CLS] prompt answer [SEP]`).
    fn segments(&self) -> usize {
        match self.data_file().is_some() || self.encoder_decoder() {
            true => 0,
            false => 2,
        }
    }

    /// Whether a run reads the recipe's text (`data`). Default: unless it has a data file of
    /// its own; the image objectives read images instead.
    fn reads_corpus(&self) -> bool {
        self.data_file().is_none()
    }

    /// Whether its backbone is an encoder-decoder (which no BERT checkpoint can start).
    /// Default false.
    fn encoder_decoder(&self) -> bool {
        false
    }

    /// Checks the settings against the rest of `recipe`, before any text is read; errors name
    /// the field ([`Error::Recipe`]). Default: nothing to check.
    fn check(&self, _recipe: &Recipe, _tokenizer: &Tokenizer) -> Result<()> {
        Ok(())
    }

    /// Builds the backbone and the objective's heads, trains them on the run's text and saves
    /// the encoder. Default: the run of its [`token_task`](Self::token_task), for the
    /// objectives over token batches; every other objective implements its own.
    fn run(&self, run: &Run) -> Result<RunReport> {
        match self.token_task() {
            Some(task) => run_token_task(task, run),
            None => Err(Error::InvalidConfig(
                "this objective has neither a run of its own nor a token task".into(),
            )),
        }
    }

    /// Whether its examples hold the tokenizer's mask token (a tokenizer without one, GPT-2's,
    /// cannot serve it). Default true, false for an objective with a data file of its own
    /// (it reads prompts and answers as they are).
    fn masks(&self) -> bool {
        self.data_file().is_none()
    }

    /// The objective as a task of a multi-task mix, if its data are token batches over an
    /// encoder.
    fn token_task(&self) -> Option<&dyn TokenTaskSettings> {
        None
    }

    /// What of the model a run of `recipe` trains its Hugging Face family cannot express, if
    /// anything: checked before training when an export is asked for. Default: the encoder
    /// as BERT (or ALBERT); a tuned causal model as GPT-2; an encoder-decoder's LM head has
    /// BERT's transform, which BART has not.
    fn hf_misfit(&self, recipe: &Recipe) -> Option<String> {
        if let Some(gpt2_head) = self.tuned_causal_head() {
            return causal::gpt2_misfit(recipe, gpt2_head);
        }
        if self.encoder_decoder() {
            return Some(
                "an encoder-decoder whose LM head has BERT's transform, which BART has not".into(),
            );
        }
        crate::hf::encoder_misfit(&recipe.encoder)
    }

    /// Writes the model a run of `recipe` left in `run_dir` as a Hugging Face directory `out`
    /// and returns its class. Default: a token objective's encoder with its MLM head, if it
    /// has one (BERT, ALBERT), or as GPT-2 (`clm`); a tuned causal model as GPT-2; any other
    /// objective's encoder alone.
    fn export_hf(
        &self,
        recipe: &Recipe,
        run_dir: &Path,
        out: &Path,
        force: bool,
    ) -> Result<&'static str> {
        match self.tuned_causal_head() {
            Some(gpt2_head) => causal::export_tuned_causal(recipe, gpt2_head, run_dir, out, force),
            None => recipe.export_trained(run_dir, out, force),
        }
    }

    /// For an objective that tunes a causal model and keeps its LM head (`sft`, `dpo`):
    /// whether that head is GPT-2's. Their runs export as GPT-2. Default none.
    fn tuned_causal_head(&self) -> Option<bool> {
        None
    }
}

/// An objective that can be a task of a multi-task mix: a head over token batches.
pub trait TokenTaskSettings {
    /// A fresh head for `backbone`.
    fn head(&self, backbone: &TransformerEncoder, device: &Device) -> Result<TaskHead>;

    /// Its data over `documents`, sequences of at most `seq_len` tokens.
    fn task(
        &self,
        documents: &Documents,
        tokenizer: &Tokenizer,
        seq_len: usize,
    ) -> Result<Box<dyn TokenTask>>;

    /// Settings to score the model with as well at every validation, and the suffix their
    /// figures take in the log: runs that train differently (MLM at 30 % masking) then
    /// compare on one yardstick (MLM at 15 %, ModernBERT's convention). Default none.
    fn scored_as(&self) -> Option<(&'static str, Box<dyn TokenTaskSettings>)> {
        None
    }
}

/// One named objective of the registry.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The name (`pretrain --objective NAME`).
    pub name: &'static str,
    /// What it is, in one line.
    pub about: &'static str,
    /// Its recipe with the reference defaults, at a preset's size.
    pub recipe: fn(Preset) -> Result<Recipe>,
}

/// Declares, from one row per objective, [`ObjectiveRecipe`] (a variant each, tagged in JSON
/// by the objective's name), its `parts` and [`OBJECTIVES`]: a name is written once.
macro_rules! registry {
    ($($variant:ident($settings:ty) $name:literal $recipe:path: $about:literal;)*) => {
        /// A named objective and its settings. In JSON: `{"name": "albert", "settings": {…}}`.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "name", content = "settings", deny_unknown_fields)]
        pub enum ObjectiveRecipe {
            $(#[doc = $about] #[serde(rename = $name)] $variant($settings),)*
        }

        impl ObjectiveRecipe {
            /// The objective's name and its settings.
            pub fn parts(&self) -> (&'static str, &dyn ObjectiveSettings) {
                match self {
                    $(Self::$variant(s) => ($name, s),)*
                }
            }
        }

        /// Every named objective.
        pub const OBJECTIVES: [Entry; [$($name),*].len()] =
            [$(Entry { name: $name, about: $about, recipe: $recipe }),*];
    };
}

registry! {
    Mlm(MlmSettings) "mlm" mlm:
        "masked LM (BERT, RoBERTa): 15 % of the tokens, 80/10/10";
    Modernbert(MlmSettings) "modernbert" modernbert:
        "masked LM on ModernBERT's recipe: pre-norm, rotary, GeGLU, no biases, 30 %, WSD";
    Crammed(MlmSettings) "crammed" crammed:
        "masked LM on Cramming's recipe: GeGLU, no biases, scaled sines, 25 %, one cycle";
    Clm(ClmSettings) "clm" clm:
        "causal LM (GPT): next-token prediction on a pre-LN encoder";
    Nsp(PairSettings) "nsp" nsp:
        "next-sentence prediction alone";
    Sop(PairSettings) "sop" sop:
        "sentence-order prediction alone";
    Bert(BertSettings) "bert" bert:
        "BERT: masked LM + next-sentence prediction";
    Albert(BertSettings) "albert" albert:
        "ALBERT: n-gram masked LM + 5 x sentence order, factorized embedding, shared layers";
    Bart(BartSettings) "bart" bart:
        "BART: an encoder-decoder rebuilds text infilled (30 %) and sentence-permuted";
    Mass(MassSettings) "mass" mass:
        "MASS: an encoder-decoder predicts the masked half of a segment";
    T5(T5Settings) "t5" t5:
        "T5: an encoder-decoder predicts the spans its input hides behind sentinels";
    Distill(DistillSettings) "distill" distill:
        "distillation from a teacher (--teacher): MiniLM's relations + hidden cosine (+ MLM)";
    Electra(ElectraSettings) "electra" electra:
        "ELECTRA: a small generator fills masked tokens, the encoder finds the replaced ones";
    Xlnet(PermutedSettings) "xlnet" xlnet:
        "XLNet: permuted LM through two-stream attention, the last sixth predicted";
    Mpnet(PermutedSettings) "mpnet" mpnet:
        "MPNet: permuted LM over 15 % of the tokens, every position visible";
    Spanbert(SpanBertSettings) "spanbert" spanbert:
        "SpanBERT: masked LM over geometric spans of words + the span-boundary objective";
    Unilm(UnilmSettings) "unilm" unilm:
        "UniLM: cloze under a bidirectional, left-to-right, right-to-left or seq2seq mask";
    Multitask(MultiTaskSettings) "multitask" multitask::recipe:
        "ERNIE 2.0-style mix of token objectives (mlm + sop by default; see --objectives)";
    Sft(SftSettings) "sft" causal::sft:
        "supervised fine-tuning of a causal LM on prompt/completion pairs (init: a clm run)";
    Reward(RewardSettings) "reward" causal::reward:
        "reward model: a scalar head at the last token, pairwise loss on preference pairs";
    Dpo(DpoSettings) "dpo" causal::dpo:
        "DPO (or IPO) of a causal LM on preference pairs against its frozen start";
    Mae(MaeSettings) "mae" images::mae:
        "MAE (images): 75 % of a ViT's patches hidden, a light decoder rebuilds their pixels";
    Simclr(SimclrSettings) "simclr" images::simclr:
        "SimCLR (images): two augmented views of each image find each other (NT-Xent)";
    Beit(BeitSettings) "beit" images::beit:
        "BEiT-lite (images): 40 % of the patches hidden, their k-means patch codes predicted";
    Rotation(RotationSettings) "rotation" images::rotation:
        "RotNet (images): which of four quarter turns each image shows";
}

impl ObjectiveRecipe {
    /// The objective's name, as the registry and `config.json` spell it.
    pub fn name(&self) -> &'static str {
        self.parts().0
    }

    /// The objective's settings, as the run sees them.
    pub fn settings(&self) -> &dyn ObjectiveSettings {
        self.parts().1
    }
}

/// The registry entry called `name`.
pub fn find(name: &str) -> Result<&'static Entry> {
    OBJECTIVES
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::Recipe {
            field: "objective.name".into(),
            reason: format!("unknown objective {name:?}; the named ones: {}", names()),
        })
}

/// Every name, comma-separated.
pub fn names() -> String {
    OBJECTIVES.map(|e| e.name).join(", ")
}

// The entries: each objective's defaults (what `Recipe::named` gives) and what its recipe
// checks and builds. Settings that need nothing of the rest of the recipe are checked by the
// objectives' own `validate`s; `in_setting` names the field.

/// The run of an objective over token batches, alone: a fresh encoder, the objective's head
/// and its task, as a multi-task mix would build them for it.
pub fn run_token_task(objective: &dyn TokenTaskSettings, run: &Run) -> Result<RunReport> {
    let backbone = run.encoder()?;
    let head = objective.head(&backbone, run.device())?;
    let make_task = |docs: &Documents| objective.task(docs, run.tokenizer, run.seq_len());
    let train_task = make_task(&run.train_docs)?;
    let valid_task = make_task(&run.valid_docs)?;
    let scored = match objective.scored_as() {
        Some((suffix, settings)) => {
            let task = settings.task(&run.valid_docs, run.tokenizer, run.seq_len())?;
            Some((suffix, task))
        }
        None => None,
    };
    let report = run.fit_scoring(backbone, head, train_task, valid_task, scored)?;
    Ok(report.into())
}

// ---- mlm

/// `mlm`: BERT's masking (15 % of the tokens, 80/10/10).
fn mlm(preset: Preset) -> Result<Recipe> {
    let masking = MlmMasking::default();
    Recipe::new(ObjectiveRecipe::Mlm(MlmSettings { masking }), preset)
}

/// The MLM recipe `objective` at `preset`'s size on the block the small-budget recipes share:
/// masking `mask_prob` of the tokens (scored at 15 % too), pre-norm, a GeGLU network `share`
/// of the plain one's width in whole multiples of 4 (⅔ keeps the parameter count, GLU's rule;
/// Cramming halves it), no biases, positions as `positions`, no segment embeddings, no
/// dropout, validating every other of the preset's validation steps.
fn glu_mlm(
    objective: fn(MlmSettings) -> ObjectiveRecipe,
    preset: Preset,
    mask_prob: f64,
    share: f64,
    positions: PositionEncoding,
) -> Result<Recipe> {
    let masking = MlmMasking {
        mask_prob,
        ..MlmMasking::default()
    };
    let mut recipe = Recipe::new(objective(MlmSettings { masking }), preset)?;
    let ffn_size = ((preset.ffn_size() as f64 * share / 4.0).round() as usize * 4).max(4);
    recipe.encoder = (recipe.encoder)
        .map_block(|b| {
            BlockConfig { ffn_size, ..b }
                .with_glu(true)
                .with_norm_first(true)
                .with_qkv_bias(false)
                .with_output_bias(false)
                .with_ffn_bias(false)
                .with_positions(positions)
        })
        .with_num_segments(0)
        .with_dropout(0.0);
    // Each validation scores twice (at the training rate and at 15 %), so it comes half as
    // often: the validation costs what `mlm`'s does.
    recipe.train.valid_every *= 2;
    Ok(recipe)
}

/// `modernbert`: MLM as ModernBERT trains it, at the preset's size: 30 % masking, GeGLU at ⅔
/// width, bias-free LayerNorms (ε 1e-5; none before the first attention), rotary positions
/// (θ 10 000), warmup–stable–decay (the last fifth decaying).
fn modernbert(preset: Preset) -> Result<Recipe> {
    let rotary = PositionEncoding::Rotary { theta: 10_000.0 };
    let mut recipe = glu_mlm(ObjectiveRecipe::Modernbert, preset, 0.3, 2.0 / 3.0, rotary)?;
    recipe.encoder = recipe.encoder.map_block(|b| {
        b.with_norm_bias(false)
            .with_norm_eps(1e-5)
            .with_first_attention_norm(false)
    });
    recipe.train.schedule = Schedule::WarmupStableDecay {
        decay_fraction: 0.2,
    };
    Ok(recipe)
}

/// `crammed`: MLM as Cramming trains it, at the preset's size: 25 % masking, GeGLU at half
/// width, scaled sinusoidal positions, one cycle from a quarter of the peak with no warmup,
/// gradients clipped at 0.5.
fn crammed(preset: Preset) -> Result<Recipe> {
    let scaled = PositionEncoding::ScaledSinusoidal;
    let mut recipe = glu_mlm(ObjectiveRecipe::Crammed, preset, 0.25, 0.5, scaled)?;
    recipe.train.schedule = Schedule::OneCycle { start: 0.25 };
    recipe.train.warmup_fraction = 0.0;
    recipe.train.max_grad_norm = 0.5;
    Ok(recipe)
}

impl ObjectiveSettings for MlmSettings {
    fn check(&self, _: &Recipe, _: &Tokenizer) -> Result<()> {
        in_setting(self.masking.validate(), "masking")
    }

    fn token_task(&self) -> Option<&dyn TokenTaskSettings> {
        Some(self)
    }
}

impl TokenTaskSettings for MlmSettings {
    fn head(&self, backbone: &TransformerEncoder, device: &Device) -> Result<TaskHead> {
        Ok(TaskHead::Mlm(MlmConfig::new().init(backbone, device)))
    }

    fn task(
        &self,
        documents: &Documents,
        tokenizer: &Tokenizer,
        seq_len: usize,
    ) -> Result<Box<dyn TokenTask>> {
        let task = MlmTask::new(documents, tokenizer, self.masking, seq_len)?;
        Ok(Box::new(task))
    }

    /// Trained at another rate, also scored at BERT's 15 %.
    fn scored_as(&self) -> Option<(&'static str, Box<dyn TokenTaskSettings>)> {
        let reference = MlmMasking::default().mask_prob;
        (self.masking.mask_prob != reference).then(|| {
            let masking = MlmMasking {
                mask_prob: reference,
                ..self.masking
            };
            let settings: Box<dyn TokenTaskSettings> = Box::new(MlmSettings { masking });
            ("15", settings)
        })
    }
}

// ---- clm

/// `clm`: GPT-2's pre-LN encoder.
fn clm(preset: Preset) -> Result<Recipe> {
    let objective = ObjectiveRecipe::Clm(ClmSettings::default());
    let mut recipe = Recipe::new(objective, preset)?;
    recipe.encoder.block.norm_first = true;
    Ok(recipe)
}

impl ObjectiveSettings for ClmSettings {
    /// One segment, id 0: an encoder without segment embeddings (GPT-2's) reads it as well.
    fn segments(&self) -> usize {
        0
    }

    fn masks(&self) -> bool {
        false
    }

    fn hf_misfit(&self, recipe: &Recipe) -> Option<String> {
        causal::gpt2_misfit(recipe, self.gpt2_head)
    }

    fn token_task(&self) -> Option<&dyn TokenTaskSettings> {
        Some(self)
    }

    /// A token task, but for an untied head: that starts from the checkpoint's own table.
    fn run(&self, run: &Run) -> Result<RunReport> {
        if !self.untied_head {
            return run_token_task(self, run);
        }
        let (encoder, clm) = causal::causal_start(run, self.gpt2_head)?;
        run.train(encoder, TaskHead::Clm(clm), |docs| {
            self.task(docs, run.tokenizer, run.seq_len())
        })
    }
}

impl TokenTaskSettings for ClmSettings {
    fn head(&self, backbone: &TransformerEncoder, device: &Device) -> Result<TaskHead> {
        let head = causal::causal_head(backbone, self.gpt2_head, self.untied_head, device);
        Ok(TaskHead::Clm(head))
    }

    fn task(
        &self,
        documents: &Documents,
        tokenizer: &Tokenizer,
        seq_len: usize,
    ) -> Result<Box<dyn TokenTask>> {
        Ok(Box::new(ClmTask::new(documents, tokenizer, seq_len)?))
    }
}

// ---- nsp, sop, bert, albert

/// Updates of a sentence-level recipe: one label per pair takes longer to learn from than a
/// token objective's many.
const PAIR_STEPS: usize = 1000;

/// `nsp` or `sop` alone, 1000 updates.
fn pair(kind: PairKind, preset: Preset) -> Result<Recipe> {
    let objective = match kind {
        PairKind::NextSentence => ObjectiveRecipe::Nsp(PairSettings { kind }),
        PairKind::SentenceOrder => ObjectiveRecipe::Sop(PairSettings { kind }),
    };
    let mut recipe = Recipe::new(objective, preset)?;
    recipe.train.steps = PAIR_STEPS;
    Ok(recipe)
}

/// `nsp`: BERT's next-sentence pairs.
fn nsp(preset: Preset) -> Result<Recipe> {
    pair(PairKind::NextSentence, preset)
}

/// `sop`: ALBERT's sentence-order pairs.
fn sop(preset: Preset) -> Result<Recipe> {
    pair(PairKind::SentenceOrder, preset)
}

/// `bert`: masked LM (80/10/10 on single tokens) + next-sentence prediction, 1:1, 1000
/// updates.
fn bert(preset: Preset) -> Result<Recipe> {
    let settings = BertSettings {
        kind: PairKind::NextSentence,
        masking: MlmMasking::default(),
        pair_weight: 1.0,
    };
    let mut recipe = Recipe::new(ObjectiveRecipe::Bert(settings), preset)?;
    recipe.train.steps = PAIR_STEPS;
    Ok(recipe)
}

/// `albert`: masked LM over n-grams of up to 3 words + sentence order, on a factorized
/// embedding (width 128, or half the model's if less) and one shared layer, 1000 updates. The
/// pair loss weighs 5 rather than ALBERT's 1: at 1:1, SOP stays at chance through a 1000-step
/// `mini` run (0.54), at 5 it learns (0.58) at some cost to MLM.
fn albert(preset: Preset) -> Result<Recipe> {
    let settings = BertSettings {
        kind: PairKind::SentenceOrder,
        masking: MlmMasking::default().with_unit(MaskUnit::ALBERT),
        pair_weight: 5.0,
    };
    let mut recipe = Recipe::new(ObjectiveRecipe::Albert(settings), preset)?;
    recipe.train.steps = PAIR_STEPS;
    recipe.encoder.embedding_size = Some(128.min(recipe.encoder.hidden_size / 2));
    recipe.encoder.share_layers = true;
    Ok(recipe)
}

impl ObjectiveSettings for PairSettings {
    fn token_task(&self) -> Option<&dyn TokenTaskSettings> {
        Some(self)
    }
}

impl TokenTaskSettings for PairSettings {
    fn head(&self, backbone: &TransformerEncoder, device: &Device) -> Result<TaskHead> {
        let head = PairHeadConfig::new(self.kind).init(backbone, device);
        Ok(TaskHead::Pair(head))
    }

    fn task(
        &self,
        documents: &Documents,
        tokenizer: &Tokenizer,
        seq_len: usize,
    ) -> Result<Box<dyn TokenTask>> {
        let task = SentencePairTask::new(documents, tokenizer, self.kind, seq_len)?;
        Ok(Box::new(task))
    }
}

impl ObjectiveSettings for BertSettings {
    fn check(&self, _: &Recipe, _: &Tokenizer) -> Result<()> {
        in_setting(self.masking.validate(), "masking")?;
        in_setting(check_weight("pair_weight", self.pair_weight), "pair_weight")
    }

    fn token_task(&self) -> Option<&dyn TokenTaskSettings> {
        Some(self)
    }
}

impl TokenTaskSettings for BertSettings {
    fn head(&self, backbone: &TransformerEncoder, device: &Device) -> Result<TaskHead> {
        let mlm = MlmConfig::new().init(backbone, device);
        let pair = PairHeadConfig::new(self.kind).init(backbone, device);
        let mix = in_setting(Mix::new(mlm, 1.0, pair, self.pair_weight), "pair_weight")?;
        Ok(TaskHead::MlmPair(mix))
    }

    fn task(
        &self,
        documents: &Documents,
        tokenizer: &Tokenizer,
        seq_len: usize,
    ) -> Result<Box<dyn TokenTask>> {
        let pairs = PairTaskConfig {
            kind: self.kind,
            masking: Some(self.masking),
        };
        let task = SentencePairTask::new(documents, tokenizer, pairs, seq_len)?;
        Ok(Box::new(task))
    }
}

// ---- bart, mass, t5: encoder-decoders

/// The recipe of an encoder-decoder `objective` at `preset`'s size: the encoder reads one
/// segment (no segment ids), and the caller sets the decoder's depth.
fn seq2seq(objective: ObjectiveRecipe, preset: Preset) -> Result<Recipe> {
    let mut recipe = Recipe::new(objective, preset)?;
    recipe.encoder.num_segments = 0;
    Ok(recipe)
}

/// Checks that `decoder_layers` on the recipe's encoder make an encoder-decoder.
fn check_decoder(recipe: &Recipe, decoder_layers: usize) -> Result<()> {
    let config = EncoderDecoderConfig::new(recipe.encoder.clone(), decoder_layers);
    in_setting(config.validate(), "decoder_layers")
}

/// `bart`: BART-large's noise (text infilling of 30 % of the words, every sentence
/// permuted), as many decoder layers as encoder layers.
fn bart(preset: Preset) -> Result<Recipe> {
    let settings = BartSettings {
        noise: crate::noise::bart::BartNoise::BART,
        decoder_layers: preset.num_layers(),
    };
    seq2seq(ObjectiveRecipe::Bart(settings), preset)
}

impl ObjectiveSettings for BartSettings {
    fn encoder_decoder(&self) -> bool {
        true
    }

    fn check(&self, recipe: &Recipe, _: &Tokenizer) -> Result<()> {
        in_setting(self.noise.validate(), "noise")?;
        check_decoder(recipe, self.decoder_layers)
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        let end = Some(run.tokenizer.special().sep);
        run.seq2seq(self.decoder_layers, end, |docs| {
            BartTask::new(docs, run.tokenizer, self.noise, run.seq_len())
        })
    }
}

/// `mass`: half of each segment masked, as many decoder layers as encoder layers.
fn mass(preset: Preset) -> Result<Recipe> {
    let settings = MassSettings {
        share: crate::noise::mass::DEFAULT_MASS_SHARE,
        decoder_layers: preset.num_layers(),
    };
    seq2seq(ObjectiveRecipe::Mass(settings), preset)
}

impl ObjectiveSettings for MassSettings {
    fn encoder_decoder(&self) -> bool {
        true
    }

    fn check(&self, recipe: &Recipe, _: &Tokenizer) -> Result<()> {
        in_setting(check_share(self.share), "share")?;
        check_decoder(recipe, self.decoder_layers)
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        run.seq2seq(self.decoder_layers, None, |docs| {
            MassTask::new(docs, run.tokenizer, self.share, run.seq_len())
        })
    }
}

/// `t5`: 15 % of the tokens in spans of mean length 3, the bundled tokenizer with T5's 100
/// sentinels, as many decoder layers as encoder layers, and T5's own block: pre-RMSNorm, no
/// biases, ReLU, relative position bias, unscaled attention, no norm on the embeddings.
fn t5(preset: Preset) -> Result<Recipe> {
    let settings = T5Settings {
        corruption: SpanCorruption::default(),
        decoder_layers: preset.num_layers(),
    };
    let mut recipe = seq2seq(ObjectiveRecipe::T5(settings), preset)?;
    recipe.encoder = (recipe.encoder)
        .map_block(|b| b.t5_layout().with_activation(Activation::Relu))
        .with_embedding_norm(false);
    recipe.with_tokenizer(TokenizerSource {
        file: None,
        sentinels: T5_SENTINELS,
    })
}

impl ObjectiveSettings for T5Settings {
    /// Spans become sentinels, never the mask token.
    fn masks(&self) -> bool {
        false
    }

    fn encoder_decoder(&self) -> bool {
        true
    }

    /// Besides the shapes, the tokenizer needs a sentinel for every span of the longest
    /// segment the sequence length allows.
    fn check(&self, recipe: &Recipe, tokenizer: &Tokenizer) -> Result<()> {
        let c = self.corruption;
        let (raw, _) = in_setting(
            span_corruption_lengths(recipe.seq_len, c.noise_density, c.mean_span_length),
            "corruption",
        )?;
        let needed = in_setting(
            num_noise_spans(raw, c.noise_density, c.mean_span_length),
            "corruption",
        )?;
        let found = tokenizer.sentinels().len();
        if found < needed {
            return Err(Error::Recipe {
                field: "tokenizer.sentinels".into(),
                reason: Error::NotEnoughSentinels { needed, found }.to_string(),
            });
        }
        check_decoder(recipe, self.decoder_layers)
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        let end = Some(run.tokenizer.special().sep);
        run.seq2seq(self.decoder_layers, end, |docs| {
            T5Task::new(docs, run.tokenizer, self.corruption, run.seq_len())
        })
    }
}

// ---- distill

/// `distill`: MiniLM's last-layer relations and DistilBERT's hidden cosine, each of weight 1,
/// without the student's MLM, over segments masked as BERT masks them, at 1e-4 (batches of 16
/// are small for DistilBERT's 5e-4, which left a student started from the teacher's layers
/// worse at `genre`); the teacher and the student's shape come with [`Recipe::with_teacher`].
fn distill(preset: Preset) -> Result<Recipe> {
    let settings = DistillSettings {
        teacher: None,
        student_layers: None,
        masking: MlmMasking::default(),
        losses: DistillConfig::new(),
    };
    let mut recipe = Recipe::new(ObjectiveRecipe::Distill(settings), preset)?;
    recipe.train.learning_rate = 1e-4;
    Ok(recipe)
}

/// `n` of `depth` layers spread evenly, the first and the last kept (ties to the lower):
/// DistilBERT's `[0, 2, 4, 7, 9, 11]` of 12, and `[0, 2, 5]` of 6.
pub fn every_other_layer(depth: usize, n: usize) -> Vec<usize> {
    if n <= 1 || depth <= 1 {
        return vec![depth.saturating_sub(1); n.min(1)];
    }
    let (span, steps) = (depth - 1, n - 1);
    (0..n)
        .map(|i| (2 * i * span + steps - 1) / (2 * steps))
        .collect()
}

impl DistillSettings {
    /// The teacher's directory, or an error saying how to give one.
    fn teacher_dir(&self) -> Result<&Path> {
        self.teacher.as_deref().ok_or_else(|| Error::Recipe {
            field: "objective.settings.teacher".into(),
            reason: "distillation needs a teacher: pretrain --teacher DIR (a pretext run or a \
                     Hugging Face encoder directory)"
                .into(),
        })
    }
}

impl ObjectiveSettings for DistillSettings {
    fn check(&self, recipe: &Recipe, tokenizer: &Tokenizer) -> Result<()> {
        in_setting(self.masking.validate(), "masking")?;
        in_setting(self.losses.validate(), "losses")?;
        let dir = self.teacher_dir()?;
        let (teacher_tokenizer, teacher) = super::TrainedEncoder::shape(dir)?;
        if let Some(detail) = teacher_tokenizer.load()?.difference(tokenizer) {
            return Err(Error::TokenizerMismatch {
                what: format!("student's and teacher's ({})", dir.display()),
                detail,
            });
        }
        if let Some(layers) = &self.student_layers {
            let depth = teacher.num_layers;
            let fits = layers.len() == recipe.encoder.num_layers
                && layers.iter().all(|&l| l < depth)
                && json_without_depth(&teacher) == json_without_depth(&recipe.encoder);
            if !fits {
                return Err(Error::Recipe {
                    field: "objective.settings.student_layers".into(),
                    reason: format!(
                        "a student started from the teacher's layers {layers:?} must have the \
                         teacher's shape with one layer for each, of the teacher's {depth} \
                         (Recipe::with_teacher sets both)"
                    ),
                });
            }
        }
        Ok(())
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        let dir = self.teacher_dir()?;
        let teacher = super::TrainedEncoder::read(dir, None, run.device())?;
        if run.progress() {
            eprintln!("teacher {}", teacher.report);
        }
        let backbone = match &self.student_layers {
            Some(layers) => run.encoder_like(teacher.encoder.clone().keeping_layers(layers)?)?,
            None => run.encoder()?,
        };
        let mut teacher = Teacher::new(teacher.encoder, run.device());
        if self.losses.soft_weight > 0.0 {
            teacher = teacher.with_mlm(teacher_mlm(dir, run.device())?);
        }
        let head = self.losses.init(&backbone, teacher, run.device())?;
        run.train(backbone, head, |docs| {
            MlmTask::new(docs, run.tokenizer, self.masking, run.seq_len())
        })
    }
}

/// The MLM head of the teacher in `dir`: a pretext run's (of an objective with one), or a
/// Hugging Face BERT-shaped `…ForMaskedLM`'s; an error for a teacher without one.
fn teacher_mlm(dir: &Path, device: &Device) -> Result<crate::objectives::Mlm> {
    let none = |what: &str| {
        Error::InvalidConfig(format!(
            "the soft targets need the teacher's MLM head, and {} has none ({what}): set \
             objective.settings.losses.soft_weight to 0",
            dir.display()
        ))
    };
    if crate::hf::is_model_dir(dir) {
        let bert = crate::hf::load_bert(dir, device)?;
        return match bert.report.loaded.iter().any(|part| part == "MLM head") {
            true => Ok(bert.mlm),
            false => Err(none("its file holds no MLM head")),
        };
    }
    let recipe = super::RunDir::open(dir)?.recipe;
    let (_, head) = recipe
        .load_trained(dir, device)
        .map_err(|_| none("its objective has no MLM head"))?;
    head.mlm()
        .cloned()
        .ok_or_else(|| none("its objective has no MLM head"))
}

/// An encoder's shape as JSON without its depth and dropout: what a student started from a
/// teacher's layers shares with it.
fn json_without_depth(config: &crate::blocks::TransformerEncoderConfig) -> serde_json::Value {
    let config = config.clone().with_dropout(0.0);
    let mut value = serde_json::to_value(config).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.remove("num_layers");
    }
    value
}

// ---- electra, xlnet, mpnet, spanbert, unilm: encoders with heads of their own

/// `electra`: ELECTRA's masking (15 %, 85 % of it `[MASK]`, no random tokens), a generator a
/// quarter as wide, λ = 50, temperature 1.
fn electra(preset: Preset) -> Result<Recipe> {
    let settings = ElectraSettings {
        masking: MlmMasking::electra(),
        electra: ElectraConfig::new(),
    };
    Recipe::new(ObjectiveRecipe::Electra(settings), preset)
}

impl ObjectiveSettings for ElectraSettings {
    fn check(&self, _: &Recipe, _: &Tokenizer) -> Result<()> {
        in_setting(self.masking.validate(), "masking")?;
        in_setting(self.electra.validate(), "electra")
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        let backbone = run.encoder()?;
        let head = self.electra.init(&backbone, run.device())?;
        run.train(backbone, head, |docs| {
            ElectraTask::new(docs, run.tokenizer, self.masking, run.seq_len())
        })
    }

    fn hf_misfit(&self, recipe: &Recipe) -> Option<String> {
        crate::hf::electra_misfit(&recipe.encoder)
    }

    /// The discriminator and its head, read from the run's checkpoint, as
    /// `ElectraForPreTraining`.
    fn export_hf(
        &self,
        recipe: &Recipe,
        run_dir: &Path,
        out: &Path,
        force: bool,
    ) -> Result<&'static str> {
        let device = Device::flex();
        let config = &recipe.encoder;
        let encoder = config.init(&device)?;
        let electra = self.electra.init(&encoder, &device)?;
        let template = crate::pretrainer::Pretrainer::new(encoder, electra);
        let trained = super::read_trained(run_dir, recipe, template)?;
        let model = crate::hf::Exportable::Electra {
            config,
            encoder: &trained.backbone,
            electra: &trained.objective,
        };
        crate::hf::export(model, &recipe.tokenizer.load()?, out, force)
    }
}

/// `xlnet`: a sixth of the tokens predicted, in spans of up to 5.
fn xlnet(preset: Preset) -> Result<Recipe> {
    let settings = PermutedSettings {
        masking: PermutationMasking::XLNET,
        query_masking: None,
    };
    Recipe::new(ObjectiveRecipe::Xlnet(settings), preset)
}

/// `mpnet`: 15 % of the tokens predicted one by one, their queries masked 80/10/10.
fn mpnet(preset: Preset) -> Result<Recipe> {
    let settings = PermutedSettings {
        masking: PermutationMasking::MPNET,
        query_masking: Some(MlmMasking::default()),
    };
    Recipe::new(ObjectiveRecipe::Mpnet(settings), preset)
}

impl ObjectiveSettings for PermutedSettings {
    fn check(&self, _: &Recipe, _: &Tokenizer) -> Result<()> {
        in_setting(self.masking.validate(), "masking")?;
        if let Some(queries) = &self.query_masking {
            in_setting(queries.validate(), "query_masking")?;
        }
        Ok(())
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        let backbone = run.encoder()?;
        let head = PermutedLmConfig::new().init(&backbone, run.device());
        run.train(backbone, head, |docs| {
            PermutationTask::new(docs, run.tokenizer, self, run.seq_len())
        })
    }
}

/// `spanbert`: geometric spans of whole words (p = 0.2, at most 10), SBO over spans of up to
/// 15 tokens, weighted 1.
fn spanbert(preset: Preset) -> Result<Recipe> {
    let settings = SpanBertSettings {
        masking: MlmMasking::spanbert(),
        sbo: SboHeadConfig::new(),
        sbo_weight: 1.0,
    };
    Recipe::new(ObjectiveRecipe::Spanbert(settings), preset)
}

impl ObjectiveSettings for SpanBertSettings {
    fn check(&self, _: &Recipe, _: &Tokenizer) -> Result<()> {
        in_setting(self.masking.validate(), "masking")?;
        in_setting(self.sbo.validate(), "sbo")?;
        in_setting(check_weight("sbo_weight", self.sbo_weight), "sbo_weight")
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        let backbone = run.encoder()?;
        let config = SpanBertConfig::new(self.sbo.clone()).with_sbo_weight(self.sbo_weight);
        let head = config.init(&backbone, run.device())?;
        run.train(backbone, head, |docs| {
            SpanBertTask::new(docs, run.tokenizer, self, run.seq_len())
        })
    }
}

/// `unilm`: BERT's masking, the paper's shares of the four masks, and the six segment
/// embeddings that tell them apart.
fn unilm(preset: Preset) -> Result<Recipe> {
    let settings = UnilmSettings {
        masking: MlmMasking::default(),
        shares: UnilmShares::default(),
    };
    let mut recipe = Recipe::new(ObjectiveRecipe::Unilm(settings), preset)?;
    recipe.encoder.num_segments = UNILM_SEGMENTS;
    Ok(recipe)
}

impl ObjectiveSettings for UnilmSettings {
    fn segments(&self) -> usize {
        UNILM_SEGMENTS
    }

    fn check(&self, _: &Recipe, _: &Tokenizer) -> Result<()> {
        in_setting(self.masking.validate(), "masking")?;
        in_setting(self.shares.validate(), "shares")
    }

    fn run(&self, run: &Run) -> Result<RunReport> {
        let backbone = run.encoder()?;
        let head = UnilmConfig::new().init(&backbone, run.device())?;
        run.train(backbone, head, |docs| {
            UnilmTask::new(docs, run.tokenizer, self, run.seq_len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::every_other_layer;

    #[test]
    fn every_other_layer_is_distilberts_rule() {
        assert_eq!(every_other_layer(12, 6), [0, 2, 4, 7, 9, 11]);
        assert_eq!(every_other_layer(6, 3), [0, 2, 5]);
        assert_eq!(every_other_layer(4, 2), [0, 3]);
        assert_eq!(every_other_layer(5, 5), [0, 1, 2, 3, 4]);
        assert_eq!(every_other_layer(6, 1), [5]);
    }
}
