//! Weight-only int8 quantization of a trained model, for inference: every matrix (the linear
//! layers' weights, the embedding tables) stored as 8-bit integers with one f32 scale per
//! tensor, every vector (biases, norms) kept in float.
//!
//! burn's quantization is symmetric with the range taken from the weight itself (no
//! calibration data, activations stay in float). Its `Q8S` values span −127..127, so a
//! tensor's largest magnitude maps exactly onto 127 (`Q8F`'s −128..127 would clip it by half a
//! step). On the CPU backend the gain is memory and disk, about a quarter of f32's, not speed:
//! the backend stores quantized tensors but has no int8 matrix product, so each forward
//! dequantizes a weight before it multiplies by it.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::quantization::{
    Calibration, QuantScheme, QuantValue, compute_q_params, compute_range,
};

use crate::error::{Error, Result};

/// `model` with its matrices quantized to int8 (one scale per tensor), its vectors in float.
pub fn int8<M: Module>(model: M) -> M {
    struct Matrices(QuantScheme);
    impl ModuleMapper for Matrices {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if D != 2 {
                return param;
            }
            let scheme = self.0;
            param.map(|tensor| {
                let range = compute_range(&scheme, &tensor, &Calibration::MinMax);
                let qparams = compute_q_params(&scheme, range);
                tensor.quantize(&scheme, qparams)
            })
        }
    }
    model.map(&mut Matrices(
        QuantScheme::default().with_value(QuantValue::Q8S),
    ))
}

/// Fails when any of `model`'s weights is quantized: such a model is for inference (burn
/// cannot take gradients through quantized weights); train the float one.
pub fn check_not_quantized<M: Module>(model: &M) -> Result<()> {
    struct Quantized(usize);
    impl ModuleVisitor for Quantized {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if matches!(param.val().dtype(), DType::QFloat(_)) {
                self.0 += 1;
            }
        }
    }
    let mut quantized = Quantized(0);
    model.visit(&mut quantized);
    match quantized.0 {
        0 => Ok(()),
        n => Err(Error::InvalidConfig(format!(
            "{n} of the model's weights are quantized (int8): a quantized model is for \
             inference; train the float model and quantize it afterwards"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::StackInput;

    #[test]
    fn an_int8_encoder_is_a_quarter_of_the_size_and_close_to_the_float_one() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let config = crate::Preset::Tiny.encoder(512);
        let encoder = config.init(&device).unwrap();
        let ids = Tensor::<2, Int>::from_data([[2i64, 100, 200, 300, 3]], &device);
        let float = encoder.forward(StackInput::new(ids.clone()));
        let quantized = int8(encoder.clone());
        let close = quantized.forward(StackInput::new(ids));
        let diff = crate::test_support::max_abs_diff(float.clone(), close);
        let scale = float.abs().max().into_scalar::<f32>();
        // One int8 step is 1/127 of a weight's range; a few layers of them stay within 5 %.
        assert!(
            diff > 0.0 && diff < 0.05 * scale,
            "off by {diff} of {scale}"
        );
        let dir = std::env::temp_dir().join(format!("pretext-int8-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let size = |model: &crate::blocks::TransformerEncoder, name: &str| {
            let path = dir.join(name);
            crate::train::checkpoint::save_weights(model, &path).unwrap();
            std::fs::metadata(&path).unwrap().len() as f64
        };
        let ratio = size(&quantized, "int8.bpk") / size(&encoder, "f32.bpk");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(ratio < 0.3, "the int8 file is {ratio} of the f32 one");
    }

    #[test]
    fn a_quantized_model_is_named_as_such() {
        let _draws = crate::util::random::hold();
        let device = Device::flex();
        let encoder = crate::Preset::Tiny.encoder(512).init(&device).unwrap();
        assert!(check_not_quantized(&encoder).is_ok());
        let err = check_not_quantized(&int8(encoder)).unwrap_err();
        assert!(err.to_string().contains("quantized (int8)"), "{err}");
    }
}
