//! Pretrains a Transformer with a named recipe (an objective's reference defaults) or a recipe
//! file, on the bundled corpus or your own text: a thin command line over [`pretext::recipe`].
//!
//! ```text
//! cargo run --release --example pretrain                       # modernbert, mini, ~2 min on 2 cores
//! cargo run --release --example pretrain -- --list             # every named objective
//! cargo run --release --example pretrain -- --objective clm --preset tiny --steps 200 --out runs/clm
//! cargo run --release --example pretrain -- --objective albert --print   # the recipe, as JSON
//! cargo run --release --example pretrain -- --config runs/clm/config.json --out runs/clm2  # replay
//! cargo run --release --example pretrain -- --objective bart --noise rotate   # one transform
//! cargo run --release --example pretrain -- --objective electra --set objective.settings.electra.temperature=2
//! cargo run --release --example pretrain -- --objectives examples/ernie2.json  # multi-task
//! cargo run --release --example pretrain -- --init-from models/minilm --objective electra  # a BERT
//! cargo run --release --example pretrain -- --objective distill --teacher models/minilm  # a student
//! cargo run --release --example pretrain -- --preset tiny --export-hf runs/mlm-tiny-hf  # out to HF
//! cargo run --release --example pretrain -- --objective sft --init-from runs/clm --lora  # adapters
//! cargo run --release --example pretrain -- --objective mae --data ~/.cache/pretext/data/fashion-mnist
//! cargo run --release --example pretrain -- --out runs/clm --resume   # continue a stopped run
//! ```
//!
//! Writes `OUT/config.json` (the complete recipe), `OUT/metrics.jsonl` (one JSON object per
//! line), `OUT/checkpoint/` and, at the end, `OUT/encoder.bpk`: the encoder one fine-tunes (the
//! discriminator of `electra`, the encoder of an encoder-decoder). The encoder-decoder
//! objectives end by printing a few validation examples: the corrupted input, the model's
//! greedy output and the target.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use pretext::Preset;
use pretext::dataset::prepared::tokenizer_of;
use pretext::device::{DeviceKind, FloatType};
use pretext::lora::LoraConfig;
use pretext::noise::MaskUnit;
use pretext::noise::bart::BartNoise;
use pretext::recipe::multitask::{read_tasks, recipe_of};
use pretext::recipe::{OBJECTIVES, Recipe, RunOptions, TokenizerSource};
use pretext::train::{Collective, Solo};
use serde_json::Value;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Pretrain a Transformer language model. The flags change fields of the named recipe (or of
/// the --config file); --set changes any field (--print shows them all).
#[derive(Parser, Debug)]
struct Args {
    /// The objective, by its registry name (--list names them all). Default: modernbert, masked
    /// LM on ModernBERT's recipe, which learns the most per CPU-minute of the named ones
    /// (examples/ablation); mlm is BERT's.
    #[arg(long, conflicts_with_all = ["config", "objectives"])]
    objective: Option<String>,
    /// A JSON list of objectives trained at once (ERNIE 2.0 style; see examples/ernie2.json).
    #[arg(long, conflicts_with = "config")]
    objectives: Option<PathBuf>,
    /// A recipe file to run, such as a run's own config.json (with a fresh --out: a replay).
    #[arg(long, conflicts_with = "preset", requires = "out")]
    config: Option<PathBuf>,
    /// Print every named objective, with a line about it.
    #[arg(long)]
    list: bool,
    /// Print the complete recipe as JSON instead of running it.
    #[arg(long)]
    print: bool,
    /// Size and training defaults of a named recipe: tiny, mini (default), small or base.
    #[arg(long)]
    preset: Option<String>,
    /// Optimizer updates (named recipes: 300; 1000 for the sentence-level ones).
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
    /// Checkpoint every N steps (and at the end).
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Parts each batch is split into, each on a thread of its own (default: one per core;
    /// 1 on a GPU).
    #[arg(long)]
    shards: Option<usize>,
    /// The text: a file or a folder (one document per .txt file; .jsonl lines with a `text`
    /// field), or a dataset `prepare` wrote (default: the bundled corpus); for sft, reward and
    /// dpo, their JSON-lines file of pairs; for mae, simclr, beit and rotation, Fashion-MNIST's
    /// directory (default: the bundled subset).
    #[arg(long)]
    data: Option<PathBuf>,
    /// A tokenizer.json (default: the one a prepared --data dataset keeps, else the bundled
    /// one); the encoder's vocabulary follows it.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Continue pretraining a Hugging Face BERT directory: its shape, weights and tokenizer.
    #[arg(long, conflicts_with = "tokenizer")]
    init_from: Option<PathBuf>,
    /// The teacher `distill` learns from (a pretext run or a Hugging Face encoder directory):
    /// the student takes its shape and tokenizer with half its layers, started from every
    /// other one.
    #[arg(long, conflicts_with_all = ["tokenizer", "init_from"])]
    teacher: Option<PathBuf>,
    /// Train low-rank adapters (LoRA: rank 8, alpha 16, on attention's query and value) on the
    /// frozen backbone, beside the objective's head, instead of every weight (`--set
    /// lora.rank=4`, `--set 'lora.targets=["query","value","ffn.up"]'` change them). The run
    /// saves the adapters (adapters.bpk) and the encoder with them merged (encoder.bpk).
    #[arg(long)]
    lora: bool,
    /// What MLM masking selects: token, word, ngram (ALBERT's) or span (SpanBERT's).
    #[arg(long)]
    mask_unit: Option<MaskUnit>,
    /// Weight of the sentence-level loss against MLM's 1 (bert, albert).
    #[arg(long)]
    pair_weight: Option<f64>,
    /// BART's noise: bart (30 % infilled + sentences permuted), or one transform alone: mask,
    /// delete, infill, permute or rotate.
    #[arg(long, value_parser = BartNoise::preset)]
    noise: Option<BartNoise>,
    /// Any field: `--set PATH=JSON`, e.g. `--set train.warmup_fraction=0.06` (a value that is
    /// not JSON is a string). Repeatable; applied last.
    #[arg(long, value_name = "PATH=JSON")]
    set: Vec<String>,
    /// Float type of every tensor: f32, or bf16 / f16 where the device is faster in them.
    #[arg(long)]
    float: Option<FloatType>,
    /// flex (the CPU), cuda, wgpu, rocm or metal (GPUs need the cargo feature of that name).
    #[arg(long, default_value = "flex")]
    device: DeviceKind,
    /// GPUs at once (cuda, rocm): devices 0..N each run a share of every batch.
    #[arg(long, default_value_t = 1)]
    devices: usize,
    /// Run directory (default: runs/OBJECTIVE-PRESET).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in --out from its checkpoint.
    #[arg(long)]
    resume: bool,
    /// At the end, write the model as a Hugging Face directory here: BERT or ALBERT (with the
    /// MLM head, if the objective has one), ELECTRA, or GPT-2 (a `clm` run shaped as GPT-2).
    /// A finished run exports alone, in a second: `cargo run --release --example export --
    /// RUN DIR`.
    #[arg(long)]
    export_hf: Option<PathBuf>,
    /// Let --export-hf write over a directory that is not empty.
    #[arg(long)]
    force: bool,
    /// Validation examples the encoder-decoder objectives print at the end.
    #[arg(long, default_value_t = 3)]
    show: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    #[cfg(feature = "mpi")]
    if pretext::train::launched_ranks().is_some() {
        return on_mpi_ranks(args);
    }
    if let Some(ranks) = pretext::train::launched_ranks().filter(|&n| n > 1) {
        return pretext::exit_with(Err(format!(
            "launched as one of {ranks} ranks, but built without MPI: build with `--features mpi`"
        )
        .into()));
    }
    pretext::exit_with(run(args, Arc::new(Solo)))
}

/// The run as one rank of an `mpirun` launch: a rank that fails ends the whole job at once,
/// since the others would wait for it in the step's sums.
#[cfg(feature = "mpi")]
fn on_mpi_ranks(args: Args) -> std::process::ExitCode {
    let mpi = match pretext::train::mpi::Mpi::init() {
        Ok(mpi) => mpi,
        Err(e) => return pretext::exit_with(Err(e.into())),
    };
    if mpi.rank() == 0 {
        eprintln!("{} ranks (MPI)", mpi.size());
    }
    match run(args, mpi.ranks()) {
        Ok(()) => {
            let spent = mpi.spent();
            if mpi.rank() == 0 {
                eprintln!(
                    "rank 0 spent {:.2}s in {} MPI collectives, sending {:.1} MB",
                    spent.time.as_secs_f64(),
                    spent.calls,
                    spent.bytes as f64 / 1e6
                );
            }
            mpi.finish();
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error on rank {}: {e}", mpi.rank());
            mpi.abort(1)
        }
    }
}

/// The recipe the flags describe: the named one (or the file), then each flag's field.
fn recipe(args: &Args) -> Result<Recipe> {
    let preset: Preset = args.preset.as_deref().unwrap_or("mini").parse()?;
    let mut recipe = match (&args.config, &args.objectives) {
        (Some(file), _) => Recipe::from_file(file)?,
        (None, Some(file)) => recipe_of(read_tasks(file)?, preset)?,
        (None, None) => Recipe::named(args.objective.as_deref().unwrap_or("modernbert"), preset)?,
    };
    if let Some(dir) = &args.init_from {
        recipe = recipe.init_from(dir)?;
    }
    if let Some(dir) = &args.teacher {
        recipe = recipe.with_teacher(dir)?;
    }
    // A prepared dataset keeps its tokenizer: a run over it reads text the same way unless a
    // tokenizer is named (or comes with the recipe file, the starting model or the teacher).
    let kept = match (&args.config, &args.init_from, &args.teacher, &args.data) {
        (None, None, None, Some(data)) => tokenizer_of(data),
        _ => None,
    };
    if let Some(file) = args.tokenizer.clone().or(kept) {
        let sentinels = recipe.tokenizer.sentinels;
        if args.tokenizer.is_none() {
            eprintln!(
                "{}: the tokenizer the dataset was prepared with",
                file.display()
            );
        }
        recipe = recipe.with_tokenizer(TokenizerSource {
            file: Some(file),
            sentinels,
        })?;
    }
    // A GPU takes a whole batch at once; splitting it over threads only helps the CPU.
    let shards = args.shards.or((!args.device.is_cpu()).then_some(1));
    let train = &mut recipe.train;
    for (field, value) in [
        (&mut train.steps, args.steps),
        (&mut train.batch_size, args.batch_size),
        (&mut train.valid_every, args.valid_every),
        (&mut train.checkpoint_every, args.checkpoint_every),
        (&mut train.shards, shards),
        (&mut recipe.seq_len, args.seq_len),
    ] {
        *field = value.unwrap_or(*field);
    }
    recipe.train.learning_rate = args.lr.unwrap_or(recipe.train.learning_rate);
    recipe.train.seed = args.seed.unwrap_or(recipe.train.seed);
    recipe.float = args.float.unwrap_or(recipe.float);
    if args.lora {
        recipe.lora = Some(LoraConfig::new());
    }
    // An objective with a data file of its own (sft, reward, dpo) reads --data as that file;
    // an image objective (mae, simclr, beit, rotation) as Fashion-MNIST's directory; every
    // other objective as its corpus.
    if let Some(data) = &args.data {
        let settings = recipe.objective.settings();
        let path = data.to_string_lossy().into();
        match (settings.data_file(), settings.reads_corpus()) {
            (Some(_), _) => recipe.set("objective.settings.data", path)?,
            (None, false) => recipe.set("objective.settings.images.dir", path)?,
            (None, true) => recipe.data.dir = Some(data.clone()),
        }
    }
    let settings = [
        (
            "--mask-unit",
            "masking.unit",
            args.mask_unit.map(serde_json::to_value),
        ),
        (
            "--pair-weight",
            "pair_weight",
            args.pair_weight.map(|w| Ok(w.into())),
        ),
        ("--noise", "noise", args.noise.map(serde_json::to_value)),
    ];
    for (flag, path, value) in settings {
        if let Some(value) = value {
            let name = recipe.objective.name();
            recipe
                .set(&format!("objective.settings.{path}"), value?)
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

fn run(args: Args, ranks: Arc<dyn Collective>) -> Result<()> {
    if args.list {
        for entry in OBJECTIVES {
            println!("{:<10} {}", entry.name, entry.about);
        }
        return Ok(());
    }
    let recipe = recipe(&args)?;
    if args.print {
        println!("{}", recipe.to_json());
        return Ok(());
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let preset = args.preset.as_deref().unwrap_or("mini");
        PathBuf::from(format!("runs/{}-{preset}", recipe.objective.name()))
    });
    // A bad recipe fails here, before any device is touched or any text is read.
    recipe.check()?;
    // SFT, reward models and DPO tune a trained causal model; from random weights they run,
    // but teach a model that knows no language.
    if recipe.objective.settings().data_file().is_some() && recipe.init.is_none() {
        eprintln!(
            "warning: {} tunes a trained causal model and none is given, so it starts from \
             random weights; pass --init-from RUN (a clm or sft run, or a Hugging Face GPT-2)",
            recipe.objective.name()
        );
    }
    if let Some(dir) = &args.export_hf {
        if let Some(what) = recipe.hf_misfit() {
            let dir = dir.display();
            return Err(format!("--export-hf {dir}: the model would have {what}").into());
        }
        pretext::hf::check_export_dir(dir, args.force)?;
    }
    let devices = args.device.autodiff_devices(args.devices, recipe.float)?;
    pretext::train::tune_allocator();
    let started = Instant::now();
    let options = RunOptions {
        out: out.clone(),
        resume: args.resume,
        devices,
        show: args.show,
        ranks: Arc::clone(&ranks),
    };
    let report = recipe.run(&options)?;
    if ranks.rank() != 0 {
        return Ok(());
    }
    if let Some(summary) = report.summary() {
        // Beside a token loss, what guessing uniformly would score.
        match recipe.objective.settings().reads_corpus() {
            true => {
                let ln_vocab = (recipe.encoder.vocab_size as f64).ln();
                eprintln!("{summary} (ln vocab = {ln_vocab:.3})")
            }
            false => eprintln!("{summary}"),
        }
    }
    for sample in &report.samples {
        eprintln!("\n{sample}");
    }
    if let Some(dir) = &args.export_hf {
        let class = recipe.export_hf(&out, dir, args.force).map_err(|e| {
            format!(
                "{e}\nthe trained run is saved in {}: export it with `cargo run --release \
                 --example export -- {} DIR`",
                out.display(),
                out.display()
            )
        })?;
        eprintln!("exported to {} (transformers: {class})", dir.display());
    }
    eprintln!(
        "done in {:.1}s; metrics in {}",
        started.elapsed().as_secs_f64(),
        out.join("metrics.jsonl").display()
    );
    Ok(())
}
