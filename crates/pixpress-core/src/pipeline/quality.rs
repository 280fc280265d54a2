//! Perceptual auto-quality (SPEC §5): bisection on a [`Codec`]'s quality scale for the lowest
//! value whose SSIMULACRA2 against the source pixels reaches the target. Written once for every
//! codec: it only encodes trials, decodes them and scores them through the trait.
//!
//! The search encodes and scores *trial* images: the whole image, or for big images the mosaic
//! sample from [`score::sample`]. At most [`MAX_TRIALS`] trials run. Scores are not strictly
//! monotonic in quality, so the result is "the lowest quality that passed among those tried",
//! which is what bisection on a nearly monotonic curve gives.

use std::ops::RangeInclusive;

use image::DynamicImage;

use super::score::{self, Reference};
use crate::codec::Codec;
use crate::error::CoreError;

/// Default SSIMULACRA2 target: "high quality", artefacts only visible side by side on zoom.
pub const DEFAULT_TARGET: f64 = 80.0;
/// Bounds the work: four rounds of two trials (one per core) split the 30–95 range of the
/// lossy codecs in thirds down to one quality (66 → 22 → 7 → 2 → 1).
pub const MAX_TRIALS: usize = 8;
/// A search that ran on the sample is checked once on the whole image up to this size, and the
/// quality raised in [`VERIFY_STEP`]s (at most [`MAX_RAISES`]) if the whole image falls short.
/// Above it the sample's score stands: the whole-image reference would cost ~120 bytes a pixel.
pub const VERIFY_UP_TO_PIXELS: u64 = 5_000_000;
const VERIFY_STEP: u8 = 2;
const MAX_RAISES: usize = 3;
/// Whole-image encodes spent looking below a quality the whole image passes at.
const MAX_LOWERINGS: usize = 3;
/// A whole-image score this close below the target at the predicted quality means the next
/// quality up is the likely answer (photo_garden: q79 scored 82.62 for a target of 82.72).
const JUST_MISSED: f64 = 0.5;

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

/// Searches `codec`'s quality range with its trial encodes. `Ok(None)` when the image is too
/// small to score (under 8×8): the caller uses a fixed quality.
pub fn search(
    image: &DynamicImage,
    target: f64,
    codec: &dyn Codec,
) -> Result<Option<Found>, CoreError> {
    let range: RangeInclusive<u8> = codec.quality_range();
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
        let Some(bytes) = codec.encode_trial(subject, quality)? else {
            return Ok((f64::NEG_INFINITY, None));
        };
        let decoded = codec.decode(&bytes)?;
        let value = reference.score(&decoded).unwrap_or(f64::NEG_INFINITY);
        Ok((value, Some(bytes)))
    };

    let (mut low, mut high) = (*range.start(), *range.end());
    let mut best: Option<(u8, f64, Option<Vec<u8>>)> = None;
    let mut top: Option<(f64, Option<Vec<u8>>)> = None;
    let mut trials = Vec::new();
    while low <= high && trials.len() < MAX_TRIALS {
        let probes = probes_in(low, high);
        let results = evaluate_all(&probes, &evaluate)?;
        for (&quality, (value, _)) in probes.iter().zip(&results) {
            trials.push((quality, *value));
        }
        // The lowest probe that passes bounds the answer from above; every probe below it
        // failed and bounds it from below.
        let mut floor = low;
        for (quality, (value, bytes)) in probes.into_iter().zip(results) {
            if quality == *range.end() {
                top = Some((value, bytes.clone()));
            }
            if value >= target {
                best = Some((quality, value, bytes));
                high = quality.saturating_sub(1);
                break;
            }
            floor = quality + 1;
        }
        low = floor;
        if best.as_ref().is_some_and(|&(q, _, _)| q == 0) {
            break;
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

/// A search carried through to the whole image: the bytes of a whole-image trial encode at
/// `quality` and its score (the sample's above [`VERIFY_UP_TO_PIXELS`]).
pub struct Searched {
    pub bytes: Vec<u8>,
    pub quality: u8,
    pub score: f64,
    /// Whether the search reached the target at some quality (else `quality` is the top).
    pub reached: bool,
}

/// [`search`], then [`finish_on_whole_image`] when the search ran on the sample. `Ok(None)`
/// when the image is too small to score.
pub fn searched(
    image: &DynamicImage,
    target: f64,
    codec: &dyn Codec,
) -> Result<Option<Searched>, CoreError> {
    let Some(mut found) = search(image, target, codec)? else {
        return Ok(None);
    };
    let reached = found.reached;
    let (bytes, quality, score) = match found.whole_image_bytes.take() {
        Some(bytes) => (bytes, found.quality, found.score),
        None => finish_on_whole_image(image, &found, target, codec)?.ok_or_else(|| {
            CoreError::Encode(format!("{} encoder gave nothing", codec.format().name()))
        })?,
    };
    Ok(Some(Searched {
        bytes,
        quality,
        score,
        reached,
    }))
}

/// The qualities one round of the search tries, one per core: the two points splitting
/// `low..=high` in thirds (the middle alone when one or two qualities are left).
fn probes_in(low: u8, high: u8) -> Vec<u8> {
    let span = u16::from(high - low);
    if span < 2 {
        return vec![low + (high - low) / 2];
    }
    let third = |k: u16| low + ((span * k + 1) / 3) as u8;
    let (first, second) = (third(1), third(2));
    if first == second {
        vec![first]
    } else {
        vec![first, second]
    }
}

/// Runs `evaluate` on every quality at once (each on its own thread), in order.
fn evaluate_all<T: Send>(
    qualities: &[u8],
    evaluate: &(dyn Fn(u8) -> Result<T, CoreError> + Sync),
) -> Result<Vec<T>, CoreError> {
    if let [only] = qualities {
        return Ok(vec![evaluate(*only)?]);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = qualities
            .iter()
            .map(|&quality| scope.spawn(move || evaluate(quality)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| Err(CoreError::Encode(crate::codec::panic_text(panic))))
            })
            .collect()
    })
}

/// After a sampled search: encodes the whole image at the found quality and, when the image is
/// small enough to score whole, corrects the sample's bias. The bias is how much better the
/// sample scored than the whole image at the found quality (+0.8 to +1.6 on four corpus photos,
/// −5.4 on photo_garden); shifted by it, the sample's trials predict which qualities the whole
/// image passes. Below the target, the quality is raised to the lowest trial predicted to pass
/// (else by [`VERIFY_STEP`]), at most [`MAX_RAISES`] times; then a bisection on the whole image
/// (at most [`MAX_LOWERINGS`] encodes, starting at the predicted boundary and, if that just
/// misses, right above it) finds the lowest quality that still passes, down to just above the
/// highest one known or predicted to fail. Returns the bytes (a trial encode of the whole
/// image), the quality and the score to report.
pub fn finish_on_whole_image(
    image: &DynamicImage,
    found: &Found,
    target: f64,
    codec: &dyn Codec,
) -> Result<Option<(Vec<u8>, u8, f64)>, CoreError> {
    let max_quality = *codec.quality_range().end();
    let encode = |image: &DynamicImage, quality: u8| codec.encode_trial(image, quality);
    let Some(bytes) = encode(image, found.quality)? else {
        return Ok(None);
    };
    let pixels = u64::from(image.width()) * u64::from(image.height());
    if pixels > VERIFY_UP_TO_PIXELS {
        return Ok(Some((bytes, found.quality, found.score)));
    }
    let Some(reference) = Reference::new(image) else {
        return Ok(Some((bytes, found.quality, found.score)));
    };
    let score_of = |bytes: &[u8]| {
        codec
            .decode(bytes)
            .ok()
            .and_then(|decoded| reference.score(&decoded))
            .unwrap_or(f64::NEG_INFINITY)
    };
    let whole = |quality: u8| -> Result<Option<(Vec<u8>, u8, f64)>, CoreError> {
        Ok(encode(image, quality)?.map(|bytes| {
            let value = score_of(&bytes);
            (bytes, quality, value)
        }))
    };
    let first_score = score_of(&bytes);
    let prediction = Prediction {
        found,
        bias: found.score - first_score,
        target,
    };
    let mut tried = (bytes, found.quality, first_score);
    let mut failed_at = None;
    let mut raises = 0;
    while tried.2 < target {
        failed_at = Some(tried.1);
        if tried.1 >= max_quality || raises == MAX_RAISES {
            // Still short at the top (or out of raises): the best there is, below the target.
            return Ok(Some(tried));
        }
        let next = prediction
            .lowest_passing_above(tried.1)
            .unwrap_or(tried.1.saturating_add(VERIFY_STEP))
            .min(max_quality);
        let Some(candidate) = whole(next)? else {
            return Ok(Some(tried));
        };
        tried = candidate;
        raises += 1;
    }
    let mut best = tried;
    let mut floor = failed_at.map_or_else(|| prediction.floor_below(best.1), |q| q + 1);
    let mut guess = prediction.lowest_passing_in(floor, best.1);
    for _ in 0..MAX_LOWERINGS {
        if floor >= best.1 {
            break;
        }
        let predicted = guess.take();
        let next = predicted.unwrap_or(floor + (best.1 - floor) / 2);
        let Some(candidate) = whole(next)? else {
            break;
        };
        if candidate.2 >= target {
            best = candidate;
        } else {
            floor = next + 1;
            // A predicted boundary that just missed is one step off: try right above it.
            if predicted.is_some() && candidate.2 >= target - JUST_MISSED {
                guess = Some(floor);
            }
        }
    }
    Ok(Some(best))
}

/// The sample's trials shifted by the sample's bias: what they predict for the whole image.
struct Prediction<'a> {
    found: &'a Found,
    bias: f64,
    target: f64,
}

impl Prediction<'_> {
    fn passes(&self, score: f64) -> bool {
        score - self.bias >= self.target
    }

    /// The lowest tried quality above `quality` predicted to pass.
    fn lowest_passing_above(&self, quality: u8) -> Option<u8> {
        self.found
            .trials
            .iter()
            .filter(|&&(q, s)| q > quality && self.passes(s))
            .map(|&(q, _)| q)
            .min()
    }

    /// The lowest tried quality in `floor..below` predicted to pass: where bisection starts.
    fn lowest_passing_in(&self, floor: u8, below: u8) -> Option<u8> {
        self.found
            .trials
            .iter()
            .filter(|&&(q, s)| (floor..below).contains(&q) && self.passes(s))
            .map(|&(q, _)| q)
            .min()
    }

    /// Just above the highest tried quality below `quality` predicted to fail; without one, the
    /// lowest tried quality (nothing is known below it).
    fn floor_below(&self, quality: u8) -> u8 {
        let trials = &self.found.trials;
        trials
            .iter()
            .filter(|&&(q, s)| q < quality && !self.passes(s))
            .map(|&(q, _)| q + 1)
            .max()
            .or_else(|| trials.iter().map(|&(q, _)| q).min())
            .unwrap_or(quality)
            .min(quality)
    }
}

/// Scores finished bytes against the pixels they came from (or their sample, for big images).
/// Used to report a score when the caller fixed the quality.
pub fn score_bytes(image: &DynamicImage, encoded: &[u8], codec: &dyn Codec) -> Option<f64> {
    let decoded = codec.decode(encoded).ok()?;
    if score::wants_sample(image.width(), image.height()) {
        let reference = Reference::new(&score::sample(image))?;
        return reference.score(&score::sample(&decoded));
    }
    Reference::new(image)?.score(&decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ImageFormat;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn gradient() -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(96, 64, |x, y| {
            image::Rgb([(x * 2) as u8, (y * 3) as u8, ((x + y) % 256) as u8])
        }))
    }

    /// A fake codec whose "quality" is a posterisation step: higher quality, finer steps. It
    /// counts its encodes and cannot reach qualities below `lowest`.
    struct Posterise {
        calls: AtomicUsize,
        lowest: u8,
    }

    impl Posterise {
        fn new() -> Posterise {
            Posterise::reaching_from(0)
        }

        fn reaching_from(lowest: u8) -> Posterise {
            Posterise {
                calls: AtomicUsize::new(0),
                lowest,
            }
        }
    }

    impl Codec for Posterise {
        fn format(&self) -> ImageFormat {
            ImageFormat::Png
        }

        fn quality_range(&self) -> RangeInclusive<u8> {
            30..=95
        }

        fn encode_lossy(
            &self,
            image: &DynamicImage,
            quality: u8,
        ) -> Result<Option<Vec<u8>>, CoreError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if quality < self.lowest {
                return Ok(None);
            }
            posterise(image, quality)
        }
    }

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
        let codec = Posterise::new();
        let found = search(&image, 70.0, &codec).unwrap().unwrap();
        assert!(found.reached);
        assert!(found.score >= 70.0);
        assert!(codec.calls.load(Ordering::Relaxed) <= MAX_TRIALS);
        // One step lower must fail (or be outside the range).
        if found.quality > 30 {
            let below = posterise(&image, found.quality - 1).unwrap().unwrap();
            let s = score_bytes(&image, &below, &codec).unwrap();
            assert!(
                s < 70.0 || found.quality - 1 < 30,
                "q{} scores {s}",
                found.quality - 1
            );
        }
        assert!(found.whole_image_bytes.is_some());
    }

    #[test]
    fn the_sample_bias_predicts_where_the_whole_image_passes() {
        let found = Found {
            quality: 83,
            score: 80.5,
            reached: true,
            whole_image_bytes: None,
            trials: vec![(62, 70.0), (79, 78.1), (87, 82.0), (83, 80.5), (81, 79.0)],
        };
        // Whole image 84.0 at q83: the sample is 3.5 pessimistic, so q79 (78.1 + 3.5) passes
        // and q62 fails: bisection starts at q79, above a floor of q63.
        let pessimistic = Prediction {
            found: &found,
            bias: -3.5,
            target: 80.0,
        };
        assert_eq!(pessimistic.floor_below(83), 63);
        assert_eq!(pessimistic.lowest_passing_in(63, 83), Some(79));
        // Whole image 79.0 at q83: the sample is 1.5 optimistic; q87 (82.0 − 1.5) is predicted
        // to pass, and q81 and below to fail.
        let optimistic = Prediction {
            found: &found,
            bias: 1.5,
            target: 80.0,
        };
        assert_eq!(optimistic.lowest_passing_above(83), Some(87));
        assert_eq!(optimistic.floor_below(83), 82);
        assert_eq!(optimistic.lowest_passing_above(87), None);
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
        let codec = Posterise::new();
        let (bytes, quality, score) = finish_on_whole_image(&image, &found, 70.0, &codec)
            .unwrap()
            .unwrap();
        assert!(quality < 95, "stayed at q{quality}");
        assert!(score >= 70.0);
        assert_eq!(
            score_bytes(&image, &bytes, &codec).map(round2),
            Some(round2(score))
        );
        assert!(codec.calls.load(Ordering::Relaxed) <= 1 + MAX_LOWERINGS);
    }

    fn round2(v: f64) -> f64 {
        (v * 100.0).round() / 100.0
    }

    #[test]
    fn unreachable_target_reports_the_top_quality_and_its_score() {
        let image = gradient();
        let found = search(&image, 101.0, &Posterise::new()).unwrap().unwrap();
        assert!(!found.reached);
        assert_eq!(found.quality, 95);
        assert!(found.score < 101.0);
    }

    #[test]
    fn a_codec_that_cannot_reach_a_quality_counts_as_a_miss() {
        let image = gradient();
        let found = search(&image, 0.0, &Posterise::reaching_from(60))
            .unwrap()
            .unwrap();
        assert_eq!(found.quality, 60);
    }
}
