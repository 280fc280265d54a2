//! The memory a job will take at its peak, predicted from the header and the request alone, so
//! that the server can admit the job against its memory budget before a pixel exists. The
//! figures are bytes per source pixel (each frame counted) for each variant of the pipeline,
//! measured as peak resident memory over the idle process, one request at a time, on the
//! corpus-derived 12 MP JPEG and 90 MP PNG of `tests/admission.rs` (`bash bench/admission.sh`),
//! and rounded up; the perceptual search's own working memory ([`scoring_memory_bytes`]) is
//! added when it runs.

use super::plan;
use super::probe::Probe;
use super::quality::scoring_memory_bytes;
use super::request::Request;
use crate::format::ImageFormat;

/// The lossless JPEG re-code: the DCT coefficients of the input and of the turned copy, the
/// output, and the proof's read-back.
const RECODE_JPEG_BYTES_PER_PIXEL: u64 = 12;
/// oxipng: the unfiltered image, a filtered copy per trial running in parallel, the deflate
/// state, then the proof decoding input and output.
const RECODE_PNG_BYTES_PER_PIXEL: u64 = 12;
/// GIF and WebP re-codes decode to RGBA and compare.
const RECODE_OTHER_BYTES_PER_PIXEL: u64 = 12;
/// A still image: the decoded pixels, the oriented / converted copy, the transform's output
/// and the encoder's buffers.
const STILL_BYTES_PER_PIXEL: u64 = 12;
/// Every frame on a full RGBA canvas, resized copies and the animation encoder's.
const ANIMATION_BYTES_PER_PIXEL: u64 = 12;

/// Predicted peak working memory of a job in bytes. `resized`: the request has a `resize`.
pub fn predicted_memory(probe: &Probe, request: &Request, resized: bool) -> u64 {
    let pixels = u64::from(probe.width)
        .saturating_mul(u64::from(probe.height))
        .saturating_mul(probe.frames.max(1));
    let recode = !resized && plan::recodes(probe, request);
    let per_pixel = match (recode, probe.format) {
        (true, ImageFormat::Jpeg) => RECODE_JPEG_BYTES_PER_PIXEL,
        (true, ImageFormat::Png) => RECODE_PNG_BYTES_PER_PIXEL,
        (true, _) => RECODE_OTHER_BYTES_PER_PIXEL,
        (false, _) if probe.is_animated() => ANIMATION_BYTES_PER_PIXEL,
        (false, _) => STILL_BYTES_PER_PIXEL,
    };
    let scoring = if searches_or_scores(request) && !recode {
        scoring_memory_bytes(probe.width, probe.height)
    } else {
        0
    };
    pixels.saturating_mul(per_pixel).saturating_add(scoring)
}

/// The most a single-frame job within `max_pixels` is predicted to take (the largest
/// per-pixel figure, with the quality search): a budget below it runs such images alone.
pub fn largest_predicted_memory(max_pixels: u64) -> u64 {
    let side = (max_pixels as f64).sqrt() as u32;
    let per_pixel = [
        RECODE_JPEG_BYTES_PER_PIXEL,
        RECODE_PNG_BYTES_PER_PIXEL,
        RECODE_OTHER_BYTES_PER_PIXEL,
        STILL_BYTES_PER_PIXEL,
    ]
    .into_iter()
    .max()
    .unwrap_or(STILL_BYTES_PER_PIXEL);
    max_pixels
        .saturating_mul(per_pixel)
        .saturating_add(scoring_memory_bytes(side, side))
}

/// Whether SSIMULACRA2 is computed: a searched quality, a budget or floor, or a score asked for.
fn searches_or_scores(request: &Request) -> bool {
    request.lossy && (request.quality.is_none() || request.has_budget() || request.score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::metadata::Orientation;

    fn probe(format: ImageFormat, width: u32, height: u32, frames: u64) -> Probe {
        Probe {
            format,
            width,
            height,
            frames,
            orientation: Orientation::NoTransforms,
        }
    }

    #[test]
    fn scoring_is_charged_only_when_it_runs() {
        let photo = probe(ImageFormat::Jpeg, 4000, 3000, 1);
        let lossless = predicted_memory(&photo, &Request::default(), false);
        let fixed = predicted_memory(
            &photo,
            &Request {
                lossy: true,
                quality: Some(80),
                ..Request::default()
            },
            false,
        );
        let searched = predicted_memory(
            &photo,
            &Request {
                lossy: true,
                ..Request::default()
            },
            false,
        );
        assert_eq!(searched - fixed, scoring_memory_bytes(4000, 3000));
        assert!(lossless > 0 && fixed > 0);
        let huge = probe(ImageFormat::Png, u32::MAX, u32::MAX, u64::MAX);
        assert_eq!(predicted_memory(&huge, &Request::default(), true), u64::MAX);
    }
}
