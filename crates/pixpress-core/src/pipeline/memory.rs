//! The memory a job will take at its peak, predicted from the header and the request alone, so
//! that the server can admit the job against its memory budget before a pixel exists. The
//! figures are bytes per pixel (each frame counted) for each variant of the pipeline, measured
//! as peak resident memory over the idle process, one request at a time, on the corpus photos
//! and the corpus-derived 12 MP JPEG and 90 MP PNG of `tests/admission.rs`
//! (`bash bench/admission.sh`), and rounded up. A re-code is charged per source pixel; a still
//! image for its decode per source pixel, plus its largest output's encode per output pixel
//! and, when the quality search runs, the search's own memory ([`scoring_memory_bytes`]).

use super::plan::{self, geometry};
use super::probe::Probe;
use super::request::Request;
use super::score;
use crate::format::{ImageFormat, InputFormat};

/// The lossless JPEG re-code: the DCT coefficients of the input and of the turned copy, the
/// output, and the proof's read-back (measured 12.4–12.8 on the 12 MP JPEG while libjpeg
/// allocated through glibc, 15.1 through mimalloc).
const RECODE_JPEG_BYTES_PER_PIXEL: u64 = 16;
/// oxipng: the unfiltered image, filtered copies for the trials running in parallel, the
/// deflate state, then the proof decoding input and output (measured 17.9–18.5 on 90 MP).
const RECODE_PNG_BYTES_PER_PIXEL: u64 = 20;
/// GIF and WebP re-codes decode to RGBA and compare (not measured: PNG's figure).
const RECODE_OTHER_BYTES_PER_PIXEL: u64 = 20;
/// Decoding a still image for a resize: the decoded pixels and their converted copy, per
/// source pixel (measured 2.8 on the 12 MP JPEG, 3.6 on the 90 MP PNG, thumbnails).
const DECODE_BYTES_PER_PIXEL: u64 = 4;
/// Decoding plus encoding an output of the source's size, per output pixel, by format:
/// JPEG measured 16.0–17.1 from JPEG sources and 24.4 from the 90 MP PNG; PNG (oxipng on
/// the re-encoded pixels) 36.5; AVIF (libaom with its 10-bit planes) 49 on photo_wood, and
/// 53.3–54.9 with the decode on the 4 MP JPEG of `tests/admission.rs` at a fixed quality
/// (59.4 once libaom allocated through mimalloc).
/// WebP is taken as JPEG's, GIF (not measured) as PNG's. `None` (format `auto`) tries AVIF
/// among the others, so it is charged AVIF's.
fn still_bytes_per_pixel(format: Option<ImageFormat>) -> u64 {
    match format {
        Some(ImageFormat::Jpeg | ImageFormat::Webp) => 25,
        Some(ImageFormat::Png | ImageFormat::Gif) => 37,
        Some(ImageFormat::Avif) | None => 56,
    }
}

/// Encoders a search holds at once beyond the first: the whole-image scoring figure was
/// measured with JPEG, whose encoder state is small; an AVIF search (on the whole image up to
/// 5 MP) runs two libaom encoders side by side (photo_wood: 1365 MB peak, 278 per pixel).
fn extra_search_encoders(format: Option<ImageFormat>) -> u64 {
    match format {
        Some(ImageFormat::Avif) | None => 1,
        _ => 0,
    }
}
/// Every frame on a full RGBA canvas, resized copies and the animation encoder's, per frame
/// pixel (not measured: a re-code's figure).
const ANIMATION_BYTES_PER_PIXEL: u64 = 20;
/// The quality search on the sample of a big image (two trials encoded and decoded at once,
/// compared with the sample's reference one at a time): measured 130–170 MB over a
/// fixed-quality encode on the 12 MP JPEG (257 MB while both trials compared at once).
const SAMPLED_SEARCH_BYTES: u64 = 200 * 1024 * 1024;
/// Scoring on the whole image (the search itself under [`score::SAMPLE_ABOVE_PIXELS`], the
/// whole-image check up to [`super::quality::VERIFY_UP_TO_PIXELS`]): the reference and a
/// comparison per trial, per scored pixel (measured 176 on the 4 MP photo).
const WHOLE_SCORING_BYTES_PER_PIXEL: u64 = 200;

/// Predicted peak working memory of a job in bytes: `specs` are the `resize` entries, if any.
pub fn predicted_memory(
    probe: &Probe,
    request: &Request,
    specs: Option<&[geometry::ResizeSpec]>,
) -> u64 {
    let frames = probe.frames.max(1);
    let source = u64::from(probe.width)
        .saturating_mul(u64::from(probe.height))
        .saturating_mul(frames);
    if specs.is_none() && plan::recodes(probe, request) {
        let per_pixel = match probe.format {
            InputFormat::Jpeg => RECODE_JPEG_BYTES_PER_PIXEL,
            InputFormat::Png => RECODE_PNG_BYTES_PER_PIXEL,
            _ => RECODE_OTHER_BYTES_PER_PIXEL,
        };
        return source.saturating_mul(per_pixel);
    }
    if probe.is_animated()
        && !matches!(
            request.format.resolve(probe.default_output),
            Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Avif)
        )
    {
        return source.saturating_mul(ANIMATION_BYTES_PER_PIXEL);
    }
    let target = request.format.resolve(probe.default_output);
    let (width, height) = probe.oriented_dimensions();
    let outputs: Vec<(u32, u32)> = match specs {
        None | Some([]) => vec![(width, height)],
        Some(specs) => specs
            .iter()
            .map(|spec| {
                geometry::plan_resize(width, height, spec)
                    .map_or((width, height), |plan| plan.canvas)
            })
            .collect(),
    };
    let encoding = outputs
        .iter()
        .map(|&(w, h)| {
            let pixels = u64::from(w) * u64::from(h);
            let encode = pixels.saturating_mul(still_bytes_per_pixel(target));
            let scoring = if searches_or_scores(request) {
                let extra = encode.saturating_mul(extra_search_encoders(target));
                scoring_memory_bytes(w, h).saturating_add(extra)
            } else {
                0
            };
            encode.saturating_add(scoring)
        })
        .max()
        .unwrap_or(0);
    let decode = u64::from(probe.width)
        .saturating_mul(u64::from(probe.height))
        .saturating_mul(DECODE_BYTES_PER_PIXEL);
    decode.saturating_add(encoding)
}

/// What decoding alone takes (a dry run decodes but never encodes), every frame counted.
pub fn predicted_decode_memory(probe: &Probe) -> u64 {
    u64::from(probe.width)
        .saturating_mul(u64::from(probe.height))
        .saturating_mul(probe.frames.max(1))
        .saturating_mul(DECODE_BYTES_PER_PIXEL)
}

/// Extra memory the perceptual search needs for an output of this size, in bytes.
pub fn scoring_memory_bytes(width: u32, height: u32) -> u64 {
    let pixels = u64::from(width).saturating_mul(u64::from(height));
    let whole =
        if !score::wants_sample(width, height) || pixels <= super::quality::VERIFY_UP_TO_PIXELS {
            pixels.saturating_mul(WHOLE_SCORING_BYTES_PER_PIXEL)
        } else {
            0
        };
    let sampled = if score::wants_sample(width, height) {
        SAMPLED_SEARCH_BYTES
    } else {
        0
    };
    whole.max(sampled)
}

/// The most a single-frame job within `max_pixels` is predicted to take (a full-size PNG
/// re-encode with the quality search): a budget below it runs such images alone.
pub fn largest_predicted_memory(max_pixels: u64) -> u64 {
    let side = (max_pixels as f64).sqrt() as u32;
    let encode = max_pixels.saturating_mul(still_bytes_per_pixel(None));
    max_pixels
        .saturating_mul(DECODE_BYTES_PER_PIXEL)
        .saturating_add(encode)
        .saturating_add(scoring_memory_bytes(side, side))
}

/// Whether SSIMULACRA2 is computed: a searched quality, a budget or floor, or a score asked for.
fn searches_or_scores(request: &Request) -> bool {
    request.lossy && (request.quality.is_none() || request.has_budget() || request.score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::plan::geometry::{ResizeSpec, Strategy};
    use image::metadata::Orientation;

    fn probe(format: ImageFormat, width: u32, height: u32, frames: u64) -> Probe {
        Probe {
            format: format.into(),
            default_output: format,
            width,
            height,
            frames,
            orientation: Orientation::NoTransforms,
        }
    }

    #[test]
    fn scoring_is_charged_only_when_it_runs() {
        let photo = probe(ImageFormat::Jpeg, 4000, 3000, 1);
        let lossless = predicted_memory(&photo, &Request::default(), None);
        let fixed = predicted_memory(
            &photo,
            &Request {
                lossy: true,
                quality: Some(80),
                ..Request::default()
            },
            None,
        );
        let searched = predicted_memory(
            &photo,
            &Request {
                lossy: true,
                ..Request::default()
            },
            None,
        );
        assert_eq!(searched - fixed, scoring_memory_bytes(4000, 3000));
        assert!(lossless > 0 && fixed > 0);
        // A thumbnail is charged its decode and its small output, not a full-size encode.
        let thumbnail = [ResizeSpec {
            strategy: Strategy::Landscape { width: 800 },
            enlarge: false,
        }];
        let small = predicted_memory(
            &photo,
            &Request {
                lossy: true,
                quality: Some(80),
                ..Request::default()
            },
            Some(&thumbnail),
        );
        assert!(small < fixed / 4, "{small} vs {fixed}");
        let huge = probe(ImageFormat::Png, u32::MAX, u32::MAX, u64::MAX);
        assert_eq!(
            predicted_memory(&huge, &Request::default(), Some(&[])),
            u64::MAX
        );
    }
}
