//! WebP through libwebp: lossy at a quality, or lossless with `exact` (colour under fully
//! transparent pixels is kept, so "lossless" means every RGBA value). The pipeline decodes
//! lossless output again and compares it with the source pixels before it is trusted
//! (`pipeline::verify`).

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
