//! Devices by name (the CPU backend or a GPU backend built in through a cargo feature) and the
//! float type they compute in, so that programs choose them at run time.

use std::str::FromStr;

use burn::prelude::*;
use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The host's CPU model and core count, for figures that must name the machine they were
/// measured on (e.g. "Intel(R) Xeon(R) Processor, 2 cores").
pub fn host_cpu() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// The machine's memory in bytes (`MemTotal` of `/proc/meminfo`), where it can be read.
pub fn host_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Whether `device` computes on the host's CPU (burn's Flex backend, under autodiff or not),
/// so that the machine's memory is the model's. burn names a device's backend only in its
/// `Debug` form.
pub fn on_host(device: &Device) -> bool {
    format!("{:?}", device.clone().inner()).starts_with("Device<Flex")
}

/// A backend to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// burn's pure-Rust CPU backend.
    Flex,
    /// NVIDIA GPUs (cargo feature `cuda`).
    Cuda,
    /// Any GPU through wgpu (cargo feature `wgpu`).
    Wgpu,
    /// AMD GPUs (cargo feature `rocm`).
    Rocm,
    /// Apple GPUs (cargo feature `metal`).
    Metal,
}

impl FromStr for DeviceKind {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "flex" => Self::Flex,
            "cuda" => Self::Cuda,
            "wgpu" => Self::Wgpu,
            "rocm" => Self::Rocm,
            "metal" => Self::Metal,
            other => {
                return Err(Error::InvalidConfig(format!(
                    "unknown device {other:?} (expected flex, cuda, wgpu, rocm or metal)"
                )));
            }
        })
    }
}

impl DeviceKind {
    /// Whether this is the CPU backend.
    pub fn is_cpu(self) -> bool {
        self == Self::Flex
    }

    /// Device `index` of this backend (GPU backends need their cargo feature).
    pub fn device(self, #[allow(unused)] index: usize) -> Result<Device> {
        match self {
            Self::Flex => Ok(Device::flex()),
            #[cfg(feature = "cuda")]
            Self::Cuda => Ok(Device::cuda(index)),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(Default::default())),
            #[cfg(feature = "rocm")]
            Self::Rocm => Ok(Device::rocm(index)),
            #[cfg(feature = "metal")]
            Self::Metal => Ok(Device::metal(Default::default())),
            #[allow(unreachable_patterns)]
            other => {
                let name = format!("{other:?}").to_lowercase();
                Err(Error::InvalidConfig(format!(
                    "device {name} needs the cargo feature of the same name: `--features {name}`"
                )))
            }
        }
    }

    /// `count` autodiff devices of this backend computing in `float`: GPUs `0..count` of an
    /// indexed backend (cuda, rocm), or one device.
    pub fn autodiff_devices(self, count: usize, float: FloatType) -> Result<Vec<Device>> {
        let indexed = matches!(self, Self::Cuda | Self::Rocm);
        if count == 0 || (count > 1 && !indexed) {
            return Err(Error::InvalidConfig(format!(
                "{count} devices: several devices need cuda or rocm (on the CPU, the training \
                 config's `shards` splits batches over the cores)"
            )));
        }
        (0..count)
            .map(|index| {
                let mut device = self.device(index)?;
                device.configure(float.dtype()).map_err(|e| {
                    Error::InvalidConfig(format!("float type {float:?} on {device:?}: {e:?}"))
                })?;
                Ok(device.autodiff())
            })
            .collect()
    }
}

/// The float type of every tensor of a run: weights, activations and gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatType {
    /// 32-bit floats.
    #[default]
    F32,
    /// bfloat16: faster where the device computes it natively (GPUs; CPUs with AMX).
    Bf16,
    /// IEEE half precision.
    F16,
}

impl FloatType {
    /// burn's dtype.
    pub fn dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::Bf16 => FloatDType::BF16,
            Self::F16 => FloatDType::F16,
        }
    }
}

impl FromStr for FloatType {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "f16" => Ok(Self::F16),
            other => Err(Error::InvalidConfig(format!(
                "unknown float type {other:?} (expected f32, bf16 or f16)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_a_missing_backend_is_an_error() {
        assert_eq!("flex".parse::<DeviceKind>().unwrap(), DeviceKind::Flex);
        assert!("tpu".parse::<DeviceKind>().is_err());
        assert_eq!("bf16".parse::<FloatType>().unwrap(), FloatType::Bf16);
        assert!("f64".parse::<FloatType>().is_err());
        assert!(
            DeviceKind::Flex
                .autodiff_devices(2, FloatType::F32)
                .is_err()
        );
        assert!(
            DeviceKind::Flex
                .autodiff_devices(0, FloatType::F32)
                .is_err()
        );
        #[cfg(not(feature = "cuda"))]
        assert!(DeviceKind::Cuda.device(0).is_err());
    }
}
