//! Lossy JPEG with mozjpeg: trellis quantisation, progressive scans, optimised Huffman tables.
//! Greyscale stays single-channel; an ICC profile is carried over so colours keep their meaning.

use image::DynamicImage;

use super::panic_text;
use crate::CoreError;

pub fn encode(image: &DynamicImage, quality: u8, icc: Option<&[u8]>) -> Result<Vec<u8>, CoreError> {
    let (pixels, color_space) = if is_grey(image) {
        (
            image.to_luma8().into_raw(),
            mozjpeg::ColorSpace::JCS_GRAYSCALE,
        )
    } else {
        (image.to_rgb8().into_raw(), mozjpeg::ColorSpace::JCS_RGB)
    };
    let (width, height) = (image.width() as usize, image.height() as usize);
    // mozjpeg reports fatal errors by unwinding; keep them inside this call.
    std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut comp = mozjpeg::Compress::new(color_space);
        comp.set_size(width, height);
        comp.set_quality(f32::from(quality.min(100)));
        comp.set_progressive_mode();
        comp.set_optimize_coding(true);
        let mut started = comp.start_compress(Vec::new())?;
        if let Some(profile) = icc {
            started.write_icc_profile(profile);
        }
        started.write_scanlines(&pixels)?;
        started.finish()
    })
    .map_err(|panic| CoreError::Encode(panic_text(panic)))?
    .map_err(|e| CoreError::Encode(e.to_string()))
}

fn is_grey(image: &DynamicImage) -> bool {
    matches!(
        image,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLuma16(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageLumaA16(_)
    )
}
