//! LoRA: an adapter `peft` saved loads onto its base and gives `peft`'s hidden states
//! (`tests/fixtures/peft/bert-lora`, built by `scripts/peft_fixture.py`), merges into the same
//! function, exports back as the same file; fine-tuning with adapters trains them and the
//! head and leaves every base weight as it was.

mod common;

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use pretext::blocks::{AttentionMask, EncoderBackbone, TransformerEncoder};
use pretext::data::Task;
use pretext::error::Error;
use pretext::finetune::{TaggingTask, fine_tune, pos};
use pretext::hf::{ADAPTER_CONFIG, ADAPTER_WEIGHTS, HfConfig, export_peft, load_bert, load_peft};
use pretext::lora::{LoraConfig, adapters, merged, trainable};
use pretext::objectives::TokenClassifierConfig;
use pretext::{Pretrainer, Tokenizer};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn ints(value: &Value, device: &Device) -> Tensor<2, Int> {
    let rows: Vec<Vec<i64>> = serde_json::from_value(value.clone()).unwrap();
    let shape = [rows.len(), rows[0].len()];
    Tensor::from_data(TensorData::new(rows.concat(), shape), device)
}

/// `encoder`'s hidden states at the real tokens of the fixture's inputs, flattened.
fn hidden(encoder: &TransformerEncoder, want: &Value, device: &Device) -> Vec<f32> {
    let ids = ints(&want["input_ids"], device);
    let types = ints(&want["token_type_ids"], device);
    let mask = AttentionMask::padding(ints(&want["attention_mask"], device).equal_elem(0));
    let positions: Vec<i64> = serde_json::from_value(want["positions"].clone()).unwrap();
    let count = positions.len();
    let positions = Tensor::<1, Int>::from_data(TensorData::new(positions, [count]), device);
    let states = encoder.encode(ids, Some(types), Some(&mask));
    let [batch, len, width] = states.dims();
    let states = states.reshape([batch * len, width]).select(0, positions);
    states.into_data().convert::<f32>().try_to_vec().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn a_peft_adapter_matches_peft_merges_the_same_and_exports_back_unchanged() {
    let device = Device::flex();
    let base_dir = fixture("hf/bert-model");
    let base = load_bert(&base_dir, &device).unwrap().encoder;
    let text = std::fs::read_to_string(fixture("peft/bert-lora/expected.json")).unwrap();
    let want: Value = serde_json::from_str(&text).unwrap();
    let theirs: Vec<f32> = serde_json::from_value(want["hidden"].clone()).unwrap();

    let (adapted, lora) = load_peft(&fixture("peft/bert-lora"), base.clone()).unwrap();
    assert_eq!((lora.rank, lora.alpha), (4, 8.0));
    assert_eq!(adapters(&adapted).len(), 4, "query and value of 2 layers");
    let ours = hidden(&adapted, &want, &device);
    let diff = max_abs_diff(&ours, &theirs);
    assert!(diff < 1e-4, "hidden states differ from peft's by {diff}");
    // The adapter matters: the base alone is far from peft's states.
    assert!(max_abs_diff(&hidden(&base, &want, &device), &theirs) > 0.1);

    let merged = merged(adapted.clone());
    assert!(adapters(&merged).is_empty());
    let diff = max_abs_diff(&hidden(&merged, &want, &device), &ours);
    assert!(diff < 1e-5, "merged against adapted: {diff}");

    // Out again: the same tensors under the same keys, and read back the same.
    let config = HfConfig::read(&base_dir)
        .unwrap()
        .encoder(&base_dir)
        .unwrap();
    let out = common::temp_dir("peft-export");
    export_peft(&config, &adapted, &lora, 0, &out, false).unwrap();
    let read = |dir: &Path| std::fs::read(dir.join(ADAPTER_WEIGHTS)).unwrap();
    let (written, committed) = (read(&out), read(&fixture("peft/bert-lora")));
    let written = safetensors::SafeTensors::deserialize(&written).unwrap();
    let committed = safetensors::SafeTensors::deserialize(&committed).unwrap();
    let mut keys = written.names();
    keys.sort();
    let mut committed_keys = committed.names();
    committed_keys.sort();
    assert_eq!(keys, committed_keys);
    for key in keys {
        let (a, b) = (written.tensor(key).unwrap(), committed.tensor(key).unwrap());
        assert_eq!((a.shape(), a.data()), (b.shape(), b.data()), "{key}");
    }
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(ADAPTER_CONFIG)).unwrap()).unwrap();
    assert_eq!(
        (&settings["r"], &settings["lora_alpha"]),
        (&4.into(), &8.0.into())
    );
    let (again, _) = load_peft(&out, base).unwrap();
    assert_eq!(hidden(&again, &want, &device), ours);
    // scripts/peft_fixture.py --check loads the export in peft itself.
    if std::env::var_os("PRETEXT_KEEP_EXPORTS").is_some() {
        eprintln!("the export is kept in {}", out.display());
    } else {
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// A change to an adapter's settings, and a word the error it causes must name.
type Edit = (fn(&mut Value), &'static str);

#[test]
fn adapters_peft_computes_otherwise_or_pretext_cannot_name_are_refused() {
    let device = Device::flex();
    let base = load_bert(&fixture("hf/bert-model"), &device)
        .unwrap()
        .encoder;
    let copy = |edit: fn(&mut Value)| {
        let dir = common::temp_dir("peft-bad");
        std::fs::create_dir_all(&dir).unwrap();
        let source = fixture("peft/bert-lora");
        std::fs::copy(source.join(ADAPTER_WEIGHTS), dir.join(ADAPTER_WEIGHTS)).unwrap();
        let text = std::fs::read_to_string(source.join(ADAPTER_CONFIG)).unwrap();
        let mut settings: Value = serde_json::from_str(&text).unwrap();
        edit(&mut settings);
        std::fs::write(dir.join(ADAPTER_CONFIG), settings.to_string()).unwrap();
        dir
    };
    let edits: [Edit; 3] = [
        (|s| s["use_dora"] = true.into(), "use_dora"),
        (|s| s["peft_type"] = "IA3".into(), "IA3"),
        (|s| s["r"] = 8.into(), "rank 8"),
    ];
    for (edit, named) in edits {
        let dir = copy(edit);
        let err = load_peft(&dir, base.clone()).unwrap_err();
        assert!(
            matches!(err, Error::HfModel { .. }) && err.to_string().contains(named),
            "{err}"
        );
    }
    let missing = load_peft(&fixture("hf/bert-model"), base).unwrap_err();
    assert!(missing.to_string().contains(ADAPTER_CONFIG), "{missing}");
}

/// Every float parameter of `module` that has no adapter factor in its path, flattened.
fn base_values<M: Module>(module: &M) -> Vec<f32> {
    struct Values(Vec<f32>, Vec<String>);
    impl ModuleVisitor for Values {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.1.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.1.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !self.1.iter().any(|n| n == "lora") {
                let data = param.val().into_data().convert::<f32>();
                self.0.extend(data.try_to_vec::<f32>().unwrap());
            }
        }
    }
    let mut values = Values(Vec::new(), Vec::new());
    module.visit(&mut values);
    values.0
}

#[test]
fn fine_tuning_with_adapters_trains_them_and_the_head_and_leaves_the_base() {
    let tokenizer = Tokenizer::bundled().unwrap();
    let data = pos::load().unwrap();
    let classes = data.labels.len();
    let train_task = TaggingTask::new(&data.train[..256], &tokenizer, classes, 64).unwrap();
    let valid_task = TaggingTask::new(&data.valid, &tokenizer, classes, 64).unwrap();
    let device = Device::flex().autodiff();
    let backbone = common::tiny_backbone(&tokenizer, &device);
    let lora = LoraConfig::new().with_rank(4);
    let (backbone, head) = common::seeded(&device, || {
        let head = TokenClassifierConfig::new(classes, "pos".into())
            .init(&backbone, &device)
            .unwrap();
        (lora.adapt(backbone.clone()).unwrap(), head)
    });
    let (adapted, all) = trainable(&backbone);
    assert!(adapted * 50 < all, "{adapted} of {all} trainable");
    let (base_before, head_before) = (base_values(&backbone), base_values(&head));
    let (report, scores) = fine_tune(
        backbone,
        head,
        [&train_task, &valid_task, &valid_task],
        &common::quick_config(60),
        None,
        &device,
    )
    .unwrap();
    let Pretrainer {
        backbone,
        objective: head,
    } = report.model;
    assert_eq!(base_values(&backbone), base_before, "a base weight moved");
    assert!(
        adapters(&backbone)
            .iter()
            .all(|a| a.b.clone().abs().max().into_scalar::<f32>() > 0.0),
        "an adapter did not train"
    );
    assert_ne!(base_values(&head), head_before, "the head did not train");
    let losses = common::train_losses(&report.history);
    let (first, last) = common::ends(&losses, 10);
    eprintln!(
        "LoRA tagging loss {first:.3} -> {last:.3}, accuracy {:.3} over {}",
        scores.accuracy,
        valid_task.num_examples()
    );
    assert!(last < 0.8 * first, "tagging loss {first} -> {last}");
}
