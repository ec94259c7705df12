//! SimCSE's unsupervised contrastive objective (Gao et al., 2021), written outside pretext
//! against its public API alone: every segment is encoded twice, the two passes differing only
//! in their dropout masks, and each must pick out its twin among the batch's other segments
//! (InfoNCE over in-batch negatives). Its metric, in-batch retrieval accuracy, starts near
//! chance (1 / batch size) and rises. The encoder is then fine-tuned on the bundled genre task.
//! Last, [`flags`] mixes a head with targets of its own with MLM over one encoder pass.
//!
//! `cargo run --release -p custom-objective -- [--steps 600] [--finetune-steps 150]
//! [--mix-steps 100] [--out DIR]`

mod flags;

// burn's derives write paths that begin with `burn::`; this crate has burn through pretext.
use pretext::blocks::{AttentionMask, EncoderBackbone, TransformerEncoder};
use pretext::burn;
use pretext::burn::nn::{Linear, LinearConfig};
use pretext::burn::prelude::*;
use pretext::burn::tensor::activation::log_softmax;
use pretext::corpus::Corpus;
use pretext::data::{Batch, SEQUENCES, Segments, Task, Weights, body_len, pack_segments};
use pretext::dataset::Documents;
use pretext::finetune::{ClassificationTask, fine_tune, genre};
use pretext::objectives::{Loss, Metric, Objective, ObjectiveOutput, SequenceClassifierConfig};
use pretext::tokenize::SpecialTokens;
use pretext::train::{TrainConfig, Trainer};
use pretext::util::rng::ExampleRng;
use pretext::{Preset, Pretrainer, Tokenizer};

// ---- The data side: a task makes examples, and collates them into a batch. ----

/// One example: a segment of text framed as `[CLS] … [SEP]`.
#[derive(Debug, Clone)]
struct Sentence {
    ids: Vec<u32>,
}

/// A batch of segments, padded; its loss is over its sequences.
#[derive(Debug, Clone)]
struct SentenceBatch {
    ids: Tensor<2, Int>,
    padding: Tensor<2, Bool>,
    tokens: usize,
}

impl Batch for SentenceBatch {
    fn num_tokens(&self) -> usize {
        self.tokens
    }

    /// The loop divides the summed loss by the step's sequences.
    fn weights(&self) -> Weights {
        Weights::of(SEQUENCES, self.ids.dims()[0] as f64)
    }
}

/// Segments of the corpus, each one example. No noise: dropout makes the two views.
struct SentenceTask {
    segments: Segments,
    special: SpecialTokens,
}

impl SentenceTask {
    fn new(documents: &Documents, tokenizer: &Tokenizer, seq_len: usize) -> pretext::Result<Self> {
        Ok(Self {
            segments: pack_segments(documents, body_len(seq_len)?)?,
            special: tokenizer.special(),
        })
    }
}

impl Task for SentenceTask {
    type Example = Sentence;
    type Batch = SentenceBatch;

    fn num_examples(&self) -> usize {
        self.segments.len()
    }

    fn example(&self, index: usize, _: &mut ExampleRng) -> pretext::Result<Sentence> {
        let (ids, _) = self
            .segments
            .segment(index)
            .framed(self.special.cls, self.special.sep);
        Ok(Sentence { ids })
    }

    fn collate(&self, examples: &[Sentence], device: &Device) -> pretext::Result<SentenceBatch> {
        let len = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        let mut ids = vec![i64::from(self.special.pad); examples.len() * len];
        let mut padding = vec![true; examples.len() * len];
        for (row, example) in examples.iter().enumerate() {
            for (col, &id) in example.ids.iter().enumerate() {
                ids[row * len + col] = i64::from(id);
                padding[row * len + col] = false;
            }
        }
        let shape = [examples.len(), len];
        Ok(SentenceBatch {
            ids: Tensor::from_data(TensorData::new(ids, shape), device),
            padding: Tensor::from_data(TensorData::new(padding, shape), device),
            tokens: examples.iter().map(|e| e.ids.len()).sum(),
        })
    }
}

// ---- The model side: a module holding the objective's own parameters. ----

/// Settings of [`SimCse`].
#[derive(Config, Debug)]
struct SimCseConfig {
    /// Softmax temperature of the cosine similarities. Default 0.05, the paper's.
    #[config(default = 0.05)]
    temperature: f64,
}

impl SimCseConfig {
    fn init<M: EncoderBackbone>(&self, backbone: &M, device: &Device) -> SimCse {
        let width = backbone.hidden_size();
        SimCse {
            pooler: LinearConfig::new(width, width).init(device),
            temperature: self.temperature,
        }
    }
}

/// SimCSE's head: an MLP over `[CLS]` (the paper's training-time pooler), and the loss.
#[derive(Module, Debug)]
struct SimCse {
    pooler: Linear,
    #[module(skip)]
    temperature: f64,
}

impl SimCse {
    /// The unit-length sentence vectors `[batch, width]` of one pass of `backbone`.
    fn embed<M: EncoderBackbone>(&self, backbone: &M, batch: &SentenceBatch) -> Tensor<2> {
        let mask = AttentionMask::padding(batch.padding.clone());
        let hidden = backbone.encode(batch.ids.clone(), None, Some(&mask));
        let [rows, _, width] = hidden.dims();
        let cls = hidden.slice([0..rows, 0..1]).reshape([rows, width]);
        let v = self.pooler.forward(cls).tanh();
        let norm = v.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-8);
        v / norm
    }
}

impl<M: EncoderBackbone> Objective<M> for SimCse {
    type Batch = SentenceBatch;

    fn forward(&self, backbone: &M, batch: SentenceBatch) -> ObjectiveOutput {
        // Two passes over the same ids: each draws its own dropout masks.
        let (a, b) = (self.embed(backbone, &batch), self.embed(backbone, &batch));
        let rows = a.dims()[0];
        let device = a.device();
        let training = device.is_autodiff();
        let similarity = a.matmul(b.transpose()).div_scalar(self.temperature);
        // Row i's positive is column i; every other column is a negative.
        let twins = Tensor::<1, Int>::arange(0..rows as i64, &device);
        let log_p = log_softmax(similarity.clone(), 1).gather(1, twins.clone().reshape([rows, 1]));
        let nll = log_p.sum().neg();
        let found = similarity
            .argmax(1)
            .reshape([rows])
            .equal(twins)
            .float()
            .sum();
        let count = Tensor::<1>::from_floats([rows as f32], &device);
        let mut metrics = vec![Metric::mean(
            "contrastive_loss",
            nll.clone().detach(),
            count.clone(),
        )];
        // Validation runs without dropout, where the two views coincide and retrieval is
        // trivially perfect: the accuracy is reported while training only.
        if training {
            metrics.push(Metric::mean("retrieval_acc", found, count));
        }
        ObjectiveOutput {
            // Summed over the batch's sequences; the loop divides by the step's.
            loss: Loss::over(SEQUENCES, nll),
            metrics,
        }
    }

    /// Every sentence's negatives are the batch's other sentences: the trainer keeps the
    /// batch whole.
    fn couples_batch(&self) -> bool {
        true
    }
}

// ---- Training with pretext's loop, then fine-tuning the encoder. ----

/// `--name value` from the command line, or `default`.
fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: usize = arg("--steps", 600);
    let finetune_steps: usize = arg("--finetune-steps", 150);
    let mix_steps: usize = arg("--mix-steps", 100);
    let out: String = arg("--out", "runs/simcse".to_string());
    let batch_size = 32;

    let tokenizer = Tokenizer::bundled()?;
    let (train_docs, valid_docs) = Corpus::bundled()?.split(0.05, 0)?;
    let train = SentenceTask::new(
        &Documents::tokenize(&train_docs, &tokenizer)?,
        &tokenizer,
        64,
    )?;
    let valid = SentenceTask::new(
        &Documents::tokenize(&valid_docs, &tokenizer)?,
        &tokenizer,
        64,
    )?;

    let config = TrainConfig::new(steps.max(1), batch_size)
        .with_learning_rate(1e-3)
        .with_valid_every(steps.div_ceil(4).max(1))
        .with_log_every(steps.div_ceil(10).max(1))
        // One shard: a shard's rows are each other's negatives, so all 32 compete.
        .with_shards(1);
    let device = Device::flex().autodiff();
    let _seeded = config.seed_device(&device);
    let mut backbone: TransformerEncoder =
        Preset::Tiny.encoder(tokenizer.vocab_size()).init(&device)?;
    // `--steps 0` fine-tunes the fresh encoder: the baseline SimCSE is measured against.
    if steps > 0 {
        let simcse = SimCseConfig::new().init(&backbone, &device);
        let report = Trainer::new(Pretrainer::new(backbone, simcse), &config)
            .output(format!("{out}/pretrain"))
            .fit(&train, &valid)?;
        let retrieval: Vec<f64> = report
            .history
            .iter()
            .filter_map(|r| r.metrics.get("retrieval_acc").copied())
            .collect();
        println!(
            "in-batch retrieval accuracy, logged every {} steps: {retrieval:.3?} (chance {:.3})",
            config.log_every,
            1.0 / batch_size as f64
        );
        backbone = report.model.backbone;
    }

    // The encoder, fine-tuned on genre through pretext's own fine-tuning.
    let data = genre::load(200)?;
    let classes = data.labels.len();
    let task = |texts: &[_]| ClassificationTask::new(texts, &tokenizer, classes, 128);
    let (genre_train, genre_valid) = data.tasks(task)?;
    let genre_test = task(&data.test)?;
    let head = SequenceClassifierConfig::new(classes, "genre".into()).init(&backbone, &device)?;
    let config = TrainConfig::new(finetune_steps, 16)
        .with_learning_rate(1e-3)
        .with_valid_every(finetune_steps.max(1))
        .with_checkpoint_every(0);
    let (_, scores) = fine_tune(
        backbone,
        head,
        [&genre_train, &genre_valid, &genre_test],
        &config,
        Some(std::path::Path::new(&format!("{out}/genre"))),
        &device,
    )?;
    let source = if steps > 0 {
        "after SimCSE"
    } else {
        "from scratch"
    };
    println!(
        "genre {source}: test accuracy {:.3}, macro-F1 {:.3} over {} passages ({classes} classes)",
        scores.accuracy, scores.macro_f1, scores.examples
    );

    // A head with targets of its own, mixed with MLM over one pass of a fresh encoder.
    let tokenized = |docs| Documents::tokenize(docs, &tokenizer);
    let train = flags::FlaggedMlm::new(&tokenized(&train_docs)?, &tokenizer, 64)?;
    let valid = flags::FlaggedMlm::new(&tokenized(&valid_docs)?, &tokenizer, 64)?;
    let config = TrainConfig::new(mix_steps.max(1), 16)
        .with_learning_rate(2e-3)
        .with_valid_every(mix_steps.max(1))
        .with_checkpoint_every(0);
    let _seeded = config.seed_device(&device);
    let backbone = Preset::Tiny.encoder(tokenizer.vocab_size()).init(&device)?;
    let report = flags::train(backbone, [&train, &valid], &config, &device)?;
    if let Some(last) = report.history.last() {
        let metric = |name: &str| last.metrics.get(name).copied().unwrap_or(f64::NAN);
        println!(
            "flags + MLM over one pass, {mix_steps} steps: validation flag AUC {:.3} (chance \
             0.5), MLM accuracy {:.3}",
            metric("flag_auc"),
            metric("mlm_acc")
        );
    }
    Ok(())
}
