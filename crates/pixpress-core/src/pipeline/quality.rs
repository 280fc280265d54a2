//! Perceptual auto-quality (SPEC §5): bisection on an encoder's quality scale for the lowest
//! value whose SSIMULACRA2 against the source pixels reaches the target.
//!
//! The search encodes and scores *trial* images: the whole image, or for big images the mosaic
//! sample from [`score::sample`]. At most [`MAX_TRIALS`] trials run. Scores are not strictly
//! monotonic in quality, so the result is "the lowest quality that passed among those tried",
//! which is what bisection on a nearly monotonic curve gives.

use std::ops::RangeInclusive;

use image::DynamicImage;

use super::encode::decode_any;
use super::score::{self, Reference};
use crate::CoreError;

/// Default SSIMULACRA2 target: "high quality", artefacts only visible side by side on zoom.
pub const DEFAULT_TARGET: f64 = 80.0;
/// Bounds the work: ⌈log2(66)⌉ = 7 trials cover the 30–95 range of the lossy codecs.
pub const MAX_TRIALS: usize = 7;
/// A search that ran on the sample is checked once on the whole image up to this size, and the
/// quality raised in [`VERIFY_STEP`]s (at most [`MAX_RAISES`]) if the whole image falls short.
/// Above it the sample's score stands: the whole-image reference would cost ~120 bytes a pixel.
pub const VERIFY_UP_TO_PIXELS: u64 = 5_000_000;
const VERIFY_STEP: u8 = 2;
const MAX_RAISES: usize = 3;
/// Whole-image encodes spent looking below a quality the whole image passes at.
const MAX_LOWERINGS: usize = 3;

/// What the search settled on.
pub struct Found {
    pub quality: u8,
    /// Score of the trial at `quality` (on the sample when one was used).
    pub score: f64,
    /// True when the target was reached at some quality in the range.
    pub reached: bool,
    /// The trial's bytes when the trial ran on the whole image (so the caller need not encode
    /// again), `None` when it ran on the sample.
    pub whole_image_bytes: Option<Vec<u8>>,
    /// Every trial as (quality, score), in the order they ran.
    pub trials: Vec<(u8, f64)>,
}

/// Encodes a trial at a quality; `Ok(None)` means the encoder could not produce one at that
/// quality (imagequant's "quality too low"), which counts as a miss.
pub type Trial<'a> = dyn Fn(&DynamicImage, u8) -> Result<Option<Vec<u8>>, CoreError> + 'a;

/// `Ok(None)` when the image is too small to score (under 8×8): the caller uses a fixed quality.
pub fn search(
    image: &DynamicImage,
    target: f64,
    range: RangeInclusive<u8>,
    trial: &Trial<'_>,
) -> Result<Option<Found>, CoreError> {
    let sampled = score::wants_sample(image.width(), image.height());
    let sample_image;
    let subject = if sampled {
        sample_image = score::sample(image);
        &sample_image
    } else {
        image
    };
    let Some(reference) = Reference::new(subject) else {
        return Ok(None);
    };
    let evaluate = |quality: u8| -> Result<(f64, Option<Vec<u8>>), CoreError> {
        let Some(bytes) = trial(subject, quality)? else {
            return Ok((f64::NEG_INFINITY, None));
        };
        let decoded = decode_any(&bytes)?;
        let value = reference.score(&decoded).unwrap_or(f64::NEG_INFINITY);
        Ok((value, Some(bytes)))
    };

    let (mut low, mut high) = (*range.start(), *range.end());
    let mut best: Option<(u8, f64, Option<Vec<u8>>)> = None;
    let mut top: Option<(f64, Option<Vec<u8>>)> = None;
    let mut trials = Vec::new();
    while low <= high && trials.len() < MAX_TRIALS {
        let mid = low + (high - low) / 2;
        let (value, bytes) = evaluate(mid)?;
        trials.push((mid, value));
        if mid == *range.end() {
            top = Some((value, bytes.clone()));
        }
        if value >= target {
            best = Some((mid, value, bytes));
            if mid == 0 {
                break;
            }
            high = mid - 1;
        } else {
            low = mid + 1;
        }
    }
    let keep_bytes = |bytes: Option<Vec<u8>>| if sampled { None } else { bytes };
    if let Some((quality, value, bytes)) = best {
        return Ok(Some(Found {
            quality,
            score: value,
            reached: true,
            whole_image_bytes: keep_bytes(bytes),
            trials,
        }));
    }
    // Nothing in range reached the target: the best the codec can do is its top quality.
    let quality = *range.end();
    let (value, bytes) = match top {
        Some(found) => found,
        None => evaluate(quality)?,
    };
    Ok(Some(Found {
        quality,
        score: value,
        reached: false,
        whole_image_bytes: keep_bytes(bytes),
        trials,
    }))
}

/// Working memory of a fast-ssim2 reference plus one comparison, per scored pixel (measured:
/// ~500 MB peak for a 4.9 MP photo, decode included).
const SCORING_BYTES_PER_PIXEL: u64 = 100;

/// Extra memory the perceptual search may need for an image of this size, in bytes: the
/// scored subject (the sample, or the whole image when it is small) and the whole-image check.
pub fn scoring_memory_bytes(width: u32, height: u32) -> u64 {
    let pixels = u64::from(width).saturating_mul(u64::from(height));
    let subject = if score::wants_sample(width, height) {
        score::SAMPLE_PIXELS
    } else {
        pixels
    };
    let whole = if pixels <= VERIFY_UP_TO_PIXELS {
        pixels
    } else {
        0
    };
    subject.max(whole).saturating_mul(SCORING_BYTES_PER_PIXEL)
}

/// After a sampled search: encodes the whole image at the found quality and, when the image is
/// small enough to score whole, corrects the sample's bias. Below the target, the quality is
/// raised until the whole image reaches it. Above it, the whole image's margin over the sample
/// says which lower quality the sample's trials would have passed; from there a bisection on
/// the whole image (at most [`MAX_LOWERINGS`] encodes) finds the lowest quality that still
/// reaches the target (on photo_garden the sample asked for q87 where q81 scores 84 whole).
/// Returns the bytes, the quality and the score to report.
pub fn finish_on_whole_image(
    image: &DynamicImage,
    found: &Found,
    target: f64,
    max_quality: u8,
    encode: &Trial<'_>,
) -> Result<Option<(Vec<u8>, u8, f64)>, CoreError> {
    let mut quality = found.quality;
    let Some(mut bytes) = encode(image, quality)? else {
        return Ok(None);
    };
    let pixels = u64::from(image.width()) * u64::from(image.height());
    if pixels > VERIFY_UP_TO_PIXELS {
        return Ok(Some((bytes, quality, found.score)));
    }
    let Some(reference) = Reference::new(image) else {
        return Ok(Some((bytes, quality, found.score)));
    };
    let score_of = |bytes: &[u8]| {
        decode_any(bytes)
            .ok()
            .and_then(|decoded| reference.score(&decoded))
            .unwrap_or(f64::NEG_INFINITY)
    };
    let mut value = score_of(&bytes);
    if value >= target {
        let mut best = (bytes, quality, value);
        let Some(mut next) = lower_quality_by_margin(found, value, target) else {
            return Ok(Some(best));
        };
        // Bisection on the whole image between the margin's guess and the passing quality.
        let mut floor = next;
        for _ in 0..MAX_LOWERINGS {
            let Some(candidate) = encode(image, next)? else {
                break;
            };
            let candidate_value = score_of(&candidate);
            if candidate_value >= target {
                best = (candidate, next, candidate_value);
            } else {
                floor = next + 1;
            }
            if floor >= best.1 {
                break;
            }
            next = floor + (best.1 - floor) / 2;
        }
        return Ok(Some(best));
    }
    for _ in 0..MAX_RAISES {
        if value >= target || quality >= max_quality {
            break;
        }
        let next = quality.saturating_add(VERIFY_STEP).min(max_quality);
        let Some(candidate) = encode(image, next)? else {
            break;
        };
        quality = next;
        value = score_of(&candidate);
        bytes = candidate;
    }
    Ok(Some((bytes, quality, value)))
}

/// The lowest tried quality below the found one whose sample score, shifted by how much better
/// the whole image scored than the sample at the found quality, would still reach the target.
fn lower_quality_by_margin(found: &Found, whole_score: f64, target: f64) -> Option<u8> {
    let margin = whole_score - found.score;
    if margin <= 0.0 {
        return None;
    }
    found
        .trials
        .iter()
        .filter(|&&(q, s)| q < found.quality && s + margin >= target)
        .map(|&(q, _)| q)
        .min()
}

/// Scores finished bytes against the pixels they came from (or their sample, for big images).
/// Used to report a score when the caller fixed the quality.
pub fn score_bytes(image: &DynamicImage, encoded: &[u8]) -> Option<f64> {
    let decoded = decode_any(encoded).ok()?;
    if score::wants_sample(image.width(), image.height()) {
        let reference = Reference::new(&score::sample(image))?;
        return reference.score(&score::sample(&decoded));
    }
    Reference::new(image)?.score(&decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn gradient() -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(96, 64, |x, y| {
            image::Rgb([(x * 2) as u8, (y * 3) as u8, ((x + y) % 256) as u8])
        }))
    }

    /// A fake codec whose "quality" is a posterisation step: higher quality, finer steps.
    fn posterise(image: &DynamicImage, quality: u8) -> Result<Option<Vec<u8>>, CoreError> {
        let step = 1 + u32::from(100 - quality) / 2;
        let rgb = image.to_rgb8();
        let out = image::RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| {
            let p = rgb.get_pixel(x, y);
            image::Rgb(p.0.map(|c| ((u32::from(c) / step) * step) as u8))
        });
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb8(out)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .map_err(|e| CoreError::Encode(e.to_string()))?;
        Ok(Some(bytes))
    }

    #[test]
    fn finds_the_lowest_passing_quality_within_the_trial_budget() {
        let image = gradient();
        let calls = Cell::new(0);
        let counted = |img: &DynamicImage, q: u8| {
            calls.set(calls.get() + 1);
            posterise(img, q)
        };
        let found = search(&image, 70.0, 30..=95, &counted).unwrap().unwrap();
        assert!(found.reached);
        assert!(found.score >= 70.0);
        assert!(calls.get() <= MAX_TRIALS);
        // One step lower must fail (or be outside the range).
        if found.quality > 30 {
            let below = posterise(&image, found.quality - 1).unwrap().unwrap();
            let s = score_bytes(&image, &below).unwrap();
            assert!(
                s < 70.0 || found.quality - 1 < 30,
                "q{} scores {s}",
                found.quality - 1
            );
        }
        assert!(found.whole_image_bytes.is_some());
    }

    #[test]
    fn a_whole_image_margin_over_the_sample_picks_a_lower_tried_quality() {
        let found = Found {
            quality: 83,
            score: 80.5,
            reached: true,
            whole_image_bytes: None,
            trials: vec![(62, 70.0), (79, 78.1), (87, 82.0), (83, 80.5), (81, 79.0)],
        };
        // Whole image 84.0 at q83: 3.5 better than the sample, so q79 (78.1 + 3.5) would pass.
        assert_eq!(lower_quality_by_margin(&found, 84.0, 80.0), Some(79));
        // No margin, or a smaller one that no lower trial makes up: nothing lower to try.
        assert_eq!(lower_quality_by_margin(&found, 80.5, 80.0), None);
        assert_eq!(lower_quality_by_margin(&found, 80.9, 80.0), None);
    }

    #[test]
    fn finishing_lowers_the_quality_when_the_sample_was_pessimistic() {
        let image = gradient();
        // A sample that scored far below what the whole image scores at every quality.
        let found = Found {
            quality: 95,
            score: 40.0,
            reached: true,
            whole_image_bytes: None,
            trials: vec![(62, 30.0), (79, 35.0), (87, 38.0), (95, 40.0)],
        };
        let calls = Cell::new(0);
        let counted = |img: &DynamicImage, q: u8| {
            calls.set(calls.get() + 1);
            posterise(img, q)
        };
        let (bytes, quality, score) = finish_on_whole_image(&image, &found, 70.0, 95, &counted)
            .unwrap()
            .unwrap();
        assert!(quality < 95, "stayed at q{quality}");
        assert!(score >= 70.0);
        assert_eq!(score_bytes(&image, &bytes).map(round2), Some(round2(score)));
        assert!(calls.get() <= 1 + MAX_LOWERINGS);
    }

    fn round2(v: f64) -> f64 {
        (v * 100.0).round() / 100.0
    }

    #[test]
    fn unreachable_target_reports_the_top_quality_and_its_score() {
        let image = gradient();
        let found = search(&image, 101.0, 30..=95, &posterise).unwrap().unwrap();
        assert!(!found.reached);
        assert_eq!(found.quality, 95);
        assert!(found.score < 101.0);
    }

    #[test]
    fn a_codec_that_cannot_reach_a_quality_counts_as_a_miss() {
        let image = gradient();
        let picky = |img: &DynamicImage, q: u8| if q < 60 { Ok(None) } else { posterise(img, q) };
        let found = search(&image, 0.0, 30..=95, &picky).unwrap().unwrap();
        assert_eq!(found.quality, 60);
    }
}
