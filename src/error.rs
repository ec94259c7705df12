//! The crate's one error type: every way user input (configs, files, token ids, lengths,
//! checkpoints) can be wrong, each with a message that names the problem.

use std::path::PathBuf;

/// Everything that can go wrong in `pretext` because of its input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of its valid range or inconsistent with another one.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A task was asked to collate no examples into a batch.
    #[error("cannot collate an empty batch: a batch needs at least one example")]
    EmptyBatch,
    /// The training loss stopped being a number.
    #[error("the loss became {loss} at step {step}; lower the learning rate")]
    Diverged {
        /// The step (from 1) whose loss it was.
        step: usize,
        /// The loss.
        loss: f64,
    },
    /// The hidden size cannot be split evenly over the attention heads.
    #[error("hidden size {hidden} is not divisible by the number of heads {heads}")]
    HeadsDoNotDivide {
        /// The model's hidden size.
        hidden: usize,
        /// The number of attention heads.
        heads: usize,
    },
    /// A probability or rate lies outside `[0, 1]`.
    #[error("{name} must lie in [0, 1], got {value}")]
    RateOutOfRange {
        /// Which rate.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A prompt of instruction data leaves no room in a sequence for its answer.
    #[error(
        "the prompt of line {line} takes {len} of the {max} tokens of a sequence, leaving no \
         room for its answer: shorten it or raise seq_len"
    )]
    PromptTooLong {
        /// Its line in the data file.
        line: usize,
        /// Its tokens, the start token included.
        len: usize,
        /// Tokens per sequence.
        max: usize,
    },
    /// Two models that must read the same token ids (a policy and its reward model) have
    /// different tokenizers.
    #[error("the {what} tokenizers differ: {detail}")]
    TokenizerMismatch {
        /// Whose tokenizers.
        what: String,
        /// Where they differ.
        detail: String,
    },
    /// A model asked to generate has no left-to-right LM head.
    #[error(
        "{0} has no causal LM head to generate with: generation needs a pretext `clm` or `sft` run or \
         a Hugging Face GPT-2, Llama or Qwen2"
    )]
    NoCausalPath(String),
    /// A text given to fill-mask holds no mask token.
    #[error("{text:?} holds no mask token ({mask}) to fill")]
    NothingToFill {
        /// The text.
        text: String,
        /// The tokenizer's mask token.
        mask: String,
    },
    /// A sequence is longer than the model's position table.
    #[error("sequence of {len} tokens is longer than the position table ({max} positions)")]
    SequenceTooLong {
        /// The sequence length asked for.
        len: usize,
        /// The number of positions the model has.
        max: usize,
    },
    /// The tokenizer and the model disagree on the vocabulary size.
    #[error("the tokenizer has {tokenizer} tokens but the model's vocabulary has {model}")]
    VocabMismatch {
        /// The tokenizer's vocabulary size.
        tokenizer: usize,
        /// The model's vocabulary size.
        model: usize,
    },
    /// A token id does not exist in the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab} tokens")]
    TokenOutOfRange {
        /// The offending id.
        id: u32,
        /// The vocabulary size.
        vocab: usize,
    },
    /// The tokenizer lacks a special token the crate needs, by role (`pad`, `unk`, `cls`,
    /// `sep`, `mask`).
    #[error(
        "the tokenizer has no {0} token: pretext needs pad, unk, cls, sep and mask tokens, \
         named as its tokenizer_config.json declares them or [PAD] [UNK] [CLS] [SEP] [MASK] \
         or <pad> <unk> <s> </s> <mask>"
    )]
    MissingSpecialToken(String),
    /// Span corruption needs more sentinel tokens than the tokenizer has.
    #[error(
        "span corruption needs {needed} sentinel tokens (<extra_id_0> ...) but the tokenizer \
         has {found}; add them with Tokenizer::with_sentinels"
    )]
    NotEnoughSentinels {
        /// Sentinels the longest example needs.
        needed: usize,
        /// Sentinels the tokenizer has.
        found: usize,
    },
    /// A text is too short for the noise asked of it.
    #[error("a text of {len} tokens is too short for {what} (it needs at least {min})")]
    TextTooShort {
        /// The noise.
        what: &'static str,
        /// The text's length.
        len: usize,
        /// The shortest text it takes.
        min: usize,
    },
    /// A JSON file (a recipe, a list of objectives) is not valid JSON, names a field that does
    /// not exist, holds a value of the wrong type or names something that cannot be trained.
    #[error("{path}:{line}:{column}: {reason}")]
    ConfigFile {
        /// The file.
        path: std::path::PathBuf,
        /// Line of the fault, from 1.
        line: usize,
        /// Column of the fault, from 1.
        column: usize,
        /// What is wrong.
        reason: String,
    },
    /// A field of a recipe is invalid or disagrees with another part of the recipe.
    #[error("recipe field `{field}`: {reason}")]
    Recipe {
        /// The field's dotted path, e.g. `encoder.vocab_size`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A Hugging Face model directory is missing a file, holds a model pretext cannot build, or
    /// its weights do not fit (a tensor missing or of the wrong shape, a damaged file).
    #[error("Hugging Face model {path}: {reason}")]
    HfModel {
        /// The model directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A corpus (or one split of it) holds no text.
    #[error("empty corpus: {0}")]
    EmptyCorpus(String),
    /// A text file is not UTF-8 text: an invalid sequence, or a NUL byte (a binary file).
    #[error("{path} is not UTF-8 text (first bad byte at offset {offset}; a binary file?)")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the first invalid sequence or NUL byte.
        offset: usize,
    },
    /// A prepared dataset is missing a file, truncated, or of another format.
    #[error("prepared dataset {path}: {reason}")]
    Dataset {
        /// The dataset directory or file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The ranks of a run over several processes do not train one model.
    #[error("rank {rank} disagrees with rank 0: {what}")]
    RanksDisagree {
        /// The first rank that differs.
        rank: usize,
        /// How it differs.
        what: String,
    },
    /// A checkpoint is missing, truncated or does not fit the model.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The `tokenizers` crate failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A labelled data file has a fault: a missing field or column, a label the training file
    /// lacks, a malformed row (`line` 0: the file as a whole).
    #[error("{}{}: {reason}", path.display(), at_line(*line))]
    DataFile {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An image file is not what it should be: another format, type, shape or length.
    #[error("image file {path}: {reason}")]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A JSON file (config, state) could not be parsed or written.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// `, line N` for a line from 1; nothing for 0 (the file as a whole).
fn at_line(line: usize) -> String {
    match line {
        0 => String::new(),
        n => format!(", line {n}"),
    }
}

/// `Result` with the crate's [`Error`] unless another is named (as derives such as burn's
/// `Config` do, which may then sit beside this one in a file).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// This error as one of the recipe field `field` (an error of a field stays as it is).
    pub fn in_field(self, field: &str) -> Self {
        match self {
            Error::Recipe { .. } => self,
            other => Error::Recipe {
                field: field.to_string(),
                reason: other.to_string(),
            },
        }
    }
}

/// `result`, its error made one of the objective's setting `name` (the recipe field
/// `objective.settings.NAME`).
pub(crate) fn in_setting<T>(result: Result<T>, name: &str) -> Result<T> {
    result.map_err(|e| e.in_field(&format!("objective.settings.{name}")))
}

/// Checks that `value` is a probability, naming it in the error.
pub(crate) fn check_rate(name: &'static str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::RateOutOfRange { name, value })
    }
}

/// Checks that the share `value` lies strictly between 0 and 1 (a mask ratio that hides
/// something and leaves something to see), naming it in the error.
pub(crate) fn check_open_share(name: &str, value: f64) -> Result<()> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} {value} must lie strictly between 0 and 1"
        )))
    }
}

/// Checks that `value` is finite and above 0, naming it in the error.
pub(crate) fn check_positive(name: &str, value: f64) -> Result<()> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} must be positive, got {value}"
        )))
    }
}

/// Checks that `value` can weigh a loss (finite and at least 0), naming it in the error.
pub(crate) fn check_weight(name: &str, value: f64) -> Result<()> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "{name} must be finite and at least 0, got {value}"
        )))
    }
}
