//! What the encode step makes, in every variant: [`Encoded`], the pipeline's one encoded-result
//! type, and the small helpers the variants build it with.

use crate::error::CoreError;
use crate::format::ImageFormat;
use crate::warning::Warning;

/// Lossy quality when the image is too small to score (under 8×8).
pub const FALLBACK_QUALITY: u8 = 80;

/// One output's bytes and how they were made.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    /// The lossy quality used, when a lossy encoder produced the bytes.
    pub quality: Option<u8>,
    /// SSIMULACRA2 against the source pixels, when the bytes were scored.
    pub ssimulacra2: Option<f64>,
    pub warnings: Vec<Warning>,
}

/// Bytes with nothing to report about them.
pub fn plain(bytes: Vec<u8>, format: ImageFormat) -> Encoded {
    Encoded {
        bytes,
        format,
        quality: None,
        ssimulacra2: None,
        warnings: Vec::new(),
    }
}

/// Bytes made at a fixed lossy quality.
pub fn fixed(bytes: Vec<u8>, format: ImageFormat, quality: u8) -> Encoded {
    Encoded {
        quality: Some(quality),
        ..plain(bytes, format)
    }
}

/// Encodes each candidate format and keeps the smallest result (the first on a tie).
pub fn smallest<T>(
    candidates: &[ImageFormat],
    mut encode: impl FnMut(ImageFormat) -> Result<T, CoreError>,
    size: impl Fn(&T) -> usize,
) -> Result<T, CoreError> {
    let mut best: Option<T> = None;
    for &format in candidates {
        let encoded = encode(format)?;
        if best.as_ref().is_none_or(|b| size(&encoded) < size(b)) {
            best = Some(encoded);
        }
    }
    best.ok_or_else(|| CoreError::Encode("no candidate format".into()))
}

/// Scores are reported to two decimals.
pub fn round_score(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}
