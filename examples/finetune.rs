//! Fine-tunes a pretrained encoder (or a fresh one) on a bundled downstream task, or on
//! labelled files of one's own, and scores it on the test split.
//!
//! ```text
//! cargo run --release --example pretrain                  # pretrain first: runs/modernbert-mini
//! cargo run --release --example finetune -- --checkpoint runs/modernbert-mini --task genre
//! cargo run --release --example finetune -- --from-scratch --task genre    # the baseline
//! cargo run --release --example finetune -- --checkpoint runs/modernbert-mini --train-examples 300
//! cargo run --release --example finetune -- --checkpoint runs/modernbert-mini --task spam
//! cargo run --release --example finetune -- --checkpoint runs/modernbert-mini --task pos  # tagging
//! cargo run --release --example finetune -- --checkpoint models/bert-dir   # a Hugging Face BERT
//! # your own labels: texts (JSON lines, CSV, TSV) or tagged words (CoNLL, JSON lines)
//! cargo run --release --example finetune -- --checkpoint runs/modernbert-mini \
//!     --train reviews.csv --test reviews-test.csv --text-column review --label-column stars
//! cargo run --release --example finetune -- --checkpoint runs/modernbert-mini --train ner.conll
//! # the tuned model in int8 as well: its test accuracy, file size and speed against f32
//! cargo run --release --example finetune -- --checkpoint runs/modernbert-mini --int8
//! # low-rank adapters on query and value: the base frozen, the adapters and the head trained
//! cargo run --release --example finetune -- --checkpoint models/all-MiniLM-L6-v2 --lora
//! ```
//!
//! With `--train`, the classes are the training file's labels (sorted), a validation file is
//! `--valid` or else 10 % of the training items (by a seeded hash of their text), and without
//! `--test` the score is the validation split's.
//!
//! Writes `OUT/metrics.jsonl` like `pretrain` (train and validation records of the fine-tuning
//! run), then one last line with the test scores: `{"split":"test","accuracy":…,
//! "macro_f1":…,"examples":…}`. The tuned model is saved in `OUT` too (`classifier.json`,
//! `encoder.bpk`, `head.bpk`, the tokenizer: [`pretext::finetune::FineTuned`]), which
//! `--export-hf` writes for `transformers` at the end, the `export` example at any later
//! time, and `--checkpoint OUT` tunes further on another task. With `--int8` the tuned model is
//! also quantized ([`pretext::quantize::int8`]), saved as `OUT/int8.bpk` and scored on the test
//! split, each model twice (int8, f32, f32, int8): a `{"split":"test_int8",…}` line gives its scores, the
//! size of its weights against f32's and its time per example against f32's.
//!
//! With `--lora` the encoder is frozen and low-rank adapters on `--lora-targets` train beside
//! the head ([`pretext::lora`]). The adapters are written as a `peft` adapter directory,
//! `OUT/adapter` (for a BERT-shaped encoder, which `peft` loads onto the encoder exported as
//! `BertModel`), and folded into the encoder the run saves; the merged model's logits are held
//! against the adapted one's on the first test batch.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use clap::{Parser, ValueEnum};
use pretext::blocks::{TransformerEncoder, TransformerEncoderConfig};
use pretext::data::Task;
use pretext::data::{TokenBatch, TokenExample};
use pretext::dataset::labelled_files::{Columns, LabelledFiles, LabelledKind};
use pretext::finetune::{
    ClassificationTask, Classifier, ClassifierCard, FineTuned, HeadConfig, LabelledData,
    LabelledText, Scores, TaggedSentence, TaggingTask, evaluate, fine_tune, genre, logits, pos,
    spam,
};
use pretext::hf::{ClassifierHead, export_peft, exportable_pooler};
use pretext::lora::{LoraConfig, merged, trainable};
use pretext::objectives::{Objective, SequenceClassifierConfig, TokenClassifierConfig};
use pretext::pretrainer::check_compatible;
use pretext::recipe::TrainedEncoder;
use pretext::train::TrainConfig;
use pretext::train::checkpoint::save_weights;
use pretext::{Preset, Pretrainer, Tokenizer};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TaskName {
    /// Brown-corpus passages, 15 genres.
    Genre,
    /// SpamAssassin e-mail bodies, spam or ham.
    Spam,
    /// Brown sentences, a universal part of speech for every word (token classification).
    Pos,
}

/// The labelled data of a run: texts with a class, or sentences with a tag a word.
enum Data {
    Texts(LabelledData<LabelledText>),
    Tags(LabelledData<TaggedSentence>),
}

/// Fine-tune an encoder on a downstream classification task.
#[derive(Parser, Debug)]
struct Args {
    /// A pretraining run's directory (its recipe, config.json, and encoder.bpk), a fine-tuning
    /// run's (its encoder, under a fresh head), or a Hugging Face BERT-shaped directory
    /// (config.json, model.safetensors, tokenizer.json).
    #[arg(
        long,
        conflicts_with = "from_scratch",
        required_unless_present = "from_scratch"
    )]
    checkpoint: Option<PathBuf>,
    /// Train the same model from random weights instead (the baseline); its shape is
    /// --preset's.
    #[arg(long)]
    from_scratch: bool,
    /// Model size with --from-scratch.
    #[arg(long, default_value = "mini")]
    preset: String,
    /// The downstream task (bundled data).
    #[arg(long, value_enum, default_value = "genre", conflicts_with = "train")]
    task: TaskName,
    /// Labelled training data of your own: texts with a class (.jsonl, .csv, .tsv) or words
    /// with a tag (CoNLL .conll/.bio/.iob/.txt, or .jsonl of tokens and tags).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Validation data in the training file's format (default: 10 % of --train).
    #[arg(long, requires = "train")]
    valid: Option<PathBuf>,
    /// Test data to score (default: the validation split).
    #[arg(long, requires = "train")]
    test: Option<PathBuf>,
    /// The field or column of the text (--train).
    #[arg(long, default_value = "text")]
    text_column: String,
    /// The field or column of a pair's second text, where there is one (--train).
    #[arg(long, default_value = "text_pair")]
    text_pair_column: String,
    /// The field or column of the class (--train).
    #[arg(long, default_value = "label")]
    label_column: String,
    /// The field of a tagged sentence's words in JSON lines (--train).
    #[arg(long, default_value = "tokens")]
    tokens_column: String,
    /// The field of its tags in JSON lines (--train).
    #[arg(long, default_value = "tags")]
    tags_column: String,
    /// Use only this many training examples, spread evenly over the split (the low-data
    /// regime); default all.
    #[arg(long)]
    train_examples: Option<usize>,
    /// Optimizer updates.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Examples per batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate (warmup over 10 %, then linear decay). Default 1e-4, and 5e-4 with
    /// --lora (the frozen encoder's adapters and a fresh head learn slowly at 1e-4).
    #[arg(long)]
    lr: Option<f64>,
    /// Tokens per example, [CLS] and [SEP] included.
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Words per passage of the genre task.
    #[arg(long, default_value_t = 100)]
    passage_words: usize,
    /// Dropout on the pooled vector.
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    /// Seed of the head's initialisation, the batches and dropout.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Validate every N steps.
    #[arg(long, default_value_t = 50)]
    valid_every: usize,
    /// Run directory (default: runs/finetune-TASK-SOURCE).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the fine-tuned model as a Hugging Face directory (BERT, RoBERTa, ALBERT or
    /// ELECTRA `…ForSequenceClassification` / `…ForTokenClassification`, the label names as
    /// `id2label`), for transformers' pipelines; it must be absent or empty. (The model is
    /// saved in --out either way; the `export` example writes it later.)
    #[arg(long)]
    export_hf: Option<PathBuf>,
    /// Also quantize the tuned model's weights to int8 and score it beside the f32 one: test
    /// accuracy, weights file size and time per example.
    #[arg(long)]
    int8: bool,
    /// Train low-rank adapters (LoRA) on the frozen encoder, and the head, instead of the whole
    /// model.
    #[arg(long)]
    lora: bool,
    /// Rank of each adapter (--lora).
    #[arg(long, default_value_t = 8)]
    lora_rank: usize,
    /// Adapter scale numerator: an adapter adds (alpha / rank) · a · b (--lora).
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    /// Modules that get adapters, by name or dotted path suffix (--lora): query, key, value,
    /// attention.output, ffn.up, ffn.down.
    #[arg(long, value_delimiter = ',', default_value = "query,value")]
    lora_targets: Vec<String>,
}

impl Args {
    /// The LoRA settings, with --lora.
    fn lora(&self) -> Option<LoraConfig> {
        self.lora.then(|| {
            LoraConfig::new()
                .with_rank(self.lora_rank)
                .with_alpha(self.lora_alpha)
                .with_targets(self.lora_targets.clone())
        })
    }
}

/// `n` items spread evenly over `items`.
fn spread<T: Clone>(items: &[T], n: Option<usize>) -> Vec<T> {
    match n {
        Some(n) if n < items.len() => {
            let step = items.len() as f64 / n as f64;
            (0..n)
                .map(|k| items[(k as f64 * step) as usize].clone())
                .collect()
        }
        _ => items.to_vec(),
    }
}

/// The train (`train_examples` of it, spread evenly), validation and test tasks `task` makes
/// of `data`'s subsets; an empty validation split is the training one, an empty test split the
/// validation one.
fn subsets<I: Clone, T>(
    data: &LabelledData<I>,
    train_examples: Option<usize>,
    task: impl Fn(&[I]) -> pretext::Result<T>,
) -> pretext::Result<[T; 3]> {
    let valid = match data.valid.is_empty() {
        true => {
            eprintln!("no validation items: validating on the training split");
            &data.train
        }
        false => &data.valid,
    };
    let test = match data.test.is_empty() {
        true => {
            eprintln!("no test items: scoring the validation split");
            valid
        }
        false => &data.test,
    };
    Ok([
        task(&spread(&data.train, train_examples))?,
        task(valid)?,
        task(test)?,
    ])
}

/// The labelled files `args` name, if any.
fn own_files(args: &Args) -> Option<LabelledFiles> {
    let train = args.train.as_ref()?;
    let mut files = LabelledFiles::new(train);
    files.valid = args.valid.clone();
    files.test = args.test.clone();
    files.seed = args.seed;
    files.columns = Columns {
        text: args.text_column.clone(),
        text_pair: args.text_pair_column.clone(),
        label: args.label_column.clone(),
        tokens: args.tokens_column.clone(),
        tags: args.tags_column.clone(),
    };
    Some(files)
}

/// The tokenizer and the encoder: a pretext run's (shaped as its recipe says, with its
/// tokenizer), a fine-tuned classifier's, a Hugging Face BERT directory's, or a fresh one of
/// the preset's shape.
fn encoder(args: &Args, device: &Device) -> Result<Encoder, Box<dyn std::error::Error>> {
    let (tokenizer, config, backbone) = match &args.checkpoint {
        Some(dir) if pretext::hf::is_model_dir(dir) || !FineTuned::is_saved(dir) => {
            let trained = TrainedEncoder::read(dir, Some(0.1), device)?;
            eprintln!("{}", trained.report);
            (trained.tokenizer, trained.config, trained.encoder)
        }
        Some(dir) => {
            let tuned = FineTuned::load(dir, device)?;
            (tuned.tokenizer, tuned.card.encoder, tuned.encoder)
        }
        None => {
            let tokenizer = Tokenizer::bundled()?;
            let preset: Preset = args.preset.parse()?;
            let config = preset.encoder(tokenizer.vocab_size());
            let backbone = config.init(device)?;
            (tokenizer, config, backbone)
        }
    };
    check_compatible(&tokenizer, &backbone, args.seq_len)?;
    Ok((tokenizer, config, backbone))
}

/// The tokenizer, the encoder's shape and the encoder a run fine-tunes.
type Encoder = (Tokenizer, TransformerEncoderConfig, TransformerEncoder);

fn main() -> std::process::ExitCode {
    pretext::exit_with(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let source = match &args.checkpoint {
        Some(dir) => dir
            .file_name()
            .map_or("checkpoint".into(), |n| n.to_string_lossy().into_owned()),
        None => "scratch".into(),
    };
    // The data first: a fault in a labelled file shows before any model is built.
    let (name, data) = match own_files(&args) {
        Some(files) => {
            let name = files
                .train
                .file_stem()
                .map_or("own".into(), |s| s.to_string_lossy());
            let data = match files.kind()? {
                LabelledKind::Texts => Data::Texts(files.texts()?),
                LabelledKind::Tags => Data::Tags(files.tagged()?),
            };
            (name.into_owned(), data)
        }
        None => {
            let data = match args.task {
                TaskName::Genre => Data::Texts(genre::load(args.passage_words)?),
                TaskName::Spam => Data::Texts(spam::load()?),
                TaskName::Pos => Data::Tags(pos::load()?),
            };
            (format!("{:?}", args.task).to_lowercase(), data)
        }
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/finetune-{name}-{source}").to_lowercase()));
    if let Some(dir) = &args.export_hf {
        pretext::hf::check_export_dir(dir, false)?;
    }
    let device = Device::flex().autodiff();
    device.seed(args.seed);
    let (tokenizer, config, backbone) = encoder(&args, &device)?;
    if let Some(dir) = &args.export_hf {
        pretext::hf::check_classifier_export(&config, tokenizer.special().pad, dir)?;
    }
    std::fs::create_dir_all(&out)?;
    // The tuned model, saved in `out` and exported as --export-hf asks.
    let save = |card: ClassifierCard,
                encoder: TransformerEncoder,
                head: ClassifierHead|
     -> Result<(), Box<dyn std::error::Error>> {
        let tuned = FineTuned {
            card,
            encoder,
            head,
            tokenizer: tokenizer.clone(),
        };
        tuned.save(&out)?;
        if let Some(dir) = &args.export_hf {
            let class = tuned.export_hf(dir, false).map_err(|e| {
                format!(
                    "{e}\nthe tuned model is saved in {}: export it with `cargo run --release \
                     --example export -- {} DIR`",
                    out.display(),
                    out.display()
                )
            })?;
            eprintln!("exported to {} (transformers: {class})", dir.display());
        }
        Ok(())
    };
    let card = |head: HeadConfig, labels: &[String]| ClassifierCard {
        encoder: config.clone(),
        head,
        labels: labels.to_vec(),
        seq_len: args.seq_len,
    };
    let job = Job {
        name: &name,
        out: &out,
        config: &config,
        pad: tokenizer.special().pad,
    };
    let (scores, train_examples) = match data {
        Data::Texts(data) => {
            let classes = data.labels.len();
            eprintln!("{name}: {classes} classes ({})", data.labels.join(", "));
            let tasks = subsets(&data, args.train_examples, |texts: &[LabelledText]| {
                ClassificationTask::new(texts, &tokenizer, classes, args.seq_len)
            })?;
            // A pooler the encoder's Hugging Face family can express.
            let head_config = SequenceClassifierConfig::new(classes, name.clone())
                .with_dropout(args.dropout)
                .with_pooler_activation(exportable_pooler(&config));
            let head = head_config.init(&backbone, &device)?;
            let (scores, model) = run_task(&args, &job, backbone, head, &tasks, &device)?;
            let card = card(HeadConfig::Sequence(head_config), &data.labels);
            save(
                card,
                model.backbone,
                ClassifierHead::Sequence(model.objective),
            )?;
            (scores, tasks[0].num_examples())
        }
        Data::Tags(data) => {
            let classes = data.labels.len();
            eprintln!("{name}: {classes} tags ({})", data.labels.join(", "));
            let tasks = subsets(
                &data,
                args.train_examples,
                |sentences: &[TaggedSentence]| {
                    TaggingTask::new(sentences, &tokenizer, classes, args.seq_len)
                },
            )?;
            let head_config =
                TokenClassifierConfig::new(classes, name.clone()).with_dropout(args.dropout);
            let head = head_config.init(&backbone, &device)?;
            let (scores, model) = run_task(&args, &job, backbone, head, &tasks, &device)?;
            let card = card(HeadConfig::Token(head_config), &data.labels);
            save(card, model.backbone, ClassifierHead::Token(model.objective))?;
            (scores, tasks[0].num_examples())
        }
    };

    let line = serde_json::json!({
        "split": "test",
        "accuracy": scores.accuracy,
        "macro_f1": scores.macro_f1,
        "examples": scores.examples,
        "source": source,
        "train_examples": train_examples,
    });
    let metrics = out.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&metrics).unwrap_or_default();
    text.push_str(&format!("{line}\n"));
    std::fs::write(&metrics, text)?;
    eprintln!(
        "test: accuracy {:.4}, macro-F1 {:.4} over {} predictions; done in {:.1}s; metrics in {}",
        scores.accuracy,
        scores.macro_f1,
        scores.examples,
        started.elapsed().as_secs_f64(),
        metrics.display()
    );
    Ok(())
}

/// What a fine-tuning run is: its task's name, its directory, and the encoder's shape and
/// padding id (for the adapters' export).
struct Job<'a> {
    name: &'a str,
    out: &'a std::path::Path,
    config: &'a TransformerEncoderConfig,
    pad: u32,
}

/// Trains `head` on `backbone` (with --lora, on adapters of the frozen backbone) over `tasks`
/// (train, validation, test) of `job` and scores it on the test task; returns the scores and
/// the trained model, its adapters merged.
fn run_task<H, T>(
    args: &Args,
    job: &Job<'_>,
    backbone: TransformerEncoder,
    head: H,
    [train_task, valid_task, test_task]: &[T; 3],
    device: &Device,
) -> Result<(Scores, Pretrainer<TransformerEncoder, H>), Box<dyn std::error::Error>>
where
    H: Classifier + Objective<TransformerEncoder, Batch = TokenBatch>,
    Pretrainer<TransformerEncoder, H>: Module,
    T: Task<Example = TokenExample, Batch = TokenBatch>,
{
    eprintln!(
        "{}: {} train / {} validation / {} test examples",
        job.name,
        train_task.num_examples(),
        valid_task.num_examples(),
        test_task.num_examples()
    );
    let backbone = match args.lora() {
        Some(lora) => {
            let backbone = lora.adapt(backbone)?;
            let (adapters, all) = trainable(&backbone);
            let head_params = Module::num_params(&head);
            let share = (adapters + head_params) as f64 / (all + head_params) as f64;
            eprintln!(
                "LoRA rank {} (alpha {}) on {}: {} of {} parameters train ({:.3} %): the \
                 adapters' {adapters} and the head's {head_params}",
                lora.rank,
                lora.alpha,
                lora.targets.join(", "),
                adapters + head_params,
                all + head_params,
                100.0 * share
            );
            backbone
        }
        None => backbone,
    };
    let config = TrainConfig::new(args.steps, args.batch_size)
        .with_learning_rate(args.lr.unwrap_or(if args.lora { 5e-4 } else { 1e-4 }))
        .with_seed(args.seed)
        .with_valid_every(args.valid_every)
        .with_valid_batches(valid_task.num_examples().div_ceil(args.batch_size))
        .with_checkpoint_every(0)
        .with_shards(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (report, scores) = fine_tune(
        backbone,
        head,
        [train_task, valid_task, test_task],
        &config,
        Some(job.out),
        device,
    )?;
    let mut model = report.model.valid();
    let inner = device.clone().inner();
    if let Some(lora) = args.lora() {
        model = merge_adapters(model, &lora, job, test_task, &inner)?;
    }
    if args.int8 {
        against_int8(&model, test_task, job.out, &inner)?;
    }
    Ok((scores, model))
}

/// Writes the adapters of `model` as a `peft` directory, `OUT/adapter` (where its encoder's
/// family allows), and returns the model with them folded into its weights, after holding
/// the merged model's logits against the adapted one's on the first test batch.
fn merge_adapters<H, T>(
    model: Pretrainer<TransformerEncoder, H>,
    lora: &LoraConfig,
    job: &Job<'_>,
    test: &T,
    device: &Device,
) -> Result<Pretrainer<TransformerEncoder, H>, Box<dyn std::error::Error>>
where
    H: Classifier + Module,
    T: Task<Example = TokenExample, Batch = TokenBatch>,
{
    let dir = job.out.join("adapter");
    match export_peft(job.config, &model.backbone, lora, job.pad, &dir, true) {
        Ok(()) => eprintln!("adapters written to {} (peft)", dir.display()),
        Err(e) => eprintln!("the adapters are not written as a peft directory: {e}"),
    }
    let adapted = logits(&model.backbone, &model.objective, test, 16, device)?;
    let backbone = merged(model.backbone);
    let folded = logits(&backbone, &model.objective, test, 16, device)?;
    let diff = (adapted - folded).abs().max().into_scalar::<f32>();
    eprintln!("merged into the encoder: logits differ from the adapted model's by {diff:.2e}");
    Ok(Pretrainer {
        backbone,
        objective: model.objective,
    })
}

/// Quantizes `model` to int8, saves it as `OUT/int8.bpk`, scores both on `test` (each twice;
/// the faster pass of each counts) and logs the int8 model's scores, its weights' size
/// against f32's and its time per example against f32's.
fn against_int8<H, T>(
    model: &Pretrainer<TransformerEncoder, H>,
    test: &T,
    out: &std::path::Path,
    device: &Device,
) -> Result<(), Box<dyn std::error::Error>>
where
    H: Classifier + Module + burn::module::ModuleDisplay,
    T: Task<Example = TokenExample, Batch = TokenBatch>,
{
    let quantized = pretext::quantize::int8(model.clone());
    let size = |path: std::path::PathBuf, model: &Pretrainer<TransformerEncoder, H>| {
        save_weights(model, &path).map(|()| std::fs::metadata(&path).map_or(0, |m| m.len()))
    };
    let int8_bytes = size(out.join("int8.bpk"), &quantized)?;
    let f32_path = out.join("f32-size.bpk");
    let f32_bytes = size(f32_path.clone(), model)?;
    std::fs::remove_file(&f32_path)?;
    let timed = |m: &Pretrainer<TransformerEncoder, H>| -> Result<(Scores, f64), pretext::Error> {
        let started = Instant::now();
        let scores = evaluate(&m.backbone, &m.objective, test, 64, device)?;
        Ok((scores, started.elapsed().as_secs_f64()))
    };
    // int8, f32, f32, int8: each model twice, in an order that drift cannot favour; the faster
    // pass of each counts.
    let (scores, mut int8_seconds) = timed(&quantized)?;
    let mut f32_seconds = timed(model)?.1;
    f32_seconds = f32_seconds.min(timed(model)?.1);
    int8_seconds = int8_seconds.min(timed(&quantized)?.1);
    let per_example = |seconds: f64| 1e3 * seconds / scores.examples.max(1) as f64;
    let line = serde_json::json!({
        "split": "test_int8",
        "accuracy": scores.accuracy,
        "macro_f1": scores.macro_f1,
        "examples": scores.examples,
        "int8_bytes": int8_bytes,
        "f32_bytes": f32_bytes,
        "int8_ms_per_example": per_example(int8_seconds),
        "f32_ms_per_example": per_example(f32_seconds),
    });
    let metrics = out.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&metrics).unwrap_or_default();
    text.push_str(&format!("{line}\n"));
    std::fs::write(&metrics, text)?;
    eprintln!(
        "int8: test accuracy {:.4}, macro-F1 {:.4}; weights {:.1} MB against {:.1} MB in f32 \
         ({:.0} %); {:.2} ms an example against {:.2} ({:.2}x)",
        scores.accuracy,
        scores.macro_f1,
        int8_bytes as f64 / 1e6,
        f32_bytes as f64 / 1e6,
        100.0 * int8_bytes as f64 / f32_bytes.max(1) as f64,
        per_example(int8_seconds),
        per_example(f32_seconds),
        int8_seconds / f32_seconds
    );
    Ok(())
}
