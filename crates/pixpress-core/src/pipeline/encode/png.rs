//! PNG: lossless through oxipng (colour type, bit depth and palette reductions, better deflate;
//! oxipng checks its own output decodes to the same pixels), lossy through libimagequant's
//! palette quantisation with dithering, then written as an indexed PNG and squeezed by oxipng.
//! Chunks that do not affect display (text, time, EXIF) are stripped; colour chunks (iCCP, sRGB,
//! gAMA, cHRM) are kept so the image looks the same.

use std::time::Duration;

use image::RgbaImage;

use crate::CoreError;

/// oxipng preset 2 is its default: most of the gain at a fraction of the time of 4–6.
const OXIPNG_PRESET: u8 = 2;
const OXIPNG_TIMEOUT: Duration = Duration::from_secs(20);
/// How far below the target quality imagequant may go before it reports "quality too low".
const QUALITY_SLACK: u8 = 30;

fn oxipng_options() -> oxipng::Options {
    let mut options = oxipng::Options::from_preset(OXIPNG_PRESET);
    options.strip = oxipng::StripChunks::Safe;
    options.timeout = Some(OXIPNG_TIMEOUT);
    options
}

pub fn optimize_lossless(input: &[u8]) -> Result<Vec<u8>, CoreError> {
    oxipng::optimize_from_memory(input, &oxipng_options())
        .map_err(|e| CoreError::Corrupt(e.to_string()))
}

/// Quantises to at most 256 colours at `quality`. `Ok(None)` when the palette cannot reach
/// the quality, so the caller can fall back to lossless.
pub fn quantize(image: &RgbaImage, quality: u8) -> Result<Option<Vec<u8>>, CoreError> {
    let (width, height) = (image.width(), image.height());
    let pixels: Vec<imagequant::RGBA> = image
        .as_raw()
        .chunks_exact(4)
        .map(|p| imagequant::RGBA::new(p[0], p[1], p[2], p[3]))
        .collect();
    let mut attributes = imagequant::new();
    let liq = |e: imagequant::Error| CoreError::Encode(format!("imagequant: {e}"));
    attributes.set_speed(4).map_err(liq)?;
    let quality = quality.min(100);
    attributes
        .set_quality(quality.saturating_sub(QUALITY_SLACK), quality)
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
    let indexed = write_indexed_png(width, height, &palette, &indices)?;
    // Lossless from here on; oxipng shrinks the palette depth and picks filters.
    optimize_lossless(&indexed).map(Some)
}

fn write_indexed_png(
    width: u32,
    height: u32,
    palette: &[imagequant::RGBA],
    indices: &[u8],
) -> Result<Vec<u8>, CoreError> {
    let rgb: Vec<u8> = palette.iter().flat_map(|c| [c.r, c.g, c.b]).collect();
    let alpha: Vec<u8> = palette.iter().map(|c| c.a).collect();
    let mut out = Vec::new();
    let png_err = |e: png::EncodingError| CoreError::Encode(format!("png: {e}"));
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
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
pub fn encode_lossless(image: &image::DynamicImage) -> Result<Vec<u8>, CoreError> {
    let mut raw = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut raw,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    image
        .write_with_encoder(encoder)
        .map_err(|e| CoreError::Encode(format!("png: {e}")))?;
    optimize_lossless(&raw)
}
