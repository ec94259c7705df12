//! End-to-end: each objective trains a tiny model on real bundled text and its loss falls.

mod common;

use burn::module::{Module, ModuleDisplay, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use pretext::blocks::{
    EncoderDecoder, EncoderDecoderConfig, TransformerEncoder, TransformerEncoderConfig,
};
use pretext::data::PairKind;
use pretext::data::{Batch, Seq2SeqBatch, Task};
use pretext::dataset::Documents;
use pretext::noise::bart::BartNoise;
use pretext::noise::{MaskUnit, MlmMasking, PermutationMasking};
use pretext::objectives::PairTaskConfig;
use pretext::objectives::spanbert::SpanBertSettings;
use pretext::objectives::unilm::UnilmSettings;
use pretext::objectives::{
    BartTask, ClmConfig, ClmTask, DistillConfig, ElectraConfig, ElectraTask, MassTask, Mix, Mlm,
    MlmConfig, Objective, PairHeadConfig, PermutationTask, PermutedLmConfig, SboHeadConfig,
    SentencePairTask, Seq2Seq, Seq2SeqConfig, SpanBertConfig, SpanBertTask, SpanCorruption, T5Task,
    Teacher, UnilmConfig, UnilmShares, UnilmTask,
};
use pretext::train::{Split, TrainReport, Trainer};
use pretext::util::rng::example_rng;
use pretext::{Pretrainer, Tokenizer};

/// Trains `model` for `steps` on the task `make_task` builds from each split of real text.
fn train_on<M, O, T>(
    model: Pretrainer<M, O>,
    steps: usize,
    make_task: impl Fn(&Tokenizer, &Documents) -> T,
) -> TrainReport<M, O>
where
    M: Module + ModuleDisplay,
    O: Objective<M, Batch = T::Batch>,
    T: Task,
{
    let (tokenizer, train_docs, valid_docs) = common::real_text();
    Trainer::new(model, &common::quick_config(steps))
        .device(&model_device())
        .fit(
            &make_task(&tokenizer, &train_docs),
            &make_task(&tokenizer, &valid_docs),
        )
        .unwrap()
}

fn model_device() -> Device {
    Device::flex().autodiff()
}

/// Trains `encoder` with MLM for 60 steps on real text; returns the report and ln V.
fn train_mlm(encoder: TransformerEncoderConfig) -> (TrainReport<TransformerEncoder, Mlm>, f64) {
    let device = model_device();
    let model = common::seeded(&device, || {
        common::with_mlm(encoder.init(&device).unwrap(), &device)
    });
    let report = train_on(model, 60, |tokenizer, docs| {
        common::mlm_task(tokenizer, docs, 64)
    });
    let vocab = Tokenizer::bundled().unwrap().vocab_size();
    (report, (vocab as f64).ln())
}

/// Trains MLM + the `kind` pair head on `encoder` for 60 steps; returns the last validation
/// metrics after checking that the loss fell.
fn train_mlm_with_pairs(
    encoder: TransformerEncoderConfig,
    kind: PairKind,
) -> std::collections::BTreeMap<String, f64> {
    let device = model_device();
    let model = common::seeded(&device, || {
        let backbone = encoder.init(&device).unwrap();
        let mlm = MlmConfig::new().init(&backbone, &device);
        let pairs = PairHeadConfig::new(kind).init(&backbone, &device);
        Pretrainer::new(backbone, Mix::new(mlm, 1.0, pairs, 1.0).unwrap())
    });
    let masking = Some(MlmMasking {
        unit: if kind == PairKind::SentenceOrder {
            MaskUnit::ALBERT
        } else {
            MaskUnit::Token
        },
        ..MlmMasking::default()
    });
    let report = train_on(model, 60, |tokenizer, docs| {
        SentencePairTask::new(docs, tokenizer, PairTaskConfig { kind, masking }, 64).unwrap()
    });
    let (head, tail) = head_and_tail(&report.history);
    assert!(
        tail < 0.9 * head,
        "{} mix loss did not fall: {head} -> {tail}",
        kind.name()
    );
    pair_head_fits_its_labels(kind);
    last_valid(&report.history).clone()
}

/// The pair head alone learns its labels: in 60 steps of the mix on five plays, it stays at
/// chance (NSP and SOP are slow to learn, and here the sum's fall is MLM's), so the test
/// affords a smaller question: on the opening scenes of the five plays, seen again and again,
/// does the pair loss fall and the accuracy rise above chance on those scenes' pairs (whose
/// order and negatives are drawn anew for validation)? A head cut off from its labels, or
/// trained on the wrong sign, stays at ln 2 and 0.5.
fn pair_head_fits_its_labels(kind: PairKind) {
    let (tokenizer, _, _) = common::real_text();
    let mut corpus = common::plays(5);
    for document in &mut corpus.documents {
        document.sentences.truncate(PAIR_SENTENCES);
    }
    let docs = Documents::tokenize(&corpus, &tokenizer).unwrap();
    let device = model_device();
    // The tiny BERT encoder under both heads: the question is the head's (ALBERT's shared,
    // factorized backbone learns in the mix above, and alone collapses at this rate on some
    // seeds).
    let model = common::seeded(&device, || {
        let backbone = common::tiny_encoder(&tokenizer).init(&device).unwrap();
        let pairs = PairHeadConfig::new(kind).init(&backbone, &device);
        Pretrainer::new(backbone, pairs)
    });
    let task = SentencePairTask::new(&docs, &tokenizer, kind, 64).unwrap();
    eprintln!("{} pair examples", task.num_examples());
    let config = common::quick_config(PAIR_STEPS)
        .with_learning_rate(PAIR_LR)
        .with_valid_batches(8);
    let report = Trainer::new(model, &config)
        .device(&device)
        .fit(&task, &task)
        .unwrap();
    let name = kind.name();
    // 20 steps a side: a step's pair loss is over 8 pairs, and noisy.
    let (head, tail) = metric_head_and_tail(&report.history, &format!("{name}_loss"), 20);
    let valid = last_valid(&report.history);
    eprintln!("{name} alone, valid {valid:?}");
    assert!(tail < PAIR_LOSS_FALL * head, "{name} loss {head} -> {tail}");
    let acc = valid[&format!("{name}_acc")];
    assert!(acc > PAIR_ACC, "{name} accuracy {acc}: {valid:?}");
}

/// Sentences kept from each play, steps, and the bars of [`pair_head_fits_its_labels`] (the
/// closing note of issue 42 has the worst values over seeds).
const PAIR_SENTENCES: usize = 40;
const PAIR_STEPS: usize = 300;
const PAIR_LR: f64 = 1e-3;
const PAIR_LOSS_FALL: f64 = 0.9;
const PAIR_ACC: f64 = 0.65;

/// The metrics of the last validation in `history`.
fn last_valid(history: &[pretext::train::LogRecord]) -> &std::collections::BTreeMap<String, f64> {
    &history
        .iter()
        .rfind(|r| r.split == Split::Valid)
        .expect("a validation record")
        .metrics
}

/// Mean of the first and of the last `window` train records' `name` metric.
fn metric_head_and_tail(
    history: &[pretext::train::LogRecord],
    name: &str,
    window: usize,
) -> (f64, f64) {
    let values: Vec<f64> = history
        .iter()
        .filter(|r| r.split == Split::Train)
        .filter_map(|r| r.metrics.get(name).copied())
        .collect();
    let (head, tail) = common::ends(&values, window);
    eprintln!("{name} {head:.3} -> {tail:.3}");
    (head, tail)
}

/// Mean of the first and of the last five train losses.
fn head_and_tail(history: &[pretext::train::LogRecord]) -> (f64, f64) {
    let (head, tail) = common::ends(&common::train_losses(history), 5);
    eprintln!("loss {head:.3} -> {tail:.3}");
    (head, tail)
}

#[test]
fn mlm_loss_starts_near_ln_vocab_and_falls_on_real_text() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let (report, ln_v) = train_mlm(common::tiny_encoder(&tokenizer));
    let losses = common::train_losses(&report.history);
    assert!(
        (losses[0] - ln_v).abs() < 0.3,
        "untrained loss {} vs ln V {ln_v}",
        losses[0]
    );
    let (head, tail) = head_and_tail(&report.history);
    assert!(
        tail < 0.85 * head,
        "MLM loss did not fall: {head} -> {tail}"
    );
    let valid = report
        .history
        .iter()
        .find(|r| r.split == Split::Valid)
        .unwrap();
    eprintln!(
        "first loss {} (ln V {ln_v}), valid loss {}",
        losses[0], valid.loss
    );
    assert!(valid.metrics.contains_key("mlm_acc"));
    assert!(valid.loss < ln_v - 0.5, "validation loss {}", valid.loss);
}

#[test]
fn clm_loss_falls_on_real_text() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = model_device();
    let model = common::seeded(&device, || {
        let backbone = common::tiny_encoder(&tokenizer).init(&device).unwrap();
        let head = ClmConfig::new().init(&backbone, &device);
        Pretrainer::new(backbone, head)
    });
    let report = train_on(model, 40, |tokenizer, docs| {
        ClmTask::new(docs, tokenizer, 64).unwrap()
    });
    let (head, tail) = head_and_tail(&report.history);
    assert!(
        tail < 0.85 * head,
        "CLM loss did not fall: {head} -> {tail}"
    );
    let valid = report
        .history
        .iter()
        .find(|r| r.split == Split::Valid)
        .unwrap();
    eprintln!("clm valid ppl {}", valid.metrics["ppl"]);
    assert!(valid.metrics["ppl"] < tokenizer.vocab_size() as f64 / 2.0);
}

/// Paths of the float parameters of `model` that `grads` has no non-zero gradient for, and
/// how many parameters there are.
fn unreached_parameters<M: Module>(model: &M, grads: &GradientsParams) -> (Vec<String>, usize) {
    struct Check<'a> {
        grads: &'a GradientsParams,
        path: Vec<String>,
        missing: Vec<String>,
        seen: usize,
    }
    impl ModuleVisitor for Check<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.seen += 1;
            let reached = self
                .grads
                .get::<D>(param.id)
                .is_some_and(|g| g.abs().sum().into_scalar::<f32>() > 0.0);
            if !reached {
                self.missing.push(self.path.join("."));
            }
        }
    }
    let mut check = Check {
        grads,
        path: Vec::new(),
        missing: Vec::new(),
        seen: 0,
    };
    model.visit(&mut check);
    (check.missing, check.seen)
}

/// The gradients of `model`'s loss on the first 8 examples of `task`.
fn first_batch_grads<M, O, T>(
    model: &Pretrainer<M, O>,
    task: &T,
    device: &Device,
) -> GradientsParams
where
    M: Module + ModuleDisplay,
    O: Objective<M, Batch = T::Batch>,
    T: Task,
{
    let examples: Vec<_> = (0..8)
        .map(|i| task.example(i, &mut example_rng(0, 0, i as u64)).unwrap())
        .collect();
    let batch = task.collate(&examples, device).unwrap();
    let weights = batch.weights();
    let loss = model.forward(batch).loss.normalized(&weights);
    GradientsParams::from_grads(loss.backward(), model)
}

#[test]
fn gradients_reach_every_parameter() {
    let (tokenizer, train_docs, _) = common::real_text();
    let device = Device::flex().autodiff();
    let model = common::tiny_mlm(&tokenizer, &device);
    let task = common::mlm_task(&tokenizer, &train_docs, 64);
    let grads = first_batch_grads(&model, &task, &device);
    let (missing, seen) = unreached_parameters(&model, &grads);
    assert!(seen > 20, "visited only {seen} parameters");
    assert!(missing.is_empty(), "no gradient reached {missing:?}");
}

/// The tiny encoder-decoder (2 + 2 layers, width 64) of the named recipe `name` (its block:
/// T5's for `t5`), with its head.
fn tiny_seq2seq(name: &str, device: &Device) -> Pretrainer<EncoderDecoder, Seq2Seq> {
    let encoder = pretext::recipe::Recipe::named(name, pretext::Preset::Tiny)
        .unwrap()
        .encoder;
    common::seeded(device, || {
        let backbone = EncoderDecoderConfig::new(encoder, 2).init(device).unwrap();
        let head = Seq2SeqConfig::new().init(&backbone, device);
        Pretrainer::new(backbone, head)
    })
}

/// Trains the tiny encoder-decoder on `make_task`'s data; checks that its loss falls and that
/// the batches reach every parameter.
fn train_seq2seq<T>(name: &str, make_task: impl Fn(&Tokenizer, &Documents) -> T)
where
    T: Task<Batch = Seq2SeqBatch>,
{
    let device = model_device();
    let model = tiny_seq2seq(name, &device);
    let (tokenizer, train_docs, _) = common::real_text();
    let grads = first_batch_grads(&model, &make_task(&tokenizer, &train_docs), &device);
    let (missing, _) = unreached_parameters(&model, &grads);
    assert!(
        missing.is_empty(),
        "{name}: no gradient reached {missing:?}"
    );

    let report = train_on(model, 60, make_task);
    let (head, tail) = head_and_tail(&report.history);
    assert!(
        tail < 0.85 * head,
        "{name} loss did not fall: {head} -> {tail}"
    );
    // An untrained decoder is right about 1 time in 8,192; one that has learned the frequent
    // tokens, 4-9 % (over the seeds and kernels tried: BART 0.061 at worst, MASS 0.039, T5,
    // whose targets are mostly sentinels, 0.26), so the bar sits at half MASS's worst.
    let metrics = last_valid(&report.history);
    eprintln!("{name} valid token_acc {}", metrics["token_acc"]);
    assert!(metrics["token_acc"] > 0.02, "{name}: {metrics:?}");
}

#[test]
fn bart_trains_an_encoder_decoder_on_real_text() {
    train_seq2seq("bart", |tokenizer, docs| {
        BartTask::new(docs, tokenizer, BartNoise::BART, 64).unwrap()
    });
}

#[test]
fn mass_trains_an_encoder_decoder_on_real_text() {
    train_seq2seq("mass", |tokenizer, docs| {
        MassTask::new(docs, tokenizer, 0.5, 64).unwrap()
    });
}

#[test]
fn t5_trains_an_encoder_decoder_on_real_text() {
    train_seq2seq("t5", |tokenizer, docs| {
        let tokenizer = tokenizer.clone().with_sentinels(100).unwrap();
        T5Task::new(docs, &tokenizer, SpanCorruption::default(), 64).unwrap()
    });
}

#[test]
fn an_albert_backbone_factorized_and_shared_trains_with_mlm() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let encoder = common::tiny_encoder(&tokenizer)
        .with_embedding_size(Some(32))
        .with_share_layers(true);
    let (report, _) = train_mlm(encoder);
    let (head, tail) = head_and_tail(&report.history);
    // One shared layer over 32-wide embeddings learns more slowly in 60 steps (about 0.80x
    // seen); the bar is that it clearly learns.
    assert!(
        tail < 0.9 * head,
        "ALBERT MLM loss did not fall: {head} -> {tail}"
    );
}

#[test]
fn bert_mlm_plus_nsp_trains_on_real_text() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let metrics = train_mlm_with_pairs(common::tiny_encoder(&tokenizer), PairKind::NextSentence);
    for key in ["mlm_acc", "mlm_ppl", "nsp_acc", "nsp_loss"] {
        assert!(metrics.contains_key(key), "{key} missing from {metrics:?}");
    }
}

#[test]
fn albert_mlm_plus_sop_trains_on_a_factorized_shared_backbone() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let encoder = common::tiny_encoder(&tokenizer)
        .with_embedding_size(Some(32))
        .with_share_layers(true);
    let metrics = train_mlm_with_pairs(encoder, PairKind::SentenceOrder);
    for key in ["mlm_acc", "sop_acc", "sop_loss"] {
        assert!(metrics.contains_key(key), "{key} missing from {metrics:?}");
    }
}

#[test]
fn electra_trains_generator_and_discriminator_on_real_text() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = model_device();
    let model = common::seeded(&device, || {
        let backbone = common::tiny_encoder(&tokenizer).init(&device).unwrap();
        let electra = ElectraConfig::new().init(&backbone, &device).unwrap();
        Pretrainer::new(backbone, electra)
    });
    let report = train_on(model, 60, |tokenizer, docs| {
        ElectraTask::new(docs, tokenizer, MlmMasking::electra(), 64).unwrap()
    });
    let (head, tail) = head_and_tail(&report.history);
    assert!(
        tail < 0.85 * head,
        "ELECTRA loss did not fall: {head} -> {tail}"
    );
    let m = last_valid(&report.history);
    eprintln!("electra valid {m:?}");
    for key in [
        "gen_acc",
        "disc_acc",
        "replaced_frac",
        "disc_loss",
        "disc_auc",
    ] {
        assert!(m.contains_key(key), "{key} missing from {m:?}");
    }
    // Most masked positions get a token other than the original from an untrained generator.
    assert!((0.08..0.16).contains(&m["replaced_frac"]), "{m:?}");
    // The generator learns: its accuracy at the masked positions rises from ~0.016 (a rise
    // of 0.026 to 0.109 over the seeds and kernels tried).
    let (gen_head, gen_tail) = metric_head_and_tail(&report.history, "gen_acc", 5);
    assert!(
        gen_tail > gen_head + 0.01,
        "gen_acc {gen_head} -> {gen_tail}"
    );
    // The discriminator learns more than the base rate, which a loss falling to the prior's
    // entropy would also show (λ = 50): it ranks replaced tokens above original ones, AUC
    // 0.64 to 0.69 over the seeds and kernels tried, where the base rate alone gives 0.5.
    // Its loss ends just below that entropy (by 0.006 to 0.022): too thin a margin to test.
    let p = m["replaced_frac"];
    let prior = -(p * p.ln() + (1.0 - p) * (1.0 - p).ln());
    eprintln!(
        "disc_loss {} against the prior's entropy {prior}",
        m["disc_loss"]
    );
    assert!(m["disc_auc"] > 0.55, "{m:?}");
}

#[test]
fn distillation_teaches_a_fresh_student_its_teachers_relations_and_states_on_real_text() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = model_device();
    // The teacher: the tiny encoder after 60 steps of MLM, so its attention has learned
    // something of the text; the student: a fresh one of the same shape.
    let (taught, _) = train_mlm(common::tiny_encoder(&tokenizer));
    let teacher = Teacher::new(taught.model.backbone, &device).with_mlm(taught.model.objective);
    let model = common::seeded(&device, || {
        let student = common::tiny_encoder(&tokenizer).init(&device).unwrap();
        let config = DistillConfig::new()
            .with_mlm_weight(1.0)
            .with_soft_weight(1.0)
            .with_layer_hidden_weight(1.0)
            .with_layer_attention_weight(1.0);
        let distill = config.init(&student, teacher, &device).unwrap();
        Pretrainer::new(student, distill)
    });
    let report = train_on(model, 60, |tokenizer, docs| {
        common::mlm_task(tokenizer, docs, 64)
    });
    let (head, tail) = head_and_tail(&report.history);
    assert!(
        tail < 0.9 * head,
        "distillation loss did not fall: {head} -> {tail}"
    );
    for name in [
        "at_kl",
        "vr_kl",
        "hidden_cos",
        "soft_kl",
        "layer_mse",
        "score_mse",
    ] {
        let (head, tail) = metric_head_and_tail(&report.history, name, 5);
        assert!(tail < 0.8 * head, "{name} {head} -> {tail}");
    }
}

/// Trains the tiny encoder with permuted LM on the task `make_task` builds; checks on the way
/// that the first batch's gradients reach every parameter.
fn train_plm(
    make_task: fn(&Documents, &Tokenizer) -> PermutationTask,
) -> std::collections::BTreeMap<String, f64> {
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = model_device();
    let model = common::seeded(&device, || {
        let backbone = common::tiny_encoder(&tokenizer).init(&device).unwrap();
        let head = PermutedLmConfig::new().init(&backbone, &device);
        Pretrainer::new(backbone, head)
    });
    let (_, docs, _) = common::real_text();
    let grads = first_batch_grads(&model, &make_task(&docs, &tokenizer), &device);
    let (missing, seen) = unreached_parameters(&model, &grads);
    assert!(
        missing.is_empty() && seen > 20,
        "no gradient reached {missing:?}"
    );
    let report = train_on(model, 60, |tokenizer, docs| make_task(docs, tokenizer));
    let (head, tail) = head_and_tail(&report.history);
    assert!(
        tail < 0.85 * head,
        "permuted LM loss did not fall: {head} -> {tail}"
    );
    let valid = last_valid(&report.history).clone();
    eprintln!("plm valid acc {}", valid["plm_acc"]);
    valid
}

#[test]
fn xlnet_trains_through_the_query_stream_on_real_text() {
    let metrics = train_plm(|docs, tokenizer| {
        PermutationTask::xlnet(docs, tokenizer, PermutationMasking::XLNET, 64).unwrap()
    });
    assert!(metrics["plm_acc"] > PLM_ACC, "{metrics:?}");
}

/// Where the permuted LM's validation accuracy must end: an untrained model is right 1 time
/// in 8,192; over the seeds and kernels tried XLNet ended at 0.051 to 0.080 and MPNet at 0.024
/// to 0.089.
const PLM_ACC: f64 = 0.01;

#[test]
fn mpnet_trains_through_the_query_stream_on_real_text() {
    let metrics = train_plm(|docs, tokenizer| {
        PermutationTask::mpnet(docs, tokenizer, PermutationMasking::MPNET, 64).unwrap()
    });
    assert!(metrics["plm_acc"] > PLM_ACC, "{metrics:?}");
}

#[test]
fn spanbert_trains_mlm_and_the_boundary_objective_on_real_text() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = model_device();
    let model = common::seeded(&device, || {
        let backbone = common::tiny_encoder(&tokenizer).init(&device).unwrap();
        let head = SpanBertConfig::new(SboHeadConfig::new())
            .init(&backbone, &device)
            .unwrap();
        Pretrainer::new(backbone, head)
    });
    let make_task = |tokenizer: &Tokenizer, docs: &Documents| {
        let settings = SpanBertSettings {
            masking: MlmMasking::spanbert(),
            sbo: SboHeadConfig::new().with_max_targets(15),
            sbo_weight: 1.0,
        };
        SpanBertTask::new(docs, tokenizer, &settings, 64).unwrap()
    };
    let (_, docs, _) = common::real_text();
    let grads = first_batch_grads(&model, &make_task(&tokenizer, &docs), &device);
    let (missing, _) = unreached_parameters(&model, &grads);
    assert!(missing.is_empty(), "no gradient reached {missing:?}");
    let report = train_on(model, 60, make_task);
    let (head, tail) = head_and_tail(&report.history);
    assert!(
        tail < 0.85 * head,
        "SpanBERT loss did not fall: {head} -> {tail}"
    );
    let m = last_valid(&report.history);
    for key in ["mlm_acc", "sbo_acc", "sbo_loss"] {
        assert!(m.contains_key(key), "{key} missing from {m:?}");
    }
}

#[test]
fn unilm_trains_one_model_under_all_four_masks_on_real_text() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let device = model_device();
    let model = common::seeded(&device, || {
        let backbone = common::tiny_encoder(&tokenizer)
            .with_num_segments(pretext::objectives::unilm::UNILM_SEGMENTS)
            .init(&device)
            .unwrap();
        let head = UnilmConfig::new().init(&backbone, &device).unwrap();
        Pretrainer::new(backbone, head)
    });
    let report = train_on(model, 60, |tokenizer, docs| {
        let settings = UnilmSettings {
            masking: MlmMasking::default(),
            shares: UnilmShares::default(),
        };
        UnilmTask::new(docs, tokenizer, &settings, 64).unwrap()
    });
    let (head, tail) = head_and_tail(&report.history);
    assert!(
        tail < 0.85 * head,
        "UniLM loss did not fall: {head} -> {tail}"
    );
}

#[test]
fn a_multitask_mix_trains_each_task_through_its_own_head() {
    let tokenizer = Tokenizer::bundled().unwrap();
    // MLM and CLM: two heads that each learn in 60 steps (NSP's head stays at chance at this
    // budget, its loss 0.98 to 1.01 of where it started; pair_head_fits_its_labels shows it
    // learning).
    let specs = pretext::recipe::multitask::parse_tasks(
        r#"[{"objective": "mlm"}, {"objective": "clm", "weight": 0.5}]"#,
    )
    .unwrap();
    let model = common::tiny_multitask(&tokenizer, &specs, &model_device());
    let report = train_on(model, 60, |tokenizer, docs| {
        pretext::recipe::multitask::mix_data(&specs, docs, tokenizer, 64).unwrap()
    });
    let (head, tail) = head_and_tail(&report.history);
    assert!(
        tail < 0.85 * head,
        "multi-task loss did not fall: {head} -> {tail}"
    );
    let m = last_valid(&report.history);
    eprintln!("multitask valid {m:?}");
    for key in ["mlm_acc", "mlm_ppl", "clm_acc", "ppl"] {
        assert!(m.contains_key(key), "{key} missing from {m:?}");
    }
    // Each head's own loss falls (the log of its perplexity), not only the sum.
    for name in ["mlm_ppl", "ppl"] {
        let (head, tail) = metric_head_and_tail(&report.history, name, 5);
        let (head, tail) = (head.ln(), tail.ln());
        eprintln!("multitask {name} loss {head:.3} -> {tail:.3}");
        assert!(tail < 0.9 * head, "{name}'s loss {head} -> {tail}");
    }
}
