//! A head of one's own, with targets of its own, mixed with MLM over one encoder pass, written
//! as a crate outside pretext would write it: the head flags the tokens MLM must predict (it
//! reads `TokenExample::named`), using the public detection pieces.

mod common;

use pretext::blocks::EncoderBackbone;
use pretext::burn;
use pretext::burn::prelude::*;
use pretext::data::{Documents, Task, TokenBatch, TokenExample};
use pretext::noise::{ExampleRng, IGNORE_INDEX};
use pretext::objectives::detection::{binary_cross_entropy, detection_metrics};
use pretext::objectives::{
    DetectionHead, DetectionHeadConfig, EncoderHead, Loss, Mix, MlmConfig, MlmTask, Objective,
    ObjectiveOutput, forward_encoder_head,
};
use pretext::train::Trainer;
use pretext::{Pretrainer, Tokenizer};

/// Flags each token that carries an MLM target, from the named targets `"flags"`.
#[derive(Module, Debug)]
struct FlagHead {
    head: DetectionHead,
}

impl<M: EncoderBackbone> EncoderHead<M> for FlagHead {
    fn score(&self, _: &M, hidden: Tensor<3>, batch: &TokenBatch) -> ObjectiveOutput {
        let logits = self.head.forward(hidden);
        let flags = batch.named("flags").expect("the task fills the flags");
        let real = flags.clone().not_equal_elem(IGNORE_INDEX).float();
        let labels = flags.clone().clamp_min(0).float();
        let loss = (binary_cross_entropy(logits.clone(), labels.clone()) * real.clone()).sum();
        ObjectiveOutput {
            metrics: detection_metrics(
                "flag",
                "flagged_frac",
                logits.detach(),
                labels,
                real,
                loss.clone().detach(),
            ),
            // A named target is a unit of its own name: the loop divides by the step's count.
            loss: Loss::over("flags", loss),
        }
    }
}

/// Alone, the head reads its own pass of the encoder.
impl<M: EncoderBackbone> Objective<M> for FlagHead {
    type Batch = TokenBatch;

    fn forward(&self, backbone: &M, batch: TokenBatch) -> ObjectiveOutput {
        forward_encoder_head(self, backbone, batch)
    }
}

/// MLM's examples, each token also labelled 1 where it carries an MLM target.
struct FlaggedMlm(MlmTask);

impl Task for FlaggedMlm {
    type Example = TokenExample;
    type Batch = TokenBatch;

    fn num_examples(&self) -> usize {
        self.0.num_examples()
    }

    fn example(&self, index: usize, rng: &mut ExampleRng) -> pretext::Result<TokenExample> {
        let mut example = self.0.example(index, rng)?;
        let flags = example
            .targets
            .iter()
            .map(|&t| i64::from(t != IGNORE_INDEX))
            .collect();
        example.named.insert("flags".into(), flags);
        Ok(example)
    }

    // Collation carries the named targets along with MLM's own.
    fn collate(&self, examples: &[TokenExample], device: &Device) -> pretext::Result<TokenBatch> {
        self.0.collate(examples, device)
    }
}

fn task(tokenizer: &Tokenizer, docs: &Documents) -> FlaggedMlm {
    FlaggedMlm(common::mlm_task(tokenizer, docs, 64))
}

#[test]
fn a_head_with_its_own_targets_mixes_with_mlm_over_one_pass() {
    let (tokenizer, train, valid) = common::real_text();
    let device = Device::flex().autodiff();
    let config = common::quick_config(40).with_valid_every(40);
    config.seed_device(&device);
    let backbone = common::tiny_encoder(&tokenizer).init(&device).unwrap();
    let mlm = MlmConfig::new().init(&backbone, &device);
    let flags = FlagHead {
        head: DetectionHeadConfig::new(backbone.hidden_size()).init(&device),
    };

    // The mix's loss is the weighted sum of the two heads' losses on the same batch.
    let (train_task, valid_task) = (task(&tokenizer, &train), task(&tokenizer, &valid));
    let examples: Vec<_> = (0..4)
        .map(|i| train_task.example(i, &mut pretext::noise::example_rng(1, 0, i as u64)))
        .collect::<pretext::Result<_>>()
        .unwrap();
    let batch = train_task.collate(&examples, &device).unwrap();
    let weights = pretext::data::Batch::weights(&batch);
    let mean = |out: ObjectiveOutput| out.loss.normalized(&weights).into_scalar::<f32>();
    let backbone_eval = backbone.clone().without_dropout();
    let alone = mean(Objective::forward(&mlm, &backbone_eval, batch.clone()))
        + 0.5 * mean(Objective::forward(&flags, &backbone_eval, batch.clone()));
    let mix = Mix::new(mlm, 1.0, flags, 0.5).unwrap();
    let mixed = mean(Objective::forward(&mix, &backbone_eval, batch));
    assert!((mixed - alone).abs() < 1e-5, "mix {mixed}, parts {alone}");

    // Trained together, both heads learn: the flag head ranks the flagged tokens first.
    let report = Trainer::new(Pretrainer::new(backbone, mix), &config)
        .fit(&train_task, &valid_task)
        .unwrap();
    let last = report.history.last().unwrap();
    let auc = last.metrics["flag_auc"];
    assert!(auc > 0.8, "flag AUC {auc}: {:?}", last.metrics);
    assert!(last.metrics["mlm_acc"] > 0.0);
    let losses = common::train_losses(&report.history);
    assert!(losses[losses.len() - 1] < 0.8 * losses[0], "{losses:?}");
}
