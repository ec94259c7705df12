//! MAE's reconstructions as a grayscale PNG: for each test image a row of three panels — the
//! image, what the encoder saw of it (hidden patches grey) and the decoder's reconstruction.

use std::io::Write;
use std::path::Path;

use burn::prelude::*;
use pretext::blocks::VisionTransformer;
use pretext::data::Task;
use pretext::dataset::images::{FASHION_MNIST_MEAN, FASHION_MNIST_STD};
use pretext::objectives::{Mae, MaeTask};

/// Images shown, and pixels a side per image pixel.
const ROWS: usize = 8;
const SCALE: usize = 4;
/// Pixels between panels.
const GAP: usize = 4;

/// Writes the first [`ROWS`] images of `task` (unaugmented views), masked as its examples'
/// streams say, with `mae`'s reconstructions, to `path`.
pub fn write_reconstructions(
    vit: &VisionTransformer,
    mae: &Mae,
    task: &MaeTask,
    path: &Path,
) -> pretext::Result<()> {
    let device = Device::flex();
    let rows = ROWS.min(task.num_examples());
    let examples = (0..rows)
        .map(|i| task.example(i, &mut pretext::util::rng::example_rng(0, 0, i as u64)))
        .collect::<pretext::Result<Vec<_>>>()?;
    let batch = task.collate(&examples, &device)?;
    // Grey for the hidden patches: the mid level, in the views' normalised scale.
    let grey = (0.5 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD;
    let [masked, rebuilt] = mae.pictures(vit, &batch, grey);
    let side = batch.images.dims()[2];
    let panels = [batch.images.clone(), masked, rebuilt].map(|t| {
        t.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 pixels")
    });
    let panel = side * SCALE;
    let (width, height) = (3 * panel + 2 * GAP, rows * panel + (rows - 1) * GAP);
    let mut pixels = vec![255u8; width * height];
    for row in 0..rows {
        for (k, values) in panels.iter().enumerate() {
            for y in 0..side * SCALE {
                for x in 0..side * SCALE {
                    let v = values[row * side * side + (y / SCALE) * side + x / SCALE];
                    let level = (v * FASHION_MNIST_STD + FASHION_MNIST_MEAN).clamp(0.0, 1.0);
                    let (px, py) = (k * (panel + GAP) + x, row * (panel + GAP) + y);
                    // Fashion-MNIST is light on dark; shown dark on light, as on paper.
                    pixels[py * width + px] = 255 - (level * 255.0).round() as u8;
                }
            }
        }
    }
    write_png(path, width, height, &pixels).map_err(|e| pretext::Error::io(path, e))
}

/// An 8-bit grayscale PNG of `pixels`, rows first.
fn write_png(path: &Path, width: usize, height: usize, pixels: &[u8]) -> std::io::Result<()> {
    let mut raw = Vec::with_capacity((width + 1) * height);
    for row in pixels.chunks(width) {
        raw.push(0); // no filter
        raw.extend_from_slice(row);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&raw)?;
    let data = zlib.finish()?;
    let mut header = Vec::new();
    header.extend_from_slice(&(width as u32).to_be_bytes());
    header.extend_from_slice(&(height as u32).to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8 bits, grayscale, deflate, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, body) in [(b"IHDR", &header), (b"IDAT", &data), (b"IEND", &Vec::new())] {
        png.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(body);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    std::fs::write(path, png)
}

/// The CRC-32 PNG's chunks end with (the IEEE polynomial, bit by bit).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
