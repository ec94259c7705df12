//! A recipe's run: what every objective's run shares — the checked recipe, its tokenizer and
//! tokenized text, the devices and the run directory — and the one way to train a backbone
//! with a head and save the encoder that fine-tuning loads.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::module::ModuleDisplay;
use burn::prelude::*;

use super::Recipe;
use crate::blocks::{EncoderDecoder, EncoderDecoderConfig, TransformerEncoder, VisionTransformer};
use crate::data::{Seq2SeqBatch, Seq2SeqExample, Task};
use crate::dataset::Documents;
use crate::device::on_host;
use crate::error::{Error, Result};
use crate::objectives::{Objective, Seq2Seq, Seq2SeqConfig};
use crate::pretrainer::{Pretrainer, check_compatible};
use crate::tokenize::Tokenizer;
use crate::train::checkpoint::save_weights;
use crate::train::{Collective, LogRecord, Solo, Split, TrainReport, TrainState, Trainer};
use crate::util::rng::example_rng;

/// Where and on what a recipe runs: none of it changes the result.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run directory: `config.json`, `metrics.jsonl`, `checkpoint/`, `encoder.bpk`.
    pub out: PathBuf,
    /// Continue the run in `out` from its checkpoint.
    pub resume: bool,
    /// Autodiff devices computing in the recipe's float type; each takes a share of every
    /// batch, the first holds the model.
    pub devices: Vec<Device>,
    /// Validation examples an encoder-decoder objective decodes at the end (see
    /// [`RunReport::samples`]). Default 3.
    pub show: usize,
    /// The ranks this process trains with (see [`Trainer::ranks`]); rank 0 alone writes the
    /// run directory and shows progress. Default: one process alone.
    pub ranks: Arc<dyn Collective>,
}

impl RunOptions {
    /// A fresh run in `out` on one autodiff `device`.
    pub fn new(out: impl Into<PathBuf>, device: Device) -> Self {
        Self {
            out: out.into(),
            resume: false,
            devices: vec![device],
            show: 3,
            ranks: Arc::new(Solo),
        }
    }
}

/// One validation example an encoder-decoder rebuilt: input, greedy output and target, decoded
/// with special tokens kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The corrupted input.
    pub input: String,
    /// The model's greedy output.
    pub output: String,
    /// What it should have produced.
    pub target: String,
}

/// What a recipe's run returns.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Every record logged by this run, train and validation.
    pub history: Vec<LogRecord>,
    /// Where training ended.
    pub state: TrainState,
    /// Decoded validation examples (encoder-decoder objectives; empty for the others).
    pub samples: Vec<Sample>,
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "input:  {}\noutput: {}\ntarget: {}",
            self.input, self.output, self.target
        )
    }
}

impl RunReport {
    /// The first and the last validation loss of the run, and the last validation metrics, in
    /// one line; `None` if the run validated nothing.
    pub fn summary(&self) -> Option<String> {
        let mut valid = self.history.iter().filter(|r| r.split == Split::Valid);
        let first = valid.next()?;
        let last = valid.next_back().unwrap_or(first);
        Some(format!(
            "validation loss {:.3} -> {:.3}; {:?}",
            first.loss, last.loss, last.metrics
        ))
    }
}

impl<M: Module, O: Module> From<TrainReport<M, O>> for RunReport {
    fn from(report: TrainReport<M, O>) -> Self {
        Self {
            history: report.history,
            state: report.state,
            samples: Vec::new(),
        }
    }
}

/// A backbone whose encoder is what fine-tuning takes.
pub trait HasEncoder {
    /// The encoder.
    fn encoder(&self) -> &TransformerEncoder;

    /// Writes what fine-tuning loads to `path` (`encoder.bpk`). Default: the encoder.
    fn save_encoder(&self, path: &std::path::Path) -> Result<()> {
        save_weights(self.encoder(), path)
    }
}

/// A ViT's encoder is its stack of layers; fine-tuning loads it whole (patch map and `[CLS]`
/// with the layers).
impl HasEncoder for VisionTransformer {
    fn encoder(&self) -> &TransformerEncoder {
        self.stack()
    }

    fn save_encoder(&self, path: &std::path::Path) -> Result<()> {
        save_weights(self, path)
    }
}

impl HasEncoder for TransformerEncoder {
    fn encoder(&self) -> &TransformerEncoder {
        self
    }
}

impl HasEncoder for EncoderDecoder {
    fn encoder(&self) -> &TransformerEncoder {
        &self.encoder
    }
}

/// `backbone` with the weights of `recipe`'s `init` checkpoint (a pretext run's `encoder.bpk`
/// or a Hugging Face directory), if it has one; with `progress`, says what was loaded.
fn start_weights(
    recipe: &Recipe,
    mut backbone: TransformerEncoder,
    device: &Device,
    progress: bool,
) -> Result<TransformerEncoder> {
    let Some(dir) = &recipe.init else {
        return Ok(backbone);
    };
    let loaded = match crate::hf::is_model_dir(dir) {
        true => {
            let report = crate::hf::load_encoder(dir, &mut backbone, device)?;
            format!("{}: {report}", dir.display())
        }
        false => {
            let path = dir.join(super::run_dir::ENCODER_FILE);
            backbone = crate::train::checkpoint::load_weights(&path, backbone)?;
            format!("{}: the encoder loaded", path.display())
        }
    };
    if progress {
        eprintln!("{loaded}; the objective's heads start afresh");
    }
    Ok(backbone)
}

/// Whether a run of `recipe` with `options` shows progress: the recipe's setting, on rank 0.
fn shows_progress(recipe: &Recipe, options: &RunOptions) -> bool {
    recipe.train.progress && options.ranks.rank() == 0
}

/// A recipe's run in progress: what an objective's [`run`](super::ObjectiveSettings::run)
/// builds its model and tasks from.
pub struct Run<'a> {
    /// The recipe.
    pub recipe: &'a Recipe,
    /// Its tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// The training documents, tokenized.
    pub train_docs: Documents,
    /// The validation documents, tokenized.
    pub valid_docs: Documents,
    options: &'a RunOptions,
    /// The seeded random stream, held from seeding until training starts (see
    /// [`crate::util::random`]): two runs building models at once in one process would otherwise
    /// interleave their draws, and neither would replay.
    init: RefCell<Option<crate::util::random::Draws>>,
}

impl<'a> Run<'a> {
    /// Checks the devices, writes `config.json` and reads and tokenizes the text.
    pub(super) fn start(
        recipe: &'a Recipe,
        tokenizer: &'a Tokenizer,
        options: &'a RunOptions,
    ) -> Result<Self> {
        let Some(device) = options.devices.first() else {
            return Err(Error::InvalidConfig("a run needs a device".into()));
        };
        let wanted = recipe.float.dtype();
        if let Some(other) = options
            .devices
            .iter()
            .find(|d| d.settings().float_dtype != wanted)
        {
            return Err(Error::Recipe {
                field: "float".into(),
                reason: format!(
                    "the recipe computes in {wanted:?} but {other:?} in {:?}; configure the \
                     devices with it (DeviceKind::autodiff_devices)",
                    other.settings().float_dtype
                ),
            });
        }
        if let Some(memory) = crate::device::host_memory().filter(|_| on_host(device)) {
            recipe.check_memory(memory)?;
        }
        if options.ranks.rank() == 0 {
            super::RunDir::create(&options.out, recipe, options.resume)?;
        }
        // A starting checkpoint that cannot be read fails now, not after the text is read. Its
        // draws (the fresh parts of a Hugging Face model a directory lacks) come while the
        // stream is held and before it is seeded, so the run's own draws are those of a run
        // without this check.
        if recipe.init.is_some() {
            let _held = crate::util::random::hold();
            start_weights(recipe, recipe.encoder.init(device)?, device, false)?;
        }
        let started = Instant::now();
        let progress = shows_progress(recipe, options);
        let reads_corpus = recipe.objective.settings().reads_corpus();
        let (train_docs, valid_docs) = if reads_corpus {
            recipe.data.documents(tokenizer, progress)?
        } else {
            (Documents::from(&[][..]), Documents::from(&[][..]))
        };
        if progress && reads_corpus {
            eprintln!(
                "{} train and {} validation documents ready in {:.1}s",
                train_docs.len(),
                valid_docs.len(),
                started.elapsed().as_secs_f64()
            );
        }
        let init = recipe.train.seed_device(device);
        Ok(Self {
            recipe,
            tokenizer,
            train_docs,
            valid_docs,
            options,
            init: RefCell::new(Some(init)),
        })
    }

    /// Runs the recipe's objective.
    pub(super) fn go(&self) -> Result<RunReport> {
        self.recipe.objective.settings().run(self)
    }

    /// Whether the run shows progress: the recipe's setting, on rank 0.
    pub fn progress(&self) -> bool {
        shows_progress(self.recipe, self.options)
    }

    /// The main device, where the model lives.
    pub fn device(&self) -> &Device {
        &self.options.devices[0]
    }

    /// The recipe's sequence length.
    pub fn seq_len(&self) -> usize {
        self.recipe.seq_len
    }

    /// A fresh encoder of the recipe's shape, with the weights of its `init` checkpoint if it
    /// has one.
    pub fn encoder(&self) -> Result<TransformerEncoder> {
        let backbone = self.recipe.encoder.init(self.device())?;
        check_compatible(self.tokenizer, &backbone, self.seq_len())?;
        start_weights(self.recipe, backbone, self.device(), self.progress())
    }

    /// Says, when the run shows progress, that `cut` answers were cut to fit its sequences.
    pub fn note_cut(&self, cut: usize) {
        if self.progress() && cut > 0 {
            eprintln!(
                "{cut} answers cut to fit sequences of {} tokens",
                self.seq_len()
            );
        }
    }

    /// An encoder of the recipe's shape with the weights of `trained` (an encoder read from
    /// another run, whose dropout may differ).
    pub fn encoder_like(&self, trained: TransformerEncoder) -> Result<TransformerEncoder> {
        let backbone = self.recipe.encoder.init(self.device())?;
        check_compatible(self.tokenizer, &backbone, self.seq_len())?;
        Ok(backbone.load_record(trained.into_record()))
    }

    /// A fresh encoder-decoder: the recipe's encoder and `decoder_layers` decoder layers.
    pub fn encoder_decoder(&self, decoder_layers: usize) -> Result<EncoderDecoder> {
        let config = EncoderDecoderConfig::new(self.recipe.encoder.clone(), decoder_layers);
        let backbone = config.init(self.device())?;
        check_compatible(self.tokenizer, &backbone, self.seq_len())?;
        Ok(backbone)
    }

    /// Trains `head` on `backbone` with the task `make_task` builds for each split, then saves
    /// the encoder to `OUT/encoder.bpk`.
    pub fn fit<M, O, T>(
        &self,
        backbone: M,
        head: O,
        make_task: impl Fn(&Documents) -> Result<T>,
    ) -> Result<TrainReport<M, O>>
    where
        M: Module + HasEncoder + ModuleDisplay,
        O: Objective<M, Batch = T::Batch>,
        T: Task,
    {
        let train_task = make_task(&self.train_docs)?;
        let valid_task = make_task(&self.valid_docs)?;
        self.fit_tasks(backbone, head, train_task, valid_task)
    }

    /// Trains `head` on `backbone` with tasks of the objective's own making (for an objective
    /// that does not read the corpus), then saves the encoder to `OUT/encoder.bpk`.
    pub fn fit_tasks<M, O, T>(
        &self,
        backbone: M,
        head: O,
        train_task: T,
        valid_task: T,
    ) -> Result<TrainReport<M, O>>
    where
        M: Module + HasEncoder + ModuleDisplay,
        O: Objective<M, Batch = T::Batch>,
        T: Task,
    {
        self.fit_scoring(backbone, head, train_task, valid_task, None)
    }

    /// [`fit_tasks`](Self::fit_tasks), scoring the model at every validation on `scored`'s
    /// task as well (its figures logged with its suffix: `mlm_acc@15`).
    pub fn fit_scoring<M, O, T>(
        &self,
        backbone: M,
        head: O,
        train_task: T,
        valid_task: T,
        scored: Option<(&str, T)>,
    ) -> Result<TrainReport<M, O>>
    where
        M: Module + HasEncoder + ModuleDisplay,
        O: Objective<M, Batch = T::Batch>,
        T: Task,
    {
        let backbone = match &self.recipe.lora {
            Some(lora) => lora.adapt(backbone).map_err(|e| e.in_field("lora"))?,
            None => backbone,
        };
        let model = Pretrainer::new(backbone, head);
        // burn draws a parameter's initial values when it is first read: read them all now,
        // in the module's order (the order a forked replica reads them), and only then let
        // other runs draw from the device's stream.
        crate::util::random::materialize(&model);
        self.init.borrow_mut().take();
        let progress = self.progress();
        if progress {
            eprintln!(
                "{} train / {} validation examples; {} parameters",
                train_task.num_examples(),
                valid_task.num_examples(),
                model.num_params()
            );
        }
        let out = &self.options.out;
        let report = Trainer::new(model, &self.recipe.train)
            .output(out)
            .resume(self.options.resume)
            .devices(&self.options.devices)
            .ranks(Arc::clone(&self.options.ranks))
            .fit_scoring(
                &train_task,
                &valid_task,
                scored.as_ref().map(|(s, t)| (*s, t)),
            )?;
        let path = out.join(super::run_dir::ENCODER_FILE);
        if self.options.ranks.rank() == 0 {
            match &self.recipe.lora {
                Some(_) => {
                    let adapters = out.join(super::run_dir::ADAPTERS_FILE);
                    crate::lora::save_adapters(&report.model.backbone, &adapters)?;
                    let merged = crate::lora::merged(report.model.backbone.clone());
                    merged.save_encoder(&path)?;
                }
                None => report.model.backbone.save_encoder(&path)?,
            }
        }
        if progress {
            eprintln!("encoder saved to {}", path.display());
        }
        Ok(report)
    }

    /// [`Run::fit`], reporting the history only.
    pub fn train<M, O, T>(
        &self,
        backbone: M,
        head: O,
        make_task: impl Fn(&Documents) -> Result<T>,
    ) -> Result<RunReport>
    where
        M: Module + HasEncoder + ModuleDisplay,
        O: Objective<M, Batch = T::Batch>,
        T: Task,
    {
        Ok(self.fit(backbone, head, make_task)?.into())
    }

    /// Trains an encoder-decoder of `decoder_layers` decoder layers with the task `make_task`
    /// builds, then decodes a few validation examples greedily (up to `end`, if given) into
    /// [`RunReport::samples`].
    pub fn seq2seq<T>(
        &self,
        decoder_layers: usize,
        end: Option<u32>,
        make_task: impl Fn(&Documents) -> Result<T>,
    ) -> Result<RunReport>
    where
        T: Task<Example = Seq2SeqExample, Batch = Seq2SeqBatch>,
    {
        let backbone = self.encoder_decoder(decoder_layers)?;
        let head = Seq2SeqConfig::new().init(&backbone, self.device());
        let report = self.fit(backbone, head, &make_task)?;
        let valid = make_task(&self.valid_docs)?;
        let samples = self.samples(&report, &valid, end)?;
        Ok(RunReport {
            samples,
            ..report.into()
        })
    }

    fn samples<T>(
        &self,
        report: &TrainReport<EncoderDecoder, Seq2Seq>,
        valid: &T,
        end: Option<u32>,
    ) -> Result<Vec<Sample>>
    where
        T: Task<Example = Seq2SeqExample, Batch = Seq2SeqBatch>,
    {
        let count = self.options.show.min(valid.num_examples());
        if count == 0 {
            return Ok(Vec::new());
        }
        let model = report.model.valid();
        let step = valid.num_examples() / count;
        let examples = (0..count)
            .map(|k| valid.example(k * step, &mut example_rng(0, 0, (k * step) as u64)))
            .collect::<Result<Vec<_>>>()?;
        let device = self.device().clone().inner();
        let batch = valid.collate(&examples, &device)?;
        let longest = examples.iter().map(|e| e.targets.len()).max().unwrap_or(0);
        let outputs = model
            .objective
            .generate(&model.backbone, &batch, longest, end);
        let show = |ids: &[u32]| self.tokenizer.decode_keeping_specials(ids);
        examples
            .iter()
            .zip(outputs)
            .map(|(e, out)| {
                Ok(Sample {
                    input: show(&e.source)?,
                    output: show(&out[..out.len().min(e.targets.len())])?,
                    target: show(&e.targets)?,
                })
            })
            .collect()
    }
}
