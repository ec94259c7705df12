//! The registry of named objectives: the one list of their names, what each means in one line,
//! where its reference defaults come from, and the settings a recipe holds for it.
//!
//! Adding an objective: its file in `objectives/` defines its settings (a serde struct that
//! implements [`ObjectiveSettings`]) and a function giving its recipe; it then takes one
//! variant of [`ObjectiveRecipe`] and one [`Entry`] here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Recipe, Run, RunReport};
use crate::blocks::TransformerEncoder;
use crate::data::Documents;
use crate::error::{Error, Result};
use crate::objectives::multitask::{MultiTaskRecipe, TaskHead, TokenTask, run_token_task};
use crate::objectives::{
    bart, clm, dpo, electra, mass, mlm, multitask, plm, reward, sentence_pair, sft, spanbert, t5,
    unilm,
};
use crate::preset::Preset;
use crate::tokenize::Tokenizer;
use burn::prelude::Device;

/// The recipe side of an objective: what it checks, and how a run of it goes.
pub trait ObjectiveSettings {
    /// A data file of its own (instruction or preference pairs, JSON lines) that a run reads
    /// instead of the recipe's corpus; `Recipe::check` checks that it is a file. Default none.
    fn data_file(&self) -> Option<PathBuf> {
        None
    }

    /// The segment ids its examples read: the encoder needs this many segment embeddings.
    /// Default 2 (`[CLS] A [SEP] B [SEP]`), or 0 for an objective with a data file of its own
    /// (its texts are framed whole, `[CLS] prompt answer [SEP]`).
    fn segments(&self) -> usize {
        match self.data_file() {
            Some(_) => 0,
            None => 2,
        }
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
    /// as BERT (or ALBERT); an encoder-decoder's LM head has BERT's transform, which BART has
    /// not.
    fn hf_misfit(&self, recipe: &Recipe) -> Option<String> {
        if self.encoder_decoder() {
            return Some(
                "an encoder-decoder whose LM head has BERT's transform, which BART has not".into(),
            );
        }
        crate::hf::bert_misfit(&recipe.encoder).map(|what| format!("{what}, which BERT has not"))
    }

    /// Writes the model a run of `recipe` left in `run_dir` as a Hugging Face directory `out`
    /// and returns its class. Default: a token objective's encoder with its MLM head, if it
    /// has one (BERT, ALBERT), or as GPT-2 (`clm`); any other objective's encoder alone.
    fn export_hf(
        &self,
        recipe: &Recipe,
        run_dir: &Path,
        out: &Path,
        force: bool,
    ) -> Result<&'static str> {
        recipe.export_trained(run_dir, out, force)
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
}

/// A named objective and its settings. In JSON: `{"name": "albert", "settings": {…}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "name", content = "settings", rename_all = "lowercase")]
#[serde(deny_unknown_fields)]
pub enum ObjectiveRecipe {
    /// Masked LM.
    Mlm(mlm::MlmRecipe),
    /// Causal LM.
    Clm(clm::ClmRecipe),
    /// Next-sentence prediction.
    Nsp(sentence_pair::PairRecipe),
    /// Sentence-order prediction.
    Sop(sentence_pair::PairRecipe),
    /// Masked LM + next-sentence prediction.
    Bert(sentence_pair::BertRecipe),
    /// n-gram masked LM + sentence-order prediction on a factorized, shared backbone.
    Albert(sentence_pair::BertRecipe),
    /// Denoising encoder-decoder.
    Bart(bart::BartRecipe),
    /// Masked sequence-to-sequence.
    Mass(mass::MassRecipe),
    /// Span corruption with sentinels.
    T5(t5::T5Recipe),
    /// Replaced-token detection.
    Electra(electra::ElectraRecipe),
    /// Permuted LM, two streams.
    Xlnet(plm::PermutedRecipe),
    /// Masked and permuted LM.
    Mpnet(plm::PermutedRecipe),
    /// Span masking + span-boundary objective.
    Spanbert(spanbert::SpanBertRecipe),
    /// Cloze under four attention masks.
    Unilm(unilm::UnilmRecipe),
    /// Several objectives over one backbone (ERNIE 2.0).
    Multitask(MultiTaskRecipe),
    /// Supervised fine-tuning of a causal LM on prompt/completion pairs.
    Sft(sft::SftRecipe),
    /// A reward model trained on preference pairs.
    Reward(reward::RewardRecipe),
    /// Direct preference optimisation of a causal LM.
    Dpo(dpo::DpoRecipe),
}

impl ObjectiveRecipe {
    /// The objective's name and its settings.
    pub fn parts(&self) -> (&'static str, &dyn ObjectiveSettings) {
        match self {
            Self::Mlm(s) => ("mlm", s),
            Self::Clm(s) => ("clm", s),
            Self::Nsp(s) => ("nsp", s),
            Self::Sop(s) => ("sop", s),
            Self::Bert(s) => ("bert", s),
            Self::Albert(s) => ("albert", s),
            Self::Bart(s) => ("bart", s),
            Self::Mass(s) => ("mass", s),
            Self::T5(s) => ("t5", s),
            Self::Electra(s) => ("electra", s),
            Self::Xlnet(s) => ("xlnet", s),
            Self::Mpnet(s) => ("mpnet", s),
            Self::Spanbert(s) => ("spanbert", s),
            Self::Unilm(s) => ("unilm", s),
            Self::Multitask(s) => ("multitask", s),
            Self::Sft(s) => ("sft", s),
            Self::Reward(s) => ("reward", s),
            Self::Dpo(s) => ("dpo", s),
        }
    }

    /// The objective's name, as the registry and `config.json` spell it.
    pub fn name(&self) -> &'static str {
        self.parts().0
    }

    /// The objective's settings, as the run sees them.
    pub fn settings(&self) -> &dyn ObjectiveSettings {
        self.parts().1
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

/// Every named objective.
pub const OBJECTIVES: [Entry; 18] = [
    Entry {
        name: "mlm",
        about: "masked LM (BERT, RoBERTa): 15 % of the tokens, 80/10/10",
        recipe: mlm::recipe,
    },
    Entry {
        name: "clm",
        about: "causal LM (GPT): next-token prediction on a pre-LN encoder",
        recipe: clm::recipe,
    },
    Entry {
        name: "nsp",
        about: "next-sentence prediction alone",
        recipe: sentence_pair::nsp_recipe,
    },
    Entry {
        name: "sop",
        about: "sentence-order prediction alone",
        recipe: sentence_pair::sop_recipe,
    },
    Entry {
        name: "bert",
        about: "BERT: masked LM + next-sentence prediction",
        recipe: sentence_pair::bert_recipe,
    },
    Entry {
        name: "albert",
        about: "ALBERT: n-gram masked LM + 5 x sentence order, factorized embedding, shared layers",
        recipe: sentence_pair::albert_recipe,
    },
    Entry {
        name: "bart",
        about: "BART: an encoder-decoder rebuilds text infilled (30 %) and sentence-permuted",
        recipe: bart::recipe,
    },
    Entry {
        name: "mass",
        about: "MASS: an encoder-decoder predicts the masked half of a segment",
        recipe: mass::recipe,
    },
    Entry {
        name: "t5",
        about: "T5: an encoder-decoder predicts the spans its input hides behind sentinels",
        recipe: t5::recipe,
    },
    Entry {
        name: "electra",
        about: "ELECTRA: a small generator fills masked tokens, the encoder finds the replaced ones",
        recipe: electra::recipe,
    },
    Entry {
        name: "xlnet",
        about: "XLNet: permuted LM through two-stream attention, the last sixth predicted",
        recipe: plm::xlnet_recipe,
    },
    Entry {
        name: "mpnet",
        about: "MPNet: permuted LM over 15 % of the tokens, every position visible",
        recipe: plm::mpnet_recipe,
    },
    Entry {
        name: "spanbert",
        about: "SpanBERT: masked LM over geometric spans of words + the span-boundary objective",
        recipe: spanbert::recipe,
    },
    Entry {
        name: "unilm",
        about: "UniLM: cloze under a bidirectional, left-to-right, right-to-left or seq2seq mask",
        recipe: unilm::recipe,
    },
    Entry {
        name: "multitask",
        about: "ERNIE 2.0-style mix of token objectives (mlm + sop by default; see --objectives)",
        recipe: multitask::recipe,
    },
    Entry {
        name: "sft",
        about: "supervised fine-tuning of a causal LM on prompt/completion pairs (init: a clm run)",
        recipe: sft::recipe,
    },
    Entry {
        name: "reward",
        about: "reward model: a scalar head at the last token, pairwise loss on preference pairs",
        recipe: reward::recipe,
    },
    Entry {
        name: "dpo",
        about: "DPO (or IPO) of a causal LM on preference pairs against its frozen start",
        recipe: dpo::recipe,
    },
];

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

/// `result`, its error made one of the objective's setting `name`.
pub(crate) fn in_setting<T>(result: Result<T>, name: &str) -> Result<T> {
    result.map_err(|e| e.in_field(&format!("objective.settings.{name}")))
}
