//! Grayscale images read once, with their labels: the IDX files MNIST and Fashion-MNIST ship in
//! (a big-endian header, then row-major bytes), the full Fashion-MNIST that
//! `scripts/fetch_fashion_mnist.sh` unpacks, and the subset of it bundled in
//! `data/fashion-mnist/` for tests and CI.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Fashion-MNIST's classes, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Mean of Fashion-MNIST's training pixels, on a scale of 0 to 1.
pub const FASHION_MNIST_MEAN: f32 = 0.2860;

/// Standard deviation of Fashion-MNIST's training pixels, on a scale of 0 to 1.
pub const FASHION_MNIST_STD: f32 = 0.3530;

/// Where `scripts/fetch_fashion_mnist.sh` unpacks the full set by default.
pub fn fashion_mnist_cache() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".cache/pretext/data/fashion-mnist")
}

/// A set of grayscale images of one size, with a label each where it has them.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    height: usize,
    width: usize,
    /// Every image's bytes, one after another, rows first (0 is black).
    pixels: Vec<u8>,
    labels: Option<Vec<u8>>,
}

impl Images {
    /// Images of `height` × `width` from their bytes, one image after another, and their
    /// labels if any: an error unless the bytes hold whole images and there is a label for
    /// each.
    pub fn new(
        height: usize,
        width: usize,
        pixels: Vec<u8>,
        labels: Option<Vec<u8>>,
    ) -> Result<Self> {
        let size = height * width;
        if size == 0 || !pixels.len().is_multiple_of(size) {
            return Err(Error::InvalidConfig(format!(
                "{} bytes are not whole images of {height} × {width}",
                pixels.len()
            )));
        }
        let n = pixels.len() / size;
        if let Some(labels) = labels.as_ref().filter(|l| l.len() != n) {
            return Err(Error::InvalidConfig(format!(
                "{n} images but {} labels",
                labels.len()
            )));
        }
        Ok(Self {
            height,
            width,
            pixels,
            labels,
        })
    }

    /// The images of an IDX file (unsigned bytes, 3 dimensions: count, height, width) and
    /// the labels of another (unsigned bytes, 1 dimension), if given. A file of another type,
    /// shape or length is an [`Error::Image`] naming it.
    pub fn read_idx(images: &Path, labels: Option<&Path>) -> Result<Self> {
        let (dims, pixels) = read_idx(images, 3)?;
        let (n, height, width) = (dims[0], dims[1], dims[2]);
        let labels = match labels {
            Some(path) => {
                let (counts, labels) = read_idx(path, 1)?;
                if counts[0] != n {
                    return Err(image_error(
                        path,
                        format!(
                            "{} labels for the {n} images of {}",
                            counts[0],
                            images.display()
                        ),
                    ));
                }
                Some(labels)
            }
            None => None,
        };
        Self::new(height, width, pixels, labels)
    }

    /// Writes the images (and labels, if any) as IDX files, each through a temporary file
    /// renamed into place.
    pub fn write_idx(&self, images: &Path, labels: Option<&Path>) -> Result<()> {
        let dims = [self.len(), self.height, self.width];
        write_idx(images, &dims, &self.pixels)?;
        if let (Some(path), Some(labels)) = (labels, &self.labels) {
            write_idx(path, &[labels.len()], labels)?;
        }
        Ok(())
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / (self.height * self.width)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Height of every image, in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Width of every image, in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Image `index`'s bytes, rows first.
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.height * self.width;
        &self.pixels[index * size..(index + 1) * size]
    }

    /// Image `index` on a scale of 0 to 1, rows first.
    pub fn image_f32(&self, index: usize) -> Vec<f32> {
        self.image(index)
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect()
    }

    /// Image `index`'s label, where the images have labels.
    pub fn label(&self, index: usize) -> Option<usize> {
        self.labels.as_ref().map(|l| l[index] as usize)
    }

    /// Every image's label, in order, where the images have labels.
    pub fn labels(&self) -> Option<Vec<usize>> {
        (self.labels.as_ref()).map(|l| l.iter().map(|&c| c as usize).collect())
    }

    /// `per_class` images of each class drawn at random by `seed`, classes in turn (the
    /// labelled share of a semi-supervised evaluation: 1 % of Fashion-MNIST is 60 a class).
    /// An error without labels, or where a class has fewer images.
    pub fn balanced(&self, per_class: usize, seed: u64) -> Result<Vec<usize>> {
        let labels = self.labels().ok_or_else(|| {
            Error::InvalidConfig("a class-balanced subset needs labelled images".into())
        })?;
        let mut chosen = Vec::new();
        for class in 0..self.num_classes() {
            let members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
            if members.len() < per_class {
                return Err(Error::InvalidConfig(format!(
                    "class {class} has {} images, fewer than the {per_class} asked",
                    members.len()
                )));
            }
            let mut rng = crate::util::rng::example_rng(seed, 0, class as u64);
            let picks = crate::util::rng::choose(members.len(), per_class, &mut rng);
            chosen.extend(picks.into_iter().map(|k| members[k]));
        }
        Ok(chosen)
    }

    /// The number of classes: one more than the largest label (0 without labels).
    pub fn num_classes(&self) -> usize {
        (self.labels.iter().flatten())
            .max()
            .map_or(0, |&l| l as usize + 1)
    }

    /// These images split in two: all but the last `count` (at most a tenth of them, at least
    /// one), and those last ones, the validation images a run holds out (Fashion-MNIST's
    /// files are already in a mixed order).
    pub fn hold_out(&self, count: usize) -> (Self, Self) {
        let held = count.min(self.len() / 10).max(1).min(self.len());
        let all: Vec<usize> = (0..self.len()).collect();
        let cut = self.len() - held;
        (self.subset(&all[..cut]), self.subset(&all[cut..]))
    }

    /// The images at `indices`, in that order, with their labels.
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self {
            height: self.height,
            width: self.width,
            pixels: indices
                .iter()
                .flat_map(|&i| self.image(i))
                .copied()
                .collect(),
            labels: (self.labels.as_ref()).map(|l| indices.iter().map(|&i| l[i]).collect()),
        }
    }
}

/// Fashion-MNIST's training and test splits, read from the directory that
/// `scripts/fetch_fashion_mnist.sh` fills (or the bundled subset's).
pub fn fashion_mnist(dir: &Path) -> Result<(Images, Images)> {
    let split = |name: &str| {
        Images::read_idx(
            &dir.join(format!("{name}-images-idx3-ubyte")),
            Some(&dir.join(format!("{name}-labels-idx1-ubyte"))),
        )
    };
    Ok((split("train")?, split("t10k")?))
}

/// The bundled subset of Fashion-MNIST: 100 training images of each class and 20 test images
/// of each (see `data/README.md`).
pub fn bundled_fashion_mnist() -> Result<(Images, Images)> {
    fashion_mnist(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist"))
}

fn image_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Image {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The dimensions and bytes of the IDX file at `path`, which must hold unsigned bytes in
/// `rank` dimensions.
fn read_idx(path: &Path, rank: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(image_error(path, "not an IDX file (no IDX header)"));
    }
    if bytes[2] != 0x08 {
        return Err(image_error(
            path,
            format!(
                "holds values of IDX type {:#04x}; only unsigned bytes (0x08) are read",
                bytes[2]
            ),
        ));
    }
    if bytes[3] as usize != rank {
        return Err(image_error(
            path,
            format!(
                "has {} dimensions where {rank} were expected ({})",
                bytes[3],
                if rank == 3 {
                    "count, height, width: an image file"
                } else {
                    "count: a label file"
                }
            ),
        ));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(image_error(path, "its IDX header is cut short"));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|d| {
            let at = 4 + 4 * d;
            u32::from_be_bytes(bytes[at..at + 4].try_into().expect("four bytes")) as usize
        })
        .collect();
    let expected: usize = dims.iter().product();
    if bytes.len() - header != expected {
        return Err(image_error(
            path,
            format!(
                "its header says {dims:?} ({expected} bytes) but {} bytes follow it",
                bytes.len() - header
            ),
        ));
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// Writes unsigned bytes of `dims` as an IDX file at `path`, atomically.
fn write_idx(path: &Path, dims: &[usize], values: &[u8]) -> Result<()> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| image_error(path, "a dimension over 2³²"))?;
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend_from_slice(values);
    crate::util::atomic_file::write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_subset_has_every_class_in_both_splits() {
        let (train, test) = bundled_fashion_mnist().unwrap();
        assert_eq!((train.len(), test.len()), (1000, 200));
        assert_eq!((train.height(), train.width()), (28, 28));
        for (images, per_class) in [(&train, 100), (&test, 20)] {
            let mut counts = [0; 10];
            for i in 0..images.len() {
                counts[images.label(i).unwrap()] += 1;
            }
            assert_eq!(counts, [per_class; 10]);
            assert_eq!(images.num_classes(), FASHION_MNIST_CLASSES.len());
        }
        // Real pictures: a dark background and a brighter object, not noise or blanks.
        let mean = train.pixels.iter().map(|&p| p as f64).sum::<f64>() / train.pixels.len() as f64;
        assert!(
            (mean / 255.0 - FASHION_MNIST_MEAN as f64).abs() < 0.05,
            "{mean}"
        );
        assert_eq!(train.image(0)[0], 0, "a corner is background");
    }

    #[test]
    fn a_balanced_subset_has_as_many_of_each_class_distinct_and_seeded() {
        let (train, _) = bundled_fashion_mnist().unwrap();
        let picks = train.balanced(7, 3).unwrap();
        assert_eq!(picks.len(), 70);
        let labels = train.labels().unwrap();
        for class in 0..10 {
            assert_eq!(picks.iter().filter(|&&i| labels[i] == class).count(), 7);
        }
        let mut distinct = picks.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 70);
        assert_eq!(picks, train.balanced(7, 3).unwrap());
        assert_ne!(picks, train.balanced(7, 4).unwrap());
        assert!(train.balanced(101, 3).is_err());
        let unlabelled = Images::new(2, 2, vec![0; 8], None).unwrap();
        assert!(unlabelled.balanced(1, 0).is_err());
    }

    #[test]
    fn idx_files_round_trip_and_bad_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("pretext-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let images = Images::new(2, 3, (0..12).collect(), Some(vec![4, 7])).unwrap();
        let (pixels, labels) = (dir.join("images"), dir.join("labels"));
        images.write_idx(&pixels, Some(&labels)).unwrap();
        assert_eq!(Images::read_idx(&pixels, Some(&labels)).unwrap(), images);
        assert_eq!(images.image(1), &[6, 7, 8, 9, 10, 11]);
        assert_eq!(images.subset(&[1]).label(0), Some(7));

        let check = |bytes: &[u8], needle: &str| {
            let bad = dir.join("bad");
            std::fs::write(&bad, bytes).unwrap();
            let err = Images::read_idx(&bad, None).unwrap_err();
            assert!(
                matches!(&err, Error::Image { path, reason } if path == &bad && reason.contains(needle)),
                "{err}"
            );
        };
        let good = std::fs::read(&pixels).unwrap();
        check(b"\x89PNG\r\n\x1a\n", "not an IDX file");
        check(
            &[
                0, 0, 0x0d, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0,
            ],
            "type 0x0d",
        );
        check(&std::fs::read(&labels).unwrap(), "1 dimensions where 3");
        check(&good[..good.len() - 1], "11 bytes follow");
        // Labels that do not count the images.
        Images::new(2, 3, (0..6).collect(), Some(vec![1]))
            .unwrap()
            .write_idx(&dir.join("one"), Some(&labels.with_extension("one")))
            .unwrap();
        let err = Images::read_idx(&pixels, Some(&labels.with_extension("one"))).unwrap_err();
        assert!(
            err.to_string().contains("1 labels for the 2 images"),
            "{err}"
        );
        assert!(Images::new(2, 3, vec![0; 7], None).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
