//! What the encode step makes, in every variant: [`Encoded`], the pipeline's one encoded-result
//! type, and the small helpers the variants build it with.

use crate::error::CoreError;
use crate::format::ImageFormat;
use crate::pipeline::request::Request;
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

/// Encodes each candidate format and keeps the one with the lowest `rank` (usually its size;
/// the first on a tie). A candidate that fails its lossless check, or cannot keep a score
/// floor within a byte budget, drops out while another succeeds; when none does, that failure
/// is the answer (the original is kept; or the budget failure with the smallest size reached).
pub fn smallest<T, K: Ord>(
    candidates: &[ImageFormat],
    mut encode: impl FnMut(ImageFormat) -> Result<T, CoreError>,
    rank: impl Fn(&T) -> K,
) -> Result<T, CoreError> {
    let mut best: Option<T> = None;
    let mut dropped: Option<CoreError> = None;
    for &format in candidates {
        let encoded = match encode(format) {
            Ok(encoded) => encoded,
            Err(e @ (CoreError::LosslessCheckFailed(_) | CoreError::BudgetUnreachable { .. })) => {
                dropped = Some(closer_failure(dropped, e));
                continue;
            }
            Err(e) => return Err(e),
        };
        if best.as_ref().is_none_or(|b| rank(&encoded) < rank(b)) {
            best = Some(encoded);
        }
    }
    match (best, dropped) {
        (Some(best), _) => Ok(best),
        (None, Some(failed)) => Err(failed),
        (None, None) => Err(CoreError::Encode("no candidate format".into())),
    }
}

/// Of two candidates' failures, the one to answer with: the first lossless failure; of budget
/// failures, one that reached the floor before one that did not, then the smaller.
fn closer_failure(kept: Option<CoreError>, new: CoreError) -> CoreError {
    let budget_rank = |e: &CoreError| match e {
        CoreError::BudgetUnreachable {
            reached_floor,
            smallest_bytes,
            ..
        } => Some((!reached_floor, *smallest_bytes)),
        _ => None,
    };
    match kept {
        None => new,
        Some(kept) => match (budget_rank(&kept), budget_rank(&new)) {
            (Some(a), Some(b)) if b < a => new,
            _ => kept,
        },
    }
}

/// The rank `auto` picks a still image's format by: [`lossless_rank`], and with a byte budget
/// alone, outputs that fit before those that could not, then the higher score (the budget
/// already bounds the size). With a score floor every candidate keeps it: the smallest wins.
pub fn candidate_rank(encoded: &Encoded, request: &Request) -> (bool, bool, i64, usize) {
    let (not_lossless, size) = lossless_rank(encoded, request.lossy);
    let budget_only = request.has_budget() && request.min_ssimulacra2.is_none();
    if !budget_only {
        return (not_lossless, false, 0, size);
    }
    let over = encoded
        .warnings
        .iter()
        .any(|w| w.code == crate::warning::MAX_BYTES_NOT_REACHED);
    let score = encoded
        .ssimulacra2
        .map_or(i64::MAX, |s| -(s * 100.0).round() as i64);
    (not_lossless, over, if over { 0 } else { score }, size)
}

/// The rank for [`smallest`]: size, except that for `lossy: false` a candidate whose format
/// could not hold the pixels (warning `lossless_not_available`) ranks after every one that was
/// proven lossless.
pub fn lossless_rank(encoded: &Encoded, lossy: bool) -> (bool, usize) {
    let not_lossless = !lossy
        && encoded
            .warnings
            .iter()
            .any(|w| w.code == crate::warning::LOSSLESS_NOT_AVAILABLE);
    (not_lossless, encoded.bytes.len())
}

/// Scores are reported to two decimals.
pub fn round_score(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warning::{self, Warning};

    fn encoded(format: ImageFormat, len: usize) -> Encoded {
        plain(vec![0; len], format)
    }

    #[test]
    fn a_candidate_that_fails_its_check_drops_out_and_the_rest_compete() {
        let chosen = smallest(
            &[ImageFormat::Png, ImageFormat::Webp, ImageFormat::Gif],
            |format| match format {
                ImageFormat::Png => Err(CoreError::LosslessCheckFailed("png".into())),
                ImageFormat::Webp => Ok(encoded(format, 30)),
                _ => Ok(encoded(format, 20)),
            },
            |e| lossless_rank(e, false),
        )
        .unwrap();
        assert_eq!(chosen.format, ImageFormat::Gif);

        let none = smallest(
            &[ImageFormat::Png, ImageFormat::Webp],
            |format| Err::<Encoded, _>(CoreError::LosslessCheckFailed(format.name().into())),
            |e| e.bytes.len(),
        );
        assert!(matches!(none, Err(CoreError::LosslessCheckFailed(why)) if why == "png"));
    }

    #[test]
    fn without_lossy_a_proven_candidate_beats_a_smaller_palette() {
        let palette = || Encoded {
            warnings: vec![Warning::new(warning::LOSSLESS_NOT_AVAILABLE, "256 colours")],
            ..encoded(ImageFormat::Gif, 10)
        };
        let pick = |lossy: bool| {
            smallest(
                &[ImageFormat::Gif, ImageFormat::Webp],
                |format| {
                    Ok(match format {
                        ImageFormat::Gif => palette(),
                        _ => encoded(format, 50),
                    })
                },
                |e| lossless_rank(e, lossy),
            )
            .unwrap()
            .format
        };
        assert_eq!(pick(false), ImageFormat::Webp);
        assert_eq!(pick(true), ImageFormat::Gif);
    }
}
