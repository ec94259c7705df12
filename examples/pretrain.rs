//! Pretrains a Transformer with a named recipe (an objective's reference defaults) or a recipe
//! file, on the bundled corpus or your own text: a thin command line over [`pretext::recipe`].
//!
//! ```text
//! cargo run --release --example pretrain                       # mlm, mini preset, ~5 min on 2 cores
//! cargo run --release --example pretrain -- --list             # every named objective
//! cargo run --release --example pretrain -- --objective clm --preset tiny --steps 200 --out runs/clm
//! cargo run --release --example pretrain -- --objective albert --print   # the recipe, as JSON
//! cargo run --release --example pretrain -- --config runs/clm/config.json --out runs/clm2  # replay
//! cargo run --release --example pretrain -- --objective bart --noise rotate   # one transform
//! cargo run --release --example pretrain -- --objective electra --set objective.settings.electra.disc_weight=20
//! cargo run --release --example pretrain -- --objectives examples/ernie2.json  # multi-task
//! cargo run --release --example pretrain -- --out runs/clm --resume   # continue a stopped run
//! ```
//!
//! Writes `OUT/config.json` (the complete recipe), `OUT/metrics.jsonl` (one JSON object per
//! line), `OUT/checkpoint/` and, at the end, `OUT/encoder.bpk`: the encoder one fine-tunes (the
//! discriminator of `electra`, the encoder of an encoder-decoder). The encoder-decoder
//! objectives end by printing a few validation examples: the corrupted input, the model's
//! greedy output and the target.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use pretext::Preset;
use pretext::device::{DeviceKind, FloatType};
use pretext::noise::MaskUnit;
use pretext::noise::bart::BartNoise;
use pretext::objectives::multitask::{read_tasks, recipe_of};
use pretext::recipe::{OBJECTIVES, Recipe, RunOptions, TokenizerSource};
use pretext::train::Split;
use serde_json::Value;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Pretrain a Transformer language model. Flags change fields of the named recipe (or of the
/// --config file); --set changes any field.
#[derive(Parser, Debug)]
struct Args {
    /// The objective, by its registry name (default mlm; --list names them all).
    #[arg(long, conflicts_with_all = ["config", "objectives"])]
    objective: Option<String>,
    /// A JSON list of objectives to pretrain at once (ERNIE 2.0-style multi-task):
    /// `[{"objective": "mlm", "weight": 1}, {"objective": "sop", "weight": 0.5, "start_step":
    /// 100}]`; objectives mlm, clm, nsp, sop, bert, albert. See examples/ernie2.json.
    #[arg(long, conflicts_with = "config")]
    objectives: Option<PathBuf>,
    /// A recipe file to run, such as a run's own config.json; with --out, it replays the run.
    #[arg(long, conflicts_with = "preset", requires = "out")]
    config: Option<PathBuf>,
    /// Print every named objective with a line about it, and exit.
    #[arg(long)]
    list: bool,
    /// Print the complete recipe as JSON instead of running it.
    #[arg(long)]
    print: bool,
    /// Model size and training defaults of a named recipe: tiny, mini, small or base.
    #[arg(long)]
    preset: Option<String>,
    /// Optimizer updates (named recipes: 300; 1000 for the sentence-level objectives).
    #[arg(long)]
    steps: Option<usize>,
    /// Examples per batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Tokens per example, special tokens included.
    #[arg(long)]
    seq_len: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of every random draw.
    #[arg(long)]
    seed: Option<u64>,
    /// Validate every N steps.
    #[arg(long)]
    valid_every: Option<usize>,
    /// Validation batches (the same ones each time).
    #[arg(long)]
    valid_batches: Option<usize>,
    /// Log train metrics every N steps.
    #[arg(long)]
    log_every: Option<usize>,
    /// Checkpoint every N steps (and at the end).
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Micro-batches per update.
    #[arg(long)]
    grad_accumulation: Option<usize>,
    /// Parts each batch is split into, run at once on their own threads (named recipes: one
    /// per core; 1 on a GPU).
    #[arg(long)]
    shards: Option<usize>,
    /// Dropout of the encoder.
    #[arg(long)]
    dropout: Option<f64>,
    /// LayerNorm before each sub-layer (GPT-2) instead of after (BERT).
    #[arg(long)]
    norm_first: Option<bool>,
    /// Factorized embedding width (ALBERT), below the model width.
    #[arg(long)]
    embedding_size: Option<usize>,
    /// Share one layer's weights across the depth (ALBERT).
    #[arg(long)]
    share_layers: bool,
    /// A folder of .txt files to pretrain on, one document per file (default: the bundled corpus).
    #[arg(long)]
    data: Option<PathBuf>,
    /// tokenizer.json to use (default: the bundled one); the encoder's vocabulary follows it.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// What MLM masking selects: token, word, ngram (ALBERT's) or span (SpanBERT's).
    #[arg(long)]
    mask_unit: Option<String>,
    /// Weight of the sentence-level loss against MLM's 1 (bert, albert).
    #[arg(long)]
    pair_weight: Option<f64>,
    /// BART's noise: bart (infilling 30 % of the words + every sentence permuted), or one
    /// transform alone: mask, delete, infill, permute, rotate.
    #[arg(long)]
    noise: Option<String>,
    /// ELECTRA's generator width as a share of the encoder's.
    #[arg(long)]
    generator_size: Option<f64>,
    /// Weight λ of ELECTRA's discriminator loss against the generator's 1.
    #[arg(long)]
    disc_weight: Option<f64>,
    /// Softmax temperature of ELECTRA's generator samples.
    #[arg(long)]
    temperature: Option<f64>,
    /// Decoder layers of the encoder-decoder objectives.
    #[arg(long)]
    decoder_layers: Option<usize>,
    /// Any field of the recipe: `--set PATH=JSON`, e.g. `--set train.warmup_fraction=0.06`
    /// (a value that is not JSON is taken as a string). Repeatable; applied last.
    #[arg(long, value_name = "PATH=JSON")]
    set: Vec<String>,
    /// Floating-point type of every tensor: f32, or bf16 / f16 where the device computes them
    /// faster (GPUs; CPUs with AMX).
    #[arg(long)]
    float: Option<String>,
    /// Device to train on: flex (CPU), cuda, wgpu, rocm or metal (GPUs need the cargo
    /// feature of the same name).
    #[arg(long, default_value = "flex")]
    device: String,
    /// GPUs to train on at once (cuda, rocm): devices 0..N each run a share of every batch.
    #[arg(long, default_value_t = 1)]
    devices: usize,
    /// Run directory (default: runs/OBJECTIVE-PRESET).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in --out from its checkpoint.
    #[arg(long)]
    resume: bool,
    /// Validation examples the encoder-decoder objectives print at the end.
    #[arg(long, default_value_t = 3)]
    show: usize,
}

fn main() -> std::process::ExitCode {
    pretext::exit_with(run(Args::parse()))
}

/// Replaces `field` with `value`, if given.
fn overwrite<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// The recipe the flags describe: the named one (or the file), then each flag's field.
fn recipe(args: &Args, device: DeviceKind) -> Result<Recipe> {
    let preset: Preset = args.preset.as_deref().unwrap_or("mini").parse()?;
    let mut recipe = match (&args.config, &args.objectives) {
        (Some(file), _) => Recipe::from_file(file)?,
        (None, Some(file)) => recipe_of(read_tasks(file)?, preset)?,
        (None, None) => Recipe::named(args.objective.as_deref().unwrap_or("mlm"), preset)?,
    };
    if let Some(file) = &args.tokenizer {
        let sentinels = recipe.tokenizer.sentinels;
        let file = Some(file.clone());
        recipe = recipe.with_tokenizer(TokenizerSource { file, sentinels })?;
    }
    if args.data.is_some() {
        recipe.data.dir = args.data.clone();
    }
    overwrite(&mut recipe.seq_len, args.seq_len);
    overwrite(
        &mut recipe.float,
        args.float
            .as_deref()
            .map(str::parse::<FloatType>)
            .transpose()?,
    );
    let encoder = &mut recipe.encoder;
    overwrite(&mut encoder.dropout, args.dropout);
    overwrite(&mut encoder.norm_first, args.norm_first);
    encoder.share_layers |= args.share_layers;
    if args.embedding_size.is_some() {
        encoder.embedding_size = args.embedding_size;
    }
    let train = &mut recipe.train;
    overwrite(&mut train.steps, args.steps);
    overwrite(&mut train.batch_size, args.batch_size);
    overwrite(&mut train.learning_rate, args.lr);
    overwrite(&mut train.seed, args.seed);
    overwrite(&mut train.valid_every, args.valid_every);
    overwrite(&mut train.valid_batches, args.valid_batches);
    overwrite(&mut train.log_every, args.log_every);
    overwrite(&mut train.checkpoint_every, args.checkpoint_every);
    overwrite(&mut train.grad_accumulation, args.grad_accumulation);
    // A GPU takes the whole batch at once; splitting it over threads only helps a CPU.
    overwrite(
        &mut train.shards,
        args.shards.or((!device.is_cpu()).then_some(1)),
    );

    let json = |v: Option<f64>| v.map(Value::from);
    let unit = args
        .mask_unit
        .as_deref()
        .map(str::parse::<MaskUnit>)
        .transpose()?;
    let noise = args.noise.as_deref().map(BartNoise::preset).transpose()?;
    let settings = [
        (
            "--mask-unit",
            "masking.unit",
            unit.map(|u| serde_json::to_value(u)).transpose()?,
        ),
        ("--pair-weight", "pair_weight", json(args.pair_weight)),
        (
            "--noise",
            "noise",
            noise.map(|n| serde_json::to_value(n)).transpose()?,
        ),
        (
            "--generator-size",
            "electra.generator_size",
            json(args.generator_size),
        ),
        (
            "--disc-weight",
            "electra.disc_weight",
            json(args.disc_weight),
        ),
        (
            "--temperature",
            "electra.temperature",
            json(args.temperature),
        ),
        (
            "--decoder-layers",
            "decoder_layers",
            args.decoder_layers.map(Value::from),
        ),
    ];
    for (flag, path, value) in settings {
        if let Some(value) = value {
            let name = recipe.objective.name();
            recipe
                .set(&format!("objective.settings.{path}"), value)
                .map_err(|e| format!("{flag} does not apply to {name}: {e}"))?;
        }
    }
    for assignment in &args.set {
        let (path, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("--set {assignment}: expected PATH=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::from(value));
        recipe.set(path, value)?;
    }
    Ok(recipe)
}

fn run(args: Args) -> Result<()> {
    if args.list {
        for entry in OBJECTIVES {
            println!("{:<10} {}", entry.name, entry.about);
        }
        return Ok(());
    }
    let device: DeviceKind = args.device.parse()?;
    let recipe = recipe(&args, device)?;
    if args.print {
        println!("{}", recipe.to_json());
        return Ok(());
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let preset = args.preset.as_deref().unwrap_or("mini");
        PathBuf::from(format!("runs/{}-{preset}", recipe.objective.name()))
    });
    // A bad recipe fails here, before any device is touched or text is read.
    recipe.check()?;
    let devices = device.autodiff_devices(args.devices, recipe.float)?;
    pretext::train::tune_allocator();
    let started = Instant::now();
    let options = RunOptions {
        out: out.clone(),
        resume: args.resume,
        devices,
        show: args.show,
    };
    let report = recipe.run(&options)?;

    let valid: Vec<_> = report
        .history
        .iter()
        .filter(|r| r.split == Split::Valid)
        .collect();
    if let (Some(first), Some(last)) = (valid.first(), valid.last()) {
        let vocab = recipe.encoder.vocab_size;
        eprintln!(
            "validation loss {:.3} -> {:.3} (ln vocab = {:.3}); {:?}",
            first.loss,
            last.loss,
            (vocab as f64).ln(),
            last.metrics
        );
    }
    for sample in &report.samples {
        eprintln!("\ninput:  {}", sample.input);
        eprintln!("output: {}", sample.output);
        eprintln!("target: {}", sample.target);
    }
    eprintln!(
        "done in {:.1}s; metrics in {}",
        started.elapsed().as_secs_f64(),
        out.join("metrics.jsonl").display()
    );
    Ok(())
}
