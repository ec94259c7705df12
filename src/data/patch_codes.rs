//! A codebook of image patches: k-means (k-means++ seeding, then Lloyd's iterations) over
//! patches drawn from the training images, fitted once, which maps every patch of a view to
//! the id of its nearest centre. The ids are the "visual words" that masked image modelling
//! predicts (BEiT's targets, from a k-means palette as iGPT's instead of a dVAE).

use rand::RngExt;

use super::images::ImageViews;
use crate::error::{Error, Result};
use crate::util::rng::example_rng;

/// How a [`PatchCodebook`] is fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodebookFit {
    /// Centres (codes). BEiT-lite on Fashion-MNIST: 256.
    pub codes: usize,
    /// Side of a patch, in pixels.
    pub patch_size: usize,
    /// Patches sampled from the images to fit on.
    pub samples: usize,
    /// Lloyd iterations after the seeding.
    pub iterations: usize,
    /// The seed of the sample and the seeding.
    pub seed: u64,
}

impl CodebookFit {
    /// `codes` centres of `patch_size` patches, fitted on 20,000 sampled patches in 10
    /// iterations (about a second for 256 codes), seed 0.
    pub fn new(codes: usize, patch_size: usize) -> Self {
        Self {
            codes,
            patch_size,
            samples: 20_000,
            iterations: 10,
            seed: 0,
        }
    }
}

/// Centres of flattened patches, each patch mapped to its nearest (squared distance).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchCodebook {
    centres: Vec<f32>,
    patch_size: usize,
    values: usize,
    background: u32,
}

impl PatchCodebook {
    /// Fits `fit.codes` centres on patches of the unaugmented views of `views`' images, in
    /// the views' normalised scale. Errors: no codes, a patch that does not divide the
    /// images, fewer patches sampled than codes.
    pub fn fit(views: &ImageViews, fit: &CodebookFit) -> Result<Self> {
        let side = views.side();
        let p = fit.patch_size;
        if p == 0 || !side.is_multiple_of(p) {
            return Err(Error::InvalidConfig(format!(
                "patch size {p} does not divide the image side {side}"
            )));
        }
        if fit.codes < 2 || fit.samples < fit.codes {
            return Err(Error::InvalidConfig(format!(
                "a codebook of {} codes needs at least 2 codes and as many sampled patches \
                 (got {})",
                fit.codes, fit.samples
            )));
        }
        let values = p * p;
        let per_image = (side / p) * (side / p);
        let plain = views.plain();
        let mut rng = example_rng(fit.seed, 0, 0);
        let mut points = Vec::with_capacity(fit.samples * values);
        for _ in 0..fit.samples {
            let image = rng.random_range(0..plain.len());
            let patch = rng.random_range(0..per_image);
            let view = plain.view(image, &mut rng);
            points.extend(patches_of(&view.pixels, side, p).swap_remove(patch));
        }
        let mut centres = seed_centres(&points, values, fit.codes, &mut rng);
        for _ in 0..fit.iterations {
            let nearest: Vec<usize> = points
                .chunks(values)
                .map(|x| nearest(&centres, values, x))
                .collect();
            let mut sums = vec![0f64; fit.codes * values];
            let mut counts = vec![0usize; fit.codes];
            for (x, &c) in points.chunks(values).zip(&nearest) {
                counts[c] += 1;
                for (s, v) in sums[c * values..(c + 1) * values].iter_mut().zip(x) {
                    *s += *v as f64;
                }
            }
            for c in 0..fit.codes {
                // An empty cluster keeps its centre.
                if counts[c] > 0 {
                    for k in 0..values {
                        centres[c * values + k] = (sums[c * values + k] / counts[c] as f64) as f32;
                    }
                }
            }
        }
        let background = views.background();
        let blank = vec![background; values];
        let background = nearest(&centres, values, &blank) as u32;
        Ok(Self {
            centres,
            patch_size: p,
            values,
            background,
        })
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.centres.len() / self.values
    }

    /// Whether it has no codes (never, for a fitted codebook).
    pub fn is_empty(&self) -> bool {
        self.centres.is_empty()
    }

    /// The code of the blank patch (the background, a third of Fashion-MNIST's patches): a
    /// model predicting it everywhere would score well for nothing, so it is not a target.
    pub fn background(&self) -> u32 {
        self.background
    }

    /// The code of every patch of a `side` × `side` view, row by row of patches.
    pub fn codes(&self, pixels: &[f32], side: usize) -> Vec<u32> {
        patches_of(pixels, side, self.patch_size)
            .iter()
            .map(|x| nearest(&self.centres, self.values, x) as u32)
            .collect()
    }
}

/// The patches of a `side` × `side` image, row by row of patches, each flattened rows first
/// (the order of [`patchify`](crate::blocks::patchify)).
fn patches_of(pixels: &[f32], side: usize, p: usize) -> Vec<Vec<f32>> {
    let grid = side / p;
    let mut patches = Vec::with_capacity(grid * grid);
    for gy in 0..grid {
        for gx in 0..grid {
            let mut patch = Vec::with_capacity(p * p);
            for y in 0..p {
                let row = (gy * p + y) * side + gx * p;
                patch.extend_from_slice(&pixels[row..row + p]);
            }
            patches.push(patch);
        }
    }
    patches
}

/// The index of the centre nearest `x`.
fn nearest(centres: &[f32], values: usize, x: &[f32]) -> usize {
    let mut best = (0, f32::INFINITY);
    for (c, centre) in centres.chunks(values).enumerate() {
        let d: f32 = centre.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum();
        if d < best.1 {
            best = (c, d);
        }
    }
    best.0
}

/// k-means++ seeding: the first centre a random point, each next one a point drawn with
/// probability proportional to its squared distance from the nearest centre so far.
fn seed_centres(
    points: &[f32],
    values: usize,
    k: usize,
    rng: &mut crate::util::rng::ExampleRng,
) -> Vec<f32> {
    let n = points.len() / values;
    let point = |i: usize| &points[i * values..(i + 1) * values];
    let mut centres = point(rng.random_range(0..n)).to_vec();
    let distance = |a: &[f32], b: &[f32]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| ((x - y) * (x - y)) as f64)
            .sum()
    };
    let mut nearest_sq: Vec<f64> = (0..n).map(|i| distance(point(i), &centres)).collect();
    for _ in 1..k {
        let total: f64 = nearest_sq.iter().sum();
        let pick = if total > 0.0 {
            crate::util::rng::pick_weighted(&nearest_sq, rng.random::<f64>())
        } else {
            rng.random_range(0..n)
        };
        let chosen = point(pick).to_vec();
        for (i, d) in nearest_sq.iter_mut().enumerate() {
            *d = d.min(distance(point(i), &chosen));
        }
        centres.extend(chosen);
    }
    centres
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::images::bundled_fashion_mnist;
    use crate::noise::augment::Augmentation;

    fn views() -> ImageViews {
        let (train, _) = bundled_fashion_mnist().unwrap();
        ImageViews::fashion_mnist(train, Augmentation::none()).unwrap()
    }

    fn small_fit() -> CodebookFit {
        CodebookFit {
            samples: 3000,
            iterations: 8,
            ..CodebookFit::new(16, 4)
        }
    }

    #[test]
    fn codes_are_nearest_centres_and_blank_patches_share_the_background_code() {
        let views = views();
        let book = PatchCodebook::fit(&views, &small_fit()).unwrap();
        assert_eq!(book.len(), 16);
        let view = views.view(0, &mut example_rng(0, 0, 0));
        let codes = book.codes(&view.pixels, 28);
        assert_eq!(codes.len(), 49);
        assert!(codes.iter().all(|&c| (c as usize) < 16));
        // Every patch's code is the centre nearest it, by brute force.
        for (patch, &code) in patches_of(&view.pixels, 28, 4).iter().zip(&codes) {
            let d = |c: usize| -> f32 {
                (0..16)
                    .map(|k| (book.centres[c * 16 + k] - patch[k]).powi(2))
                    .sum()
            };
            assert!((0..16).all(|c| d(code as usize) <= d(c)));
        }
        // The image's corner is background, and its code is the background's.
        assert_eq!(codes[0], book.background());
        // Not everything is background: the garment has codes of its own.
        assert!(codes.iter().any(|&c| c != book.background()));
        assert_eq!(book, PatchCodebook::fit(&views, &small_fit()).unwrap());
    }

    #[test]
    fn lloyd_iterations_lower_the_distortion() {
        let views = views();
        let distortion = |iterations| {
            let fit = CodebookFit {
                iterations,
                ..small_fit()
            };
            let book = PatchCodebook::fit(&views, &fit).unwrap();
            let mut total = 0f64;
            for i in 0..50 {
                let view = views.view(i, &mut example_rng(0, 0, i as u64));
                for patch in patches_of(&view.pixels, 28, 4) {
                    let c = nearest(&book.centres, 16, &patch);
                    let centre = &book.centres[c * 16..(c + 1) * 16];
                    total += centre
                        .iter()
                        .zip(&patch)
                        .map(|(a, b)| ((a - b) * (a - b)) as f64)
                        .sum::<f64>();
                }
            }
            total
        };
        let (seeded, fitted) = (distortion(0), distortion(8));
        assert!(fitted < 0.9 * seeded, "{seeded} -> {fitted}");
    }

    #[test]
    fn bad_fits_are_refused() {
        let views = views();
        assert!(PatchCodebook::fit(&views, &CodebookFit::new(16, 5)).is_err());
        assert!(PatchCodebook::fit(&views, &CodebookFit::new(1, 4)).is_err());
        let few = CodebookFit {
            samples: 8,
            ..CodebookFit::new(16, 4)
        };
        assert!(PatchCodebook::fit(&views, &few).is_err());
    }
}
