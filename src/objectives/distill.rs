//! Knowledge distillation from a frozen teacher encoder into a student backbone, over the
//! masked segments MLM reads (both models see the same masked input, as DistilBERT's do):
//!
//! - **relations** (MiniLM, Wang et al. 2020): the KL divergence from the teacher's last-layer
//!   attention distributions to the student's (`L_AT`), and the same for the value relations
//!   `softmax(v·vᵀ/√d)` (`L_VR`), each averaged over heads and summed over real query tokens;
//!   it needs equal head counts, and nothing else of the widths or depths;
//! - **hidden** (DistilBERT's `L_cos`): `1 − cos` between the last hidden states, per real
//!   token, through a learned projection when the widths differ (TinyBERT's `W_h`), or their
//!   mean squared difference;
//! - **layers** (TinyBERT, Jiao et al. 2020): with `k` teacher layers to each student layer,
//!   the mean squared difference between the student's states (embeddings and every layer's
//!   output) through `W_h` and the teacher's at `k` times the depth (`L_embd + L_hidn`), and
//!   between the attention scores before the softmax of student layer `m` and teacher layer
//!   `m·k + k − 1`, blocked keys 0, averaged over heads (`L_attn`); summed over the layers;
//! - **soft targets** (DistilBERT's `L_ce`): the KL divergence from the teacher's MLM
//!   distribution at each masked token to the student's, both at a temperature `T`, times
//!   `T²`; it needs a teacher with an MLM head, whose weights the student's head starts from;
//! - **mlm**: the student's own masked-token loss, by weight (none by default).
//!
//! The teacher runs on its own (non-autodiff) device, without dropout and without gradients,
//! and is not part of the trained module's record: checkpoints hold the student alone.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;

use super::{
    EncoderHead, Loss, Metric, Mlm, MlmConfig, Objective, ObjectiveOutput, REAL_TOKENS, TARGETS,
};
use crate::blocks::{
    AttentionMask, EncoderBackbone, LayerStates, Relations, TransformerEncoder, linear_3d,
    normal_linear,
};
use crate::data::TokenBatch;
use crate::error::{Error, Result, check_weight};
use crate::noise::{IGNORE_INDEX, MlmMasking};

/// The weights of [`Distill`]'s losses.
#[derive(Config, Debug)]
pub struct DistillConfig {
    /// Weight of the attention-distribution KL (MiniLM's `L_AT`). Default 1.
    #[config(default = 1.0)]
    pub attention_weight: f64,
    /// Weight of the value-relation KL (MiniLM's `L_VR`). Default 1.
    #[config(default = 1.0)]
    pub value_weight: f64,
    /// Weight of the last hidden states' loss (DistilBERT's `L_cos`). Default 1.
    #[config(default = 1.0)]
    pub hidden_weight: f64,
    /// How the last hidden states are compared: `1 − cos` (DistilBERT) or the mean squared
    /// difference. Default cosine.
    #[config(default = "HiddenLoss::Cosine")]
    pub hidden_loss: HiddenLoss,
    /// Weight of TinyBERT's layer-by-layer state loss (`L_embd + L_hidn`). Default 0.
    #[config(default = 0.0)]
    pub layer_hidden_weight: f64,
    /// Weight of TinyBERT's layer-by-layer attention-score loss (`L_attn`). Default 0.
    #[config(default = 0.0)]
    pub layer_attention_weight: f64,
    /// Weight of the student's own MLM loss. Default 0: the teacher's signal alone, as
    /// MiniLM distils.
    #[config(default = 0.0)]
    pub mlm_weight: f64,
    /// Weight of the soft-target KL at the masked tokens (DistilBERT's `L_ce`, 5 there beside
    /// MLM's 2 and the cosine's 1); it needs a teacher with an MLM head. Default 0.
    #[config(default = 0.0)]
    pub soft_weight: f64,
    /// Temperature of the soft targets (DistilBERT: 2). Default 2.
    #[config(default = 2.0)]
    pub temperature: f64,
}

/// How [`Distill`] compares the last hidden states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenLoss {
    /// `1 − cos` per token (DistilBERT's `L_cos`).
    Cosine,
    /// The squared difference averaged over the width, per token (TinyBERT's MSE).
    Mse,
}

/// The frozen teacher, its MLM head if it has one, and the device it runs on.
#[derive(Debug, Clone)]
pub struct Teacher {
    encoder: TransformerEncoder,
    mlm: Option<Mlm>,
    device: Device,
}

/// Copies a module's parameters onto a device as parameters of their own, frozen.
struct Own(Device);

impl burn::module::ModuleMapper for Own {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let copy = param.val().to_device(&self.0).detach();
        Param::from_tensor(copy).set_require_grad(false)
    }
}

impl Teacher {
    /// `encoder` as a teacher: moved to the non-autodiff side of `device`, dropout off, its
    /// parameters its own (a student started from its layers holds copies, not them).
    pub fn new(encoder: TransformerEncoder, device: &Device) -> Self {
        // Copying reads every value: a lazy parameter's are drawn, holding the stream.
        let _draws = crate::util::random::hold();
        let device = device.clone().inner();
        let encoder = encoder.without_dropout().map(&mut Own(device.clone()));
        Self {
            encoder,
            mlm: None,
            device,
        }
    }

    /// This teacher with its MLM head, for soft targets.
    pub fn with_mlm(mut self, mlm: Mlm) -> Self {
        let _draws = crate::util::random::hold();
        self.mlm = Some(mlm.map(&mut Own(self.device.clone())));
        self
    }

    /// The teacher's encoder.
    pub fn encoder(&self) -> &TransformerEncoder {
        &self.encoder
    }

    /// The teacher's states with the relations of its layers at `relations_at`, and (with
    /// `logits`, from its MLM head) its logits at the batch's targets, on `device` (the
    /// student's), carrying no gradient.
    fn read(
        &self,
        batch: &TokenBatch,
        device: &Device,
        relations_at: &[usize],
        logits: bool,
    ) -> (LayerStates, Option<Tensor<2>>) {
        let here = |t: Tensor<2, Int>| t.to_device(&self.device);
        let mask = AttentionMask::padding(batch.padding.clone().to_device(&self.device));
        let read = self.encoder.encode_layers(
            here(batch.input_ids.clone()),
            Some(here(batch.segment_ids.clone())),
            Some(&mask),
            relations_at,
        );
        let logits = (self.mlm.as_ref()).filter(|_| logits).map(|mlm| {
            let at = batch.target_positions.clone().to_device(&self.device);
            let embedding = self.encoder.token_embedding();
            mlm.head()
                .forward_at(read.hidden.clone(), at, embedding)
                .to_device(device)
        });
        let there = |t: Tensor<4>| t.to_device(device);
        let read = LayerStates {
            hidden: read.hidden.to_device(device),
            states: read
                .states
                .into_iter()
                .map(|t| t.to_device(device))
                .collect(),
            relations: (read.relations.into_iter())
                .map(|r| {
                    r.map(|r| Relations {
                        attention: there(r.attention),
                        values: there(r.values),
                        scores: there(r.scores),
                    })
                })
                .collect(),
        };
        (read, logits)
    }
}

/// Which teacher layer each student layer is held against (TinyBERT's mapping, with `k`
/// teacher layers to a student layer).
#[derive(Debug, Clone)]
struct LayerMap {
    /// Per student state (the embeddings, then each layer's output): the teacher's, `m·k`.
    states: Vec<usize>,
    /// Per student layer: the teacher layer whose attention scores it learns, `m·k + k − 1`.
    attention: Vec<usize>,
}

impl LayerMap {
    /// The map from `student` layers to `teacher` layers, whose count must be a multiple.
    fn new(student: usize, teacher: usize) -> Result<Self> {
        if student == 0 || !teacher.is_multiple_of(student) {
            return Err(Error::InvalidConfig(format!(
                "TinyBERT's layer losses map each student layer to a block of teacher layers: \
                 the teacher's {teacher} layers must be a multiple of the student's {student} \
                 (or set layer_hidden_weight and layer_attention_weight to 0)"
            )));
        }
        let k = teacher / student;
        Ok(Self {
            states: (0..=student).map(|m| m * k).collect(),
            attention: (0..student).map(|m| m * k + k - 1).collect(),
        })
    }
}

/// Distillation from a [`Teacher`] into the backbone it is handed.
#[derive(Module, Debug)]
pub struct Distill {
    /// The student's MLM head, where its loss has a weight.
    mlm: Option<Mlm>,
    /// The student's hidden states to the teacher's width, where they differ (TinyBERT's
    /// `W_h`, one for every layer).
    projection: Option<Linear>,
    #[module(skip)]
    teacher: Teacher,
    #[module(skip)]
    weights: [f64; 7],
    #[module(skip)]
    hidden_loss: HiddenLoss,
    #[module(skip)]
    temperature: f64,
    /// The layer map, where a layer loss has a weight.
    #[module(skip)]
    layers: Option<LayerMap>,
}

impl DistillConfig {
    /// Checks that every weight is finite and non-negative, and that one is positive.
    pub fn validate(&self) -> Result<()> {
        let weights = self.weights();
        let names = [
            "attention_weight",
            "value_weight",
            "hidden_weight",
            "mlm_weight",
            "soft_weight",
            "layer_hidden_weight",
            "layer_attention_weight",
        ];
        for (name, weight) in names.iter().zip(weights) {
            check_weight(name, weight)?;
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::InvalidConfig(format!(
                "temperature {} must be a positive number",
                self.temperature
            )));
        }
        if weights.iter().all(|&w| w == 0.0) {
            return Err(Error::InvalidConfig(
                "distillation needs at least one loss with a positive weight".into(),
            ));
        }
        Ok(())
    }

    fn weights(&self) -> [f64; 7] {
        [
            self.attention_weight,
            self.value_weight,
            self.hidden_weight,
            self.mlm_weight,
            self.soft_weight,
            self.layer_hidden_weight,
            self.layer_attention_weight,
        ]
    }

    /// The objective distilling `teacher` into `student`: an MLM head if MLM or the soft
    /// targets have a weight (the teacher's head copied where it has one of the student's
    /// width), a projection to the teacher's width if the widths differ. The two must share
    /// a vocabulary; the relations and the attention scores need a head count, the soft
    /// targets a teacher's MLM head, the layer losses a teacher whose depth is a multiple of
    /// the student's.
    pub fn init(
        &self,
        student: &TransformerEncoder,
        teacher: Teacher,
        device: &Device,
    ) -> Result<Distill> {
        self.validate()?;
        let (s, t) = (student, teacher.encoder());
        if s.vocab_size() != t.vocab_size() {
            return Err(Error::TokenizerMismatch {
                what: "student's and teacher's".into(),
                detail: format!(
                    "the student reads {} token ids and the teacher {}",
                    s.vocab_size(),
                    t.vocab_size()
                ),
            });
        }
        let heads = |e: &TransformerEncoder| e.block().map(|b| b.num_heads);
        let relations = self.attention_weight > 0.0 || self.value_weight > 0.0;
        if (relations || self.layer_attention_weight > 0.0) && heads(s) != heads(t) {
            return Err(Error::InvalidConfig(format!(
                "MiniLM's relation losses and TinyBERT's attention loss compare heads one to \
                 one: the student has {:?} heads and the teacher {:?} (give the student the \
                 teacher's head count, or set attention_weight, value_weight and \
                 layer_attention_weight to 0)",
                heads(s),
                heads(t)
            )));
        }
        let layered = self.layer_hidden_weight > 0.0 || self.layer_attention_weight > 0.0;
        let layers = match layered {
            true => Some(LayerMap::new(s.num_layers(), t.num_layers())?),
            false => None,
        };
        let (ws, wt) = (s.hidden_size(), t.hidden_size());
        let states = self.hidden_weight > 0.0 || self.layer_hidden_weight > 0.0;
        let projection = (states && ws != wt).then(|| normal_linear(ws, wt, 0.02, device));
        if self.soft_weight > 0.0 && teacher.mlm.is_none() {
            return Err(Error::InvalidConfig(
                "the soft targets need a teacher with an MLM head (a pretext MLM run, a \
                 Hugging Face …ForMaskedLM); this one has none: set soft_weight to 0"
                    .into(),
            ));
        }
        let mlm = (self.mlm_weight > 0.0 || self.soft_weight > 0.0).then(|| {
            let head = MlmConfig::new().init(student, device);
            match &teacher.mlm {
                Some(theirs) if ws == wt => head.load_record(theirs.clone().into_record()),
                _ => head,
            }
        });
        Ok(Distill {
            mlm,
            projection,
            teacher,
            weights: self.weights(),
            hidden_loss: self.hidden_loss,
            temperature: self.temperature,
            layers,
        })
    }
}

/// `Σ_k p_T · (log p_T − log p_S)` per query row, averaged over heads: `[batch, len]`.
fn relation_kl(teacher: Tensor<4>, student: Tensor<4>) -> Tensor<2> {
    let [batch, heads, len, _] = teacher.dims();
    let kl = teacher.clone().exp() * (teacher - student);
    kl.sum_dim(3)
        .sum_dim(1)
        .div_scalar(heads as f64)
        .reshape([batch, len])
}

/// `T² · Σ_v p_T · (log p_T − log p_S)` per row of `[n, vocab]` logits, both softened by the
/// temperature `T`: `[n]`.
fn soft_target_kl(teacher: Tensor<2>, student: Tensor<2>, temperature: f64) -> Tensor<1> {
    let n = teacher.dims()[0];
    let log_softmax =
        |t: Tensor<2>| burn::tensor::activation::log_softmax(t.div_scalar(temperature), 1);
    let (t, s) = (log_softmax(teacher), log_softmax(student));
    let kl = t.clone().exp() * (t - s);
    kl.sum_dim(1)
        .reshape([n])
        .mul_scalar(temperature * temperature)
}

/// `1 − cos(a, b)` per position of `[batch, len, width]` states: `[batch, len]`.
fn cosine_loss(a: Tensor<3>, b: Tensor<3>) -> Tensor<2> {
    let [batch, len, _] = a.dims();
    let norm = |t: &Tensor<3>| t.clone().powf_scalar(2.0).sum_dim(2).sqrt().clamp_min(1e-8);
    let cos = (a.clone() * b.clone()).sum_dim(2) / (norm(&a) * norm(&b));
    cos.reshape([batch, len]).neg().add_scalar(1.0)
}

/// The squared difference of `[batch, len, width]` states averaged over the width:
/// `[batch, len]`.
fn squared_error(a: Tensor<3>, b: Tensor<3>) -> Tensor<2> {
    let [batch, len, _] = a.dims();
    (a - b).powf_scalar(2.0).mean_dim(2).reshape([batch, len])
}

/// The squared difference of `[batch, heads, query, key]` attention scores per query,
/// averaged over the heads and the row's `keys` real keys (`[batch]`): `[batch, len]`.
fn score_error(student: Tensor<4>, teacher: Tensor<4>, keys: Tensor<1>) -> Tensor<2> {
    let [batch, heads, len, _] = student.dims();
    let sum = (student - teacher).powf_scalar(2.0).sum_dim(3).sum_dim(1);
    sum.reshape([batch, len]) / keys.mul_scalar(heads as f64).reshape([batch, 1])
}

impl Objective<TransformerEncoder> for Distill {
    type Batch = TokenBatch;

    fn forward(&self, backbone: &TransformerEncoder, batch: TokenBatch) -> ObjectiveOutput {
        let [
            attention_w,
            value_w,
            hidden_w,
            mlm_w,
            soft_w,
            layer_hidden_w,
            layer_attention_w,
        ] = self.weights;
        let device = batch.input_ids.device();
        let mask = AttentionMask::padding(batch.padding.clone());
        let segments = Some(batch.segment_ids.clone());
        // The layers whose relations each side reads: the last for MiniLM's losses, the
        // mapped ones for TinyBERT's attention scores.
        let last = backbone.num_layers() - 1;
        let teacher_last = self.teacher.encoder.num_layers() - 1;
        let minilm = attention_w > 0.0 || value_w > 0.0;
        let scored = self.layers.as_ref().filter(|_| layer_attention_w > 0.0);
        let mut ours: Vec<usize> = minilm.then_some(last).into_iter().collect();
        let mut theirs: Vec<usize> = minilm.then_some(teacher_last).into_iter().collect();
        if let Some(map) = scored {
            ours.extend(0..backbone.num_layers());
            theirs.extend(&map.attention);
        }
        let student = backbone.encode_layers(batch.input_ids.clone(), segments, Some(&mask), &ours);
        let (teacher, teacher_logits) = self.teacher.read(&batch, &device, &theirs, soft_w > 0.0);
        let real = batch.padding.clone().bool_not().float();
        let count = real.clone().sum();
        let mut terms = Vec::new();
        let mut metrics = Vec::new();
        // Each loss with a weight, summed over real tokens; one without is not computed (the
        // relations of models with different head counts could not be).
        let mut add = |name: &str, weight: f64, per_token: &dyn Fn() -> Tensor<2>| {
            if weight > 0.0 {
                let sum = (per_token() * real.clone()).sum();
                metrics.push(Metric::mean(name, sum.clone().detach(), count.clone()));
                terms.push(Loss::over(REAL_TOKENS, sum).scaled(weight));
            }
        };
        let relations = |read: &LayerStates, depth: usize| {
            read.relations[depth]
                .clone()
                .expect("read where a loss needs it")
        };
        add("at_kl", attention_w, &|| {
            let (t, s) = (relations(&teacher, teacher_last), relations(&student, last));
            relation_kl(t.attention, s.attention)
        });
        add("vr_kl", value_w, &|| {
            let (t, s) = (relations(&teacher, teacher_last), relations(&student, last));
            relation_kl(t.values, s.values)
        });
        let projected = |states: Tensor<3>| match &self.projection {
            Some(projection) => linear_3d(projection, states),
            None => states,
        };
        let name = match self.hidden_loss {
            HiddenLoss::Cosine => "hidden_cos",
            HiddenLoss::Mse => "hidden_mse",
        };
        add(name, hidden_w, &|| {
            let (ours, theirs) = (projected(student.hidden.clone()), teacher.hidden.clone());
            match self.hidden_loss {
                HiddenLoss::Cosine => cosine_loss(ours, theirs),
                HiddenLoss::Mse => squared_error(ours, theirs),
            }
        });
        if let Some(map) = &self.layers {
            add("layer_mse", layer_hidden_w, &|| {
                (student.states.iter().zip(&map.states))
                    .map(|(ours, &at)| {
                        squared_error(projected(ours.clone()), teacher.states[at].clone())
                    })
                    .reduce(|a, b| a + b)
                    .expect("a student has states")
            });
            add("score_mse", layer_attention_w, &|| {
                let keys = real.clone().sum_dim(1).reshape([real.dims()[0]]);
                (map.attention.iter().enumerate())
                    .map(|(depth, &at)| {
                        let (t, s) = (relations(&teacher, at), relations(&student, depth));
                        score_error(s.scores, t.scores, keys.clone())
                    })
                    .reduce(|a, b| a + b)
                    .expect("a student has layers")
            });
        }
        let hidden = student.hidden;
        if let (Some(mlm), Some(theirs)) = (&self.mlm, teacher_logits) {
            // Summed over the masked tokens, as MLM's loss.
            let at = batch.target_positions.clone();
            let ours = mlm
                .head()
                .forward_at(hidden.clone(), at, backbone.token_embedding());
            let targets = batch
                .target_ids
                .clone()
                .not_equal_elem(IGNORE_INDEX)
                .float();
            let sum = (soft_target_kl(theirs, ours, self.temperature) * targets.clone()).sum();
            metrics.push(Metric::mean("soft_kl", sum.clone().detach(), targets.sum()));
            terms.push(Loss::over(TARGETS, sum).scaled(soft_w));
        }
        if let Some(mlm) = self.mlm.as_ref().filter(|_| mlm_w > 0.0) {
            let out = mlm.score(backbone, hidden, &batch);
            metrics.extend(out.metrics);
            terms.push(out.loss.scaled(mlm_w));
        }
        let loss = (terms.into_iter().reduce(Loss::plus))
            .expect("a validated config has a loss with a positive weight");
        ObjectiveOutput { loss, metrics }
    }
}

/// The settings of `distill`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillSettings {
    /// The teacher: a pretext run or a Hugging Face encoder directory.
    pub teacher: Option<std::path::PathBuf>,
    /// The teacher's layers the student starts from, one per student layer (DistilBERT takes
    /// every other one); none for a fresh student.
    pub student_layers: Option<Vec<usize>>,
    /// What is masked and how (for the student's MLM loss; both models read the masked text).
    pub masking: MlmMasking,
    /// The losses' weights.
    pub losses: DistillConfig,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{BlockConfig, TransformerEncoderConfig};
    use crate::test_support::{pair_batch, scaled};

    /// A seeded sharp-attention encoder of `layers` layers, `heads` heads and width `width`
    /// over the test vocabulary.
    fn encoder(layers: usize, heads: usize, width: usize, seed: u64) -> TransformerEncoder {
        let device = Device::flex();
        let encoder = crate::util::random::init_seeded(&device, seed, || {
            TransformerEncoderConfig::new(40, width, layers, BlockConfig::new(heads, 32))
                .with_dropout(0.0)
                .init(&device)
                .unwrap()
        });
        scaled(encoder, 10.0)
    }

    /// The value of each of `output`'s metrics.
    fn values(output: &ObjectiveOutput) -> std::collections::BTreeMap<String, f32> {
        (output.metrics.iter())
            .map(|m| {
                let value =
                    m.sum.clone().into_scalar::<f32>() / m.count.clone().into_scalar::<f32>();
                (m.name.clone(), value)
            })
            .collect()
    }

    #[test]
    fn a_student_equal_to_its_teacher_has_nothing_to_learn_and_a_shallower_one_has() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let teacher = encoder(2, 2, 16, 7);
        let head = crate::util::random::init_seeded(&device, 9, || {
            MlmConfig::new().init(&teacher, &device)
        });
        let distill = |student: &TransformerEncoder, hidden_loss| {
            let config = DistillConfig::new()
                .with_soft_weight(1.0)
                .with_hidden_loss(hidden_loss)
                .with_layer_hidden_weight(1.0)
                .with_layer_attention_weight(1.0);
            let teacher = Teacher::new(teacher.clone(), &device).with_mlm(head.clone());
            let objective = config.init(student, teacher, &device);
            let output = objective.unwrap().forward(student, pair_batch(&device, 0));
            values(&output)
        };
        let shallower = teacher.clone().keeping_layers(&[1]).unwrap();
        for (hidden_loss, hidden) in [
            (HiddenLoss::Cosine, "hidden_cos"),
            (HiddenLoss::Mse, "hidden_mse"),
        ] {
            let names = [
                "at_kl",
                "vr_kl",
                hidden,
                "soft_kl",
                "layer_mse",
                "score_mse",
            ];
            let same = distill(&teacher, hidden_loss);
            assert_eq!(same.len(), names.len(), "{same:?}");
            for name in names {
                assert!(same[name].abs() < 1e-5, "{name}: {same:?}");
            }
            let shallower = distill(&shallower, hidden_loss);
            for name in names {
                assert!(shallower[name] > 1e-3, "{name}: {shallower:?}");
            }
        }
    }

    #[test]
    fn tinybert_maps_each_student_layer_to_the_last_of_its_block_of_teacher_layers() {
        let map = LayerMap::new(3, 6).unwrap();
        assert_eq!(map.states, [0, 2, 4, 6]);
        assert_eq!(map.attention, [1, 3, 5]);
        let map = LayerMap::new(2, 2).unwrap();
        assert_eq!((map.states, map.attention), (vec![0, 1, 2], vec![0, 1]));
        for (student, teacher) in [(4, 6), (0, 6)] {
            let err = LayerMap::new(student, teacher).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidConfig(m) if m.contains("multiple")),
                "{err}"
            );
        }
        // Through the objective: a 2-layer student of a 3-layer teacher has no map, and
        // without the layer losses needs none.
        let device = Device::flex();
        let teacher = Teacher::new(encoder(3, 2, 16, 7), &device);
        let student = encoder(2, 2, 16, 8);
        let layered = DistillConfig::new().with_layer_hidden_weight(1.0);
        assert!(layered.init(&student, teacher.clone(), &device).is_err());
        assert!(
            DistillConfig::new()
                .init(&student, teacher, &device)
                .is_ok()
        );
    }

    #[test]
    fn score_error_averages_squares_over_heads_and_real_keys() {
        let device = Device::flex();
        // One row of two heads, two queries, three keys of which two are real.
        let student = Tensor::<4>::from_data(
            [[
                [[1.0f32, 2.0, 0.0], [0.0, 0.0, 0.0]],
                [[3.0, 0.0, 0.0], [1.0, 1.0, 0.0]],
            ]],
            &device,
        );
        let teacher = student.zeros_like();
        let keys = Tensor::<1>::from_data([2.0f32], &device);
        let got: Vec<f32> = score_error(student, teacher, keys)
            .into_data()
            .try_to_vec()
            .unwrap();
        // Query 0: (1 + 4 + 9) / (2 heads · 2 keys); query 1: (1 + 1) / 4.
        assert_eq!(got, [3.5, 0.5]);
    }

    #[test]
    fn soft_targets_are_the_tempered_kl_times_t_squared() {
        let device = Device::flex();
        let teacher = [[2.0f32, 0.0, -1.0], [0.5, 0.5, 3.0]];
        let student = [[0.0f32, 1.0, 0.0], [1.0, -2.0, 0.5]];
        let tensor = |rows: [[f32; 3]; 2]| Tensor::<2>::from_data(rows, &device);
        let got: Vec<f32> = soft_target_kl(tensor(teacher), tensor(student), 2.0)
            .into_data()
            .try_to_vec()
            .unwrap();
        for (row, got) in got.iter().enumerate() {
            let softmax = |logits: [f32; 3]| {
                let e: Vec<f64> = logits.iter().map(|&l| (l as f64 / 2.0).exp()).collect();
                let z: f64 = e.iter().sum();
                e.into_iter().map(|e| e / z).collect::<Vec<_>>()
            };
            let (p, q) = (softmax(teacher[row]), softmax(student[row]));
            let kl: f64 = p.iter().zip(&q).map(|(p, q)| p * (p / q).ln()).sum();
            assert!(
                (*got as f64 - 4.0 * kl).abs() < 1e-5,
                "row {row}: {got} against {}",
                4.0 * kl
            );
        }
    }

    #[test]
    fn soft_targets_need_a_teacher_with_an_mlm_head_and_a_positive_temperature() {
        let device = Device::flex();
        let teacher = Teacher::new(encoder(1, 2, 16, 7), &device);
        let student = encoder(1, 2, 16, 8);
        let soft = DistillConfig::new().with_soft_weight(1.0);
        let err = soft.init(&student, teacher.clone(), &device).unwrap_err();
        assert!(err.to_string().contains("MLM head"), "{err}");
        let cold = DistillConfig::new().with_temperature(0.0);
        assert!(matches!(cold.validate(), Err(Error::InvalidConfig(_))));
        // With a head, the student's starts as the teacher's.
        let head = MlmConfig::new().init(teacher.encoder(), &device);
        let objective = soft
            .init(&student, teacher.with_mlm(head.clone()), &device)
            .unwrap();
        let theirs = head.head().forward_at(
            Tensor::ones([1, 2, 16], &device),
            Tensor::from_data([1i64], &device),
            Tensor::ones([40, 16], &device),
        );
        let ours = objective.mlm.unwrap().head().forward_at(
            Tensor::ones([1, 2, 16], &device),
            Tensor::from_data([1i64], &device),
            Tensor::ones([40, 16], &device),
        );
        assert_eq!(theirs.into_data(), ours.into_data());
    }

    #[test]
    fn a_narrower_student_is_compared_through_a_projection_and_learns_by_mlm_too() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let teacher = Teacher::new(encoder(2, 2, 16, 7), &device);
        let student = encoder(1, 2, 8, 8);
        let config = DistillConfig::new().with_mlm_weight(1.0);
        let objective = config.init(&student, teacher, &device).unwrap();
        assert!(objective.projection.is_some() && objective.mlm.is_some());
        let output = objective.forward(&student, pair_batch(&device, 0));
        let metrics = values(&output);
        for name in ["at_kl", "vr_kl", "hidden_cos", "mlm_acc"] {
            assert!(metrics[name].is_finite(), "{name}: {metrics:?}");
        }
        // Four terms: the three over real tokens and MLM's over its targets.
        let batch = pair_batch(&device, 0);
        let loss = output.loss.normalized(&crate::data::Batch::weights(&batch));
        assert!(loss.into_scalar::<f32>().is_finite());
    }

    #[test]
    fn relations_need_equal_head_counts_and_every_loss_a_shared_vocabulary() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let teacher = || Teacher::new(encoder(1, 2, 16, 7), &device);
        let four_heads = encoder(1, 4, 16, 8);
        let err = DistillConfig::new()
            .init(&four_heads, teacher(), &device)
            .unwrap_err();
        assert!(err.to_string().contains("heads"), "{err}");
        // Without the relations, other head counts are fine.
        let hidden_only = DistillConfig::new()
            .with_attention_weight(0.0)
            .with_value_weight(0.0);
        assert!(hidden_only.init(&four_heads, teacher(), &device).is_ok());
        let other_vocab = crate::util::random::init_seeded(&device, 9, || {
            TransformerEncoderConfig::new(50, 16, 1, BlockConfig::new(2, 32))
                .init(&device)
                .unwrap()
        });
        let err = DistillConfig::new()
            .init(&other_vocab, teacher(), &device)
            .unwrap_err();
        assert!(matches!(err, Error::TokenizerMismatch { .. }), "{err}");
        let nothing = DistillConfig::new()
            .with_attention_weight(0.0)
            .with_value_weight(0.0)
            .with_hidden_weight(0.0)
            .with_mlm_weight(0.0);
        assert!(nothing.validate().is_err());
        assert!(
            DistillConfig::new()
                .with_hidden_weight(-1.0)
                .validate()
                .is_err()
        );
    }
}
