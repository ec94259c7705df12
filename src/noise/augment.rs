//! Image augmentations: pure, seeded functions from a grayscale image (rows first, values 0
//! to 1) to another of the same size, as torchvision's transforms make SimCLR's and MAE's
//! views (a random resized crop, a horizontal flip, brightness and contrast jitter, Gaussian
//! noise), and the exact quarter turns rotation prediction asks about.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::rng::ExampleRng;

/// Which augmentations make a view of an image, and how strong each is. [`none`](Self::none)
/// leaves images as they are; [`simclr`](Self::simclr) and [`mae`](Self::mae) are the
/// papers' choices for 28 × 28 grayscale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augmentation {
    /// The share of the image's area a crop keeps, drawn uniformly from `[min, max]` (1 to 1:
    /// no crop, whatever the ratio).
    pub crop_scale: (f32, f32),
    /// The crop's width over its height, drawn log-uniformly from `[min, max]`.
    pub crop_ratio: (f32, f32),
    /// The probability of a horizontal flip (clothes are left-right symmetric; never
    /// vertically).
    pub flip: f32,
    /// Brightness jitter: pixels scaled by a factor drawn from `[1 − b, 1 + b]`.
    pub brightness: f32,
    /// Contrast jitter: pixels pushed from or towards the image's mean by a factor drawn from
    /// `[1 − c, 1 + c]`.
    pub contrast: f32,
    /// The probability that the brightness and contrast jitter apply at all.
    pub jitter: f32,
    /// The standard deviation of Gaussian noise added to every pixel (0: none).
    pub noise: f32,
}

impl Augmentation {
    /// No augmentation: every view is the image.
    pub fn none() -> Self {
        Self {
            crop_scale: (1.0, 1.0),
            crop_ratio: (1.0, 1.0),
            flip: 0.0,
            brightness: 0.0,
            contrast: 0.0,
            jitter: 0.0,
            noise: 0.0,
        }
    }

    /// SimCLR's views at 28 × 28 grayscale: a crop of 20 % to all of the area at aspect ratios
    /// 3/4 to 4/3, a flip half the time, brightness and contrast jitter of 0.4 with
    /// probability 0.8 (there is no hue or saturation to jitter, and blur is dropped for small
    /// images, as SimCLR drops it for CIFAR).
    pub fn simclr() -> Self {
        Self {
            crop_scale: (0.2, 1.0),
            crop_ratio: (0.75, 4.0 / 3.0),
            flip: 0.5,
            brightness: 0.4,
            contrast: 0.4,
            jitter: 0.8,
            noise: 0.0,
        }
    }

    /// MAE's pretraining views: a crop of 20 % to all of the area and a flip half the time,
    /// nothing else.
    pub fn mae() -> Self {
        Self {
            crop_scale: (0.2, 1.0),
            crop_ratio: (0.75, 4.0 / 3.0),
            flip: 0.5,
            ..Self::none()
        }
    }

    /// Checks that every range is ordered and every strength and probability in its range.
    pub fn validate(&self) -> Result<()> {
        let (lo, hi) = self.crop_scale;
        if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
            return Err(invalid(format!(
                "crop_scale ({lo}, {hi}) must satisfy 0 < min ≤ max ≤ 1"
            )));
        }
        let (lo, hi) = self.crop_ratio;
        if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
            return Err(invalid(format!(
                "crop_ratio ({lo}, {hi}) must satisfy 0 < min ≤ max"
            )));
        }
        for (name, value) in [("flip", self.flip), ("jitter", self.jitter)] {
            crate::error::check_rate(name, value as f64)?;
        }
        for (name, value) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("noise", self.noise),
        ] {
            if !(value.is_finite() && value >= 0.0) || (name != "noise" && value > 1.0) {
                return Err(invalid(format!(
                    "{name} {value} must lie in [0, 1] (noise: any standard deviation ≥ 0)"
                )));
            }
        }
        Ok(())
    }

    /// A view of `image` (`height` × `width`, rows first) drawn with `rng`: crop, flip,
    /// jitter, noise, in that order; values stay in [0, 1].
    pub fn apply(
        &self,
        image: &[f32],
        height: usize,
        width: usize,
        rng: &mut ExampleRng,
    ) -> Vec<f32> {
        let (top, left, h, w) = self.crop_box(height, width, rng);
        let mut view = if (h, w) == (height, width) {
            image.to_vec()
        } else {
            resized_crop(image, height, width, (top, left, h, w))
        };
        if rng.random::<f32>() < self.flip {
            view = flip_horizontal(&view, height, width);
        }
        if rng.random::<f32>() < self.jitter {
            let factor = |strength: f32, rng: &mut ExampleRng| {
                1.0 + strength * (2.0 * rng.random::<f32>() - 1.0)
            };
            let (b, c) = (factor(self.brightness, rng), factor(self.contrast, rng));
            // torchvision applies the two in a random order.
            view = if rng.random::<bool>() {
                adjust_contrast(&adjust_brightness(&view, b), c)
            } else {
                adjust_brightness(&adjust_contrast(&view, c), b)
            };
        }
        if self.noise > 0.0 {
            for p in &mut view {
                *p = (*p + self.noise * standard_normal(rng)).clamp(0.0, 1.0);
            }
        }
        view
    }

    /// The crop a view takes, `(top, left, height, width)` in whole pixels, drawn as
    /// torchvision's `RandomResizedCrop` draws it: up to ten tries at an area and aspect
    /// ratio that fit, then the largest centred crop within the ratio range.
    fn crop_box(
        &self,
        height: usize,
        width: usize,
        rng: &mut ExampleRng,
    ) -> (usize, usize, usize, usize) {
        if self.crop_scale == (1.0, 1.0) {
            return (0, 0, height, width);
        }
        let area = (height * width) as f32;
        let (log_lo, log_hi) = (self.crop_ratio.0.ln(), self.crop_ratio.1.ln());
        for _ in 0..10 {
            let scale = uniform(rng, self.crop_scale.0, self.crop_scale.1);
            let ratio = uniform(rng, log_lo, log_hi).exp();
            let w = (area * scale * ratio).sqrt().round() as usize;
            let h = (area * scale / ratio).sqrt().round() as usize;
            if (1..=width).contains(&w) && (1..=height).contains(&h) {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return (top, left, h, w);
            }
        }
        let ratio = (width as f32 / height as f32).clamp(self.crop_ratio.0, self.crop_ratio.1);
        let (h, w) = if ratio < width as f32 / height as f32 {
            (height, ((height as f32 * ratio).round() as usize).max(1))
        } else {
            (((width as f32 / ratio).round() as usize).max(1), width)
        };
        ((height - h) / 2, (width - w) / 2, h, w)
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidConfig(format!("augmentation: {reason}"))
}

/// A uniform draw from `[lo, hi]`.
fn uniform(rng: &mut ExampleRng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut ExampleRng) -> f32 {
    let u = 1.0 - rng.random::<f64>();
    let v = rng.random::<f64>();
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// The box `(top, left, h, w)` of `image` (`height` × `width`) resized back to
/// `height` × `width` bilinearly (half-pixel centres, edges clamped inside the box, as
/// torchvision crops and then resizes).
pub fn resized_crop(
    image: &[f32],
    height: usize,
    width: usize,
    (top, left, h, w): (usize, usize, usize, usize),
) -> Vec<f32> {
    let at = |r: usize, c: usize| image[(top + r) * width + left + c];
    // Source coordinate of output pixel `i` of `n` over a box side of `side`, and the two
    // neighbours it falls between with the weight of the second.
    let source = |i: usize, n: usize, side: usize| {
        let x = ((i as f32 + 0.5) * side as f32 / n as f32 - 0.5).clamp(0.0, (side - 1) as f32);
        let low = x.floor() as usize;
        (low, (low + 1).min(side - 1), x - low as f32)
    };
    let mut out = Vec::with_capacity(height * width);
    for r in 0..height {
        let (r0, r1, fr) = source(r, height, h);
        for c in 0..width {
            let (c0, c1, fc) = source(c, width, w);
            let upper = at(r0, c0) * (1.0 - fc) + at(r0, c1) * fc;
            let lower = at(r1, c0) * (1.0 - fc) + at(r1, c1) * fc;
            out.push(upper * (1.0 - fr) + lower * fr);
        }
    }
    out
}

/// `image` (`height` × `width`) mirrored left to right.
pub fn flip_horizontal(image: &[f32], height: usize, width: usize) -> Vec<f32> {
    (0..height)
        .flat_map(|r| (0..width).rev().map(move |c| image[r * width + c]))
        .collect()
}

/// `image` scaled by `factor`, clamped to [0, 1] (torchvision's `adjust_brightness`).
pub fn adjust_brightness(image: &[f32], factor: f32) -> Vec<f32> {
    image.iter().map(|p| (p * factor).clamp(0.0, 1.0)).collect()
}

/// `image` moved from its mean by `factor` (`mean + factor · (p − mean)`), clamped to
/// [0, 1] (torchvision's `adjust_contrast` on a grayscale image).
pub fn adjust_contrast(image: &[f32], factor: f32) -> Vec<f32> {
    let mean = image.iter().sum::<f32>() / image.len().max(1) as f32;
    image
        .iter()
        .map(|p| (mean + factor * (p - mean)).clamp(0.0, 1.0))
        .collect()
}

/// The square image `image` (`side` × `side`) turned a quarter anticlockwise `turns` times:
/// exact, with no interpolation (RotNet's four rotations).
pub fn rotate_quarters(image: &[f32], side: usize, turns: usize) -> Vec<f32> {
    let mut out = image.to_vec();
    for _ in 0..turns % 4 {
        // Anticlockwise: the output's row r, column c is the input's row c, column side−1−r.
        out = (0..side * side)
            .map(|i| {
                let (r, c) = (i / side, i % side);
                out[c * side + side - 1 - r]
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::example_rng;

    /// A 4 × 6 image whose pixels all differ.
    fn ramp() -> Vec<f32> {
        (0..24).map(|i| i as f32 / 23.0).collect()
    }

    #[test]
    fn no_augmentation_is_the_identity_and_views_are_seeded() {
        let image = ramp();
        let none = Augmentation::none();
        for seed in 0..5 {
            assert_eq!(
                none.apply(&image, 4, 6, &mut example_rng(seed, 0, 0)),
                image
            );
        }
        let simclr = Augmentation::simclr();
        let view = |seed, index| simclr.apply(&image, 4, 6, &mut example_rng(seed, 0, index));
        assert_eq!(view(1, 3), view(1, 3));
        let distinct: std::collections::HashSet<Vec<u32>> = (0..20)
            .map(|i| view(1, i).iter().map(|p| p.to_bits()).collect())
            .collect();
        assert!(
            distinct.len() > 15,
            "{} distinct views of 20",
            distinct.len()
        );
    }

    #[test]
    fn every_view_keeps_the_size_and_the_range() {
        let image = ramp();
        let strong = Augmentation {
            noise: 0.3,
            brightness: 1.0,
            contrast: 1.0,
            jitter: 1.0,
            ..Augmentation::simclr()
        };
        strong.validate().unwrap();
        for index in 0..200 {
            let view = strong.apply(&image, 4, 6, &mut example_rng(7, 1, index));
            assert_eq!(view.len(), 24);
            assert!(view.iter().all(|p| (0.0..=1.0).contains(p)), "{view:?}");
        }
    }

    #[test]
    fn a_crop_reads_only_its_box_and_the_whole_box_is_the_image() {
        // Left half black, right half white.
        let image: Vec<f32> = (0..28 * 28)
            .map(|i| if i % 28 < 14 { 0.0 } else { 1.0 })
            .collect();
        let left = resized_crop(&image, 28, 28, (3, 0, 20, 14));
        assert!(left.iter().all(|&p| p == 0.0));
        let right = resized_crop(&image, 28, 28, (0, 14, 28, 14));
        assert!(right.iter().all(|&p| p == 1.0));
        assert_eq!(resized_crop(&ramp(), 4, 6, (0, 0, 4, 6)), ramp());
        // A box of one pixel is that pixel everywhere.
        assert!(
            resized_crop(&ramp(), 4, 6, (2, 3, 1, 1))
                .iter()
                .all(|&p| p == ramp()[15])
        );
        // Drawn boxes fit the image and keep about the share of area asked for.
        let aug = Augmentation::simclr();
        for index in 0..500 {
            let (top, left, h, w) = aug.crop_box(28, 28, &mut example_rng(3, 0, index));
            assert!(top + h <= 28 && left + w <= 28 && h > 0 && w > 0);
            let share = (h * w) as f32 / 784.0;
            assert!((0.15..=1.0).contains(&share), "{share}");
            let ratio = w as f32 / h as f32;
            assert!((0.6..=1.6).contains(&ratio), "{ratio}");
        }
    }

    #[test]
    fn flips_and_quarter_turns_are_exact_permutations() {
        let image = ramp();
        let flipped = flip_horizontal(&image, 4, 6);
        assert_eq!(
            &flipped[..6],
            &[
                5.0 / 23.0,
                4.0 / 23.0,
                3.0 / 23.0,
                2.0 / 23.0,
                1.0 / 23.0,
                0.0
            ]
        );
        assert_eq!(flip_horizontal(&flipped, 4, 6), image);
        let square: Vec<f32> = (0..9).map(|i| i as f32).collect();
        // 0 1 2 / 3 4 5 / 6 7 8 turned anticlockwise: 2 5 8 / 1 4 7 / 0 3 6.
        assert_eq!(
            rotate_quarters(&square, 3, 1),
            [2.0, 5.0, 8.0, 1.0, 4.0, 7.0, 0.0, 3.0, 6.0]
        );
        assert_eq!(
            rotate_quarters(&square, 3, 2),
            square.iter().rev().copied().collect::<Vec<_>>()
        );
        assert_eq!(rotate_quarters(&square, 3, 4), square);
    }

    #[test]
    fn jitter_scales_brightness_and_spreads_contrast_around_the_mean() {
        let image = [0.2f32, 0.4, 0.6];
        assert_eq!(adjust_brightness(&image, 1.0), image);
        assert_eq!(adjust_brightness(&image, 2.0), [0.4, 0.8, 1.0]);
        let spread = adjust_contrast(&image, 2.0);
        assert!(
            (spread[0] - 0.0).abs() < 1e-6 && (spread[2] - 0.8).abs() < 1e-6,
            "{spread:?}"
        );
        let flat = adjust_contrast(&image, 0.0);
        assert!(flat.iter().all(|p| (p - 0.4).abs() < 1e-6));
    }

    #[test]
    fn bad_settings_are_named() {
        let cases = [
            Augmentation {
                crop_scale: (0.0, 1.0),
                ..Augmentation::simclr()
            },
            Augmentation {
                crop_scale: (0.8, 0.5),
                ..Augmentation::simclr()
            },
            Augmentation {
                crop_ratio: (2.0, 1.0),
                ..Augmentation::simclr()
            },
            Augmentation {
                flip: 1.5,
                ..Augmentation::simclr()
            },
            Augmentation {
                brightness: -0.1,
                ..Augmentation::simclr()
            },
            Augmentation {
                noise: f32::NAN,
                ..Augmentation::simclr()
            },
        ];
        for case in cases {
            assert!(case.validate().is_err(), "{case:?}");
        }
        for good in [
            Augmentation::none(),
            Augmentation::simclr(),
            Augmentation::mae(),
        ] {
            good.validate().unwrap();
        }
    }
}
