//! WebP through libwebp: lossy at a quality, or lossless with `exact` (colour under fully
//! transparent pixels is kept, so "lossless" means every RGBA value). The pipeline decodes
//! lossless output again and compares it with the source pixels before it is trusted
//! (`pipeline::verify`). A still WebP without alpha can also be decoded straight to a smaller
//! size ([`decode_scaled`]: shrink-on-load).

use image::DynamicImage;

use super::{Codec, RgbaFrame};
use crate::error::CoreError;
use crate::format::ImageFormat;

/// WebP through [`Codec`].
pub struct Webp;

impl Codec for Webp {
    fn format(&self) -> ImageFormat {
        ImageFormat::Webp
    }

    fn quality_range(&self) -> std::ops::RangeInclusive<u8> {
        30..=95
    }

    fn encode_lossless(&self, image: &DynamicImage) -> Result<Option<Vec<u8>>, CoreError> {
        encode_lossless(image).map(Some)
    }

    fn encode_lossy(
        &self,
        image: &DynamicImage,
        quality: u8,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        encode_lossy(image, quality).map(Some)
    }
}

/// libwebp's speed/size trade-off: 4 is its default; 6 is ~3× slower for ~1–2 %.
const METHOD: i32 = 4;

pub fn encode_lossy(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, CoreError> {
    let mut config = new_config()?;
    config.lossless = 0;
    config.quality = f32::from(quality.min(100));
    config.alpha_compression = 1;
    encode_with(image, &config)
}

pub fn encode_lossless(image: &DynamicImage) -> Result<Vec<u8>, CoreError> {
    encode_with(image, &lossless_config()?)
}

fn lossless_config() -> Result<webp::WebPConfig, CoreError> {
    let mut config = new_config()?;
    config.lossless = 1;
    config.exact = 1;
    config.quality = 75.0;
    Ok(config)
}

fn new_config() -> Result<webp::WebPConfig, CoreError> {
    let mut config =
        webp::WebPConfig::new().map_err(|()| CoreError::Encode("libwebp config".into()))?;
    config.method = METHOD;
    Ok(config)
}

fn encode_with(image: &DynamicImage, config: &webp::WebPConfig) -> Result<Vec<u8>, CoreError> {
    let (width, height) = (image.width(), image.height());
    let memory = if image.color().has_alpha() {
        let rgba = image.to_rgba8();
        webp::Encoder::from_rgba(rgba.as_raw(), width, height).encode_advanced(config)
    } else {
        let rgb = image.to_rgb8();
        webp::Encoder::from_rgb(rgb.as_raw(), width, height).encode_advanced(config)
    };
    memory
        .map(|m| m.to_vec())
        .map_err(|e| CoreError::Encode(format!("libwebp: {e:?}")))
}

/// Lossy quality of an animation, or `None` for lossless frames.
/// A still, opaque WebP decoded straight to `width`×`height` by libwebp's rescaler, which
/// averages each output pixel's area of the source as rows are decoded, so the full-size frame
/// never exists (libvips' shrink-on-load for WebP). `Rgb8`. `None` (decode at full size with
/// the general decoder instead) for animations, for alpha (whose colour libwebp would average
/// without weighting by it), and on any libwebp error.
pub fn decode_scaled(input: &[u8], width: u32, height: u32) -> Option<DynamicImage> {
    use libwebp_sys::{VP8StatusCode, WEBP_CSP_MODE};
    let mut config = libwebp_sys::WebPDecoderConfig::new().ok()?;
    // SAFETY: libwebp reads `input` within its length and writes only the features struct.
    let status =
        unsafe { libwebp_sys::WebPGetFeatures(input.as_ptr(), input.len(), &mut config.input) };
    if status != VP8StatusCode::VP8_STATUS_OK
        || config.input.has_animation != 0
        || config.input.has_alpha != 0
    {
        return None;
    }
    let stride = usize::try_from(width).ok()?.checked_mul(3)?;
    let mut pixels = vec![0u8; stride.checked_mul(usize::try_from(height).ok()?)?];
    config.options.use_scaling = 1;
    config.options.scaled_width = i32::try_from(width).ok()?;
    config.options.scaled_height = i32::try_from(height).ok()?;
    config.output.colorspace = WEBP_CSP_MODE::MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA = libwebp_sys::WebPRGBABuffer {
        rgba: pixels.as_mut_ptr(),
        stride: i32::try_from(stride).ok()?,
        size: pixels.len(),
    };
    // SAFETY: libwebp writes at most `size` bytes at `rgba`, rows `stride` apart, into
    // `pixels`, which outlives the call; with external memory it allocates no output of its
    // own, and WebPFreeDecBuffer releases whatever else it kept.
    let status = unsafe {
        let status = libwebp_sys::WebPDecode(input.as_ptr(), input.len(), &mut config);
        libwebp_sys::WebPFreeDecBuffer(&mut config.output);
        status
    };
    if status != VP8StatusCode::VP8_STATUS_OK {
        return None;
    }
    image::RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8)
}

pub fn encode_animation(
    frames: &[RgbaFrame],
    loops: Option<u16>,
    quality: Option<u8>,
) -> Result<Vec<u8>, CoreError> {
    let mut config = match quality {
        Some(q) => {
            let mut c = new_config()?;
            c.lossless = 0;
            c.quality = f32::from(q.min(100));
            c.alpha_compression = 1;
            c
        }
        None => lossless_config()?,
    };
    config.exact = 0;
    anim::encode(frames, loops.unwrap_or(1), &config)
}

/// The libwebp animation encoder, called directly because the `webp` crate's wrapper closes an
/// animation at timestamp 0, which loses the last frame's duration.
mod anim {
    use libwebp_sys::{
        WebPAnimEncoderAdd, WebPAnimEncoderAssemble, WebPAnimEncoderDelete,
        WebPAnimEncoderNewInternal, WebPAnimEncoderOptions, WebPAnimEncoderOptionsInitInternal,
        WebPConfig, WebPData, WebPDataClear, WebPPicture, WebPPictureFree, WebPPictureImportRGBA,
        WEBP_MUX_ABI_VERSION,
    };

    use super::super::RgbaFrame;
    use crate::error::CoreError;

    struct Encoder(*mut libwebp_sys::WebPAnimEncoder);

    impl Drop for Encoder {
        fn drop(&mut self) {
            // SAFETY: created by WebPAnimEncoderNewInternal, deleted once.
            unsafe { WebPAnimEncoderDelete(self.0) }
        }
    }

    struct Picture(WebPPicture);

    impl Drop for Picture {
        fn drop(&mut self) {
            // SAFETY: initialised by WebPPicture::new; freeing an unallocated picture is a no-op.
            unsafe { WebPPictureFree(&mut self.0) }
        }
    }

    pub fn encode(
        frames: &[RgbaFrame],
        loops: u16,
        config: &WebPConfig,
    ) -> Result<Vec<u8>, CoreError> {
        let fail = |what: &str| CoreError::Encode(format!("libwebp animation: {what}"));
        let first = frames.first().ok_or_else(|| fail("no frames"))?;
        let (width, height) = (first.image.width(), first.image.height());
        let (w, h) = (
            i32::try_from(width).map_err(|_| fail("too wide"))?,
            i32::try_from(height).map_err(|_| fail("too tall"))?,
        );
        // SAFETY: every pointer handed to libwebp points at live, correctly sized memory owned
        // by this function; the encoder and pictures are released by their guards.
        unsafe {
            let mut options: WebPAnimEncoderOptions = std::mem::zeroed();
            if WebPAnimEncoderOptionsInitInternal(&mut options, WEBP_MUX_ABI_VERSION as i32) == 0 {
                return Err(fail("options"));
            }
            options.anim_params.loop_count = i32::from(loops);
            options.allow_mixed = 0;
            let encoder = WebPAnimEncoderNewInternal(w, h, &options, WEBP_MUX_ABI_VERSION as i32);
            if encoder.is_null() {
                return Err(fail("could not create the encoder"));
            }
            let encoder = Encoder(encoder);
            let mut timestamp: i32 = 0;
            for frame in frames {
                if frame.image.dimensions() != (width, height) {
                    return Err(fail("frames differ in size"));
                }
                let mut picture = Picture(WebPPicture::new().map_err(|()| fail("picture"))?);
                picture.0.use_argb = 1;
                picture.0.width = w;
                picture.0.height = h;
                let stride = w * 4;
                if WebPPictureImportRGBA(&mut picture.0, frame.image.as_raw().as_ptr(), stride) == 0
                {
                    return Err(fail("importing a frame"));
                }
                if WebPAnimEncoderAdd(encoder.0, &mut picture.0, timestamp, config) == 0 {
                    return Err(fail("adding a frame"));
                }
                let delay = i32::try_from(frame.delay_ms.max(1)).unwrap_or(i32::MAX);
                timestamp = timestamp.saturating_add(delay);
            }
            // The final call's timestamp is when the last frame ends.
            WebPAnimEncoderAdd(encoder.0, std::ptr::null_mut(), timestamp, std::ptr::null());
            let mut data = WebPData::default();
            if WebPAnimEncoderAssemble(encoder.0, &mut data) == 0 {
                return Err(fail("assembling"));
            }
            let bytes = std::slice::from_raw_parts(data.bytes, data.size).to_vec();
            WebPDataClear(&mut data);
            Ok(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GenericImageView, RgbImage, RgbaImage};

    /// Smooth colour gradients with a few hard edges: an image a box filter and Lanczos3
    /// reduce alike, except at the edges.
    fn photo_like(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
            let edge = if (x / 97 + y / 61) % 2 == 0 { 40 } else { 0 };
            image::Rgb([
                (x * 200 / width) as u8 + edge,
                (y * 200 / height) as u8 + edge,
                ((x + y) * 100 / (width + height)) as u8 + 60,
            ])
        }))
    }

    fn mean_abs_diff(a: &DynamicImage, b: &DynamicImage) -> f64 {
        let (a, b) = (a.to_rgb8(), b.to_rgb8());
        let total: u64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&p, &q)| u64::from(p.abs_diff(q)))
            .sum();
        total as f64 / a.as_raw().len() as f64
    }

    #[test]
    fn a_scaled_decode_has_the_asked_size_and_the_full_decodes_pixels_reduced() {
        let source = photo_like(1001, 603);
        let bytes = encode_lossy(&source, 90).expect("encodes");
        let full = image::load_from_memory(&bytes).expect("decodes");
        for factor in [2u32, 4, 8] {
            let (w, h) = (1001u32.div_ceil(factor), 603u32.div_ceil(factor));
            let scaled = decode_scaled(&bytes, w, h).expect("scaled decode");
            assert_eq!(scaled.dimensions(), (w, h));
            let reduced = full.resize_exact(w, h, image::imageops::FilterType::Triangle);
            let diff = mean_abs_diff(&scaled, &reduced);
            assert!(diff < 3.0, "1/{factor}: mean difference {diff}");
            // Farther from the same reduction shifted by a few pixels: the check can fail.
            let shifted = image::imageops::crop_imm(&reduced, 6, 6, w - 6, h - 6).to_image();
            let moved = image::imageops::crop_imm(&scaled, 0, 0, w - 6, h - 6).to_image();
            let shifted_diff = mean_abs_diff(
                &DynamicImage::ImageRgba8(shifted),
                &DynamicImage::ImageRgba8(moved),
            );
            assert!(shifted_diff > diff, "1/{factor}: {shifted_diff} vs {diff}");
        }
    }

    #[test]
    fn alpha_animations_and_garbage_are_declined() {
        let rgba =
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(64, 64, image::Rgba([9, 9, 9, 100])));
        let with_alpha = encode_lossy(&rgba, 80).expect("encodes");
        assert!(decode_scaled(&with_alpha, 32, 32).is_none());
        assert!(decode_scaled(b"RIFF\0\0\0\0WEBPjunk", 8, 8).is_none());
        let opaque = encode_lossy(&photo_like(64, 64), 80).expect("encodes");
        assert!(decode_scaled(&opaque[..opaque.len() / 2], 32, 32).is_none());
    }
}
