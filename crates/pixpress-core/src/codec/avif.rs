//! AVIF: lossy encoding with rav1e (through ravif), decoding with libaom's AV1 decoder (through
//! avif-decode). The decoder serves AVIF inputs and the scoring of AVIF trial encodes alike.
//! AVIF has no lossless mode here: ravif codes YCbCr with a quantiser, so "lossless" requests
//! that force AVIF get a high fixed quality instead (SPEC §5).

use image::DynamicImage;
use ravif::{Img, RGB8, RGBA8};

use super::{panic_text, Codec};
use crate::error::CoreError;
use crate::format::ImageFormat;

/// AVIF through [`Codec`]: lossy only (ravif has no lossless mode).
pub struct Avif;

impl Codec for Avif {
    fn format(&self) -> ImageFormat {
        ImageFormat::Avif
    }

    /// At AVIF quality 40 the corpus photos already score 44–69 (png_coffee_photo 44.3,
    /// photo_storm 68.6), below any sensible target; starting there saves one of the slow
    /// AVIF trials.
    fn quality_range(&self) -> std::ops::RangeInclusive<u8> {
        40..=95
    }

    fn encode_lossy(
        &self,
        image: &DynamicImage,
        quality: u8,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        encode_lossy(image, quality).map(Some)
    }

    fn decode(&self, bytes: &[u8]) -> Result<DynamicImage, CoreError> {
        decode(bytes)
    }
}

/// rav1e speed (1 slowest … 10 fastest). Measured on photo_storm (1920×1280) at quality 80:
/// speed 6 took 12.3 s for 12,974 bytes (SSIMULACRA2 80.7), 7 and 8 10.8 s for 14,726 (80.7),
/// 9 6.3 s for 14,478 (80.6), 10 3.6 s for 24,265 (82.1), on 2 cores shared with a build.
/// 9 gives 7's result at 60 % of its time; 10 costs two thirds more bytes.
const SPEED: u8 = 9;

/// Encodes RGB or RGBA pixels. Alpha is its own AV1 plane, coded halfway between the colour
/// quality and 100 (as cavif does) and at least at 90: errors in alpha show as halos around
/// cut-outs, and a mostly flat alpha plane costs few bytes even at high quality.
pub fn encode_lossy(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, CoreError> {
    let quality = f32::from(quality.clamp(1, 100));
    let encoder = ravif::Encoder::new()
        .with_quality(quality)
        .with_alpha_quality(((quality + 100.0) / 2.0).max(90.0))
        .with_speed(SPEED);
    let (width, height) = (image.width() as usize, image.height() as usize);
    // rav1e reports some internal failures by panicking; keep them inside this call.
    let encoded = std::panic::catch_unwind(|| {
        if image.color().has_alpha() {
            let pixels: Vec<RGBA8> = image
                .to_rgba8()
                .pixels()
                .map(|p| RGBA8::new(p[0], p[1], p[2], p[3]))
                .collect();
            encoder.encode_rgba(Img::new(&pixels[..], width, height))
        } else {
            let pixels: Vec<RGB8> = image
                .to_rgb8()
                .pixels()
                .map(|p| RGB8::new(p[0], p[1], p[2]))
                .collect();
            encoder.encode_rgb(Img::new(&pixels[..], width, height))
        }
    })
    .map_err(|panic| CoreError::Encode(panic_text(panic)))?
    .map_err(|e| CoreError::Encode(format!("AVIF: {e}")))?;
    Ok(encoded.avif_file)
}

/// Width and height of the primary image, from the container and the AV1 sequence header only.
pub fn dimensions(input: &[u8]) -> Result<(u32, u32), CoreError> {
    let avif = parse_container(input)?;
    let meta = avif
        .primary_item_metadata()
        .map_err(|e| CoreError::Corrupt(format!("AVIF sequence header: {e}")))?;
    Ok((meta.max_frame_width.get(), meta.max_frame_height.get()))
}

/// The parsed container; a truncated or malformed one is `Corrupt`, also when the parser panics.
fn parse_container(input: &[u8]) -> Result<avif_parse::AvifData, CoreError> {
    std::panic::catch_unwind(|| avif_parse::read_avif(&mut &input[..]))
        .map_err(|panic| CoreError::Corrupt(format!("AVIF container: {}", panic_text(panic))))?
        .map_err(|e| CoreError::Corrupt(format!("AVIF container: {e}")))
}

/// Decodes the primary image (with its alpha item, if any) to 8 or 16 bits per channel.
pub fn decode(input: &[u8]) -> Result<DynamicImage, CoreError> {
    // avif-parse (inside from_avif) asserts on some truncated boxes instead of returning an error.
    let decoder = std::panic::catch_unwind(|| avif_decode::Decoder::from_avif(input))
        .map_err(|panic| CoreError::Corrupt(format!("AVIF: {}", panic_text(panic))))?
        .map_err(|e| CoreError::Corrupt(format!("AVIF: {e}")))?;
    let image = decoder
        .to_image()
        .map_err(|e| CoreError::Corrupt(format!("AVIF: {e}")))?;
    use avif_decode::Image as Avif;
    Ok(match image {
        Avif::Rgb8(img) => {
            let raw = img
                .as_ref()
                .pixels()
                .flat_map(|p| [p.r, p.g, p.b])
                .collect();
            DynamicImage::ImageRgb8(buffer(img.width(), img.height(), raw)?)
        }
        Avif::Rgba8(img) => {
            let raw = img.as_ref().pixels().flat_map(|p| [p.r, p.g, p.b, p.a]);
            DynamicImage::ImageRgba8(buffer(img.width(), img.height(), raw.collect())?)
        }
        Avif::Gray8(img) => {
            let raw = img.as_ref().pixels().map(|p| p.value()).collect();
            DynamicImage::ImageLuma8(buffer(img.width(), img.height(), raw)?)
        }
        Avif::Rgb16(img) => {
            let raw = img
                .as_ref()
                .pixels()
                .flat_map(|p| [p.r, p.g, p.b])
                .collect();
            DynamicImage::ImageRgb16(buffer(img.width(), img.height(), raw)?)
        }
        Avif::Rgba16(img) => {
            let raw = img.as_ref().pixels().flat_map(|p| [p.r, p.g, p.b, p.a]);
            DynamicImage::ImageRgba16(buffer(img.width(), img.height(), raw.collect())?)
        }
        Avif::Gray16(img) => {
            let raw = img.as_ref().pixels().map(|p| p.value()).collect();
            DynamicImage::ImageLuma16(buffer(img.width(), img.height(), raw)?)
        }
    })
}

/// An `image` buffer over decoded samples, row-major with no padding.
fn buffer<P: image::Pixel>(
    width: usize,
    height: usize,
    samples: Vec<P::Subpixel>,
) -> Result<image::ImageBuffer<P, Vec<P::Subpixel>>, CoreError> {
    let (width, height) = (u32::try_from(width), u32::try_from(height));
    width
        .ok()
        .zip(height.ok())
        .and_then(|(w, h)| image::ImageBuffer::from_raw(w, h, samples))
        .ok_or_else(|| CoreError::Corrupt("AVIF: decoded planes do not match their size".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<u8> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        std::fs::read(format!("{root}{name}")).expect("corpus file")
    }

    fn gradient_rgba() -> DynamicImage {
        DynamicImage::ImageRgba8(image::RgbaImage::from_fn(64, 48, |x, y| {
            image::Rgba([
                (x * 4) as u8,
                (y * 5) as u8,
                128,
                if x < 32 { 255 } else { 0 },
            ])
        }))
    }

    #[test]
    fn corpus_avif_decodes_at_its_header_size() {
        let input = corpus("edge/avif.avif");
        assert_eq!(dimensions(&input).unwrap(), (128, 128));
        let image = decode(&input).unwrap();
        assert_eq!((image.width(), image.height()), (128, 128));
        // Not a flat picture: the decoder really produced the photo.
        let rgb = image.to_rgb8();
        let distinct: std::collections::HashSet<_> = rgb.pixels().map(|p| p.0).collect();
        assert!(distinct.len() > 1000, "{} colours", distinct.len());
    }

    #[test]
    fn corpus_avif_alpha_keeps_transparency() {
        let image = decode(&corpus("edge/avif_alpha.avif")).unwrap();
        assert!(image.color().has_alpha());
        let rgba = image.to_rgba8();
        assert!(rgba.pixels().any(|p| p[3] == 0));
        assert!(rgba.pixels().any(|p| p[3] == 255));
    }

    #[test]
    fn encode_then_decode_round_trips_size_and_alpha() {
        let source = gradient_rgba();
        let bytes = encode_lossy(&source, 80).unwrap();
        assert!(bytes.len() > 100);
        let back = decode(&bytes).unwrap().to_rgba8();
        assert_eq!(back.dimensions(), (64, 48));
        assert!(back.get_pixel(10, 10)[3] > 240);
        assert!(back.get_pixel(50, 10)[3] < 15);
        let (r, g) = (
            back.get_pixel(40, 30)[0],
            source.to_rgba8().get_pixel(40, 30)[0],
        );
        assert!(r.abs_diff(g) < 20, "{r} vs {g}");
    }

    #[test]
    fn truncated_avif_is_corrupt_not_a_panic() {
        let input = corpus("edge/avif.avif");
        for cut in [12, 40, input.len() / 2, input.len() - 10] {
            match decode(&input[..cut]) {
                Err(CoreError::Corrupt(_)) => {}
                other => panic!("cut at {cut}: {:?}", other.map(|i| (i.width(), i.height()))),
            }
        }
    }
}
