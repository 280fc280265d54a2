//! Lossy JPEG with mozjpeg: trellis quantisation, progressive scans, optimised Huffman tables,
//! 4:2:0 chroma by default and 4:4:4 when the caller asks (screen content). Greyscale stays
//! single-channel. Metadata the policy kept (ICC, EXIF, XMP) is written as the usual APP2/APP1
//! markers.

use std::borrow::Cow;

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

    fn first_guess(&self, target: f64) -> u8 {
        first_guess(target)
    }

    fn encode_lossy(
        &self,
        image: &DynamicImage,
        quality: u8,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        encode(image, quality, self.chroma, self.carried).map(Some)
    }
}

/// (SSIMULACRA2, quality) on the median of the six corpus photos, whole image, at 4:2:0 with
/// the MS-SSIM tables below.
const MEDIAN_PHOTO_CURVE: [(f64, f64); 6] = [
    (65.0, 56.0),
    (72.0, 64.0),
    (75.0, 71.0),
    (80.0, 82.0),
    (85.0, 89.0),
    (89.0, 95.0),
];

/// The quality at which the median corpus photo reaches `target`.
fn first_guess(target: f64) -> u8 {
    super::quality_on_curve(&MEDIAN_PHOTO_CURVE, target)
}

/// The samples mozjpeg reads: borrowed when the image already is 8-bit grey or RGB (a 12 MP
/// photo's copy would be 36 MB more at the encode's peak), converted otherwise.
fn encoder_pixels(image: &DynamicImage) -> (Cow<'_, [u8]>, mozjpeg::ColorSpace) {
    match image {
        DynamicImage::ImageLuma8(grey) => (
            Cow::Borrowed(grey.as_raw()),
            mozjpeg::ColorSpace::JCS_GRAYSCALE,
        ),
        DynamicImage::ImageRgb8(rgb) => (Cow::Borrowed(rgb.as_raw()), mozjpeg::ColorSpace::JCS_RGB),
        _ if is_grey(image) => (
            Cow::Owned(image.to_luma8().into_raw()),
            mozjpeg::ColorSpace::JCS_GRAYSCALE,
        ),
        _ => (
            Cow::Owned(image.to_rgb8().into_raw()),
            mozjpeg::ColorSpace::JCS_RGB,
        ),
    }
}

pub fn encode(
    image: &DynamicImage,
    quality: u8,
    chroma: Chroma,
    carried: &Carried,
) -> Result<Vec<u8>, CoreError> {
    let (pixels, color_space) = encoder_pixels(image);
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
            for marker in icc_markers(profile) {
                started.write_marker(mozjpeg::Marker::APP(2), &marker);
            }
        }
        started.write_scanlines(&pixels)?;
        started.finish()
    })
    .map_err(|panic| CoreError::Encode(panic_text(panic)))?
    .map_err(|e| CoreError::Encode(e.to_string()))
}

/// The APP2 payloads that carry an ICC profile: "ICC_PROFILE\0", the chunk's sequence number
/// counted from 1 (ICC.1, annex B.4), the chunk count, then up to 65,519 bytes of the profile.
/// Written here rather than by mozjpeg's `write_icc_profile`, which counts from 0: decoders
/// that follow the specification (zune-jpeg, libjpeg's `jpeg_read_icc_profile`) then ignore
/// the profile.
fn icc_markers(profile: &[u8]) -> Vec<Vec<u8>> {
    const SIGNATURE: &[u8] = b"ICC_PROFILE\0";
    const MAX_CHUNK: usize = 65_533 - SIGNATURE.len() - 2;
    let chunks: Vec<&[u8]> = profile.chunks(MAX_CHUNK).collect();
    // 255 chunks hold 16 MB, far beyond any profile a JPEG carries; a larger one is dropped.
    let Ok(count) = u8::try_from(chunks.len()) else {
        return Vec::new();
    };
    chunks
        .iter()
        .zip(1..=count)
        .map(|(chunk, sequence)| [SIGNATURE, &[sequence, count], chunk].concat())
        .collect()
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

#[cfg(test)]
mod icc_tests {
    use image::{ImageDecoder, RgbImage};

    use super::*;

    #[test]
    fn a_kept_icc_profile_reads_back_whole_from_the_output() {
        // Two chunks: the second marker must say "2 of 2" for a reader to reassemble it.
        let profile: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let carried = Carried {
            icc: Some(profile.clone()),
            ..Carried::default()
        };
        let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(16, 16, image::Rgb([9, 99, 199])));
        let bytes = encode(&image, 80, Chroma::Half, &carried).expect("encodes");
        let mut decoder =
            image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(&bytes)).expect("a JPEG");
        let read = decoder.icc_profile().expect("readable");
        assert!(
            read.as_deref() == Some(&profile[..]),
            "the profile read back is {:?} bytes, not the {} written",
            read.map(|p| p.len()),
            profile.len()
        );
    }

    #[test]
    fn icc_chunks_are_numbered_from_one() {
        let markers = icc_markers(&[7u8; 10]);
        assert_eq!(markers.len(), 1);
        assert_eq!(&markers[0][..12], b"ICC_PROFILE\0");
        assert_eq!(&markers[0][12..14], &[1, 1]);
        assert_eq!(&markers[0][14..], &[7u8; 10]);
    }
}

#[cfg(test)]
mod first_guess_tests {
    use super::first_guess;

    #[test]
    fn the_first_guess_follows_the_median_photo_and_stays_in_range() {
        assert_eq!(first_guess(80.0), 82);
        assert_eq!(first_guess(77.5), 77);
        assert_eq!(first_guess(40.0), 56);
        assert_eq!(first_guess(99.0), 95);
    }
}
