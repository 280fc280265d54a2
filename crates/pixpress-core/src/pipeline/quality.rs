//! Perceptual auto-quality (SPEC §5): the lowest quality on a [`Codec`]'s scale whose
//! SSIMULACRA2 against the source pixels reaches the target. Written once for every codec: it
//! only encodes trials, decodes them and scores them through the trait.
//!
//! Small images are searched on the whole image. Big ones are searched on the mosaic sample of
//! [`score::sample`] (about 1 MP), which predicts the whole image's score up to a bias of its own
//! (−0.6 to +2.4 points on the corpus photos, steady within ±0.3 across nearby qualities). The
//! search therefore ends on the whole image: the quality the sample predicts is encoded whole
//! and scored, the measured bias re-aims the sample's search, and that repeats until the
//! predicted boundary is a quality already measured whole (usually once or twice). Trials start
//! at the codec's calibrated first guess and are placed by interpolating the scores already
//! known, two at a time (one per core). Scores are not strictly monotonic in quality, so the
//! answer is "the lowest quality that passed, with the one below it failing, among those tried".

use image::DynamicImage;

use super::score::{self, Reference};
use crate::codec::Codec;
use crate::error::CoreError;

/// Default SSIMULACRA2 target: "high quality", artefacts only visible side by side on zoom.
pub const DEFAULT_TARGET: f64 = 80.0;
/// Trials of one search (on the sample or the small whole image).
pub const MAX_TRIALS: usize = 10;
/// A sampled search is finished on the whole image up to this size. Above it the sample
/// stands (shifted by [`SAMPLE_BIAS`]): the whole-image reference would cost ~120 bytes a pixel.
pub const VERIFY_UP_TO_PIXELS: u64 = 5_000_000;
/// Whole-image encodes and scores a sampled search may spend.
const MAX_WHOLE_CHECKS: usize = 3;
/// How much better the sample scores than the whole image before anything is measured: the
/// median over the six corpus photos at qualities 76–86 (their range: −0.6 to +2.4).
const SAMPLE_BIAS: f64 = 0.5;
/// Score points per quality step assumed where the trials do not show the slope yet (JPEG's
/// median between q76 and q85 is 0.62).
const PRIOR_SLOPE: f64 = 0.6;
/// The farthest one round of trials jumps from what is known.
const MAX_STEP: f64 = 12.0;

/// What a search on one subject settled on.
pub struct Found {
    pub quality: u8,
    /// Score of the trial at `quality` (on the sample when one was used).
    pub score: f64,
    /// True when the target was reached at some quality in the range.
    pub reached: bool,
    /// The trial's bytes when the trial ran on the whole image (so the caller need not encode
    /// again), `None` when it ran on the sample.
    pub whole_image_bytes: Option<Vec<u8>>,
}

/// One trial: its quality, its score and (for whole-image trials) its bytes.
struct Trial {
    quality: u8,
    score: f64,
    size: usize,
    bytes: Option<Vec<u8>>,
}

/// Trials of one codec on one subject (the whole image or its sample), remembered so that a
/// re-aimed search reuses them.
struct Trials<'a> {
    subject: &'a DynamicImage,
    reference: Reference,
    codec: &'a dyn Codec,
    keep_bytes: bool,
    done: Vec<Trial>,
    guess: u8,
}

impl<'a> Trials<'a> {
    fn new(
        subject: &'a DynamicImage,
        codec: &'a dyn Codec,
        keep_bytes: bool,
        target: f64,
    ) -> Option<Trials<'a>> {
        let reference = Reference::new(subject)?;
        let range = codec.quality_range();
        let guess = codec
            .first_guess(target)
            .clamp(*range.start(), *range.end());
        Some(Trials {
            subject,
            reference,
            codec,
            keep_bytes,
            done: Vec::new(),
            guess,
        })
    }

    fn size_at(&self, quality: u8) -> usize {
        self.done
            .iter()
            .find(|t| t.quality == quality)
            .map_or(usize::MAX, |t| t.size)
    }

    fn score_at(&self, quality: u8) -> Option<f64> {
        self.done
            .iter()
            .find(|t| t.quality == quality)
            .map(|t| t.score)
    }

    /// Encodes, decodes and scores every quality at once (each on its own thread).
    fn run(&mut self, qualities: &[u8]) -> Result<(), CoreError> {
        let (subject, codec, reference, keep) =
            (self.subject, self.codec, &self.reference, self.keep_bytes);
        let evaluate = |quality: u8| -> Result<Trial, CoreError> {
            let Some(bytes) = codec.encode_trial(subject, quality)? else {
                return Ok(Trial {
                    quality,
                    score: f64::NEG_INFINITY,
                    size: usize::MAX,
                    bytes: None,
                });
            };
            let decoded = codec.decode(&bytes)?;
            let score = reference.score(&decoded).unwrap_or(f64::NEG_INFINITY);
            Ok(Trial {
                quality,
                score,
                size: bytes.len(),
                bytes: keep.then_some(bytes),
            })
        };
        let trials = evaluate_all(qualities, &evaluate)?;
        self.done.extend(trials);
        Ok(())
    }

    /// The lowest quality in `floor..=ceiling` scoring at least `threshold` whose next quality
    /// down (if in range) was tried and fell short; `None` when `ceiling` itself falls short.
    /// Runs trials until it knows, at most [`MAX_TRIALS`] in all; out of trials, the lowest
    /// passing quality found (else `None`).
    fn lowest_passing(
        &mut self,
        threshold: f64,
        floor: u8,
        ceiling: u8,
    ) -> Result<Option<u8>, CoreError> {
        loop {
            let known = Bracket::of(&self.done, threshold, floor, ceiling);
            if let Some(answer) = known.settled(floor, ceiling) {
                return Ok(answer);
            }
            if self.done.len() >= MAX_TRIALS {
                return Ok(known.pass.map(|(q, _)| q));
            }
            let probes: Vec<u8> = known
                .next_probes(threshold, floor, ceiling, self.guess)
                .into_iter()
                .filter(|&q| self.score_at(q).is_none())
                .take(MAX_TRIALS - self.done.len())
                .collect();
            if probes.is_empty() {
                return Ok(known.pass.map(|(q, _)| q));
            }
            self.run(&probes)?;
        }
    }

    fn take_bytes(&mut self, quality: u8) -> Option<Vec<u8>> {
        self.done
            .iter_mut()
            .find(|t| t.quality == quality)
            .and_then(|t| t.bytes.take())
    }
}

/// What the trials so far say about `threshold` within a range: the lowest passing quality and
/// the highest failing one below it, with their scores.
struct Bracket {
    pass: Option<(u8, f64)>,
    fail: Option<(u8, f64)>,
}

impl Bracket {
    fn of(done: &[Trial], threshold: f64, floor: u8, ceiling: u8) -> Bracket {
        let in_range = |t: &&Trial| (floor..=ceiling).contains(&t.quality);
        let pass = done
            .iter()
            .filter(in_range)
            .filter(|t| t.score >= threshold)
            .min_by_key(|t| t.quality)
            .map(|t| (t.quality, t.score));
        let below = pass.map_or(u8::MAX, |(q, _)| q);
        let fail = done
            .iter()
            .filter(in_range)
            .filter(|t| t.score < threshold && t.quality < below)
            .max_by_key(|t| t.quality)
            .map(|t| (t.quality, t.score));
        Bracket { pass, fail }
    }

    /// `Some(answer)` when no trial is needed to answer.
    fn settled(&self, floor: u8, ceiling: u8) -> Option<Option<u8>> {
        match (self.pass, self.fail) {
            (Some((p, _)), _) if p == floor => Some(Some(p)),
            (Some((p, _)), Some((f, _))) if f + 1 == p => Some(Some(p)),
            (None, Some((f, _))) if f == ceiling => Some(None),
            _ => None,
        }
    }

    /// Where to try next: at the estimated crossing and right beside it, so that one round
    /// usually settles it. The crossing is interpolated between a failing and a passing trial,
    /// or extrapolated from one of them at [`PRIOR_SLOPE`]; with nothing known it is `guess`.
    fn next_probes(&self, threshold: f64, floor: u8, ceiling: u8, guess: u8) -> Vec<u8> {
        let low = self.fail.map_or(floor, |(q, _)| q + 1);
        let high = self.pass.map_or(ceiling, |(q, _)| q - 1);
        let step = |points: f64| points.clamp(1.0, MAX_STEP);
        let estimate = match (self.fail, self.pass) {
            // A quality the codec cannot reach scores −∞: halve the gap instead.
            (Some((f, sf)), Some((p, _))) if !sf.is_finite() => f64::from(f + (p - f) / 2),
            (Some((f, sf)), Some((p, sp))) => {
                let fraction = ((threshold - sf) / (sp - sf)).clamp(0.0, 1.0);
                f64::from(f) + (fraction * f64::from(p - f)).ceil()
            }
            (None, Some((p, sp))) => f64::from(p) - step(((sp - threshold) / PRIOR_SLOPE).floor()),
            (Some((f, sf)), None) => f64::from(f) + step(((threshold - sf) / PRIOR_SLOPE).ceil()),
            (None, None) => f64::from(guess),
        };
        let at = (estimate.round() as i32).clamp(i32::from(low), i32::from(high)) as u8;
        // The crossing and the quality below it prove the boundary; at the bottom of the open
        // interval the one below is known to fail, so the one above is tried instead.
        let beside = if at > low {
            at - 1
        } else {
            at.saturating_add(1)
        };
        let mut probes = vec![at];
        if (low..=high).contains(&beside) && beside != at {
            probes.push(beside);
        }
        probes
    }
}

/// Searches `codec`'s quality range on the whole image, or on the sample for big images,
/// without checking the sample's answer on the whole image. `Ok(None)` when the image is too
/// small to score (under 8×8): the caller uses a fixed quality.
pub fn search(
    image: &DynamicImage,
    target: f64,
    codec: &dyn Codec,
) -> Result<Option<Found>, CoreError> {
    search_on(
        image,
        target,
        codec,
        score::wants_sample(image.width(), image.height()),
    )
}

/// [`search`] with the choice of subject made by the caller: the sample (`sampled`) or the
/// image itself.
fn search_on(
    image: &DynamicImage,
    target: f64,
    codec: &dyn Codec,
    sampled: bool,
) -> Result<Option<Found>, CoreError> {
    let sample_image;
    let (subject, threshold) = if sampled {
        sample_image = score::sample(image);
        (&sample_image, target + SAMPLE_BIAS)
    } else {
        (image, target)
    };
    let Some(mut trials) = Trials::new(subject, codec, !sampled, target) else {
        return Ok(None);
    };
    let range = codec.quality_range();
    let found = trials.lowest_passing(threshold, *range.start(), *range.end())?;
    let reached = found.is_some();
    let quality = found.unwrap_or(*range.end());
    if trials.score_at(quality).is_none() {
        trials.run(&[quality])?;
    }
    let score = trials.score_at(quality).unwrap_or(f64::NEG_INFINITY);
    Ok(Some(Found {
        quality,
        score,
        reached,
        whole_image_bytes: trials.take_bytes(quality),
    }))
}

/// A search carried through to the whole image: the bytes of a whole-image trial encode at
/// `quality` and the score measured on them (on their sample above [`VERIFY_UP_TO_PIXELS`]).
pub struct Searched {
    pub bytes: Vec<u8>,
    pub quality: u8,
    pub score: f64,
    /// Whether the search reached the target at some quality (else `quality` is the top).
    pub reached: bool,
}

/// The lowest quality whose whole-image score reaches `target`, with the whole-image trial
/// encode at it. `Ok(None)` when the image is too small to score.
pub fn searched(
    image: &DynamicImage,
    target: f64,
    codec: &dyn Codec,
) -> Result<Option<Searched>, CoreError> {
    searched_smallest(image, target, &[codec])
}

/// [`searched`] for the codec (of several writing one format, like JPEG's two chromas) whose
/// output is the smallest that reaches the target. Big images choose on the sample: each codec's
/// sample boundary is found, and only the one whose boundary encode is the smallest (reaching
/// first) is finished on the whole image, since the whole-image checks cost far more than the
/// sample's trials.
pub fn searched_smallest(
    image: &DynamicImage,
    target: f64,
    codecs: &[&dyn Codec],
) -> Result<Option<Searched>, CoreError> {
    let pixels = u64::from(image.width()) * u64::from(image.height());
    let sample_cannot_aim = codecs.iter().any(|codec| !codec.sample_aims_search());
    if !score::wants_sample(image.width(), image.height())
        || (sample_cannot_aim && pixels <= VERIFY_UP_TO_PIXELS)
    {
        let mut best: Option<Searched> = None;
        for &codec in codecs {
            let Some(mut found) = search_on(image, target, codec, false)? else {
                return Ok(None);
            };
            let bytes = match found.whole_image_bytes.take() {
                Some(bytes) => bytes,
                None => encode_whole(image, codec, found.quality)?,
            };
            let candidate = Searched {
                bytes,
                quality: found.quality,
                score: found.score,
                reached: found.reached,
            };
            best = Some(match best {
                Some(kept) if !better(&candidate, &kept) => kept,
                _ => candidate,
            });
        }
        return Ok(best);
    }
    let sample = score::sample(image);
    let mut searches = Vec::new();
    for &codec in codecs {
        let Some(trials) = Trials::new(&sample, codec, false, target) else {
            return Ok(None);
        };
        searches.push((codec, trials));
    }
    // The whole image's reference is built while the sample's first searches run.
    let (whole, firsts) = std::thread::scope(|scope| {
        let whole = (pixels <= VERIFY_UP_TO_PIXELS).then(|| scope.spawn(|| Reference::new(image)));
        let firsts: Vec<_> = searches
            .iter_mut()
            .map(|(codec, trials)| {
                let range = codec.quality_range();
                trials.lowest_passing(target + SAMPLE_BIAS, *range.start(), *range.end())
            })
            .collect();
        (
            whole.and_then(|handle| handle.join().ok().flatten()),
            firsts,
        )
    });
    let mut ranked = Vec::new();
    for ((codec, trials), first) in searches.into_iter().zip(firsts) {
        let boundary = first?;
        let size = trials.size_at(boundary.unwrap_or(*codec.quality_range().end()));
        ranked.push(((boundary.is_none(), size), codec, trials));
    }
    ranked.sort_by_key(|(rank, _, _)| *rank);
    let Some((_, codec, mut trials)) = ranked.into_iter().next() else {
        return Ok(None);
    };
    let finished = finish_on_whole_image(image, codec, &mut trials, whole.as_ref(), target)?;
    Ok(Some(finished))
}

/// Whether `a` beats `b`: reaching the target first, then fewer bytes (or, both short, a higher
/// score).
fn better(a: &Searched, b: &Searched) -> bool {
    match (a.reached, b.reached) {
        (true, false) => true,
        (false, true) => false,
        (true, true) => a.bytes.len() < b.bytes.len(),
        (false, false) => a.score > b.score,
    }
}

/// Scores a whole-image encode: against `whole`, or (too big for that) through its own sample
/// against the sample's reference.
fn score_whole(
    codec: &dyn Codec,
    bytes: &[u8],
    whole: Option<&Reference>,
    sample: &Reference,
) -> f64 {
    let Ok(decoded) = codec.decode(bytes) else {
        return f64::NEG_INFINITY;
    };
    let value = match whole {
        Some(reference) => reference.score(&decoded),
        None => sample.score(&score::sample(&decoded)),
    };
    value.unwrap_or(f64::NEG_INFINITY)
}

/// One whole-image encode and its score.
struct Checked {
    quality: u8,
    score: f64,
    bytes: Vec<u8>,
}

/// The sample's search re-aimed by what whole-image encodes score (see the module comment):
/// the sample's boundary at `target` + bias is encoded whole and scored; the bias becomes the
/// sample's score there minus the whole image's, and the sample is searched again within what
/// the whole-image checks have shown, until its boundary is a quality already checked.
fn finish_on_whole_image(
    image: &DynamicImage,
    codec: &dyn Codec,
    trials: &mut Trials<'_>,
    whole: Option<&Reference>,
    target: f64,
) -> Result<Searched, CoreError> {
    let range = codec.quality_range();
    let (mut floor, mut ceiling) = (*range.start(), *range.end());
    let mut bias = SAMPLE_BIAS;
    let mut checked: Vec<Checked> = Vec::new();
    for _ in 0..MAX_WHOLE_CHECKS {
        let quality = trials
            .lowest_passing(target + bias, floor, ceiling)?
            .unwrap_or(ceiling);
        if checked.iter().any(|c| c.quality == quality) {
            break;
        }
        let bytes = encode_whole(image, codec, quality)?;
        let score = score_whole(codec, &bytes, whole, &trials.reference);
        // Only a whole-image score measures the sample's bias; the output's own sample scores
        // what the sample trial did, give or take the encoder's context at the tiles' edges.
        if let (Some(sampled), true) = (trials.score_at(quality), whole.is_some()) {
            if score.is_finite() && sampled.is_finite() {
                bias = sampled - score;
            }
        }
        let passed = score >= target;
        checked.push(Checked {
            quality,
            score,
            bytes,
        });
        if passed {
            ceiling = quality;
        } else if quality >= *range.end() {
            break;
        } else {
            floor = quality + 1;
        }
    }
    let best = lowest_passing_check(&mut checked, target)
        .or_else(|| highest_check(&mut checked))
        .ok_or_else(|| {
            CoreError::Encode(format!("{} encoder gave nothing", codec.format().name()))
        })?;
    Ok(Searched {
        reached: best.score >= target,
        bytes: best.bytes,
        quality: best.quality,
        score: best.score,
    })
}

fn lowest_passing_check(checked: &mut Vec<Checked>, target: f64) -> Option<Checked> {
    let index = checked
        .iter()
        .enumerate()
        .filter(|(_, c)| c.score >= target)
        .min_by_key(|(_, c)| c.quality)
        .map(|(i, _)| i)?;
    Some(checked.swap_remove(index))
}

fn highest_check(checked: &mut Vec<Checked>) -> Option<Checked> {
    let index = checked
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| c.quality)
        .map(|(i, _)| i)?;
    Some(checked.swap_remove(index))
}

fn encode_whole(
    image: &DynamicImage,
    codec: &dyn Codec,
    quality: u8,
) -> Result<Vec<u8>, CoreError> {
    codec
        .encode_trial(image, quality)?
        .ok_or_else(|| CoreError::Encode(format!("{} encoder gave nothing", codec.format().name())))
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
    use std::ops::RangeInclusive;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn gradient() -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(96, 64, |x, y| {
            image::Rgb([(x * 2) as u8, (y * 3) as u8, ((x + y) % 256) as u8])
        }))
    }

    /// A fake codec whose "quality" is a posterisation step: higher quality, finer steps. It
    /// counts its encodes and the sizes it was given, and cannot reach qualities below
    /// `lowest`. On the sample (a 1024×1024 image) it posterises as if the quality were
    /// `sample_optimism` steps higher (the sample looks better than the whole image), and
    /// `sample_aims` is what it answers to [`Codec::sample_aims_search`].
    struct Posterise {
        calls: AtomicUsize,
        sizes: std::sync::Mutex<Vec<(u32, u32)>>,
        lowest: u8,
        sample_optimism: u8,
        sample_aims: bool,
    }

    impl Posterise {
        fn new() -> Posterise {
            Posterise::reaching_from(0)
        }

        fn reaching_from(lowest: u8) -> Posterise {
            Posterise {
                calls: AtomicUsize::new(0),
                sizes: std::sync::Mutex::new(Vec::new()),
                lowest,
                sample_optimism: 0,
                sample_aims: true,
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

        fn sample_aims_search(&self) -> bool {
            self.sample_aims
        }

        fn encode_lossy(
            &self,
            image: &DynamicImage,
            quality: u8,
        ) -> Result<Option<Vec<u8>>, CoreError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut sizes) = self.sizes.lock() {
                sizes.push((image.width(), image.height()));
            }
            if quality < self.lowest {
                return Ok(None);
            }
            let on_sample = image.width() == 1024 && image.height() == 1024;
            let shown = if on_sample {
                quality.saturating_add(self.sample_optimism).min(100)
            } else {
                quality
            };
            posterise(image, shown)
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

    fn big_gradient() -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(1400, 1200, |x, y| {
            let n = ((x * 7 + y * 13) % 17) as u8;
            image::Rgb([(x / 6) as u8 + n, (y / 5) as u8, ((x + y) / 11) as u8 + n])
        }))
    }

    #[test]
    fn a_sampled_search_ends_on_the_whole_images_lowest_passing_quality() {
        let image = big_gradient();
        assert!(score::wants_sample(image.width(), image.height()));
        let codec = Posterise {
            sample_optimism: 8,
            ..Posterise::new()
        };
        let target = 75.0;
        let searched = searched(&image, target, &codec).unwrap().unwrap();
        let whole = |q: u8| {
            let bytes = posterise(&image, q).unwrap().unwrap();
            Reference::new(&image)
                .unwrap()
                .score(&image::load_from_memory(&bytes).unwrap())
                .unwrap()
        };
        assert!(searched.reached);
        assert!(searched.score >= target, "{}", searched.score);
        // The score reported is the returned bytes' own, on the whole image.
        assert_eq!(round2(whole(searched.quality)), round2(searched.score));
        assert_eq!(
            round2(
                Reference::new(&image)
                    .unwrap()
                    .score(&image::load_from_memory(&searched.bytes).unwrap())
                    .unwrap()
            ),
            round2(searched.score)
        );
        // Posterisation steps move every other quality, so the quality right below either
        // fails or gives the same pixels.
        let below = whole(searched.quality - 1);
        assert!(
            below < target || below == searched.score,
            "q{} scores {below}",
            searched.quality - 1
        );
        assert!(codec.calls.load(Ordering::Relaxed) <= MAX_TRIALS + MAX_WHOLE_CHECKS);
    }

    #[test]
    fn a_codec_whose_sample_cannot_aim_is_searched_on_the_whole_image() {
        let image = big_gradient();
        assert!(score::wants_sample(image.width(), image.height()));
        let codec = Posterise {
            sample_aims: false,
            ..Posterise::new()
        };
        let target = 75.0;
        let searched = searched(&image, target, &codec).unwrap().unwrap();
        let sizes = codec.sizes.lock().unwrap().clone();
        assert!(!sizes.is_empty());
        assert!(
            sizes
                .iter()
                .all(|&size| size == (image.width(), image.height())),
            "{sizes:?}"
        );
        assert!(
            searched.reached && searched.score >= target,
            "{}",
            searched.score
        );
        let below = posterise(&image, searched.quality - 1).unwrap().unwrap();
        let below = Reference::new(&image)
            .unwrap()
            .score(&image::load_from_memory(&below).unwrap())
            .unwrap();
        assert!(
            below < target || round2(below) == round2(searched.score),
            "{below}"
        );
    }

    #[test]
    fn interpolation_aims_at_the_crossing_and_the_quality_below_it() {
        let bracket = Bracket {
            fail: Some((70, 76.0)),
            pass: Some((90, 86.0)),
        };
        // 80 is 40 % of the way from 76 to 86: q78, with q77 to prove the boundary.
        assert_eq!(bracket.next_probes(80.0, 30, 95, 82), vec![78, 77]);
        let nothing = Bracket {
            fail: None,
            pass: None,
        };
        assert_eq!(nothing.next_probes(80.0, 30, 95, 82), vec![82, 81]);
        // Only a pass 3 points over: three steps down at the prior slope.
        let passed = Bracket {
            fail: None,
            pass: Some((85, 83.0)),
        };
        assert_eq!(passed.next_probes(80.0, 30, 95, 82), vec![80, 79]);
        // Right above a known failure, the one above it is tried instead of the one below.
        let edge = Bracket {
            fail: Some((79, 79.9)),
            pass: Some((84, 82.0)),
        };
        assert_eq!(edge.next_probes(80.0, 30, 95, 82), vec![80, 81]);
    }

    #[test]
    fn the_first_guess_comes_from_the_codec() {
        struct Guessing(Posterise);
        impl Codec for Guessing {
            fn format(&self) -> ImageFormat {
                self.0.format()
            }
            fn quality_range(&self) -> RangeInclusive<u8> {
                self.0.quality_range()
            }
            fn first_guess(&self, _target: f64) -> u8 {
                60
            }
            fn encode_lossy(
                &self,
                image: &DynamicImage,
                quality: u8,
            ) -> Result<Option<Vec<u8>>, CoreError> {
                self.0.encode_lossy(image, quality)
            }
        }
        let codec = Guessing(Posterise::new());
        let image = gradient();
        let mut trials = Trials::new(&image, &codec, false, 70.0).unwrap();
        trials.lowest_passing(70.0, 30, 95).unwrap();
        assert_eq!(trials.done[0].quality, 60);
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
