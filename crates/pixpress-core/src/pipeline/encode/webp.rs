//! WebP through libwebp: lossy at a quality, or lossless with `exact` (colour under fully
//! transparent pixels is kept, so "lossless" means every RGBA value). Lossless output is decoded
//! again and compared with the source pixels before it is trusted.

use image::DynamicImage;

use crate::CoreError;

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

/// `Ok(None)` when the round trip did not reproduce the pixels (then the caller keeps the input).
pub fn encode_lossless_verified(image: &DynamicImage) -> Result<Option<Vec<u8>>, CoreError> {
    let bytes = encode_with(image, &lossless_config()?)?;
    Ok(same_pixels(image, &bytes).then_some(bytes))
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

fn same_pixels(source: &DynamicImage, encoded: &[u8]) -> bool {
    match image::load_from_memory_with_format(encoded, image::ImageFormat::WebP) {
        Ok(decoded) => decoded.to_rgba8().as_raw() == source.to_rgba8().as_raw(),
        Err(_) => false,
    }
}
