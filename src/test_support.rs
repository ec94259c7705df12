//! Fixtures for the unit tests: a one-layer encoder over a 40-token vocabulary, its heads, and a
//! small labelled batch.

use burn::prelude::*;

use crate::blocks::{BlockConfig, TransformerEncoder, TransformerEncoderConfig};
use crate::data::PairKind;
use crate::data::{TokenBatch, TokenExample};
use crate::noise::IGNORE_INDEX;
use crate::objectives::{Mlm, MlmConfig, PairHead, PairHeadConfig};

/// A seeded width-16 encoder without dropout, with an MLM and an NSP head.
pub fn tiny_parts(device: &Device) -> (TransformerEncoder, Mlm, PairHead) {
    crate::util::random::init_seeded(device, 3, || {
        let backbone = TransformerEncoderConfig::new(40, 16, 1, BlockConfig::new(2, 32))
            .with_dropout(0.0)
            .init(device)
            .unwrap();
        let mlm = MlmConfig::new().init(&backbone, device);
        let nsp = PairHeadConfig::new(PairKind::NextSentence).init(&backbone, device);
        (backbone, mlm, nsp)
    })
}

/// Two five-token pairs with two MLM targets each and NSP labels 0 and 1; `variant` changes
/// one input token and one target, so that batches differ clearly even to an untrained model.
pub fn pair_batch(device: &Device, variant: u32) -> TokenBatch {
    let example = |ids: Vec<u32>, label| TokenExample {
        segment_ids: vec![0, 0, 0, 1, 1],
        targets: vec![
            IGNORE_INDEX,
            9 + i64::from(variant),
            IGNORE_INDEX,
            IGNORE_INDEX,
            12,
        ],
        input_ids: ids,
        label: Some(label),
        named: Default::default(),
    };
    let examples = [
        example(vec![2, 4, 3, 7 + variant, 3], 0),
        example(vec![2, 4, 3, 8, 3], 1),
    ];
    TokenBatch::collate(&examples, 0, device).unwrap()
}

/// A seeded causal model of the tiny preset over the bundled vocabulary, without dropout.
pub fn tiny_causal_lm(device: &Device) -> crate::generate::CausalLm {
    tiny_causal_lm_seeded(device, 21)
}

/// [`tiny_causal_lm`] with the weights `seed` draws.
pub fn tiny_causal_lm_seeded(device: &Device, seed: u64) -> crate::generate::CausalLm {
    let tokenizer = crate::tokenize::Tokenizer::bundled().unwrap();
    let (encoder, clm) = crate::util::random::init_seeded(device, seed, || {
        let encoder = crate::preset::Preset::Tiny
            .encoder(tokenizer.vocab_size())
            .map_block(|b| b.with_norm_first(true))
            .with_dropout(0.0)
            .init(device)
            .unwrap();
        let clm = crate::objectives::ClmConfig::new().init(&encoder, device);
        (encoder, clm)
    });
    let special = tokenizer.special();
    crate::generate::CausalLm {
        head: clm.head().clone(),
        encoder,
        bos: Some(special.cls),
        eos: special.sep,
        tokenizer,
    }
}

/// `text` written to a temporary file of this process named after `name`, its extension kept
/// (tests run in parallel, so each test names its own).
pub fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("pretext-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// The largest absolute difference between `a` and `b`.
pub fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// `module` with every float parameter multiplied by `factor`: wide weights make attention
/// sharp, so that outputs react visibly to where each key is.
pub fn scaled<M: burn::module::Module>(module: M, factor: f64) -> M {
    struct Scale(f64);
    impl burn::module::ModuleMapper for Scale {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            let factor = self.0;
            param.map(|t| t.mul_scalar(factor))
        }
    }
    module.map(&mut Scale(factor))
}

/// `work` on each of `size` [local ranks](crate::train::LocalRank), each on its own thread;
/// the results in rank order (a rank's panic is raised again here).
pub fn on_local_ranks<R: Send>(
    size: usize,
    work: impl Fn(&crate::train::LocalRank) -> R + Sync,
) -> Vec<R> {
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = crate::train::LocalRank::all(size)
            .into_iter()
            .map(|rank| scope.spawn(move || work(&rank)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}
