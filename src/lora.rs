//! Low-rank adapters (LoRA, Hu et al. 2021) for parameter-efficient fine-tuning, over burn's
//! own: each targeted weight matrix `W` becomes `W + (alpha / rank) · a · b` with `a` of shape
//! `[d_in, rank]` and `b` of `[rank, d_out]`, `W` frozen, and only `a` and `b` trained.
//!
//! Targets name modules as `peft`'s `target_modules` list does: a module's path or a dotted
//! suffix of it, so `"query"` adapts `layers.N.attention.query.weight` in every layer. A
//! target that names no module with a weight matrix is an error, never a silent no-op.
//!
//! `a` starts as `N(0, 1/rank)` (burn's draw; `peft` draws Kaiming-uniform) and `b` as zeros,
//! so an adapted model starts as its base. [`merged`] folds the adapters into dense weights:
//! the same function, with no trace of LoRA left, for export and inference.
//!
//! ```
//! use pretext::burn::prelude::*;
//! use pretext::lora::{LoraConfig, trainable};
//!
//! let device = Device::flex().autodiff();
//! let encoder = pretext::Preset::Tiny.encoder(512).init(&device)?;
//! let adapted = LoraConfig::new().with_rank(4).adapt(encoder)?;
//! let (train, all) = trainable(&adapted);
//! assert!(train * 20 < all);
//! # Ok::<(), pretext::Error>(())
//! ```

use std::path::Path;

use burn::module::{Lora, Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::prelude::*;
use burn::store::{BurnpackStore, ModuleSnapshot};

use crate::error::{Error, Result};

/// Which weight matrices get adapters, and their rank and scale.
#[derive(Config, Debug, PartialEq)]
pub struct LoraConfig {
    /// Rank of each adapter.
    #[config(default = 8)]
    pub rank: usize,
    /// Scale numerator: an adapter adds `(alpha / rank) · a · b`.
    #[config(default = 16.0)]
    pub alpha: f64,
    /// Modules whose weight matrix gets an adapter, each a module path or a dotted suffix of
    /// one (`"query"`, `"attention.value"`, `"ffn.up"`), as `peft`'s `target_modules`.
    #[config(default = "vec![\"query\".to_string(), \"value\".to_string()]")]
    pub targets: Vec<String>,
}

impl LoraConfig {
    /// Fails on a rank of 0, a scale that is not a positive number or no target.
    pub fn validate(&self) -> Result<()> {
        let fault = if self.rank == 0 {
            Some("a LoRA rank of 0 adapts nothing: give 1 or more".to_string())
        } else if !(self.alpha.is_finite() && self.alpha > 0.0) {
            Some(format!(
                "LoRA alpha {} must be a positive number",
                self.alpha
            ))
        } else if self.targets.is_empty() {
            Some("LoRA needs at least one target module".to_string())
        } else {
            None
        };
        fault.map_or(Ok(()), |fault| Err(Error::InvalidConfig(fault)))
    }

    /// `model` with every parameter frozen and a trainable adapter on each target's weight
    /// matrix. Fails as [`validate`](Self::validate) does, and on a target that names no
    /// module of `model` with a weight matrix (the error lists the modules there are).
    pub fn adapt<M: Module>(&self, model: M) -> Result<M> {
        self.validate()?;
        // burn draws the adapters' `a` factors now, from the shared stream: hold it (a seeded
        // caller's guard already does).
        let _draws = crate::util::random::hold();
        let weights = weight_matrices(&model);
        let mut ids = Vec::new();
        for target in &self.targets {
            let found: Vec<ParamId> = weights
                .iter()
                .filter(|(module, _)| names(module, target))
                .map(|(_, id)| *id)
                .collect();
            if found.is_empty() {
                return Err(Error::InvalidConfig(format!(
                    "LoRA target {target:?} names no module with a weight matrix; the model's \
                     are named {}",
                    module_names(&weights)
                )));
            }
            ids.extend(found);
        }
        let lora = Lora::new(self.rank, self.alpha).set_param_group(ParamGroup::from_ids(ids));
        Ok(model.apply_lora(lora))
    }
}

/// Whether the module at `path` is the one `target` names: the same path, or `target` a
/// dotted suffix of it.
fn names(path: &str, target: &str) -> bool {
    path == target
        || path
            .strip_suffix(target)
            .is_some_and(|head| head.ends_with('.'))
}

/// The modules of `model` that hold a weight matrix (a 2-D parameter named `weight`), by
/// path, with the weight's id.
fn weight_matrices<M: Module>(model: &M) -> Vec<(String, ParamId)> {
    let mut weights = Vec::new();
    visit_paths(model, |path, param, dims| {
        if let Some(module) = path.strip_suffix(".weight")
            && dims == 2
        {
            weights.push((module.to_string(), param));
        }
    });
    weights
}

/// The distinct last names of the modules in `weights`, in order, for an error message.
fn module_names(weights: &[(String, ParamId)]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for (module, _) in weights {
        let last = module.rsplit('.').next().unwrap_or(module);
        if !seen.contains(&last) {
            seen.push(last);
        }
    }
    seen.join(", ")
}

/// Calls `visit` with the dotted path, id and rank of every float parameter of `model`,
/// adapter factors included (at `<weight path>.lora.a` and `.lora.b`).
fn visit_paths<M: Module>(model: &M, visit: impl FnMut(&str, ParamId, usize)) {
    struct Paths<F> {
        stack: Vec<String>,
        visit: F,
    }
    impl<F: FnMut(&str, ParamId, usize)> ModuleVisitor for Paths<F> {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.stack.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            (self.visit)(&self.stack.join("."), param.id, D);
        }
    }
    model.visit(&mut Paths {
        stack: Vec::new(),
        visit,
    });
}

/// The parameters of `model` that training updates and all of its parameters, counted in
/// numbers (an adapted model: the adapters' against the base's plus the adapters').
pub fn trainable<M: Module>(model: &M) -> (usize, usize) {
    struct Count(usize, usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let n = param.lazy_shape().num_elements();
            self.1 += n;
            if param.val().is_require_grad() {
                self.0 += n;
            }
        }
    }
    let mut count = Count(0, 0);
    model.visit(&mut count);
    (count.0, count.1)
}

/// One adapter of a model: the path of the weight it adapts and its factors.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// The adapted weight's path (`layers.0.attention.query.weight`).
    pub weight: String,
    /// The down factor, `[d_in, rank]`.
    pub a: Tensor<2>,
    /// The up factor, `[rank, d_out]`.
    pub b: Tensor<2>,
}

/// The adapters of `model`, in its order.
pub fn adapters<M: Module>(model: &M) -> Vec<Adapter> {
    struct Factors {
        stack: Vec<String>,
        found: Vec<Adapter>,
    }
    impl ModuleVisitor for Factors {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.stack.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some((weight, factor)) = factor_of(&self.stack) else {
                return;
            };
            // A factor is a matrix: the reshape only names its rank.
            let value = param.val();
            let [rows, columns] = [value.dims()[0], value.dims()[D - 1]];
            let value = value.reshape([rows, columns]);
            match factor {
                Factor::A => self.found.push(Adapter {
                    weight,
                    b: value.clone().zeros_like(),
                    a: value,
                }),
                Factor::B => {
                    if let Some(last) = self.found.last_mut().filter(|last| last.weight == weight) {
                        last.b = value;
                    }
                }
            }
        }
    }
    let mut factors = Factors {
        stack: Vec::new(),
        found: Vec::new(),
    };
    model.visit(&mut factors);
    factors.found
}

/// `model` (adapted with the same targets and rank) with its adapters' factors set to those
/// of `adapters`, matched by the adapted weight's path. Fails on an adapter whose weight has
/// no adapter in `model` or whose factors' shapes differ from the model's.
pub fn with_adapters<M: Module>(model: M, adapters: &[Adapter]) -> Result<M> {
    struct Set<'a> {
        stack: Vec<String>,
        adapters: &'a [Adapter],
        set: usize,
        fault: Option<String>,
    }
    impl burn::module::ModuleMapper for Set<'_> {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.stack.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.stack.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some((weight, factor)) = factor_of(&self.stack) else {
                return param;
            };
            let Some(adapter) = self.adapters.iter().find(|a| a.weight == weight) else {
                return param;
            };
            let given = match factor {
                Factor::A => &adapter.a,
                Factor::B => {
                    self.set += 1;
                    &adapter.b
                }
            };
            let shape = param.lazy_shape();
            if shape.as_slice() != given.dims().as_slice() {
                self.fault.get_or_insert(format!(
                    "the adapter of {weight} has a factor of shape {:?} where the model's is \
                     {:?} (another rank or model?)",
                    given.dims(),
                    shape.as_slice()
                ));
                return param;
            }
            let given = given.clone();
            param.map(|tensor| {
                let value = given
                    .reshape(tensor.shape())
                    .to_device(&tensor.device())
                    .detach();
                match tensor.is_require_grad() {
                    true => value.require_grad(),
                    false => value,
                }
            })
        }
    }
    let mut set = Set {
        stack: Vec::new(),
        adapters,
        set: 0,
        fault: None,
    };
    let model = model.map(&mut set);
    if let Some(fault) = set.fault {
        return Err(Error::InvalidConfig(fault));
    }
    if set.set != adapters.len() {
        let have = self::adapters(&model);
        let missing: Vec<&str> = adapters
            .iter()
            .filter(|a| !have.iter().any(|h| h.weight == a.weight))
            .map(|a| a.weight.as_str())
            .collect();
        return Err(Error::InvalidConfig(format!(
            "the model has no adapter on {}: adapt it with the same targets first",
            missing.join(", ")
        )));
    }
    Ok(model)
}

/// One of an adapter's two factors.
enum Factor {
    A,
    B,
}

/// The adapted weight's path and the factor, where `path` is that of a factor
/// (`<weight path>.lora.a`).
fn factor_of(path: &[String]) -> Option<(String, Factor)> {
    let [weight @ .., lora, factor] = path else {
        return None;
    };
    let factor = match (lora.as_str(), factor.as_str()) {
        ("lora", "a") => Factor::A,
        ("lora", "b") => Factor::B,
        _ => return None,
    };
    Some((weight.join("."), factor))
}

/// A path filter that keeps adapter factors only (`<weight path>.lora.a` / `.b`).
const FACTORS: &str = r"\.lora\.[ab]$";

/// Writes the adapters of `model` alone (its factors, by path) to `path` as a burnpack
/// file, atomically: what a run keeps besides the merged weights, a few per cent of them.
pub fn save_adapters<M: Module>(model: &M, path: &Path) -> Result<()> {
    let tmp = path.with_extension("tmp.bpk");
    let failed = |e: &dyn std::fmt::Display| Error::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut store = BurnpackStore::from_file(&tmp)
        .with_regex(FACTORS)
        .overwrite(true);
    model.save_into(&mut store).map_err(|e| failed(&e))?;
    crate::util::atomic_file::commit(&tmp, path)
}

/// `model`, adapted with the settings the file's adapters were trained with, with the
/// adapters [`save_adapters`] wrote to `path`. Fails when the file lacks one of the model's
/// adapters or holds one the model does not have.
pub fn load_adapters<M: Module>(mut model: M, path: &Path) -> Result<M> {
    let failed = |reason: String| Error::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(failed("missing".into()));
    }
    // The base's weights are missing from the file by design: only the factors must match.
    let mut store = BurnpackStore::from_file(path)
        .with_regex(FACTORS)
        .allow_partial(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| failed(e.to_string()))?;
    let is_factor = |p: &str| p.ends_with(".lora.a") || p.ends_with(".lora.b");
    let missing: Vec<&str> = (result.missing.iter())
        .map(|(p, _)| p.as_str())
        .filter(|p| is_factor(p))
        .collect();
    if !(missing.is_empty() && result.unused.is_empty() && result.errors.is_empty()) {
        return Err(failed(format!(
            "its adapters are not the model's (missing: {missing:?}; not in the model: {:?}; \
             {:?})",
            result.unused, result.errors
        )));
    }
    Ok(model)
}

/// `model` with its adapters folded into its weights (`W + (alpha / rank) · a · b`), in
/// inference mode: the adapted model's function as plain dense weights.
pub fn merged<M: Module>(model: M) -> M {
    model.valid().materialize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::StackInput;

    fn shape() -> crate::blocks::TransformerEncoderConfig {
        crate::Preset::Tiny.encoder(64).with_dropout(0.0)
    }

    fn tiny(device: &Device) -> crate::blocks::TransformerEncoder {
        crate::util::random::init_seeded(device, 7, || shape().init(device).unwrap())
    }

    /// The adapters of `model` with every `b` given values, as training would give them.
    fn trained_factors<M: Module>(model: &M) -> Vec<Adapter> {
        let values = burn::tensor::Distribution::Normal(0.0, 0.05);
        (adapters(model).into_iter())
            .map(|adapter| Adapter {
                b: adapter.b.random_like(values),
                ..adapter
            })
            .collect()
    }

    #[test]
    fn targets_adapt_their_weights_only_and_freeze_the_rest() {
        let device = Device::flex().autodiff();
        let encoder = tiny(&device);
        let (all_before, total) = trainable(&encoder);
        assert_eq!(all_before, total);
        let config = LoraConfig::new().with_rank(2);
        let adapted = config.adapt(encoder.clone()).unwrap();
        let found = adapters(&adapted);
        let layers = shape().num_layers;
        assert_eq!(found.len(), 2 * layers);
        let d = shape().hidden_size;
        for adapter in &found {
            assert!(
                adapter.weight.ends_with("attention.query.weight")
                    || adapter.weight.ends_with("attention.value.weight"),
                "{}",
                adapter.weight
            );
            assert_eq!(adapter.a.dims(), [d, 2]);
            assert_eq!(adapter.b.dims(), [2, d]);
        }
        let (train, all) = trainable(&adapted);
        assert_eq!(train, 2 * layers * (2 * d + 2 * d));
        assert_eq!(all, total + train);
        // `b` starts at zero: the adapted encoder computes what its base does.
        let ids = Tensor::<2, Int>::from_data([[2i64, 10, 20, 30, 3]], &device);
        let before = encoder.forward(StackInput::new(ids.clone()));
        let after = adapted.forward(StackInput::new(ids));
        assert!(crate::test_support::max_abs_diff(before, after) < 1e-6);
    }

    #[test]
    fn a_target_matches_a_whole_name_and_an_unknown_one_is_an_error() {
        assert!(names("layers.0.attention.query", "query"));
        assert!(names("layers.0.attention.query", "attention.query"));
        assert!(names("query", "query"));
        assert!(!names("layers.0.attention.subquery", "query"));
        let device = Device::flex();
        let config = LoraConfig::new().with_targets(vec!["query".into(), "qkv".into()]);
        let err = config.adapt(tiny(&device)).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::InvalidConfig(_)));
        assert!(
            message.contains("\"qkv\"") && message.contains("query"),
            "{message}"
        );
        for bad in [
            LoraConfig::new().with_rank(0),
            LoraConfig::new().with_alpha(0.0),
            LoraConfig::new().with_targets(vec![]),
        ] {
            assert!(matches!(
                bad.adapt(tiny(&device)),
                Err(Error::InvalidConfig(_))
            ));
        }
    }

    #[test]
    fn a_trained_adapter_merges_into_the_same_function() {
        let device = Device::flex();
        let adapted = LoraConfig::new()
            .with_rank(3)
            .with_targets(vec!["query".into(), "value".into(), "ffn.up".into()])
            .adapt(tiny(&device))
            .unwrap();
        let given = trained_factors(&adapted);
        let ids = Tensor::<2, Int>::from_data([[2i64, 10, 20, 30, 40, 3]], &device);
        let base = tiny(&device).forward(StackInput::new(ids.clone()));
        let trained = with_adapters(adapted, &given).unwrap();
        for (set, given) in adapters(&trained).iter().zip(&given) {
            assert_eq!(set.b.to_data(), given.b.to_data());
        }
        let adapted_out = trained.forward(StackInput::new(ids.clone()));
        assert!(crate::test_support::max_abs_diff(base, adapted_out.clone()) > 1e-3);
        let merged = merged(trained.clone());
        assert!(adapters(&merged).is_empty());
        let merged_out = merged.forward(StackInput::new(ids));
        assert!(crate::test_support::max_abs_diff(adapted_out, merged_out) < 1e-5);
    }

    #[test]
    fn saved_adapters_read_back_into_a_model_adapted_alike_and_no_other() {
        let device = Device::flex();
        let config = LoraConfig::new().with_rank(2);
        let adapted = config.adapt(tiny(&device)).unwrap();
        let given = trained_factors(&adapted);
        let trained = with_adapters(adapted, &given).unwrap();
        let dir = std::env::temp_dir().join(format!("pretext-lora-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("adapters.bpk");
        save_adapters(&trained, &path).unwrap();
        let whole = dir.join("whole.bpk");
        crate::train::checkpoint::save_weights(&trained, &whole).unwrap();
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        assert!(
            size(&path) * 10 < size(&whole),
            "{} of {}",
            size(&path),
            size(&whole)
        );
        // Another draw of `a`, then the file's factors: the trained model's function.
        let fresh = config.adapt(tiny(&device)).unwrap();
        let read = load_adapters(fresh, &path).unwrap();
        let ids = Tensor::<2, Int>::from_data([[2i64, 10, 20, 30, 3]], &device);
        let (a, b) = (
            trained.forward(StackInput::new(ids.clone())),
            read.forward(StackInput::new(ids)),
        );
        assert_eq!(a.into_data(), b.into_data());
        let other = LoraConfig::new()
            .with_rank(2)
            .with_targets(vec!["key".into()]);
        let err = load_adapters(other.adapt(tiny(&device)).unwrap(), &path).unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
        assert!(load_adapters(tiny(&device), &dir.join("none.bpk")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
