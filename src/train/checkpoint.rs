//! Atomic checkpoints: model, optimizer state and training state in one directory, written
//! beside the old one and swapped in by renames, so a crash never leaves a half-written
//! checkpoint where the last good one was.
//!
//! No random-number state needs saving: every random draw of a run (example order, masking,
//! dropout) derives from the seed and the step, so the step *is* the RNG state.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

use super::{RESUMABLE, TrainConfig};
use crate::error::{Error, Result};

/// The directory name of the current checkpoint inside a run directory.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The model's file inside a checkpoint.
pub const MODEL_FILE: &str = "model.bpk";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const STATE_FILE: &str = "state.json";

/// Where training stands, saved beside the weights.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Optimizer updates done.
    pub step: usize,
    /// The run's seed.
    pub seed: u64,
    /// Real tokens seen so far.
    pub tokens_seen: u64,
    /// The run's [`TrainConfig`] as JSON, which a resume is checked against (absent from the
    /// checkpoints of runs that did not record it, such as PPO's, which checks its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
}

impl TrainState {
    /// The state of a run of `config` before its first step.
    pub fn start(config: &TrainConfig) -> Self {
        Self {
            step: 0,
            seed: config.seed,
            tokens_seen: 0,
            settings: Some(serde_json::to_value(config).expect("a train config serializes")),
        }
    }

    /// Checks that resuming this checkpoint with `config` continues the same run: the same
    /// seed, and the same settings but for [`RESUMABLE`]'s; otherwise an
    /// [`Error::InvalidConfig`] naming the first field that differs.
    pub fn check_resumes(&self, config: &TrainConfig) -> Result<()> {
        if self.seed != config.seed {
            return Err(Error::InvalidConfig(format!(
                "the checkpoint was trained with seed {}, not {}",
                self.seed, config.seed
            )));
        }
        let Some(saved) = &self.settings else {
            return Ok(());
        };
        let now = serde_json::to_value(config).expect("a train config serializes");
        match super::resume_difference(saved, &now, "") {
            None => Ok(()),
            Some((field, was, is)) => Err(Error::InvalidConfig(format!(
                "the checkpoint was trained with {field} {was}, not {is}; a resume may change \
                 only {}",
                RESUMABLE.join(", ")
            ))),
        }
    }
}

fn ckpt_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Writes `model`, `optimizer` and `state` as the checkpoint of run directory `dir`.
pub fn save<M: Module>(
    dir: &Path,
    model: &M,
    optimizer: &ModuleOptimizer,
    state: &TrainState,
) -> Result<PathBuf> {
    let target = dir.join(CHECKPOINT_DIR);
    let tmp = dir.join(format!("{CHECKPOINT_DIR}.tmp"));
    let old = dir.join(format!("{CHECKPOINT_DIR}.old"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    model
        .clone()
        .save_file(tmp.join(MODEL_FILE))
        .map_err(|e| ckpt_err(&tmp, e))?;
    optimizer
        .save(tmp.join(OPTIMIZER_FILE))
        .map_err(|e| ckpt_err(&tmp, e))?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| ckpt_err(&tmp, e))?;
    std::fs::write(tmp.join(STATE_FILE), json).map_err(|e| Error::io(&tmp, e))?;
    for file in [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE] {
        let path = tmp.join(file);
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
    }
    if target.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        std::fs::rename(&target, &old).map_err(|e| Error::io(&target, e))?;
    }
    std::fs::rename(&tmp, &target).map_err(|e| Error::io(&tmp, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(target)
}

/// Writes the weights of `module` alone to `path` (a `.bpk` file), through a temporary file
/// renamed into place: ELECTRA's discriminator without its generator, say.
pub fn save_weights<M: Module>(module: &M, path: &Path) -> Result<()> {
    let tmp = path.with_extension("tmp.bpk");
    module
        .clone()
        .save_file(&tmp)
        .map_err(|e| ckpt_err(&tmp, e))?;
    crate::util::atomic_file::commit(&tmp, path)
}

/// Loads weights written by [`save_weights`] into `module`, a module of the shape they were
/// saved from (a backbone of the run's configuration, say). Weights saved in another float
/// type (a `--float bf16` run) are cast to `module`'s; weights of another vocabulary or size
/// are an [`Error::Checkpoint`] naming the first parameter that differs, not a silent reshape.
pub fn load_weights<M: Module>(path: &Path, module: M) -> Result<M> {
    if !path.is_file() {
        return Err(ckpt_err(path, "missing"));
    }
    let expected = shapes(&module);
    let mut float = FloatType(None);
    module.visit(&mut float);
    let loaded = module.try_load_file(path).map_err(|e| ckpt_err(path, e))?;
    let loaded = match float.0 {
        Some(dtype) => loaded.map(&mut CastFloats(dtype)),
        None => loaded,
    };
    let found = shapes(&loaded);
    if found != expected {
        let first = expected
            .iter()
            .zip(&found)
            .position(|(a, b)| a != b)
            .unwrap_or(expected.len().min(found.len()));
        return Err(ckpt_err(
            path,
            format!(
                "its weights do not fit this model: parameter {first} is {:?} in the file and \
                 {:?} here ({} parameters against {}); was it trained with another vocabulary \
                 or size?",
                found.get(first),
                expected.get(first),
                found.len(),
                expected.len()
            ),
        ));
    }
    Ok(loaded)
}

/// Shapes of every parameter of a module, in visiting order.
fn shapes<M: Module>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl ModuleVisitor for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            // `lazy_shape`: a lazy parameter's shape without drawing its values.
            self.0.push(param.lazy_shape().dims::<D>().to_vec());
        }
    }
    let mut visitor = Shapes(Vec::new());
    module.visit(&mut visitor);
    visitor.0
}

/// Finds the float type of a module's parameters.
struct FloatType(Option<DType>);

impl ModuleVisitor for FloatType {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.get_or_insert_with(|| {
            if param.is_initialized() {
                param.val().dtype()
            } else {
                // A lazy parameter will be drawn in the device's float type. Reading its value
                // would draw it from the shared random stream, unheld, taking draws from under a
                // seeded run on another thread.
                Tensor::<1>::empty([0], &param.lazy_device()).dtype()
            }
        });
    }
}

/// Casts every float parameter to one type.
struct CastFloats(DType);

impl ModuleMapper for CastFloats {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|t| {
            if t.dtype() == dtype {
                return t;
            }
            // A cast parameter must stay a leaf of the autodiff graph, as loaded ones are.
            let trainable = t.is_require_grad();
            let cast = t.cast(dtype).detach();
            if trainable { cast.require_grad() } else { cast }
        })
    }
}

/// The checkpoint directory of run `dir`: the current one, or the previous one if a crash
/// interrupted the swap.
pub fn locate(dir: &Path) -> Option<PathBuf> {
    [CHECKPOINT_DIR.to_string(), format!("{CHECKPOINT_DIR}.old")]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.join(STATE_FILE).is_file())
}

/// Reads the training state of checkpoint directory `ckpt`.
pub fn load_state(ckpt: &Path) -> Result<TrainState> {
    let path = ckpt.join(STATE_FILE);
    let bytes = std::fs::read(&path).map_err(|e| ckpt_err(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| ckpt_err(&path, e))
}

/// Loads the weights of checkpoint `ckpt` into `model`.
pub fn load_model<M: Module>(ckpt: &Path, model: M) -> Result<M> {
    load_weights(&ckpt.join(MODEL_FILE), model)
}

/// Loads the optimizer state of checkpoint `ckpt` into `optimizer`.
pub fn load_optimizer(ckpt: &Path, optimizer: ModuleOptimizer) -> Result<ModuleOptimizer> {
    let path = ckpt.join(OPTIMIZER_FILE);
    if !path.is_file() {
        return Err(ckpt_err(&path, "missing"));
    }
    optimizer.load(&path).map_err(|e| ckpt_err(&path, e))
}
