//! Pretrains a Transformer with one objective on the bundled corpus (or your own text).
//!
//! ```text
//! cargo run --release --example pretrain                       # MLM, mini preset, ~5 min on 2 cores
//! cargo run --release --example pretrain -- --objective clm --preset tiny --steps 200 --out runs/clm
//! cargo run --release --example pretrain -- --objective bert     # mlm + next-sentence prediction
//! cargo run --release --example pretrain -- --objective albert   # mlm + sentence order, ALBERT backbone
//! cargo run --release --example pretrain -- --objective bart     # denoising encoder-decoder
//! cargo run --release --example pretrain -- --objective bart --noise rotate   # one transform
//! cargo run --release --example pretrain -- --objective t5       # span corruption, sentinels
//! cargo run --release --example pretrain -- --objective electra  # replaced-token detection
//! cargo run --release --example pretrain -- --objective xlnet    # permuted LM, two streams
//! cargo run --release --example pretrain -- --objective spanbert # span masking + boundary objective
//! cargo run --release --example pretrain -- --objective unilm    # four attention masks, one model
//! cargo run --release --example pretrain -- --out runs/clm --resume   # continue a stopped run
//! ```
//!
//! Writes `OUT/config.json`, `OUT/metrics.jsonl` (one JSON object per line), `OUT/checkpoint/`
//! and, at the end, `OUT/encoder.bpk`: the encoder one fine-tunes (the discriminator of
//! `electra`, the encoder of an encoder-decoder). On the bundled corpus, the Brown documents of
//! the genre task's validation and test splits are left out. The encoder-decoder objectives end by printing a few validation examples: the corrupted
//! input, the model's greedy output and the target.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::FloatDType;
use clap::{Parser, ValueEnum};
use pretext::blocks::{EncoderDecoder, EncoderDecoderConfig, TransformerEncoder};
use pretext::corpus::{Corpus, DocumentBoundary};
use pretext::data::{Seq2SeqBatch, Seq2SeqExample, Task, TokenizedDocument, tokenize_corpus};
use pretext::finetune::genre::pretraining_corpus;
use pretext::noise::bart::BartNoise;
use pretext::noise::mass::DEFAULT_MASS_SHARE;
use pretext::noise::{MaskUnit, MlmMasking, PairKind, PermutationMasking, example_rng};
use pretext::objectives::multitask::read_tasks;
use pretext::objectives::unilm::UNILM_SEGMENTS;
use pretext::objectives::{
    BartTask, ClmConfig, ClmTask, ElectraConfig, ElectraTask, MassTask, Mix, MlmConfig, MlmTask,
    Objective, PairHeadConfig, PermutationTask, PermutedLmConfig, SboHeadConfig, SentencePairTask,
    Seq2Seq, Seq2SeqConfig, SpanBert, SpanBertTask, SpanCorruption, T5Task, Unilm, UnilmShares,
    UnilmTask,
};
use pretext::objectives::{MultiTask, MultiTaskData};
use pretext::pretrainer::check_compatible;
use pretext::train::checkpoint::save_weights;
use pretext::train::{TrainConfig, TrainReport, train_data_parallel};
use pretext::{Preset, Pretrainer, Tokenizer};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ObjectiveName {
    /// Masked LM (BERT/RoBERTa).
    Mlm,
    /// Causal LM (GPT).
    Clm,
    /// Next-sentence prediction alone.
    Nsp,
    /// Sentence-order prediction alone.
    Sop,
    /// BERT: masked LM + next-sentence prediction.
    Bert,
    /// ALBERT: masked LM (n-grams of words) + sentence-order prediction, on a factorized embedding
    /// (width 128, or half the model width if that is less) and shared layers.
    Albert,
    /// BART: an encoder-decoder that reconstructs text noised as --noise says.
    Bart,
    /// MASS: an encoder-decoder that predicts the masked half of a segment.
    Mass,
    /// T5: an encoder-decoder that predicts the spans its input hides behind sentinels.
    T5,
    /// ELECTRA: a small generator fills masked positions, the encoder tells replaced tokens
    /// from original ones.
    Electra,
    /// XLNet: permuted LM; the query stream predicts the last sixth of a random factorization
    /// order, in spans of up to 5 tokens.
    Xlnet,
    /// MPNet: permuted LM over 15 % of the tokens, with every prediction seeing the positions of
    /// all tokens.
    Mpnet,
    /// SpanBERT: masked LM over geometric spans of whole words + the span-boundary objective.
    Spanbert,
    /// UniLM: cloze masked LM under a bidirectional, left-to-right, right-to-left or
    /// sequence-to-sequence attention mask drawn per batch.
    Unilm,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MaskUnitName {
    /// Single tokens (BERT).
    Token,
    /// Whole words.
    Word,
    /// n-grams of up to 3 whole words, p ∝ 1/n (ALBERT).
    Ngram,
    /// Spans of whole words, geometric p = 0.2, at most 10 (SpanBERT).
    Span,
}

impl MaskUnitName {
    fn unit(self) -> MaskUnit {
        match self {
            Self::Token => MaskUnit::Token,
            Self::Word => MaskUnit::WholeWord,
            Self::Ngram => MaskUnit::ALBERT,
            Self::Span => MaskUnit::SPANBERT,
        }
    }
}

/// T5's number of sentinel tokens, added to the vocabulary for `t5`.
const T5_SENTINELS: usize = 100;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DeviceName {
    /// burn's pure-Rust CPU backend.
    Flex,
    /// NVIDIA GPU (build with `--features cuda`).
    Cuda,
    /// Any GPU through wgpu (build with `--features wgpu`).
    Wgpu,
    /// AMD GPU (build with `--features rocm`).
    Rocm,
    /// Apple GPU (build with `--features metal`).
    Metal,
}

/// Pretrain a Transformer language model.
#[derive(Parser, Debug)]
struct Args {
    /// Pretraining objective.
    #[arg(long, value_enum, default_value = "mlm")]
    objective: ObjectiveName,
    /// A JSON file of objectives to pretrain at once (ERNIE 2.0-style multi-task), in place of
    /// --objective: `[{"objective": "mlm", "weight": 1}, {"objective": "sop", "weight": 0.5,
    /// "start_step": 100}]`; objectives mlm, clm, nsp, sop, bert, albert. See
    /// examples/ernie2.json.
    #[arg(long)]
    objectives: Option<PathBuf>,
    /// Model size and training defaults: tiny, mini, small or base.
    #[arg(long, default_value = "mini")]
    preset: String,
    /// Optimizer updates (default 300; 1000 for the sentence-level objectives, whose single
    /// label per pair needs longer to learn from).
    #[arg(long)]
    steps: Option<usize>,
    /// Examples per batch (default: the preset's).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Tokens per example, special tokens included (default: the preset's).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Peak learning rate (default: the preset's).
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Run directory (default: runs/OBJECTIVE-PRESET).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in --out from its checkpoint.
    #[arg(long)]
    resume: bool,
    /// Device to train on.
    #[arg(long, value_enum, default_value = "flex")]
    device: DeviceName,
    /// What MLM masking selects at a time (mlm, bert, albert): single tokens, whole words,
    /// ALBERT's n-grams of up to 3 words, or SpanBERT's geometric spans of words (default:
    /// ngram for albert, span for spanbert, token otherwise).
    #[arg(long, value_enum)]
    mask_unit: Option<MaskUnitName>,
    /// Weight of the sentence-level loss against the MLM loss's 1 (bert, albert). Default 1
    /// for bert, as BERT; 5 for albert: with ALBERT's 1:1, SOP stays at chance through a
    /// 1000-step mini run (0.54), and at 5 it learns (0.58) at some cost to MLM.
    #[arg(long)]
    pair_weight: Option<f64>,
    /// BART's noise: bart (infilling 30 % of the words + every sentence permuted, as
    /// BART-large), or one transform alone: mask, delete, infill, permute, rotate.
    #[arg(long, default_value = "bart")]
    noise: String,
    /// ELECTRA's generator width as a share of the encoder's (0.25 as ELECTRA; its released
    /// Small used 1.0).
    #[arg(long, default_value_t = 0.25)]
    generator_size: f64,
    /// Weight of ELECTRA's discriminator loss against the generator's 1.
    #[arg(long, default_value_t = 50.0)]
    disc_weight: f64,
    /// Softmax temperature of ELECTRA's generator samples (higher: more random replacements).
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Decoder layers of the encoder-decoder objectives (default: as many as the encoder's).
    #[arg(long)]
    decoder_layers: Option<usize>,
    /// Validation examples the encoder-decoder objectives print at the end.
    #[arg(long, default_value_t = 3)]
    show: usize,
    /// Validate every N steps.
    #[arg(long, default_value_t = 50)]
    valid_every: usize,
    /// Validation batches (the same ones each time).
    #[arg(long, default_value_t = 16)]
    valid_batches: usize,
    /// Log train metrics every N steps.
    #[arg(long, default_value_t = 10)]
    log_every: usize,
    /// Checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    /// Parts each batch is split into, run at once on their own threads (default: the
    /// number of cores on the CPU backend, 1 on a GPU).
    #[arg(long)]
    shards: Option<usize>,
    /// GPUs to train on at once (`--device cuda` or `rocm`): devices 0..N, each running its
    /// share of every batch, gradients summed on device 0.
    #[arg(long, default_value_t = 1)]
    devices: usize,
    /// Floating-point type of every tensor (weights, activations, gradients): f32, or bf16 /
    /// f16 where the device computes them faster (GPUs; CPUs with AMX).
    #[arg(long, value_enum, default_value_t = FloatName::F32)]
    float: FloatName,
    /// Micro-batches per update.
    #[arg(long, default_value_t = 1)]
    grad_accumulation: usize,
    /// LayerNorm before each sub-layer (GPT-2) instead of after (BERT); default: true for clm,
    /// false for mlm.
    #[arg(long)]
    norm_first: Option<bool>,
    /// Factorized embedding width (ALBERT), below the model width.
    #[arg(long)]
    embedding_size: Option<usize>,
    /// Share one layer's weights across the depth (ALBERT; always on for albert).
    #[arg(long)]
    share_layers: bool,
    /// Dropout (default 0.1).
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    /// A folder of .txt files to pretrain on, one document per file (default: the bundled corpus).
    #[arg(long)]
    data: Option<PathBuf>,
    /// tokenizer.json to use (default: the bundled one).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
}

/// The sentence-level task an objective trains: order for ALBERT's, next sentence otherwise.
fn pair_kind(objective: ObjectiveName) -> PairKind {
    match objective {
        ObjectiveName::Sop | ObjectiveName::Albert => PairKind::SentenceOrder,
        _ => PairKind::NextSentence,
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FloatName {
    F32,
    Bf16,
    F16,
}

/// The autodiff devices to train on: `count` GPUs of an indexed backend, or one device, each
/// computing in `float`.
fn devices(name: DeviceName, count: usize, float: FloatName) -> Result<Vec<Device>, String> {
    let indexed = matches!(name, DeviceName::Cuda | DeviceName::Rocm);
    if count == 0 || (count > 1 && !indexed) {
        return Err(format!(
            "--devices {count}: several devices need `--device cuda` or `rocm` (on the CPU, \
             `--shards` splits batches over the cores)"
        ));
    }
    let dtype = match float {
        FloatName::F32 => FloatDType::F32,
        FloatName::Bf16 => FloatDType::BF16,
        FloatName::F16 => FloatDType::F16,
    };
    (0..count)
        .map(|index| {
            let mut device = device(name, index)?;
            device
                .configure(dtype)
                .map_err(|e| format!("--float {float:?} on {device:?}: {e:?}"))?;
            Ok(device.autodiff())
        })
        .collect()
}

fn device(name: DeviceName, #[allow(unused)] index: usize) -> Result<Device, String> {
    match name {
        DeviceName::Flex => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        DeviceName::Cuda => Ok(Device::cuda(index)),
        #[cfg(feature = "wgpu")]
        DeviceName::Wgpu => Ok(Device::wgpu(Default::default())),
        #[cfg(feature = "rocm")]
        DeviceName::Rocm => Ok(Device::rocm(index)),
        #[cfg(feature = "metal")]
        DeviceName::Metal => Ok(Device::metal(Default::default())),
        #[allow(unreachable_patterns)]
        other => Err(format!(
            "device {other:?} needs the cargo feature of the same name, e.g. `--features {}`",
            format!("{other:?}").to_lowercase()
        )),
    }
}

/// A backbone whose encoder is what fine-tuning takes.
trait HasEncoder {
    fn encoder(&self) -> &TransformerEncoder;
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

/// What every objective's run shares.
struct Run<'a> {
    config: &'a TrainConfig,
    resume: bool,
    out: &'a Path,
    /// Every device a batch is split over; the first is the main one, where the model lives.
    devices: &'a [Device],
    train_docs: &'a [TokenizedDocument],
    valid_docs: &'a [TokenizedDocument],
}

impl Run<'_> {
    /// The main device.
    fn device(&self) -> &Device {
        &self.devices[0]
    }

    /// Trains `head` on `backbone` with the task `make_task` builds for each split, then saves
    /// the encoder to `OUT/encoder.bpk`.
    fn train<M, O, T>(
        &self,
        backbone: M,
        head: O,
        make_task: impl Fn(&[TokenizedDocument]) -> pretext::Result<T>,
    ) -> pretext::Result<TrainReport<M, O>>
    where
        M: Module + HasEncoder,
        O: Objective<M, Batch = T::Batch>,
        Pretrainer<M, O>: Module,
        T: Task,
    {
        let train_task = make_task(self.train_docs)?;
        let valid_task = make_task(self.valid_docs)?;
        let model = Pretrainer::new(backbone, head);
        eprintln!(
            "{} train / {} validation examples; {} parameters",
            train_task.num_examples(),
            valid_task.num_examples(),
            model.num_params()
        );
        let report = train_data_parallel(
            model,
            &train_task,
            &valid_task,
            self.config,
            Some(self.out),
            self.resume,
            self.devices,
        )?;
        let path = self.out.join("encoder.bpk");
        save_weights(report.model.backbone.encoder(), &path)?;
        eprintln!("encoder saved to {}", path.display());
        Ok(report)
    }

    /// Trains an encoder-decoder with the task `make_task` builds, then prints `show`
    /// validation examples: input, greedy output (up to `end`, if given) and target.
    fn seq2seq<T>(
        &self,
        backbone: EncoderDecoder,
        tokenizer: &Tokenizer,
        show: usize,
        end: Option<u32>,
        make_task: impl Fn(&[TokenizedDocument]) -> pretext::Result<T>,
    ) -> pretext::Result<TrainReport<EncoderDecoder, Seq2Seq>>
    where
        T: Task<Example = Seq2SeqExample, Batch = Seq2SeqBatch>,
    {
        let head = Seq2SeqConfig::new().init(&backbone, self.device());
        let report = self.train(backbone, head, &make_task)?;
        let valid = make_task(self.valid_docs)?;
        let count = show.min(valid.num_examples());
        if count == 0 {
            return Ok(report);
        }
        let model = report.model.valid();
        let step = valid.num_examples() / count;
        let examples = (0..count)
            .map(|k| valid.example(k * step, &mut example_rng(0, 0, (k * step) as u64)))
            .collect::<pretext::Result<Vec<_>>>()?;
        let device = self.device().clone().inner();
        let batch = valid.collate(&examples, &device)?;
        let longest = examples.iter().map(|e| e.targets.len()).max().unwrap_or(0);
        let outputs = model
            .objective
            .generate(&model.backbone, &batch, longest, end);
        let show = |ids: &[u32]| tokenizer.decode_keeping_specials(ids);
        for (e, out) in examples.iter().zip(outputs) {
            let out = &out[..out.len().min(e.targets.len())];
            eprintln!("\ninput:  {}", show(&e.source)?);
            eprintln!("output: {}", show(out)?);
            eprintln!("target: {}", show(&e.targets)?);
        }
        Ok(report)
    }
}

fn main() -> std::process::ExitCode {
    pretext::exit_with(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let preset: Preset = args.preset.parse()?;
    // A bad objectives file fails here, before any tokenizing.
    let tasks = args.objectives.as_deref().map(read_tasks).transpose()?;
    let objective = match tasks {
        Some(_) => "multitask".to_string(),
        None => format!("{:?}", args.objective).to_lowercase(),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{objective}-{}", preset.name())));
    let devices = devices(args.device, args.devices, args.float)?;
    let device = devices[0].clone();
    pretext::train::tune_allocator();

    let started = Instant::now();
    let tokenizer = match &args.tokenizer {
        Some(path) => Tokenizer::from_file(path)?,
        None => Tokenizer::bundled()?,
    };
    let tokenizer = match args.objective {
        ObjectiveName::T5 => tokenizer.with_sentinels(T5_SENTINELS)?,
        _ => tokenizer,
    };
    let corpus = match &args.data {
        Some(dir) => Corpus::from_dir(dir, DocumentBoundary::File)?,
        // The genre task's evaluation documents stay unseen (see pretext::finetune::genre).
        None => pretraining_corpus()?,
    };
    // The split seed is fixed so that every run, whatever its --seed, validates on the same
    // documents.
    let (train_docs, valid_docs) = corpus.split(0.05, 0)?;
    let train_docs = tokenize_corpus(&train_docs, &tokenizer)?;
    let valid_docs = tokenize_corpus(&valid_docs, &tokenizer)?;
    eprintln!(
        "tokenized {} train and {} validation documents in {:.1}s",
        train_docs.len(),
        valid_docs.len(),
        started.elapsed().as_secs_f64()
    );

    let seq_len = args.seq_len.unwrap_or(preset.seq_len());
    let albert = matches!(args.objective, ObjectiveName::Albert);
    let seq2seq = matches!(
        args.objective,
        ObjectiveName::Bart | ObjectiveName::Mass | ObjectiveName::T5
    );
    let encoder = preset.encoder(tokenizer.vocab_size());
    let embedding_size = match args.embedding_size {
        None if albert => Some(128.min(encoder.hidden_size / 2)),
        given => given,
    };
    let encoder = encoder
        .with_dropout(args.dropout)
        .with_embedding_size(embedding_size)
        .with_share_layers(args.share_layers || albert)
        // The encoder-decoders read one segment, with no segment ids; UniLM's segment ids
        // name its mask types.
        .with_num_segments(match (&tasks, args.objective) {
            // Each task of a mix reads a pair of segment ids of its own.
            (Some(tasks), _) => 2 * tasks.len(),
            _ if seq2seq => 0,
            (None, ObjectiveName::Unilm) => UNILM_SEGMENTS,
            _ => 2,
        })
        .with_norm_first(
            args.norm_first
                .unwrap_or(matches!(args.objective, ObjectiveName::Clm)),
        );
    let steps = args.steps.unwrap_or(match args.objective {
        ObjectiveName::Nsp | ObjectiveName::Sop | ObjectiveName::Bert | ObjectiveName::Albert => {
            1000
        }
        _ => 300,
    });
    let config = TrainConfig::new(steps, args.batch_size.unwrap_or(preset.batch_size()))
        .with_learning_rate(args.lr.unwrap_or(preset.learning_rate()))
        .with_seed(args.seed)
        .with_valid_every(args.valid_every)
        .with_valid_batches(args.valid_batches)
        .with_log_every(args.log_every)
        .with_checkpoint_every(args.checkpoint_every)
        .with_grad_accumulation(args.grad_accumulation)
        .with_shards(args.shards.unwrap_or(match args.device {
            DeviceName::Flex => std::thread::available_parallelism().map_or(1, |n| n.get()),
            _ => 1,
        }));
    let pair_weight = args.pair_weight.unwrap_or(if albert { 5.0 } else { 1.0 });
    let default_unit = match args.objective {
        ObjectiveName::Albert => MaskUnitName::Ngram,
        ObjectiveName::Spanbert => MaskUnitName::Span,
        _ => MaskUnitName::Token,
    };
    let masking = MlmMasking::default().with_unit(args.mask_unit.unwrap_or(default_unit).unit());
    let noise = BartNoise::preset(&args.noise)?;
    let electra = ElectraConfig::new()
        .with_generator_size(args.generator_size)
        .with_disc_weight(args.disc_weight)
        .with_temperature(args.temperature)
        .with_dropout(args.dropout);
    let corruption = SpanCorruption::default();
    let seq2seq_config = EncoderDecoderConfig::new(
        encoder.clone(),
        args.decoder_layers.unwrap_or(encoder.num_layers),
    );
    std::fs::create_dir_all(&out)?;
    let mut saved = serde_json::json!({
        "objective": objective,
        "preset": preset.name(),
        "seq_len": seq_len,
        "encoder": serde_json::from_str::<serde_json::Value>(&encoder.to_string())?,
        "train": serde_json::from_str::<serde_json::Value>(&config.to_string())?,
        "masking": masking,
        "pair_weight": pair_weight,
    });
    match args.objective {
        ObjectiveName::Bart => saved["noise"] = serde_json::to_value(noise)?,
        ObjectiveName::Mass => saved["mass_share"] = DEFAULT_MASS_SHARE.into(),
        ObjectiveName::T5 => saved["span_corruption"] = serde_json::to_value(corruption)?,
        ObjectiveName::Unilm => {
            saved["unilm_shares"] = serde_json::to_value(UnilmShares::default())?;
        }
        ObjectiveName::Xlnet => saved["masking"] = serde_json::to_value(PermutationMasking::XLNET)?,
        ObjectiveName::Mpnet => saved["masking"] = serde_json::to_value(PermutationMasking::MPNET)?,
        ObjectiveName::Electra => {
            saved["electra"] = serde_json::from_str::<serde_json::Value>(&electra.to_string())?;
            saved["masking"] = serde_json::to_value(MlmMasking::electra())?;
        }
        _ => {}
    }
    if let Some(specs) = &tasks {
        saved["objectives"] = serde_json::to_value(specs)?;
    }
    if seq2seq {
        saved["decoder_layers"] = seq2seq_config.decoder_layers.into();
    }
    std::fs::write(
        out.join("config.json"),
        serde_json::to_string_pretty(&saved)?,
    )?;

    device.seed(args.seed);
    let vocab = tokenizer.vocab_size();
    let run = Run {
        config: &config,
        resume: args.resume,
        out: &out,
        devices: &devices,
        train_docs: &train_docs,
        valid_docs: &valid_docs,
    };
    let encoder_only = || -> pretext::Result<TransformerEncoder> {
        let backbone = encoder.init(&device)?;
        check_compatible(&tokenizer, &backbone, seq_len)?;
        Ok(backbone)
    };
    let encoder_decoder = || -> pretext::Result<EncoderDecoder> {
        let backbone = seq2seq_config.init(&device)?;
        check_compatible(&tokenizer, &backbone, seq_len)?;
        Ok(backbone)
    };
    let special = tokenizer.special();
    let history = if let Some(specs) = &tasks {
        let backbone = encoder_only()?;
        let head = MultiTask::new(&backbone, specs, &device)?;
        run.train(backbone, head, |docs| {
            MultiTaskData::new(specs, docs, &tokenizer, seq_len)
        })?
        .history
    } else {
        match args.objective {
            ObjectiveName::Mlm => {
                let backbone = encoder_only()?;
                let head = MlmConfig::new().init(&backbone, &device);
                run.train(backbone, head, |docs| {
                    MlmTask::new(docs, &tokenizer, masking, seq_len)
                })?
                .history
            }
            ObjectiveName::Clm => {
                let backbone = encoder_only()?;
                let head = ClmConfig::new().init(&backbone, &device);
                run.train(backbone, head, |docs| {
                    ClmTask::new(docs, &tokenizer, seq_len)
                })?
                .history
            }
            ObjectiveName::Nsp | ObjectiveName::Sop => {
                let backbone = encoder_only()?;
                let kind = pair_kind(args.objective);
                let head = PairHeadConfig::new(kind).init(&backbone, &device);
                run.train(backbone, head, |docs| {
                    SentencePairTask::new(docs, &tokenizer, kind, seq_len, None)
                })?
                .history
            }
            ObjectiveName::Bert | ObjectiveName::Albert => {
                let backbone = encoder_only()?;
                let kind = pair_kind(args.objective);
                let mlm = MlmConfig::new().init(&backbone, &device);
                let pair = PairHeadConfig::new(kind).init(&backbone, &device);
                let mix = Mix::new(mlm, 1.0, pair, pair_weight)?;
                run.train(backbone, mix, |docs| {
                    SentencePairTask::new(docs, &tokenizer, kind, seq_len, Some(masking))
                })?
                .history
            }
            ObjectiveName::Bart => {
                run.seq2seq(
                    encoder_decoder()?,
                    &tokenizer,
                    args.show,
                    Some(special.sep),
                    |docs| BartTask::new(docs, &tokenizer, noise, seq_len),
                )?
                .history
            }
            ObjectiveName::Mass => {
                run.seq2seq(encoder_decoder()?, &tokenizer, args.show, None, |docs| {
                    MassTask::new(docs, &tokenizer, DEFAULT_MASS_SHARE, seq_len)
                })?
                .history
            }
            ObjectiveName::Electra => {
                let backbone = encoder_only()?;
                let head = electra.init(&backbone, encoder.num_layers, &device)?;
                run.train(backbone, head, |docs| {
                    ElectraTask::new(docs, &tokenizer, MlmMasking::electra(), seq_len)
                })?
                .history
            }
            ObjectiveName::Xlnet | ObjectiveName::Mpnet => {
                let backbone = encoder_only()?;
                let head = PermutedLmConfig::new().init(&backbone, &device);
                let xlnet = matches!(args.objective, ObjectiveName::Xlnet);
                run.train(backbone, head, |docs| {
                    if xlnet {
                        PermutationTask::xlnet(docs, &tokenizer, PermutationMasking::XLNET, seq_len)
                    } else {
                        PermutationTask::mpnet(docs, &tokenizer, PermutationMasking::MPNET, seq_len)
                    }
                })?
                .history
            }
            ObjectiveName::Spanbert => {
                let backbone = encoder_only()?;
                let sbo = SboHeadConfig::new();
                let head = SpanBert::new(&backbone, sbo.clone(), 1.0, &device)?;
                run.train(backbone, head, |docs| {
                    SpanBertTask::new(docs, &tokenizer, masking, sbo.max_targets, seq_len)
                })?
                .history
            }
            ObjectiveName::Unilm => {
                let backbone = encoder_only()?;
                let head = Unilm::new(&backbone, &device)?;
                run.train(backbone, head, |docs| {
                    UnilmTask::new(docs, &tokenizer, masking, UnilmShares::default(), seq_len)
                })?
                .history
            }
            ObjectiveName::T5 => {
                run.seq2seq(
                    encoder_decoder()?,
                    &tokenizer,
                    args.show,
                    Some(special.sep),
                    |docs| T5Task::new(docs, &tokenizer, corruption, seq_len),
                )?
                .history
            }
        }
    };

    let valid: Vec<_> = history
        .iter()
        .filter(|r| r.split == pretext::train::Split::Valid)
        .collect();
    if let (Some(first), Some(last)) = (valid.first(), valid.last()) {
        eprintln!(
            "validation loss {:.3} -> {:.3} (ln vocab = {:.3}); {:?}",
            first.loss,
            last.loss,
            (vocab as f64).ln(),
            last.metrics
        );
    }
    eprintln!(
        "done in {:.1}s; metrics in {}",
        started.elapsed().as_secs_f64(),
        out.join("metrics.jsonl").display()
    );
    Ok(())
}
