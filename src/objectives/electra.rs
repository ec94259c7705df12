//! Replaced-token detection (ELECTRA, `google-research/electra`): a small generator fills the
//! masked positions with tokens sampled from its own MLM distribution, and the discriminator
//! (the backbone, the model one fine-tunes) tells each token of the result original or
//! replaced.
//!
//! The generator shares the backbone's embeddings (token, position and segment tables and
//! their LayerNorm, as the reference shares the `electra/embeddings` scope), with a projection
//! of its own when its width differs, and ties its MLM head to the shared token table. Its
//! samples are integers, so no gradient flows from the discriminator into it.
//!
//! Sampling draws one uniform per masked position in the data pipeline (seeded per example,
//! like every other draw) and inverts the CDF of `softmax(logits / temperature)`: the same
//! distribution as the reference's Gumbel-max, with the randomness outside the model so that
//! runs replay exactly on any number of threads.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use burn::tensor::activation::softmax;
use rand::RngExt;

use super::detection::{
    DetectionHead, DetectionHeadConfig, binary_cross_entropy, detection_metrics,
};
use super::{
    Loss, Objective, ObjectiveOutput, REAL_TOKENS, TARGETS, Weights, masked_cross_entropy,
};
use crate::blocks::{
    AttentionMask, BlockConfig, EncoderBackbone, EncoderLayer, LmHead, LmHeadConfig, RelativeBias,
    TransformerEncoderConfig, default_positions, linear_3d, normal_linear,
};
use crate::data::{Batch, Task, TokenBatch, TokenExample};
use crate::dataset::Documents;
use crate::error::Result;
use crate::noise::MlmMasking;
use crate::objectives::MlmTask;
use crate::tokenize::Tokenizer;
use crate::util::rng::ExampleRng;

/// Configuration of [`Electra`].
#[derive(Config, Debug)]
pub struct ElectraConfig {
    /// The generator's width as a share of the discriminator's, in (0, 1]. Default 0.25
    /// (ELECTRA's `generator_hidden_size`; its released Small used 1.0).
    #[config(default = 0.25)]
    pub generator_size: f64,
    /// The generator's depth as a share of the discriminator's, in (0, 1]. Default 1.
    #[config(default = 1.0)]
    pub generator_layers: f64,
    /// Weight λ of the discriminator loss against the generator's 1. Default 50.
    #[config(default = 50.0)]
    pub disc_weight: f64,
    /// Softmax temperature of the generator's samples. Default 1.
    #[config(default = 1.0)]
    pub temperature: f64,
    /// Dropout in the generator. Default 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
}

/// The generator: encoder layers over the shared embeddings, and a tied MLM head.
#[derive(Module, Debug)]
pub struct Generator {
    projection: Option<Linear>,
    layers: Vec<EncoderLayer>,
    head: LmHead,
    /// Its own relative position bias, where the block's positions are relative.
    relative_bias: Option<RelativeBias>,
    /// Its layers' shape (the discriminator's block, narrower), for their positions.
    #[module(skip)]
    shape: TransformerEncoderConfig,
}

/// ELECTRA's objective over a discriminator backbone `M`: the generator and the
/// discriminator head.
#[derive(Module, Debug)]
pub struct Electra {
    /// The generator (discarded after pretraining).
    pub generator: Generator,
    discriminator: DetectionHead,
    #[module(skip)]
    disc_weight: f64,
    #[module(skip)]
    temperature: f64,
}

/// Rounds `share` of `n` to a whole number, at least 1.
fn scaled(n: usize, share: f64) -> usize {
    ((n as f64 * share).round() as usize).max(1)
}

impl ElectraConfig {
    /// Checks the shares, the weight and the temperature.
    pub fn validate(&self) -> Result<()> {
        for (name, share) in [
            ("generator_size", self.generator_size),
            ("generator_layers", self.generator_layers),
        ] {
            if !(share > 0.0 && share <= 1.0) {
                return Err(crate::error::Error::InvalidConfig(format!(
                    "{name} is the generator's share of the discriminator and must lie in \
                     (0, 1], got {share}: a generator larger than the discriminator makes the \
                     discriminator's task too hard (ELECTRA §3.2)"
                )));
            }
        }
        crate::error::check_weight("disc_weight", self.disc_weight)?;
        crate::error::check_positive("temperature", self.temperature)?;
        crate::error::check_rate("generator dropout", self.dropout)
    }

    /// The generator's layer shape for a discriminator `num_layers` deep: width
    /// `round(hidden · generator_size)`, `max(1, width / 64)` heads and a feed-forward 4×
    /// wide, as ELECTRA's `get_generator_config`; otherwise the discriminator's block (its
    /// norms, activation, positions), as ELECTRA's generator is its discriminator made smaller.
    pub fn generator_encoder<M: EncoderBackbone>(&self, backbone: &M) -> TransformerEncoderConfig {
        let num_layers = backbone.num_layers();
        let width = scaled(backbone.hidden_size(), self.generator_size);
        let (heads, ffn) = ((width / 64).max(1), 4 * width);
        let block = match backbone.block() {
            Some(block) => BlockConfig {
                num_heads: heads,
                ffn_size: ffn,
                kv_heads: None,
                head_size: None,
                ..block.clone()
            },
            None => BlockConfig::new(heads, ffn),
        };
        TransformerEncoderConfig::new(
            backbone.vocab_size(),
            width,
            scaled(num_layers, self.generator_layers),
            block,
        )
        .with_dropout(self.dropout)
    }

    /// Builds the generator and the discriminator head for `backbone`, the discriminator.
    pub fn init<M: EncoderBackbone>(&self, backbone: &M, device: &Device) -> Result<Electra> {
        self.validate()?;
        let shape = self.generator_encoder(backbone);
        shape.validate()?;
        let embedding = backbone.embedding_size();
        let width = shape.hidden_size;
        let hidden = backbone.hidden_size();
        Ok(Electra {
            generator: Generator {
                projection: (embedding != width)
                    .then(|| normal_linear(embedding, width, 0.02, device)),
                layers: (0..shape.num_layers)
                    .map(|depth| shape.layer(depth, device))
                    .collect::<Result<_>>()?,
                head: LmHeadConfig::new(width, embedding, backbone.vocab_size()).init(device),
                relative_bias: shape.block.relative_bias(false, device),
                shape,
            },
            discriminator: DetectionHeadConfig::new(hidden).init(device),
            disc_weight: self.disc_weight,
            temperature: self.temperature,
        })
    }
}

/// What ELECTRA's forward pass computes, for the loss, the metrics and tests.
#[derive(Debug, Clone)]
pub struct ElectraParts {
    /// The generator's MLM predictions at the masked positions.
    pub generator: super::Predictions,
    /// Binary cross-entropy of the discriminator summed over the real tokens (differentiable).
    pub disc_loss: Tensor<1>,
    /// `[batch, len]` discriminator logits (> 0: replaced).
    pub disc_logits: Tensor<2>,
    /// `[batch, len]` labels: 1 where the sampled token differs from the original.
    pub replaced: Tensor<2>,
    /// `[batch, len]` 1 at real tokens, 0 at padding.
    pub real: Tensor<2>,
}

/// Samples one token per row of `logits` `[n, vocab]` from `softmax(logits / temperature)` by
/// inverting its CDF at `uniforms` `[n]` (each in [0, 1)). No gradient flows through it.
pub fn sample_tokens(logits: Tensor<2>, uniforms: Tensor<1>, temperature: f64) -> Tensor<1, Int> {
    let [n, vocab] = logits.dims();
    let cdf = softmax(logits.detach().div_scalar(temperature), 1).cumsum(1);
    // The sample is the first token whose cumulative probability exceeds u: the number of
    // tokens whose CDF is at most u.
    cdf.lower_equal(uniforms.reshape([n, 1]).expand([n, vocab]))
        .int()
        .sum_dim(1)
        .reshape([n])
        .clamp_max(vocab as i64 - 1)
}

/// The discriminator's input: `batch`'s ids with `sampled` written at its target positions;
/// and the labels, 1 where a written token differs from the original. A sample that equals
/// the original counts as original, as in the reference.
pub fn replace_tokens(batch: &TokenBatch, sampled: Tensor<1, Int>) -> (Tensor<2, Int>, Tensor<2>) {
    let [rows, len] = batch.input_ids.dims();
    let positions = batch.target_positions.clone();
    let ids = batch
        .input_ids
        .clone()
        .reshape([rows * len])
        .select_assign(
            0,
            positions.clone(),
            sampled.clone(),
            IndexingUpdateOp::Assign,
        )
        .reshape([rows, len]);
    let changed = sampled.not_equal(batch.target_ids.clone()).float();
    let labels = Tensor::<1>::zeros([rows * len], &batch.input_ids.device())
        .select_assign(0, positions, changed, IndexingUpdateOp::Assign)
        .reshape([rows, len]);
    (ids, labels)
}

impl Electra {
    /// The generator's logits `[targets, vocab]` at `positions` (flat indices into
    /// `[batch, len]`) of `ids` under `mask`: the backbone's shared embeddings, the generator's
    /// projection and layers, its head tied to the shared token table.
    pub fn generator_logits<M: EncoderBackbone>(
        &self,
        backbone: &M,
        ids: Tensor<2, Int>,
        segments: Option<Tensor<2, Int>>,
        mask: &AttentionMask,
        positions: Tensor<1, Int>,
    ) -> Tensor<2> {
        let [batch, len] = ids.dims();
        let at = default_positions(batch, len, &ids.device());
        let shape = &self.generator.shape;
        let relative = self.generator.relative_bias.as_ref();
        let own = shape.block.positions(shape.hidden_size, &at, &at, relative);
        let mut x = backbone.embed(ids, segments);
        if let Some(projection) = &self.generator.projection {
            x = linear_3d(projection, x);
        }
        for layer in &self.generator.layers {
            x = layer.forward(x, Some(mask), &own);
        }
        self.generator
            .head
            .forward_at(x, positions, backbone.token_embedding())
    }

    /// The discriminator's logit `[batch, len]` that each token of `hidden` (the backbone's
    /// states) was replaced.
    pub fn discriminator_logits(&self, hidden: Tensor<3>) -> Tensor<2> {
        self.discriminator.forward(hidden)
    }

    /// Runs the generator, samples replacements, runs the discriminator on them.
    pub fn parts<M: EncoderBackbone>(&self, backbone: &M, batch: &ElectraBatch) -> ElectraParts {
        let tokens = &batch.tokens;
        let mask = AttentionMask::padding(tokens.padding.clone());
        let segments = Some(tokens.segment_ids.clone());
        let logits = self.generator_logits(
            backbone,
            tokens.input_ids.clone(),
            segments.clone(),
            &mask,
            tokens.target_positions.clone(),
        );
        let sampled = sample_tokens(logits.clone(), batch.uniforms.clone(), self.temperature);
        let generator = masked_cross_entropy(logits, tokens.target_ids.clone());

        let (ids, replaced) = replace_tokens(tokens, sampled);
        let hidden = backbone.encode(ids, segments, Some(&mask));
        let disc_logits = self.discriminator_logits(hidden);
        let real = tokens.padding.clone().bool_not().float();
        let bce = binary_cross_entropy(disc_logits.clone(), replaced.clone()) * real.clone();
        let disc_loss = bce.sum();
        ElectraParts {
            generator,
            disc_loss,
            disc_logits,
            replaced,
            real,
        }
    }
}

impl<M: EncoderBackbone> Objective<M> for Electra {
    type Batch = ElectraBatch;

    fn forward(&self, backbone: &M, batch: ElectraBatch) -> ObjectiveOutput {
        let p = self.parts(backbone, &batch);
        let mut metrics = vec![
            p.generator.accuracy("gen_acc"),
            p.generator.mean_loss("gen_loss"),
        ];
        metrics.extend(detection_metrics(
            "disc",
            "replaced_frac",
            p.disc_logits.detach(),
            p.replaced,
            p.real,
            p.disc_loss.clone().detach(),
        ));
        ObjectiveOutput {
            loss: p
                .generator
                .loss(TARGETS)
                .plus(Loss::over(REAL_TOKENS, p.disc_loss).scaled(self.disc_weight)),
            metrics,
        }
    }
}

/// One ELECTRA example: a masked segment and one uniform draw per masked position, which the
/// generator's sampling turns into a token.
#[derive(Debug, Clone, PartialEq)]
pub struct ElectraExample {
    /// The masked segment, targets at the masked positions.
    pub tokens: TokenExample,
    /// One draw in [0, 1) per target, in position order.
    pub uniforms: Vec<f32>,
}

/// A padded batch of [`ElectraExample`]s.
#[derive(Debug, Clone)]
pub struct ElectraBatch {
    /// The masked tokens.
    pub tokens: TokenBatch,
    /// `[num_targets]` uniform draws, in the order of `tokens.target_positions`.
    pub uniforms: Tensor<1>,
}

impl Batch for ElectraBatch {
    fn num_tokens(&self) -> usize {
        self.tokens.num_tokens
    }

    /// The generator's masked tokens, and the real tokens the discriminator reads.
    fn weights(&self) -> Weights {
        self.tokens.weights()
    }
}

/// The data side of [`Electra`]: segments masked as ELECTRA masks them.
#[derive(Debug, Clone)]
pub struct ElectraTask {
    mlm: MlmTask,
    pad: u32,
}

impl ElectraTask {
    /// Segments of at most `seq_len` tokens from `documents`, masked with `masking` (normally
    /// [`MlmMasking::electra`]).
    pub fn new(
        documents: &Documents,
        tokenizer: &Tokenizer,
        masking: MlmMasking,
        seq_len: usize,
    ) -> Result<Self> {
        Ok(Self {
            mlm: MlmTask::new(documents, tokenizer, masking, seq_len)?,
            pad: tokenizer.special().pad,
        })
    }
}

impl Task for ElectraTask {
    type Example = ElectraExample;
    type Batch = ElectraBatch;

    fn num_examples(&self) -> usize {
        self.mlm.num_examples()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<ElectraExample> {
        let tokens = self.mlm.example(index, rng)?;
        let targets = tokens
            .targets
            .iter()
            .filter(|&&t| t != crate::noise::IGNORE_INDEX)
            .count();
        let uniforms = (0..targets).map(|_| rng.random::<f32>()).collect();
        Ok(ElectraExample { tokens, uniforms })
    }

    fn collate(&self, examples: &[ElectraExample], device: &Device) -> Result<ElectraBatch> {
        let tokens: Vec<&TokenExample> = examples.iter().map(|e| &e.tokens).collect();
        let uniforms: Vec<f32> = examples
            .iter()
            .flat_map(|e| e.uniforms.iter().copied())
            .collect();
        let n = uniforms.len();
        Ok(ElectraBatch {
            tokens: TokenBatch::collate(&tokens, self.pad, device)?,
            uniforms: Tensor::from_data(TensorData::new(uniforms, [n]), device),
        })
    }
}

/// The settings of `electra`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectraSettings {
    /// The masking the generator fills.
    pub masking: MlmMasking,
    /// The generator's shape, λ and sampling temperature.
    pub electra: ElectraConfig,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{pair_batch, tiny_parts};
    use crate::util::{floats, ints};
    use burn::optim::GradientsParams;

    /// The tiny backbone with a generator half its width, and a batch with 4 targets.
    fn setup(device: &Device) -> (crate::blocks::TransformerEncoder, Electra, ElectraBatch) {
        let (backbone, _, _) = tiny_parts(device);
        let electra = ElectraConfig::new()
            .with_generator_size(0.5)
            .with_dropout(0.0)
            .init(&backbone, device)
            .unwrap();
        let tokens = pair_batch(device, 0);
        let uniforms = Tensor::from_floats([0.1, 0.5, 0.9, 0.99], device);
        (backbone, electra, ElectraBatch { tokens, uniforms })
    }

    #[test]
    fn sampling_inverts_the_softmax_cdf() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let logits = Tensor::<2>::from_floats(
            [
                [0.0, 0.0, 0.0, 20.0],
                [0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0],
            ],
            &device,
        );
        let u = Tensor::<1>::from_floats([0.3, 0.3, 0.999], &device);
        let sampled = ints(sample_tokens(logits.clone(), u, 1.0));
        // Row 0: nearly all mass on 3; row 1: uniform, CDF 0.25, 0.5, … so u = 0.3 gives 1.
        assert_eq!(sampled, vec![3, 1, 3]);
        // A high temperature flattens row 0: u = 0.3 then falls on an earlier token.
        let hot = sample_tokens(logits, Tensor::from_floats([0.3, 0.3, 0.3], &device), 1e3);
        assert_eq!(ints(hot)[0], 1);
    }

    #[test]
    fn samples_equal_to_the_original_are_labelled_original() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let batch = pair_batch(&device, 0);
        // Targets (in position order) are 9, 12, 9, 12 at flat positions 1, 4, 6, 9.
        let sampled = Tensor::<1, Int>::from_ints([9, 30, 31, 12], &device);
        let (ids, labels) = replace_tokens(&batch, sampled);
        let mut expected = ints(batch.input_ids.clone());
        for (pos, id) in [(1, 9), (4, 30), (6, 31), (9, 12)] {
            expected[pos] = id;
        }
        assert_eq!(ints(ids), expected);
        let mut want = vec![0.0; 10];
        want[4] = 1.0;
        want[6] = 1.0;
        assert_eq!(floats(labels), want);
    }

    #[test]
    fn no_gradient_reaches_the_generator_from_the_discriminator_loss() {
        let _draws = crate::util::random::hold();
        let device = Device::flex().autodiff();
        let (backbone, electra, batch) = setup(&device);
        let parts = electra.parts(&backbone, &batch);
        let mut grads = parts.disc_loss.backward();
        let generator = GradientsParams::from_module(&mut grads, &electra.generator);
        let discriminator = GradientsParams::from_module(&mut grads, &backbone);
        assert!(
            generator.is_empty(),
            "{} generator gradients",
            generator.len()
        );
        assert!(discriminator.len() > 10);
        // The generator's own loss does reach all of its 23 tensors: projection 2, one layer
        // 16 (four attention linears, two feed-forward linears, two LayerNorms), head 5.
        let parts = electra.parts(&backbone, &batch);
        let mut grads = parts.generator.nll_sum.backward();
        let generator = GradientsParams::from_module(&mut grads, &electra.generator);
        assert_eq!(generator.len(), 23);
    }

    #[test]
    fn the_embeddings_are_one_parameter_shared_not_copied() {
        let _draws = crate::util::random::hold();
        let device = Device::flex().autodiff();
        let (backbone, electra, batch) = setup(&device);
        // No vocabulary-sized table of its own: projection 16 -> 8, one layer of width 8
        // (4 * (8 * 8 + 8) + (8 * 32 + 32) + (32 * 8 + 8) + 2 * 2 * 8 = 872), the MLM head
        // (8 * 16 + 16 dense, 2 * 16 LayerNorm, 40 bias) and the discriminator head
        // (16 * 16 + 16, 16 + 1).
        let generator = (16 * 8 + 8) + 872 + (8 * 16 + 16) + 2 * 16 + 40;
        assert_eq!(electra.num_params(), generator + (16 * 16 + 16) + 17);
        // The generator's loss reaches the backbone's token table: it is the same parameter.
        let parts = electra.parts(&backbone, &batch);
        let mut grads = parts.generator.nll_sum.backward();
        let table = backbone.embeddings.tokens.weight.id;
        let shared = GradientsParams::from_module(&mut grads, &backbone);
        assert!(shared.get::<2>(table).is_some());
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let (backbone, _, _) = tiny_parts(&device);
        for config in [
            ElectraConfig::new().with_generator_size(1.5),
            ElectraConfig::new().with_generator_size(0.0),
            ElectraConfig::new().with_generator_layers(2.0),
            ElectraConfig::new().with_disc_weight(-1.0),
            ElectraConfig::new().with_temperature(0.0),
        ] {
            let err = config.init(&backbone, &device).unwrap_err();
            assert!(
                matches!(err, crate::error::Error::InvalidConfig(_)),
                "{config:?}: {err}"
            );
        }
    }
}
