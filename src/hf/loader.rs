//! Reading a `model.safetensors` (or `pytorch_model.bin`) into pretext's modules part by part:
//! each part through a key table (a regex over Hugging Face names → the pretext path), with
//! tensors whose layout differs from PyTorch's `nn.Linear` rewritten first (GPT-2's fused,
//! `[in, out]` Conv1D), and a [`LoadReport`] of what came from the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::Device;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore, bridge,
};
use burn::tensor::{DType, TensorData};

use super::keys::KeyTable;
use super::{PYTORCH_WEIGHTS_FILE, WEIGHTS_FILE, model_error};
use crate::error::Result;

/// What a load took from the file, what it initialised afresh and what it left unread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// The parts read from the file (`encoder`, `MLM head`, …).
    pub loaded: Vec<String>,
    /// The parts the file does not hold, initialised afresh.
    pub initialised: Vec<String>,
    /// Tensors of the file that no part read.
    pub unused: Vec<String>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loaded: {}", self.loaded.join(", "))?;
        if !self.initialised.is_empty() {
            write!(f, "; initialised afresh: {}", self.initialised.join(", "))?;
        }
        if !self.unused.is_empty() {
            write!(f, "; unused tensors: {}", self.unused.join(", "))?;
        }
        Ok(())
    }
}

impl LoadReport {
    /// Adds another load's report (a second file of the same model).
    pub(crate) fn extend(&mut self, other: LoadReport) {
        self.loaded.extend(other.loaded);
        self.initialised.extend(other.initialised);
        self.unused.extend(other.unused);
    }
}

/// Loads the parts of one model from a weights file, each through its own key table, and keeps
/// the report.
pub(crate) struct Loader {
    dir: PathBuf,
    /// The weights file's name.
    file: &'static str,
    dtype: DType,
    /// The file's tensors, under their (possibly rewritten) Hugging Face names.
    tensors: Vec<PackTensor>,
    report: LoadReport,
    /// Names of the tensors that no part has read yet.
    unread: BTreeSet<String>,
}

impl Loader {
    /// A loader of `dir/model.safetensors` (or, without it, PyTorch's `pytorch_model.bin`)
    /// into modules on `device` (weights of any float type cast to the device's).
    pub(crate) fn new(dir: &Path, device: &Device) -> Result<Self> {
        let safetensors = dir.join(WEIGHTS_FILE);
        let pytorch = dir.join(PYTORCH_WEIGHTS_FILE);
        let (file, all) = if safetensors.is_file() {
            let mut store = SafetensorsStore::from_file(&safetensors);
            let all = store
                .get_all_tensors()
                .map(|t| t.values().cloned().collect());
            (WEIGHTS_FILE, all.map_err(|e| e.to_string()))
        } else if pytorch.is_file() {
            let mut store = PytorchStore::from_file(&pytorch);
            let all = store
                .get_all_tensors()
                .map(|t| t.values().cloned().collect());
            (PYTORCH_WEIGHTS_FILE, all.map_err(|e| e.to_string()))
        } else {
            let reason = format!("no {WEIGHTS_FILE} (nor {PYTORCH_WEIGHTS_FILE})");
            return Err(model_error(dir, &reason));
        };
        let tensors: Vec<PackTensor> =
            all.map_err(|e| model_error(dir, &format!("{file}: {e}")))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            dtype: DType::from(device.settings().float_dtype),
            unread: tensors.iter().map(|t| t.name.clone()).collect(),
            tensors,
            report: LoadReport::default(),
        })
    }

    /// Replaces every tensor whose name `matches` by what `rewrite` makes of it (its name and
    /// its values as f32): tensors to rename, reshape, transpose or split before the key tables
    /// read them.
    pub(crate) fn rewrite(
        &mut self,
        matches: impl Fn(&str) -> bool,
        rewrite: impl Fn(&str, TensorData) -> Vec<(String, TensorData)>,
    ) -> Result<()> {
        let mut out = Vec::with_capacity(self.tensors.len());
        for tensor in std::mem::take(&mut self.tensors) {
            if !matches(&tensor.name) {
                out.push(tensor);
                continue;
            }
            let name = tensor.name.clone();
            let data = bridge::into_data(tensor)
                .map_err(|e| model_error(&self.dir, &format!("{}: {name}: {e}", self.file)))?
                .convert::<f32>();
            self.unread.remove(&name);
            for (new, data) in rewrite(&name, data) {
                self.unread.insert(new.clone());
                out.push(bridge::from_data(data, new, None));
            }
        }
        self.tensors = out;
        Ok(())
    }

    /// Whether the file holds a tensor called `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.tensors.iter().any(|t| t.name == name)
    }

    /// Fills the part called `part` of `module` from the file, its keys renamed by `patterns`
    /// (HF key regex → pretext path; the part is the module paths these write to). A part none
    /// of whose tensors the file holds keeps its fresh weights unless `required`; one the file
    /// holds only some of is an error naming the missing tensors, and a tensor of another
    /// shape than the module's is an error naming it.
    pub(crate) fn part<M: Module>(
        &mut self,
        part: &str,
        module: &mut M,
        patterns: &KeyTable,
        required: bool,
    ) -> Result<()> {
        let remapper = KeyRemapper::from_patterns(patterns.to_vec())
            .expect("the key tables are valid regexes");
        let regexes = remapper.to_regex_pairs();
        let matched = |name: &str| regexes.iter().any(|(regex, _)| regex.is_match(name));
        let picked: Vec<PackTensor> = self
            .tensors
            .iter()
            .filter(|t| matched(&t.name))
            .cloned()
            .collect();
        let (renamed, _) = remapper.remap(picked);
        let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(self.dtype));
        let result = module.apply(renamed, None, Some(Box::new(adapter)), false);
        if !result.errors.is_empty() {
            let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
            return Err(model_error(
                &self.dir,
                &format!("{part}: {}", errors.join("; ")),
            ));
        }
        // The part is the module paths its table writes to; the module's others are not its.
        let prefixes: Vec<&str> = patterns
            .iter()
            .map(|(_, to)| to.split('$').next().unwrap_or_default())
            .collect();
        let mine = |path: &&str| prefixes.iter().any(|p| path.starts_with(p));
        if !result.applied.iter().map(String::as_str).any(|p| mine(&p)) && !required {
            // Its fresh weights are drawn now, holding the stream, rather than at first use
            // from under whoever holds it then.
            let _draws = crate::util::random::hold();
            crate::util::random::materialize(module);
            self.report.initialised.push(part.to_string());
            return Ok(());
        }
        let missing: Vec<&str> = result
            .missing
            .iter()
            .map(|(path, _)| path.as_str())
            .filter(mine)
            .collect();
        if !missing.is_empty() {
            return Err(model_error(
                &self.dir,
                &format!("{part}: {} lacks {}", self.file, missing.join(", ")),
            ));
        }
        self.unread.retain(|key| !matched(key));
        self.report.loaded.push(part.to_string());
        Ok(())
    }

    /// The report of every part loaded.
    pub(crate) fn finish(mut self) -> LoadReport {
        self.report.unused = std::mem::take(&mut self.unread).into_iter().collect();
        self.report
    }
}

/// A 2-D `data` `[rows, cols]` transposed: GPT-2's Conv1D weights, stored `[in, out]`, in
/// `nn.Linear`'s `[out, in]`.
pub(crate) fn transposed(data: &TensorData) -> TensorData {
    let [rows, cols] = [data.shape()[0], data.shape()[1]];
    let values: Vec<f32> = data.try_to_vec().expect("rewrites see f32 data");
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    TensorData::new(out, [cols, rows])
}

/// `data` cut into `parts` equal pieces along its last dimension (GPT-2's fused q|k|v).
pub(crate) fn split_last(data: &TensorData, parts: usize) -> Vec<TensorData> {
    let shape = data.shape().to_vec();
    let last = *shape.last().expect("a tensor has a dimension");
    let width = last / parts;
    let values: Vec<f32> = data.try_to_vec().expect("rewrites see f32 data");
    (0..parts)
        .map(|p| {
            let piece: Vec<f32> = values
                .chunks(last)
                .flat_map(|row| row[p * width..(p + 1) * width].iter().copied())
                .collect();
            let mut piece_shape = shape.clone();
            *piece_shape.last_mut().expect("a tensor has a dimension") = width;
            TensorData::new(piece, piece_shape)
        })
        .collect()
}

/// `parts` joined along their last dimension, which they share every other dimension with:
/// the inverse of [`split_last`].
pub(crate) fn concat_last(parts: &[TensorData]) -> TensorData {
    let mut shape = parts[0].shape().to_vec();
    let widths: Vec<usize> = parts
        .iter()
        .map(|p| *p.shape().last().expect("a tensor has a dimension"))
        .collect();
    let values: Vec<Vec<f32>> = parts
        .iter()
        .map(|p| p.clone().convert::<f32>().try_to_vec().expect("f32 data"))
        .collect();
    let rows = values[0].len() / widths[0];
    let mut out = Vec::with_capacity(values.iter().map(Vec::len).sum());
    for r in 0..rows {
        for (v, &w) in values.iter().zip(&widths) {
            out.extend_from_slice(&v[r * w..(r + 1) * w]);
        }
    }
    *shape.last_mut().expect("a tensor has a dimension") = widths.iter().sum();
    TensorData::new(out, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposing_and_splitting_move_every_value_where_it_belongs() {
        // [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]: two rows of three fused pairs.
        let data = TensorData::new((0..12).map(|v| v as f32).collect::<Vec<_>>(), [2, 6]);
        let pieces = split_last(&data, 3);
        assert_eq!(pieces[1].try_to_vec::<f32>().unwrap(), [2.0, 3.0, 8.0, 9.0]);
        assert_eq!(pieces[1].shape().to_vec(), [2, 2]);
        let t = transposed(&pieces[2]);
        assert_eq!(t.shape().to_vec(), [2, 2]);
        assert_eq!(t.try_to_vec::<f32>().unwrap(), [4.0, 10.0, 5.0, 11.0]);
        let bias = TensorData::new(vec![1.0f32, 2.0, 3.0], [3]);
        let parts: Vec<Vec<f32>> = split_last(&bias, 3)
            .iter()
            .map(|p| p.try_to_vec().unwrap())
            .collect();
        assert_eq!(parts, [[1.0], [2.0], [3.0]]);
        assert_eq!(concat_last(&pieces), data);
    }
}
