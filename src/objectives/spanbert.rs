//! SpanBERT: masked LM over geometric spans of whole words plus the span-boundary objective
//! (SBO), which predicts each token of a masked span from the states of the two tokens just
//! outside it and the token's offset inside the span.
//!
//! As the reference (`BertPairTargetPredictionHead`): `x_i = LN(GELU(W₂ · LN(GELU(W₁ ·
//! [h_{s−1}; h_{e+1}; P_i]))))`, `P` a table of offsets `0..max_targets`, the output tied to
//! the token table with a bias of its own; spans longer than `max_targets` are cut for SBO;
//! a span needs both boundaries inside the text (`[CLS]` and `[SEP]` are not boundaries).
//! Spans that touch merge into one, as the reference's `merge_intervals`. Loss =
//! MLM + `sbo_weight` · SBO; no NSP (SpanBERT's recipe drops it).

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear};
use burn::prelude::*;
use burn::tensor::activation::gelu;

use super::{EncoderHead, Objective, ObjectiveOutput, Weights, masked_cross_entropy};
use crate::blocks::{EncoderBackbone, LayerNorm, normal_linear};
use crate::data::{Batch, Task, TokenBatch, TokenExample};
use crate::dataset::Documents;
use crate::error::Result;
use crate::noise::{IGNORE_INDEX, MlmMasking};
use crate::objectives::{Mlm, MlmConfig, MlmTask};
use crate::tokenize::Tokenizer;
use crate::util::rng::ExampleRng;

/// The unit of the SBO loss: the span tokens it predicts.
pub const SBO_TARGETS: &str = "sbo_targets";

/// Configuration of the [`SboHead`].
#[derive(Config, Debug)]
pub struct SboHeadConfig {
    /// Longest span SBO predicts, in tokens (longer ones are cut). Default 15, the recipe's
    /// `max_pair_targets`.
    #[config(default = 15)]
    pub max_targets: usize,
    /// Width of the offset embedding. Default 200, as the reference.
    #[config(default = 200)]
    pub offset_size: usize,
    /// LayerNorm epsilon. Default 1e-12.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
}

/// The span-boundary head.
#[derive(Module, Debug)]
pub struct SboHead {
    offsets: Embedding,
    dense1: Linear,
    norm1: LayerNorm,
    dense2: Linear,
    norm2: LayerNorm,
    bias: Param<Tensor<1>>,
}

impl SboHeadConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        if self.max_targets == 0 || self.offset_size == 0 {
            return Err(crate::error::Error::InvalidConfig(
                "the SBO head needs max_targets and offset_size of at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Builds the head for `backbone`.
    pub fn init<M: EncoderBackbone>(&self, backbone: &M, device: &Device) -> Result<SboHead> {
        self.validate()?;
        let hidden = backbone.hidden_size();
        let embedding = backbone.embedding_size();
        let norm = |width| LayerNorm::layer_norm(width, self.layer_norm_eps, device);
        Ok(SboHead {
            offsets: EmbeddingConfig::new(self.max_targets, self.offset_size)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device),
            dense1: normal_linear(2 * hidden + self.offset_size, hidden, 0.02, device),
            norm1: norm(hidden),
            // The second layer ends at the token table's width so that the output can be tied
            // to it (a factorized embedding is narrower than the model).
            dense2: normal_linear(hidden, embedding, 0.02, device),
            norm2: norm(embedding),
            bias: Param::from_tensor(Tensor::zeros([backbone.vocab_size()], device)),
        })
    }
}

impl SboHead {
    /// Logits `[pairs, vocab]` from `hidden` `[batch, len, width]` for the span tokens of
    /// `pairs`, whose boundaries are flat indices into `hidden`; `embedding` is the tied table.
    pub fn logits(&self, hidden: Tensor<3>, pairs: &SboPairs, embedding: Tensor<2>) -> Tensor<2> {
        let [batch, len, width] = hidden.dims();
        let flat = hidden.reshape([batch * len, width]);
        let left = flat.clone().select(0, pairs.left.clone());
        let right = flat.select(0, pairs.right.clone());
        let n = pairs.offsets.dims()[0];
        let offsets = self
            .offsets
            .forward(pairs.offsets.clone().reshape([1, n]))
            .reshape([n, self.offsets.weight.dims()[1]]);
        let x = Tensor::cat(vec![left, right, offsets], 1);
        let x = self.norm1.forward(gelu(self.dense1.forward(x)));
        let x = self.norm2.forward(gelu(self.dense2.forward(x)));
        x.matmul(embedding.transpose()) + self.bias.val().unsqueeze_dim(0)
    }
}

/// SpanBERT's objective: an MLM head and the SBO head on one encoder pass.
#[derive(Module, Debug)]
pub struct SpanBert {
    mlm: Mlm,
    sbo: SboHead,
    #[module(skip)]
    sbo_weight: f64,
}

/// Configuration of [`SpanBert`]: its span-boundary head and that head's weight.
#[derive(Config, Debug)]
pub struct SpanBertConfig {
    /// The span-boundary head.
    pub sbo: SboHeadConfig,
    /// Weight of SBO's loss against MLM's 1 (1 in SpanBERT's recipe).
    #[config(default = 1.0)]
    pub sbo_weight: f64,
}

impl SpanBertConfig {
    /// MLM + `sbo_weight` · SBO over `backbone`.
    pub fn init<M: EncoderBackbone>(&self, backbone: &M, device: &Device) -> Result<SpanBert> {
        crate::error::check_weight("the SBO weight", self.sbo_weight)?;
        Ok(SpanBert {
            mlm: MlmConfig::new().init(backbone, device),
            sbo: self.sbo.init(backbone, device)?,
            sbo_weight: self.sbo_weight,
        })
    }
}

impl SpanBert {
    /// The SBO head.
    pub fn sbo(&self) -> &SboHead {
        &self.sbo
    }
}

impl<M: EncoderBackbone> Objective<M> for SpanBert {
    type Batch = SpanBatch;

    fn forward(&self, backbone: &M, batch: SpanBatch) -> ObjectiveOutput {
        let tokens = &batch.tokens;
        let hidden = super::encode_bidirectional(backbone, tokens);
        let mlm = self.mlm.score(backbone, hidden.clone(), tokens);
        let logits = self
            .sbo
            .logits(hidden, &batch.pairs, backbone.token_embedding());
        let sbo = masked_cross_entropy(logits, batch.pairs.targets);
        let mut metrics = mlm.metrics;
        metrics.extend([sbo.accuracy("sbo_acc"), sbo.mean_loss("sbo_loss")]);
        ObjectiveOutput {
            loss: mlm.loss.plus(sbo.loss(SBO_TARGETS).scaled(self.sbo_weight)),
            metrics,
        }
    }
}

/// One SBO target: a span token, its offset in the span and the span's boundary positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SboPair {
    /// Position of the token before the span.
    pub left: u32,
    /// Position of the token after the span.
    pub right: u32,
    /// The token's offset inside the span.
    pub offset: u32,
    /// The token to predict.
    pub target: u32,
}

/// A masked segment with its SBO targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanExample {
    /// The masked segment.
    pub tokens: TokenExample,
    /// One entry per span token SBO predicts.
    pub pairs: Vec<SboPair>,
}

/// The SBO targets of a batch, boundaries as flat indices (`b * len + t`).
#[derive(Debug, Clone)]
pub struct SboPairs {
    /// `[pairs]` left boundaries.
    pub left: Tensor<1, Int>,
    /// `[pairs]` right boundaries.
    pub right: Tensor<1, Int>,
    /// `[pairs]` offsets inside the spans.
    pub offsets: Tensor<1, Int>,
    /// `[pairs]` ids to predict ([`IGNORE_INDEX`] for the placeholder of a batch without
    /// any).
    pub targets: Tensor<1, Int>,
    /// Number of SBO targets (the placeholder not counted).
    pub count: usize,
}

/// A padded batch of [`SpanExample`]s.
#[derive(Debug, Clone)]
pub struct SpanBatch {
    /// The masked tokens.
    pub tokens: TokenBatch,
    /// The SBO targets.
    pub pairs: SboPairs,
}

impl Batch for SpanBatch {
    fn num_tokens(&self) -> usize {
        self.tokens.num_tokens
    }

    /// Its masked tokens and its SBO targets.
    fn weights(&self) -> Weights {
        self.tokens
            .weights()
            .and(SBO_TARGETS, self.pairs.count as f64)
    }
}

/// SBO targets of a masked sequence: each maximal run of targets `[s, e]` whose neighbours
/// `s − 1` and `e + 1` are maskable text gives its first `max_targets` tokens.
pub fn sbo_pairs(targets: &[i64], maskable: &[bool], max_targets: usize) -> Vec<SboPair> {
    let mut pairs = Vec::new();
    let mut k = 0;
    while k < targets.len() {
        if targets[k] == IGNORE_INDEX {
            k += 1;
            continue;
        }
        let start = k;
        while k < targets.len() && targets[k] != IGNORE_INDEX {
            k += 1;
        }
        // The run is [start, k); its boundaries must be text.
        if start > 0 && k < targets.len() && maskable[start - 1] && maskable[k] {
            for pos in start..k.min(start + max_targets) {
                pairs.push(SboPair {
                    left: (start - 1) as u32,
                    right: k as u32,
                    offset: (pos - start) as u32,
                    target: targets[pos] as u32,
                });
            }
        }
    }
    pairs
}

/// The data side of [`SpanBert`]: segments masked by spans, with their SBO targets.
#[derive(Debug, Clone)]
pub struct SpanBertTask {
    mlm: MlmTask,
    pad: u32,
    max_targets: usize,
}

impl SpanBertTask {
    /// Segments of at most `seq_len` tokens masked with `settings.masking` (normally
    /// [`MlmMasking::spanbert`]), SBO over spans of at most `settings.sbo.max_targets` tokens.
    pub fn new(
        documents: &Documents,
        tokenizer: &Tokenizer,
        settings: &SpanBertSettings,
        seq_len: usize,
    ) -> Result<Self> {
        Ok(Self {
            mlm: MlmTask::new(documents, tokenizer, settings.masking, seq_len)?,
            pad: tokenizer.special().pad,
            max_targets: settings.sbo.max_targets,
        })
    }
}

impl Task for SpanBertTask {
    type Example = SpanExample;
    type Batch = SpanBatch;

    fn num_examples(&self) -> usize {
        self.mlm.num_examples()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> Result<SpanExample> {
        let tokens = self.mlm.example(index, rng)?;
        // A framed segment: text between [CLS] and [SEP].
        let n = tokens.input_ids.len();
        let maskable: Vec<bool> = (0..n).map(|i| i > 0 && i + 1 < n).collect();
        let pairs = sbo_pairs(&tokens.targets, &maskable, self.max_targets);
        Ok(SpanExample { tokens, pairs })
    }

    fn collate(&self, examples: &[SpanExample], device: &Device) -> Result<SpanBatch> {
        let tokens: Vec<&TokenExample> = examples.iter().map(|e| &e.tokens).collect();
        let tokens = TokenBatch::collate(&tokens, self.pad, device)?;
        let len = tokens.input_ids.dims()[1];
        let (mut left, mut right, mut offsets, mut targets) = (vec![], vec![], vec![], vec![]);
        for (b, e) in examples.iter().enumerate() {
            for p in &e.pairs {
                left.push((b * len) as i64 + i64::from(p.left));
                right.push((b * len) as i64 + i64::from(p.right));
                offsets.push(i64::from(p.offset));
                targets.push(i64::from(p.target));
            }
        }
        let count = targets.len();
        if targets.is_empty() {
            // No span has both boundaries: one ignored placeholder keeps the shapes valid.
            (left, right, offsets, targets) = (vec![0], vec![0], vec![0], vec![IGNORE_INDEX]);
        }
        let n = targets.len();
        let ints = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device);
        Ok(SpanBatch {
            tokens,
            pairs: SboPairs {
                left: ints(left),
                right: ints(right),
                offsets: ints(offsets),
                targets: ints(targets),
                count,
            },
        })
    }
}

/// The settings of `spanbert`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanBertSettings {
    /// The span masking.
    pub masking: MlmMasking,
    /// The span-boundary head.
    pub sbo: SboHeadConfig,
    /// Weight of SBO's loss against MLM's 1.
    pub sbo_weight: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockConfig;
    use crate::blocks::TransformerEncoderConfig;
    use burn::tensor::Distribution;

    #[test]
    fn pairs_come_from_runs_with_text_on_both_sides() {
        let _draws = crate::util::random::hold();
        let i = IGNORE_INDEX;
        // [CLS] t t . . t . t t t [SEP]: runs at 1..3 (touches [CLS]), 5, and 7..10 (touches
        // [SEP]); only the middle one has text on both sides.
        let targets = [i, 11, 12, i, i, 15, i, 17, 18, 19, i];
        let maskable: Vec<bool> = (0..11).map(|k| k > 0 && k < 10).collect();
        let pairs = sbo_pairs(&targets, &maskable, 15);
        assert_eq!(
            pairs,
            vec![SboPair {
                left: 4,
                right: 6,
                offset: 0,
                target: 15
            }]
        );
        // A long run is cut to max_targets.
        let targets = [i, i, 1, 2, 3, 4, 5, i, i];
        let maskable = [false, true, true, true, true, true, true, true, false];
        let pairs = sbo_pairs(&targets, &maskable, 3);
        assert_eq!(
            pairs.iter().map(|p| p.offset).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(pairs.iter().all(|p| (p.left, p.right) == (1, 7)));
    }

    #[test]
    fn the_sbo_head_sees_only_the_boundary_states() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let _draws = crate::util::random::seeded(&device, 1);
        let backbone = TransformerEncoderConfig::new(50, 32, 1, BlockConfig::new(4, 64))
            .init(&device)
            .unwrap();
        let head = SboHeadConfig::new().init(&backbone, &device).unwrap();
        let ints = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [2]), &device);
        // Two targets of a span at 3..5 in a sequence of 8: boundaries 2 and 5.
        let pairs = SboPairs {
            left: ints(vec![2, 2]),
            right: ints(vec![5, 5]),
            offsets: ints(vec![0, 1]),
            targets: ints(vec![7, 8]),
            count: 2,
        };
        let hidden = Tensor::<3>::random([1, 8, 32], Distribution::Normal(0.0, 1.0), &device);
        let table = backbone.token_embedding();
        let base = head.logits(hidden.clone(), &pairs, table.clone());
        let perturbed = |pos: usize| {
            let noise = Tensor::<3>::random([1, 1, 32], Distribution::Normal(0.0, 1.0), &device);
            let h = hidden
                .clone()
                .slice_assign([0..1, pos..pos + 1, 0..32], noise);
            (head.logits(h, &pairs, table.clone()) - base.clone())
                .abs()
                .max()
                .into_scalar::<f32>()
        };
        for inside_or_away in [0, 1, 3, 4, 6, 7] {
            assert!(
                perturbed(inside_or_away) < 1e-6,
                "saw position {inside_or_away}"
            );
        }
        for boundary in [2, 5] {
            assert!(perturbed(boundary) > 1e-4, "blind to boundary {boundary}");
        }
        // The offset matters: the two targets share boundaries but not logits.
        let rows = |r: usize| base.clone().slice([r..r + 1, 0..50]);
        assert!((rows(0) - rows(1)).abs().max().into_scalar::<f32>() > 1e-4);
    }

    #[test]
    fn a_negative_or_infinite_sbo_weight_is_rejected() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let backbone = TransformerEncoderConfig::new(50, 32, 1, BlockConfig::new(4, 64))
            .init(&device)
            .unwrap();
        for w in [-1.0, f64::INFINITY, f64::NAN] {
            assert!(
                SpanBertConfig::new(SboHeadConfig::new())
                    .with_sbo_weight(w)
                    .init(&backbone, &device)
                    .is_err()
            );
        }
        let zero = SboHeadConfig::new().with_max_targets(0);
        assert!(SpanBertConfig::new(zero).init(&backbone, &device).is_err());
    }
}
