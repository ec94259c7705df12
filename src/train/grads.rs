//! A module's gradients taken as a whole: global-norm clipping, as PyTorch's `clip_grad_norm_`
//! does (burn's own clipping works one tensor at a time), and one flat buffer of them, to sum
//! across ranks.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;

struct Ids(Vec<(ParamId, usize)>);

impl ModuleVisitor for Ids {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push((param.id, D));
    }
}

fn float_ids<M: Module>(module: &M) -> Vec<(ParamId, usize)> {
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    ids.0
}

macro_rules! for_rank {
    ($rank:expr, $body:ident) => {
        match $rank {
            1 => $body!(1),
            2 => $body!(2),
            3 => $body!(3),
            4 => $body!(4),
            r => panic!("parameters of rank {r} are not supported"),
        }
    };
}

/// The L2 norm of all gradients of `module` taken together.
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    norm_of(&float_ids(module), grads)
}

fn norm_of(ids: &[(ParamId, usize)], grads: &GradientsParams) -> f64 {
    let mut total: Option<Tensor<1>> = None;
    for &(id, rank) in ids {
        macro_rules! sq {
            ($d:literal) => {
                grads.get::<$d>(id).map(|g| g.powf_scalar(2.0).sum())
            };
        }
        if let Some(s) = for_rank!(rank, sq) {
            total = Some(match total {
                Some(t) => t + s,
                None => s,
            });
        }
    }
    total.map_or(0.0, |t| f64::from(t.into_scalar::<f32>()).sqrt())
}

/// The largest elementwise difference of two gradient sets over `module`'s parameters, relative
/// to the largest magnitude in `b`; infinite where a parameter has a gradient in one set only.
#[cfg(test)]
pub(crate) fn max_relative_difference<M: Module>(
    module: &M,
    a: &GradientsParams,
    b: &GradientsParams,
) -> f64 {
    let (mut diff, mut scale) = (0.0f64, 0.0f64);
    for (id, rank) in float_ids(module) {
        macro_rules! compare {
            ($d:literal) => {
                match (a.get::<$d>(id), b.get::<$d>(id)) {
                    (Some(x), Some(y)) => {
                        let d = (x - y.clone()).abs().max().into_scalar::<f32>();
                        let m = y.abs().max().into_scalar::<f32>();
                        diff = diff.max(f64::from(d));
                        scale = scale.max(f64::from(m));
                    }
                    (None, None) => {}
                    _ => diff = f64::INFINITY,
                }
            };
        }
        for_rank!(rank, compare);
    }
    diff / scale.max(f64::MIN_POSITIVE)
}

fn scale(ids: &[(ParamId, usize)], grads: &mut GradientsParams, factor: f64) {
    for &(id, rank) in ids {
        macro_rules! mul {
            ($d:literal) => {
                if let Some(g) = grads.remove::<$d>(id) {
                    grads.register::<$d>(id, g.mul_scalar(factor));
                }
            };
        }
        for_rank!(rank, mul);
    }
}

/// Scales `grads` so that their global norm is at most `max_norm` (no clipping for
/// `max_norm <= 0`); returns the norm before clipping.
pub fn clip<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let ids = float_ids(module);
    let norm = norm_of(&ids, grads);
    if max_norm > 0.0 && norm > max_norm {
        scale(&ids, grads, max_norm / (norm + 1e-6));
    }
    norm
}

/// Every gradient of `module` in one vector, in the order the module visits its parameters
/// (zeros for a parameter without one), and whether each parameter has one.
pub fn flatten<M: Module>(module: &M, grads: &GradientsParams) -> (Vec<f32>, Vec<bool>) {
    struct Flatten<'a> {
        grads: &'a GradientsParams,
        values: Vec<f32>,
        present: Vec<bool>,
    }
    impl ModuleVisitor for Flatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let grad = self.grads.get::<D>(param.id);
            self.present.push(grad.is_some());
            match grad {
                Some(g) => self.values.extend(
                    g.into_data()
                        .convert::<f32>()
                        .try_into_vec::<f32>()
                        .expect("a gradient reads back as f32"),
                ),
                None => self
                    .values
                    .resize(self.values.len() + param.lazy_shape().num_elements(), 0.0),
            }
        }
    }
    let mut flatten = Flatten {
        grads,
        values: Vec::new(),
        present: Vec::new(),
    };
    module.visit(&mut flatten);
    (flatten.values, flatten.present)
}

/// The gradients that [`flatten`] laid out in `values`, for the parameters marked `present`,
/// each on its parameter's device and in its float type.
pub fn unflatten<M: Module>(module: &M, values: &[f32], present: &[bool]) -> GradientsParams {
    struct Unflatten<'a> {
        values: &'a [f32],
        present: &'a [bool],
        grads: GradientsParams,
    }
    impl ModuleVisitor for Unflatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let (&present, rest) = self.present.split_first().expect("one flag a parameter");
            self.present = rest;
            let shape = param.lazy_shape();
            let (mine, rest) = self.values.split_at(shape.num_elements());
            self.values = rest;
            if present {
                let value = param.val();
                let options = (&value.device().inner(), value.dtype());
                let data = TensorData::new(mine.to_vec(), shape);
                self.grads
                    .register::<D>(param.id, Tensor::from_data(data, options));
            }
        }
    }
    let mut unflatten = Unflatten {
        values,
        present,
        grads: GradientsParams::new(),
    };
    module.visit(&mut unflatten);
    unflatten.grads
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn a_flattened_gradient_comes_back_whole() {
        let _draws = crate::util::random::hold();
        let device = Device::flex().autodiff();
        let model: Linear = LinearConfig::new(4, 3).init(&device);
        let x = Tensor::<2>::ones([2, 4], &device);
        let loss = model.forward(x).powf_scalar(2.0).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let (values, present) = flatten(&model, &grads);
        assert_eq!(values.len(), 4 * 3 + 3);
        assert_eq!(present, [true, true]);
        assert!(values.iter().any(|v| *v != 0.0));
        let back = unflatten(&model, &values, &present);
        assert_eq!(max_relative_difference(&model, &back, &grads), 0.0);
        // A parameter marked absent stays without a gradient (AdamW then leaves it alone).
        let partial = unflatten(&model, &values, &[true, false]);
        assert_eq!(partial.len(), 1);
        assert!(partial.get::<2>(model.weight.id).is_some());
    }

    #[test]
    fn clipping_brings_the_global_norm_to_the_limit() {
        let _draws = crate::util::random::hold();
        let device = Device::flex().autodiff();
        let model: Linear = LinearConfig::new(4, 3).init(&device);
        let x = Tensor::<2>::ones([2, 4], &device).mul_scalar(10.0);
        let loss = model.forward(x).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let before = global_norm(&model, &grads);
        assert!(before > 1.0);
        let reported = clip(&model, &mut grads, 1.0);
        assert!((reported - before).abs() < 1e-6 * before);
        let after = global_norm(&model, &grads);
        assert!((after - 1.0).abs() < 1e-4, "norm after clipping {after}");
    }
}
