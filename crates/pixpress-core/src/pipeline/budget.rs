//! Byte budgets (`max_bytes`) and score floors (`min_ssimulacra2`) for one lossy codec (SPEC
//! §11). With a floor, the answer is the smallest output that keeps it — the lowest quality the
//! perceptual search finds passing on the whole image — and it must fit the budget, or the
//! request fails with [`CoreError::BudgetUnreachable`] naming the smallest size reached at the
//! floor. With a budget alone, the request's own quality (fixed, or searched at the target) is
//! lowered, as imgproxy's `max_bytes` does, to the highest quality whose output fits; at the
//! codec's lowest quality it stops and says so (warning `max_bytes_not_reached`). Either way
//! the output's score is measured on the bytes returned.
//!
//! Output size falls with quality for every lossy codec here, nearly monotonically, so the
//! budget is met by bisection on whole-image encodes: at most [`MAX_BUDGET_ENCODES`].

use image::DynamicImage;

use super::encode::{round_score, Encoded};
use super::quality;
use super::request::Request;
use crate::codec::Codec;
use crate::error::CoreError;
use crate::warning::{self, Warning};

/// Bisection of a 30–95 (or 0–100) range to one quality: 7 encodes.
pub const MAX_BUDGET_ENCODES: usize = 7;

/// Encodes `image` with `codec` under the request's budget and floor. Only called when the
/// request has one of them.
pub fn encode(
    image: &DynamicImage,
    request: &Request,
    codec: &dyn Codec,
) -> Result<Encoded, CoreError> {
    match request.min_ssimulacra2 {
        Some(floor) => at_floor(image, floor, request.max_bytes, codec),
        None => under_budget(image, request, request.max_bytes.unwrap_or(u64::MAX), codec),
    }
}

/// The lowest quality whose whole-image score reaches `floor`, if it fits `max_bytes`.
fn at_floor(
    image: &DynamicImage,
    floor: f64,
    max_bytes: Option<u64>,
    codec: &dyn Codec,
) -> Result<Encoded, CoreError> {
    let format = codec.format();
    let searched =
        quality::searched(image, floor, codec)?.ok_or_else(|| CoreError::InvalidOption {
            field: "min_ssimulacra2".into(),
            message: "the image is too small to score (under 8x8 pixels)".into(),
        })?;
    let bytes = output_bytes(image, codec, searched.quality, searched.bytes)?;
    let unreachable = |reached_floor: bool, bytes: &[u8]| CoreError::BudgetUnreachable {
        format,
        max_bytes,
        min_ssimulacra2: floor,
        reached_floor,
        smallest_bytes: bytes.len() as u64,
        quality: searched.quality,
        ssimulacra2: round_score(searched.score),
    };
    if searched.score < floor {
        return Err(unreachable(false, &bytes));
    }
    if max_bytes.is_some_and(|max| bytes.len() as u64 > max) {
        return Err(unreachable(true, &bytes));
    }
    Ok(Encoded {
        bytes,
        format,
        quality: Some(searched.quality),
        ssimulacra2: Some(round_score(searched.score)),
        warnings: Vec::new(),
    })
}

/// The request's quality, lowered until the output fits `max_bytes` or the codec's lowest.
fn under_budget(
    image: &DynamicImage,
    request: &Request,
    max_bytes: u64,
    codec: &dyn Codec,
) -> Result<Encoded, CoreError> {
    let format = codec.format();
    let (start, start_bytes) = match request.quality {
        Some(q) => (q, codec.encode_lossy(image, q)?),
        None => match quality::searched(image, request.target(), codec)? {
            Some(s) => (
                s.quality,
                Some(output_bytes(image, codec, s.quality, s.bytes)?),
            ),
            None => (
                super::encode::FALLBACK_QUALITY,
                codec.encode_lossy(image, super::encode::FALLBACK_QUALITY)?,
            ),
        },
    };
    // A fixed quality below the codec's usual range is never raised.
    let lowest = (*codec.quality_range().start()).min(start);
    let fits =
        |bytes: &Option<Vec<u8>>| bytes.as_ref().is_some_and(|b| b.len() as u64 <= max_bytes);
    let (quality, bytes, fitted) = if fits(&start_bytes) {
        (start, start_bytes, true)
    } else {
        highest_fitting(image, codec, lowest, start.saturating_sub(1), max_bytes)?
    };
    let bytes = bytes
        .ok_or_else(|| CoreError::Encode(format!("{} encoder gave nothing", format.name())))?;
    let mut warnings = Vec::new();
    if !fitted {
        warnings.push(Warning::new(
            warning::MAX_BYTES_NOT_REACHED,
            format!(
                "{} at its lowest quality {quality} is {} bytes, over max_bytes {max_bytes}; \
                 that output was returned (send a smaller resize or another format)",
                format.name(),
                bytes.len()
            ),
        ));
    }
    let ssimulacra2 = quality::score_bytes(image, &bytes, codec).map(round_score);
    Ok(Encoded {
        bytes,
        format,
        quality: Some(quality),
        ssimulacra2,
        warnings,
    })
}

/// Bisection in `low..=high` for the highest quality whose output fits `max_bytes`. Returns
/// (quality, bytes, fitted); when none fits, the lowest quality's output and `false`.
#[allow(clippy::type_complexity)]
fn highest_fitting(
    image: &DynamicImage,
    codec: &dyn Codec,
    low: u8,
    high: u8,
    max_bytes: u64,
) -> Result<(u8, Option<Vec<u8>>, bool), CoreError> {
    let (mut low, mut high) = (low, high.max(low));
    let floor = low;
    let mut best: Option<(u8, Vec<u8>)> = None;
    let mut at_floor: Option<Vec<u8>> = None;
    let mut encodes = 0;
    while low <= high && encodes < MAX_BUDGET_ENCODES {
        let mid = low + (high - low).div_ceil(2);
        let bytes = codec.encode_lossy(image, mid)?;
        encodes += 1;
        let size = bytes.as_ref().map_or(u64::MAX, |b| b.len() as u64);
        if mid == floor {
            at_floor = bytes.clone();
        }
        match bytes {
            Some(bytes) if size <= max_bytes => {
                best = Some((mid, bytes));
                low = mid + 1;
            }
            _ if mid == floor => break,
            _ => high = mid - 1,
        }
    }
    if let Some((quality, bytes)) = best {
        return Ok((quality, Some(bytes), true));
    }
    let bytes = match at_floor {
        Some(bytes) => Some(bytes),
        None => codec.encode_lossy(image, floor)?,
    };
    Ok((floor, bytes, false))
}

/// The bytes to return for a searched quality: the search's own whole-image trial when the
/// codec's trials are its output, else a real encode at that quality.
fn output_bytes(
    image: &DynamicImage,
    codec: &dyn Codec,
    quality: u8,
    trial: Vec<u8>,
) -> Result<Vec<u8>, CoreError> {
    if codec.trial_is_output() {
        return Ok(trial);
    }
    codec
        .encode_lossy(image, quality)?
        .ok_or_else(|| CoreError::Encode(format!("{} encoder gave nothing", codec.format().name())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jpeg::{Chroma, Jpeg};
    use crate::codec::Carried;

    fn photo() -> DynamicImage {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        let bytes = std::fs::read(format!("{root}photo_aqua.jpg")).expect("corpus file");
        let image = image::load_from_memory(&bytes).expect("decodes");
        image.resize(480, 480, image::imageops::FilterType::Triangle)
    }

    fn lossy(max_bytes: Option<u64>, floor: Option<f64>, quality: Option<u8>) -> Request {
        Request {
            lossy: true,
            quality,
            max_bytes,
            min_ssimulacra2: floor,
            ..Request::default()
        }
    }

    #[test]
    fn a_budget_alone_keeps_the_highest_quality_that_fits() {
        let image = photo();
        let carried = Carried::default();
        let jpeg = Jpeg {
            chroma: Chroma::Half,
            carried: &carried,
        };
        let at = |q: u8| jpeg.encode_lossy(&image, q).unwrap().unwrap().len() as u64;
        let budget = (at(60) + at(61)) / 2;
        let out = encode(&image, &lossy(Some(budget), None, Some(90)), &jpeg).unwrap();
        assert!(out.bytes.len() as u64 <= budget);
        let q = out.quality.unwrap();
        assert!(q < 90 && at(q + 1) > budget, "q{q}: q{} fits too", q + 1);
        assert!(out.ssimulacra2.is_some());
        assert!(out.warnings.is_empty());

        let tiny = encode(&image, &lossy(Some(10), None, Some(90)), &jpeg).unwrap();
        assert_eq!(tiny.quality, Some(*jpeg.quality_range().start()));
        assert_eq!(tiny.warnings[0].code, warning::MAX_BYTES_NOT_REACHED);
    }

    #[test]
    fn a_floor_gives_the_smallest_output_that_keeps_it_or_says_what_it_reached() {
        let image = photo();
        let carried = Carried::default();
        let jpeg = Jpeg {
            chroma: Chroma::Half,
            carried: &carried,
        };
        let out = encode(&image, &lossy(None, Some(75.0), None), &jpeg).unwrap();
        let score = out.ssimulacra2.unwrap();
        assert!(score >= 75.0, "{score}");
        let size = out.bytes.len() as u64;
        assert!(encode(&image, &lossy(Some(size), Some(75.0), None), &jpeg).is_ok());
        match encode(&image, &lossy(Some(size - 1), Some(75.0), None), &jpeg) {
            Err(CoreError::BudgetUnreachable {
                smallest_bytes,
                reached_floor: true,
                ..
            }) => assert_eq!(smallest_bytes, size),
            other => panic!("{:?}", other.map(|e| e.bytes.len())),
        }
        assert!(matches!(
            encode(&image, &lossy(None, Some(99.9), None), &jpeg),
            Err(CoreError::BudgetUnreachable {
                reached_floor: false,
                ..
            })
        ));
    }
}
