//! PNG: lossless through oxipng (colour type, bit depth and palette reductions, better deflate;
//! built with its `sanity-checks`, so oxipng decodes each result and compares its pixels, at 8
//! bits, with its input's; the pipeline proves lossless outputs again at full depth), lossy
//! through libimagequant's palette quantisation with dithering, then written as an indexed PNG
//! and squeezed by oxipng.
//! Chunks that do not affect display (text, time, EXIF) are stripped; colour chunks (iCCP, sRGB,
//! gAMA, cHRM) are kept so the image looks the same.

use std::time::Duration;

use image::{DynamicImage, RgbaImage};

use super::Codec;
use crate::error::CoreError;
use crate::format::ImageFormat;

/// oxipng preset 2 is its default: most of the gain at a fraction of the time of 4–6.
const OXIPNG_PRESET: u8 = 2;
const OXIPNG_TIMEOUT: Duration = Duration::from_secs(20);
/// Zopfli is tens of times slower than libdeflate for a few percent fewer bytes, and its time
/// follows the uncompressed (filtered) data, so it runs only on images whose raw rows fit in
/// this many bytes (icons, thumbnails), with 5 iterations, and is kept only when smaller.
/// Measured on a loaded machine: png_page_gray (384×191 grey, 73 KB raw) took 2.1 s with 1
/// iteration and 2.6 s with 5 instead of 0.06 s, and the 150 KB skimage logo 24 s with 15
/// iterations. 32 KB of raw rows (a 100×80 RGB icon) keeps zopfli near a quarter second.
const ZOPFLI_UP_TO_RAW_BYTES: u64 = 32 * 1024;
const ZOPFLI_ITERATIONS: u64 = 5;
/// How far below the target quality imagequant may go before it reports "quality too low".
const QUALITY_SLACK: u8 = 30;
/// libimagequant's speed for the search and normal output: its default, most of the quality.
const QUANTIZE_SPEED: i32 = 4;
/// A slower, more thorough speed for a last try at the top quality before the lossless
/// fallback: on png_skimage_logo_rgba it scores 94.44 where speed 4 scores 94.35 (speed 3 does
/// not reach 94.41 either).
const QUANTIZE_SPEED_HARDEST: i32 = 2;

/// PNG through [`Codec`]: lossy is a palette at a quality, lossless goes through oxipng;
/// `icc` is the profile written with the pixels (when the policy keeps it).
pub struct Png<'a> {
    pub icc: Option<&'a [u8]>,
}

impl Codec for Png<'_> {
    fn format(&self) -> ImageFormat {
        ImageFormat::Png
    }

    /// imagequant's whole quality scale.
    fn quality_range(&self) -> std::ops::RangeInclusive<u8> {
        0..=100
    }

    fn encode_lossless(&self, image: &DynamicImage) -> Result<Option<Vec<u8>>, CoreError> {
        encode_lossless(image, self.icc).map(Some)
    }

    fn encode_lossy(
        &self,
        image: &DynamicImage,
        quality: u8,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        quantize(&image.to_rgba8(), quality, self.icc)
    }

    /// The palette the search scores is the one [`quantize`] writes, without oxipng's pass.
    fn encode_trial(
        &self,
        image: &DynamicImage,
        quality: u8,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        quantize_raw(&image.to_rgba8(), quality)
    }

    fn trial_is_output(&self) -> bool {
        false
    }
}

fn oxipng_options() -> oxipng::Options {
    let mut options = oxipng::Options::from_preset(OXIPNG_PRESET);
    options.strip = oxipng::StripChunks::Safe;
    options.timeout = Some(OXIPNG_TIMEOUT);
    options
}

pub fn optimize_lossless(input: &[u8]) -> Result<Vec<u8>, CoreError> {
    optimize_lossless_keeping(input, false)
}

/// `keep_all_chunks`: also keep text, EXIF and XMP chunks (when the caller keeps metadata).
pub fn optimize_lossless_keeping(
    input: &[u8],
    keep_all_chunks: bool,
) -> Result<Vec<u8>, CoreError> {
    let mut options = oxipng_options();
    if keep_all_chunks {
        options.strip = oxipng::StripChunks::None;
    }
    let optimised = oxipng_checked(input, &options)?;
    Ok(zopfli_if_it_pays(optimised, &options))
}

/// oxipng's sanity check asserts, so a result whose pixels differ from its input arrives as a
/// panic: it becomes [`CoreError::LosslessCheckFailed`] here (the pipeline then keeps the
/// original). Any other panic is oxipng giving up on the input, as the pipeline's own panic
/// boundary would report it.
fn oxipng_checked(input: &[u8], options: &oxipng::Options) -> Result<Vec<u8>, CoreError> {
    let run = std::panic::AssertUnwindSafe(|| oxipng::optimize_from_memory(input, options));
    match std::panic::catch_unwind(run) {
        Ok(result) => result.map_err(|e| CoreError::Corrupt(e.to_string())),
        Err(panic) => {
            let text = super::panic_text(panic);
            Err(if text.contains("validate_output") {
                CoreError::LosslessCheckFailed(format!(
                    "the PNG output failed oxipng's pixel check ({text})"
                ))
            } else {
                CoreError::Corrupt(format!("oxipng gave up on this image ({text})"))
            })
        }
    }
}

/// A second oxipng pass with zopfli as the deflater, on a result small enough to finish within
/// the time budget; the smaller of the two is kept. The first pass already chose colour type,
/// bit depth and palette, so this pass only re-deflates.
fn zopfli_if_it_pays(optimised: Vec<u8>, first_pass: &oxipng::Options) -> Vec<u8> {
    if raw_bytes(&optimised).is_none_or(|raw| raw > ZOPFLI_UP_TO_RAW_BYTES) {
        return optimised;
    }
    let mut options = first_pass.clone();
    options.deflater = oxipng::Deflater::Zopfli(oxipng::ZopfliOptions {
        iteration_count: std::num::NonZeroU64::new(ZOPFLI_ITERATIONS)
            .unwrap_or(std::num::NonZeroU64::MIN),
        ..oxipng::ZopfliOptions::default()
    });
    // A zopfli result that fails oxipng's check leaves the checked first pass in place.
    match oxipng_checked(&optimised, &options) {
        Ok(smaller) if smaller.len() < optimised.len() => smaller,
        _ => optimised,
    }
}

/// Size of a PNG's unfiltered rows (what deflate compresses), from its IHDR chunk.
fn raw_bytes(png: &[u8]) -> Option<u64> {
    let ihdr = png.get(16..26)?;
    let width = u64::from(u32::from_be_bytes(ihdr[0..4].try_into().ok()?));
    let height = u64::from(u32::from_be_bytes(ihdr[4..8].try_into().ok()?));
    let (depth, colour_type) = (u64::from(ihdr[8]), ihdr[9]);
    let channels = match colour_type {
        0 | 3 => 1,
        4 => 2,
        2 => 3,
        6 => 4,
        _ => return None,
    };
    Some(height * (1 + (width * channels * depth).div_ceil(8)))
}

/// Quantises to at most 256 colours at `quality`, then squeezes with oxipng. `Ok(None)` when
/// the palette cannot reach the quality, so the caller can fall back to lossless.
pub fn quantize(
    image: &RgbaImage,
    quality: u8,
    icc: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, CoreError> {
    let Some(quantized) = quantize_indices(image, floor(quality), quality)? else {
        return Ok(None);
    };
    // Lossless from here on; oxipng shrinks the palette depth and picks filters.
    optimize_lossless(&indexed_png(image, &quantized, icc)?).map(Some)
}

/// A better palette than the search's (top quality, libimagequant's slower speed 2): the last
/// lossy try before a PNG falls back to lossless. Write it with [`indexed_png`] to score it, and
/// squeeze it with [`optimize_lossless`] only once it is kept.
pub fn quantize_hardest(image: &RgbaImage) -> Result<Option<Quantized>, CoreError> {
    quantize_at_speed(image, 0, 100, QUANTIZE_SPEED_HARDEST)
}

/// A quantised image as an indexed PNG, fast deflate (no oxipng pass).
pub fn indexed_png(
    image: &RgbaImage,
    (palette, indices): &Quantized,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, CoreError> {
    write_indexed_png(image.width(), image.height(), palette, indices, icc)
}

/// The quantised PNG without oxipng's pass: same pixels, written fast. For quality trials.
pub fn quantize_raw(image: &RgbaImage, quality: u8) -> Result<Option<Vec<u8>>, CoreError> {
    let Some(quantized) = quantize_indices(image, floor(quality), quality)? else {
        return Ok(None);
    };
    indexed_png(image, &quantized, None).map(Some)
}

/// A palette and one palette index per pixel.
pub type Quantized = (Vec<imagequant::RGBA>, Vec<u8>);

fn floor(quality: u8) -> u8 {
    quality.min(100).saturating_sub(QUALITY_SLACK)
}

/// libimagequant with dithering: the palette and one index per pixel, aiming at `quality` and
/// giving `None` when even `minimum` cannot be reached.
pub fn quantize_indices(
    image: &RgbaImage,
    minimum: u8,
    quality: u8,
) -> Result<Option<Quantized>, CoreError> {
    quantize_at_speed(image, minimum, quality, QUANTIZE_SPEED)
}

fn quantize_at_speed(
    image: &RgbaImage,
    minimum: u8,
    quality: u8,
    speed: i32,
) -> Result<Option<Quantized>, CoreError> {
    let (width, height) = (image.width(), image.height());
    let pixels: Vec<imagequant::RGBA> = image
        .as_raw()
        .chunks_exact(4)
        .map(|p| imagequant::RGBA::new(p[0], p[1], p[2], p[3]))
        .collect();
    let mut attributes = imagequant::new();
    let liq = |e: imagequant::Error| CoreError::Encode(format!("imagequant: {e}"));
    attributes.set_speed(speed).map_err(liq)?;
    let quality = quality.min(100);
    attributes
        .set_quality(minimum.min(quality), quality)
        .map_err(liq)?;
    let mut liq_image = attributes
        .new_image(pixels, width as usize, height as usize, 0.0)
        .map_err(liq)?;
    let mut result = match attributes.quantize(&mut liq_image) {
        Ok(result) => result,
        Err(imagequant::Error::QualityTooLow) => return Ok(None),
        Err(e) => return Err(liq(e)),
    };
    result.set_dithering_level(1.0).map_err(liq)?;
    let (palette, indices) = result.remapped(&mut liq_image).map_err(liq)?;
    Ok(Some((palette, indices)))
}

fn write_indexed_png(
    width: u32,
    height: u32,
    palette: &[imagequant::RGBA],
    indices: &[u8],
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, CoreError> {
    let rgb: Vec<u8> = palette.iter().flat_map(|c| [c.r, c.g, c.b]).collect();
    let alpha: Vec<u8> = palette.iter().map(|c| c.a).collect();
    let mut out = Vec::new();
    let png_err = |e: png::EncodingError| CoreError::Encode(format!("png: {e}"));
    {
        let mut info = png::Info::with_size(width, height);
        info.icc_profile = icc.map(|profile| std::borrow::Cow::Owned(profile.to_vec()));
        let mut encoder = png::Encoder::with_info(&mut out, info).map_err(png_err)?;
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(rgb);
        if alpha.iter().any(|&a| a != 255) {
            encoder.set_trns(alpha);
        }
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(indices).map_err(png_err)?;
        writer.finish().map_err(png_err)?;
    }
    Ok(out)
}

/// Encodes pixels as PNG (fast deflate) and lets oxipng pick the colour type and filters.
pub fn encode_lossless(image: &DynamicImage, icc: Option<&[u8]>) -> Result<Vec<u8>, CoreError> {
    use image::ImageEncoder;
    let mut raw = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut raw,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    if let Some(profile) = icc {
        // Only fails for encoders without ICC support; PNG has it.
        let _ = encoder.set_icc_profile(profile.to_vec());
    }
    image
        .write_with_encoder(encoder)
        .map_err(|e| CoreError::Encode(format!("png: {e}")))?;
    optimize_lossless(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<u8> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        std::fs::read(format!("{root}{name}")).expect("corpus file")
    }

    /// A 100×80 RGB image with flat areas, gradients and texture: 24 KB of raw rows.
    fn small_png() -> Vec<u8> {
        let image = image::RgbImage::from_fn(100, 80, |x, y| {
            let texture = ((x * 7 + y * 13) % 11) as u8;
            if x < 25 {
                image::Rgb([200, 30, 30])
            } else {
                image::Rgb([(x + texture as u32) as u8, (y * 2) as u8, texture * 20])
            }
        });
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(image)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        bytes
    }

    #[test]
    fn raw_size_comes_from_the_header() {
        assert_eq!(raw_bytes(&small_png()), Some(80 * (1 + 100 * 3)));
        assert_eq!(
            raw_bytes(&corpus("png_page_gray.png")).map(|r| r > ZOPFLI_UP_TO_RAW_BYTES),
            Some(true)
        );
        assert_eq!(raw_bytes(b"short"), None);
    }

    #[test]
    fn zopfli_pass_is_smaller_than_libdeflate_and_keeps_every_pixel() {
        let input = small_png();
        let libdeflate_only = oxipng::optimize_from_memory(&input, &oxipng_options()).unwrap();
        let best = optimize_lossless(&input).unwrap();
        assert!(
            best.len() < libdeflate_only.len(),
            "{} vs {}",
            best.len(),
            libdeflate_only.len()
        );
        let decode = |b: &[u8]| image::load_from_memory(b).unwrap().to_rgba16();
        assert_eq!(decode(&best), decode(&input));
    }

    #[test]
    fn big_images_skip_zopfli() {
        let page =
            oxipng::optimize_from_memory(&corpus("png_page_gray.png"), &oxipng_options()).unwrap();
        assert_eq!(zopfli_if_it_pays(page.clone(), &oxipng_options()), page);
    }
}
