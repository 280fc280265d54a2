//! Codecs: one file per output format, each implementing [`Codec`] (lossless encode, lossy
//! encode at a quality, the quality range, decode for scoring), the JPEG XL reader (an input
//! format only, so no [`Codec`]), plus the lossless JPEG re-code,
//! the reduced-scale JPEG decode (shrink-on-load) and the EXIF block rewriting the JPEG paths
//! share. This folder owns every call into a codec library and knows nothing of requests, plans
//! or jobs: its files import only each other, the crate's leaf modules (`error`, `format`,
//! `limits`) and external crates, never the pipeline.

use std::ops::RangeInclusive;

use image::{DynamicImage, RgbaImage};

use crate::error::CoreError;
use crate::format::ImageFormat;

pub mod any;
pub mod aom;
pub mod avif;
pub mod exif;
pub mod gif;
pub mod jpeg;
pub mod jpeg_decode;
pub mod jpeg_lossless;
pub mod jxl;
pub mod png;
pub mod webp;

/// One output format as the encode step and the quality search see it. Implementations carry
/// their own settings (chroma, metadata to write), so the search is written once for all.
/// `Sync` because the search runs two trials of one codec at once, one per core.
pub trait Codec: Sync {
    fn format(&self) -> ImageFormat;

    /// The lossy quality scale the perceptual search bisects.
    fn quality_range(&self) -> RangeInclusive<u8>;

    /// Where the quality search starts for a SSIMULACRA2 `target`: the quality that reaches
    /// it on a typical photo. Without a calibration, the middle of the range.
    fn first_guess(&self, _target: f64) -> u8 {
        let range = self.quality_range();
        range.start() + (range.end() - range.start()) / 2
    }

    /// Every pixel kept. `Ok(None)` when the format has no lossless mode here (JPEG, AVIF):
    /// the caller then encodes at a high fixed quality instead.
    fn encode_lossless(&self, _image: &DynamicImage) -> Result<Option<Vec<u8>>, CoreError> {
        Ok(None)
    }

    /// Lossy at `quality`. `Ok(None)` when the codec cannot reach that quality (imagequant's
    /// "quality too low"), which the search counts as a miss.
    fn encode_lossy(&self, image: &DynamicImage, quality: u8)
        -> Result<Option<Vec<u8>>, CoreError>;

    /// A quality-search trial: the same pixels [`Codec::encode_lossy`] gives at `quality`,
    /// possibly written faster (PNG skips its oxipng pass). Only scored, never returned.
    fn encode_trial(
        &self,
        image: &DynamicImage,
        quality: u8,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        self.encode_lossy(image, quality)
    }

    /// Whether [`Codec::encode_trial`] gives the very bytes [`Codec::encode_lossy`] would, so a
    /// trial can be returned (and its size trusted) as the output.
    fn trial_is_output(&self) -> bool {
        true
    }

    /// Whether the score of a trial on the sample mosaic moves with the whole image's score (a
    /// steady bias), so the sample can aim the search. When it does not, images up to the
    /// whole-image check's size are searched on the whole image instead.
    fn sample_aims_search(&self) -> bool {
        true
    }

    /// Decodes this codec's own output, to score it against its source.
    fn decode(&self, bytes: &[u8]) -> Result<DynamicImage, CoreError> {
        decode_with_image(bytes)
    }
}

/// The quality at which a calibration curve of (SSIMULACRA2, quality) points, in rising order,
/// reaches `target`: interpolated linearly, held at the curve's ends.
pub(crate) fn quality_on_curve(curve: &[(f64, f64)], target: f64) -> u8 {
    let (Some(&first), Some(&last)) = (curve.first(), curve.last()) else {
        return 0;
    };
    let quality = if target <= first.0 {
        first.1
    } else if target >= last.0 {
        last.1
    } else {
        curve
            .windows(2)
            .find(|pair| target <= pair[1].0)
            .map_or(last.1, |pair| {
                let ((s0, q0), (s1, q1)) = (pair[0], pair[1]);
                q0 + (target - s0) / (s1 - s0) * (q1 - q0)
            })
    };
    quality.round() as u8
}

/// Metadata the encoder writes with the pixels, already filtered by the caller's policy.
#[derive(Clone, Debug, Default)]
pub struct Carried {
    pub icc: Option<Vec<u8>>,
    /// TIFF payload of an EXIF block (after "Exif\0\0"), orientation already reset to 1.
    pub exif: Option<Vec<u8>>,
    pub xmp: Option<Vec<u8>>,
}

/// One full-canvas frame of an animation, shown for `delay_ms`.
#[derive(Clone)]
pub struct RgbaFrame {
    pub image: RgbaImage,
    pub delay_ms: u32,
}

/// Decodes a JPEG, PNG, GIF or WebP through `image`, which finds the format itself.
pub fn decode_with_image(bytes: &[u8]) -> Result<DynamicImage, CoreError> {
    image::load_from_memory(bytes)
        .map_err(|e| CoreError::Encode(format!("decoding a trial encode failed: {e}")))
}

/// Turns a caught panic payload (C libraries here report fatal errors by unwinding) into text.
pub(crate) fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "codec failure".to_string()
    }
}
