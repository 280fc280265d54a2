//! Lossy JPEG with mozjpeg: trellis quantisation, progressive scans, optimised Huffman tables,
//! 4:2:0 chroma by default and 4:4:4 when the caller asks (screen content). Greyscale stays
//! single-channel. Metadata the policy kept (ICC, EXIF, XMP) is written as the usual APP2/APP1
//! markers.

use image::DynamicImage;

use super::{panic_text, Carried, Codec};
use crate::error::CoreError;
use crate::format::ImageFormat;

const XMP_SIGNATURE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// Chroma resolution: photos lose nothing visible at half, while coloured text and thin lines
/// on screenshots bleed unless chroma is kept at full resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chroma {
    /// 4:2:0
    Half,
    /// 4:4:4
    Full,
}

/// JPEG through [`Codec`], at one chroma resolution, writing `carried`'s metadata.
pub struct Jpeg<'a> {
    pub chroma: Chroma,
    pub carried: &'a Carried,
}

impl Codec for Jpeg<'_> {
    fn format(&self) -> ImageFormat {
        ImageFormat::Jpeg
    }

    fn quality_range(&self) -> std::ops::RangeInclusive<u8> {
        30..=95
    }

    fn encode_lossless(&self, _image: &DynamicImage) -> Result<Option<Vec<u8>>, CoreError> {
        Ok(None)
    }

    fn encode_lossy(
        &self,
        image: &DynamicImage,
        quality: u8,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        encode(image, quality, self.chroma, self.carried).map(Some)
    }
}

pub fn encode(
    image: &DynamicImage,
    quality: u8,
    chroma: Chroma,
    carried: &Carried,
) -> Result<Vec<u8>, CoreError> {
    let (pixels, color_space) = if is_grey(image) {
        (
            image.to_luma8().into_raw(),
            mozjpeg::ColorSpace::JCS_GRAYSCALE,
        )
    } else {
        (image.to_rgb8().into_raw(), mozjpeg::ColorSpace::JCS_RGB)
    };
    let (width, height) = (image.width() as usize, image.height() as usize);
    let exif = carried
        .exif
        .as_ref()
        .map(|tiff| [b"Exif\0\0".as_slice(), tiff].concat());
    let xmp = carried.xmp.as_ref().map(|x| [XMP_SIGNATURE, x].concat());
    // mozjpeg reports fatal errors by unwinding; keep them inside this call.
    std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut comp = mozjpeg::Compress::new(color_space);
        comp.set_size(width, height);
        // mozjpeg's table set 2 (tuned for MS-SSIM) in place of its default set 3 (ImageMagick's),
        // scaled exactly as jpeg_set_quality would scale them (so no set_quality call, whose only
        // effect is the tables these replace): at equal SSIMULACRA2 it took 0.92–0.995× the
        // bytes of set 3 on four corpus photos (issue 4 note, sharp's quantisationTable study).
        let scale = f32::from(quality.clamp(1, 100));
        comp.set_luma_qtable(&mozjpeg::qtable::MSSSIM_Luma.scaled(scale, scale));
        comp.set_chroma_qtable(&mozjpeg::qtable::MSSSIM_Chroma.scaled(scale, scale));
        if chroma == Chroma::Full && color_space == mozjpeg::ColorSpace::JCS_RGB {
            comp.set_chroma_sampling_pixel_sizes((1, 1), (1, 1));
        }
        comp.set_progressive_mode();
        comp.set_optimize_coding(true);
        let mut started = comp.start_compress(Vec::new())?;
        if let Some(exif) = &exif {
            started.write_marker(mozjpeg::Marker::APP(1), exif);
        }
        if let Some(xmp) = &xmp {
            started.write_marker(mozjpeg::Marker::APP(1), xmp);
        }
        if let Some(profile) = &carried.icc {
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
