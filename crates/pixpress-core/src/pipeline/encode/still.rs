//! The encode step for a still image: lossless encoders when `lossy` is false (a high fixed
//! quality for JPEG and AVIF, which have none); otherwise the lossy encoder at the caller's
//! quality, or at the lowest quality whose SSIMULACRA2 reaches the target
//! ([`quality::search`]). `auto` encodes each candidate format this way and keeps the
//! smallest. Transparent pixels going to JPEG are flattened on the background colour first.
//! Lossless PNG and WebP output is decoded and compared with the pixels it was made from
//! ([`verify`]) before it is handed on; GIF's "lossless" is proven the same way, and when the
//! image needs more than GIF holds (256 colours, on/off transparency) it says so in a warning
//! instead (SPEC §5: a conversion that forces a lossy encoder). This module owns the choice of
//! codec, chroma and quality for one image.

use image::{DynamicImage, Rgba as ImageRgba, RgbaImage};

use super::encoded::{
    candidate_rank, fixed, plain, round_score, smallest, Encoded, FALLBACK_QUALITY,
};
use crate::codec::avif::{self, Avif};
use crate::codec::gif::Gif;
use crate::codec::jpeg::{self, Chroma, Jpeg};
use crate::codec::png::{self, Png};
use crate::codec::webp::Webp;
use crate::codec::{Carried, Codec};
use crate::error::CoreError;
use crate::format::ImageFormat;
use crate::pipeline::budget;
use crate::pipeline::quality;
use crate::pipeline::request::{OutputFormat, Request};
use crate::pipeline::verify;
use crate::warning::{self, Warning};

/// JPEG quality when something forces a re-encode but `lossy` is false (SPEC §5: ≥ 90).
const LOSSLESS_JPEG_QUALITY: u8 = 92;
/// AVIF quality when `lossy` is false but the request asks for AVIF: there is no lossless AVIF here.
const LOSSLESS_AVIF_QUALITY: u8 = 92;
/// When the palette search's top quality falls short of the target by at most this much,
/// libimagequant's slower speed 2 gets one try before the lossless fallback (a few tenths of a
/// point is what the slower speed gains; further away it would only cost time).
const PALETTE_HARDEST_TRY_WITHIN: f64 = 1.0;
/// ...and only up to this many pixels: the slow palette costs seconds per megapixel (8 s more
/// for the 3 MP emerald logo, on a loaded machine, where 0.25 MP logos take 0.3 s).
const PALETTE_HARDEST_TRY_UP_TO_PIXELS: u64 = 1_000_000;

/// Encodes one still image in `target` (`None`: `auto`, the smallest suitable format).
pub fn encode(
    image: &DynamicImage,
    target: Option<ImageFormat>,
    request: &Request,
    carried: &Carried,
) -> Result<Encoded, CoreError> {
    match target {
        Some(format) => encode_as(image, format, request, carried),
        None => encode_auto(image, request, carried),
    }
}

/// `auto`: the smallest of the formats that suit the image (or of the caller's list), each at the
/// same perceptual target.
/// PNG is only a candidate when the image has alpha (JPEG has none) or the request is lossless;
/// AVIF only when lossy (it has no lossless mode here).
fn encode_auto(
    image: &DynamicImage,
    request: &Request,
    carried: &Carried,
) -> Result<Encoded, CoreError> {
    let candidates = auto_candidates(request, has_visible_alpha(image));
    smallest(
        &candidates,
        |format| encode_as(image, format, request, carried),
        |e| candidate_rank(e, request),
    )
}

/// The formats `auto` (or the caller's list) tries for a still image, in trial order; `alpha`
/// is whether some pixel is not fully opaque.
pub fn auto_candidates(request: &Request, alpha: bool) -> Vec<ImageFormat> {
    match (request.format, request.lossy, alpha) {
        (OutputFormat::Among(set), _, _) => set.formats(),
        (_, false, _) => vec![ImageFormat::Png, ImageFormat::Webp],
        (_, true, false) => vec![ImageFormat::Jpeg, ImageFormat::Webp, ImageFormat::Avif],
        (_, true, true) => vec![ImageFormat::Webp, ImageFormat::Avif, ImageFormat::Png],
    }
}

/// Encodes a still image in `format` as the request says.
fn encode_as(
    image: &DynamicImage,
    format: ImageFormat,
    request: &Request,
    carried: &Carried,
) -> Result<Encoded, CoreError> {
    let mut warnings = Vec::new();
    let flattened;
    let image = if format == ImageFormat::Jpeg && image.color().has_alpha() {
        if has_visible_alpha(image) {
            warnings.push(Warning::new(
                warning::ALPHA_FLATTENED,
                "JPEG has no transparency: transparent pixels were flattened on the background colour",
            ));
        }
        flattened = flatten(image, request.background);
        &flattened
    } else {
        image
    };
    let mut encoded = match (format, request.lossy) {
        (ImageFormat::Jpeg, false) => {
            let q = LOSSLESS_JPEG_QUALITY.max(request.quality.unwrap_or(0));
            let chroma = if looks_like_screen_content(image) {
                Chroma::Full
            } else {
                Chroma::Half
            };
            fixed(jpeg::encode(image, q, chroma, carried)?, format, q)
        }
        (ImageFormat::Jpeg, true) => jpeg_lossy(image, request, carried)?,
        (ImageFormat::Avif, false) => {
            let q = LOSSLESS_AVIF_QUALITY.max(request.quality.unwrap_or(0));
            let bytes = avif::encode_lossy(image, q)?;
            Encoded {
                ssimulacra2: scored(request, image, &bytes, &Avif),
                ..fixed(bytes, format, q)
            }
        }
        (ImageFormat::Png, true) => png_lossy(
            image,
            request,
            &Png {
                icc: carried.icc.as_deref(),
            },
        )?,
        (ImageFormat::Png, false) => lossless(
            image,
            &Png {
                icc: carried.icc.as_deref(),
            },
        )?,
        (ImageFormat::Webp, false) => lossless(image, &Webp)?,
        (ImageFormat::Gif, false) => lossless(image, &Gif)?,
        (ImageFormat::Webp, true) => lossy(image, request, &Webp)?,
        (ImageFormat::Avif, true) => lossy(image, request, &Avif)?,
        (ImageFormat::Gif, true) => lossy(image, request, &Gif)?,
    };
    encoded.warnings.splice(0..0, warnings);
    Ok(encoded)
}

/// The codec's lossless mode, for the formats that have one, proven on the pixels it was
/// given.
fn lossless(image: &DynamicImage, codec: &dyn Codec) -> Result<Encoded, CoreError> {
    let format = codec.format();
    let bytes = codec
        .encode_lossless(image)?
        .ok_or_else(|| CoreError::Encode(format!("{} has no lossless mode", format.name())))?;
    match verify::still(image, &bytes, format) {
        Ok(()) => Ok(plain(bytes, format)),
        Err(CoreError::LosslessCheckFailed(why)) if format == ImageFormat::Gif => Ok(Encoded {
            warnings: vec![gif_not_lossless(&why)],
            ..plain(bytes, format)
        }),
        Err(e) => Err(e),
    }
}

/// GIF holds 256 colours and on/off transparency: pixels that need more get the closest
/// palette, and the answer says it is not lossless.
pub fn gif_not_lossless(why: &str) -> Warning {
    Warning::new(
        warning::LOSSLESS_NOT_AVAILABLE,
        format!(
            "GIF holds at most 256 colours per frame and no partial transparency: {why}, so it \
             is the closest palette, not lossless"
        ),
    )
}

/// Lossy at the caller's quality (scored for the response), or at the searched one.
fn lossy(image: &DynamicImage, request: &Request, codec: &dyn Codec) -> Result<Encoded, CoreError> {
    if request.has_budget() {
        return budget::encode(image, request, codec);
    }
    let format = codec.format();
    if let Some(q) = request.quality {
        let bytes = encode_at(codec, image, q)?;
        return Ok(Encoded {
            ssimulacra2: scored(request, image, &bytes, codec),
            ..fixed(bytes, format, q)
        });
    }
    searched_among(image, request.target(), &[codec])
}

/// `codec`'s lossy output at `quality`, an error when the encoder gives nothing.
fn encode_at(codec: &dyn Codec, image: &DynamicImage, quality: u8) -> Result<Vec<u8>, CoreError> {
    codec
        .encode_lossy(image, quality)?
        .ok_or_else(|| CoreError::Encode(format!("{} encoder gave nothing", codec.format().name())))
}

/// The searched quality of the smallest of `codecs` (one format) that reaches `target`; a
/// fixed quality when the image is too small to score.
fn searched_among(
    image: &DynamicImage,
    target: f64,
    codecs: &[&dyn Codec],
) -> Result<Encoded, CoreError> {
    let first = *codecs
        .first()
        .ok_or_else(|| CoreError::Encode("no codec to search".into()))?;
    let format = first.format();
    let Some(searched) = quality::searched_smallest(image, target, codecs)? else {
        let bytes = encode_at(first, image, FALLBACK_QUALITY)?;
        return Ok(fixed(bytes, format, FALLBACK_QUALITY));
    };
    let mut warnings = Vec::new();
    if !searched.reached {
        warnings.push(target_not_reached(
            format,
            searched.quality,
            searched.score,
            target,
        ));
    }
    Ok(Encoded {
        bytes: searched.bytes,
        format,
        quality: Some(searched.quality),
        ssimulacra2: Some(round_score(searched.score)),
        warnings,
    })
}

/// The score of an output encoded at a fixed quality, when the request asks for one.
fn scored(request: &Request, image: &DynamicImage, bytes: &[u8], codec: &dyn Codec) -> Option<f64> {
    if !request.scores_fixed_quality() {
        return None;
    }
    quality::score_bytes(image, bytes, codec).map(round_score)
}

/// JPEG lossy at 4:2:0; for screen content also at 4:4:4, keeping the smaller of the two that
/// reach the target (4:4:4 often needs a lower quality there, since 4:2:0 smears coloured edges
/// that SSIMULACRA2 sees). A searched quality on a big image chooses the chroma on the sample,
/// so only one of the two is finished on the whole image. At a fixed quality without a requested score, screen content is one
/// 4:4:4 encode, as in the non-lossy path: scoring both to choose is work the answer does not
/// need (it cost photo_aqua, a photo with flat areas, 0.97 s against 0.2 s).
fn jpeg_lossy(
    image: &DynamicImage,
    request: &Request,
    carried: &Carried,
) -> Result<Encoded, CoreError> {
    // With a budget, one chroma: the budget search alone is several encodes.
    if !looks_like_screen_content(image) || request.has_budget() {
        return lossy(
            image,
            request,
            &Jpeg {
                chroma: Chroma::Half,
                carried,
            },
        );
    }
    if request.quality.is_some() && !request.scores_fixed_quality() {
        let full = Jpeg {
            chroma: Chroma::Full,
            carried,
        };
        return lossy(image, request, &full);
    }
    if request.quality.is_none() {
        let half = Jpeg {
            chroma: Chroma::Half,
            carried,
        };
        let full = Jpeg {
            chroma: Chroma::Full,
            carried,
        };
        return searched_among(image, request.target(), &[&half, &full]);
    }
    // Choosing between the chromas needs both scores; at a fixed quality the answer reports
    // one only because the caller asked.
    let scoring = Request {
        score: true,
        ..request.clone()
    };
    let at = |chroma: Chroma| lossy(image, &scoring, &Jpeg { chroma, carried });
    Ok(better_of(
        at(Chroma::Half)?,
        at(Chroma::Full)?,
        request.target(),
    ))
}

/// The smaller of two encodings when both reach the target; otherwise the one that scores higher.
fn better_of(a: Encoded, b: Encoded, target: f64) -> Encoded {
    let score = |e: &Encoded| e.ssimulacra2.unwrap_or(f64::NEG_INFINITY);
    match (score(&a) >= target, score(&b) >= target) {
        (true, true) if b.bytes.len() < a.bytes.len() => b,
        (true, true) | (true, false) => a,
        (false, true) => b,
        (false, false) if score(&b) > score(&a) => b,
        (false, false) => a,
    }
}

/// Screenshots, diagrams and UI: at least half of the horizontally neighbouring pixels are
/// exactly equal (flat fills), which a photo's sensor noise never gives. Checked on at most
/// ~64 rows so it costs microseconds.
pub fn looks_like_screen_content(image: &DynamicImage) -> bool {
    use image::GenericImageView;
    let (width, height) = image.dimensions();
    if width < 2 || height == 0 {
        return false;
    }
    let step = (height / 64).max(1);
    let (mut equal, mut pairs) = (0u64, 0u64);
    for y in (0..height).step_by(step as usize) {
        for x in 1..width {
            pairs += 1;
            if image.get_pixel(x, y) == image.get_pixel(x - 1, y) {
                equal += 1;
            }
        }
    }
    equal * 2 >= pairs
}

/// PNG lossy: palette quantisation when it keeps the target, else lossless (SPEC §5).
fn png_lossy(
    image: &DynamicImage,
    request: &Request,
    codec: &Png<'_>,
) -> Result<Encoded, CoreError> {
    if request.has_budget() {
        return budget::encode(image, request, codec);
    }
    let rgba = image.to_rgba8();
    let icc = codec.icc;
    if let Some(q) = request.quality {
        return Ok(match png::quantize(&rgba, q, icc)? {
            Some(bytes) => Encoded {
                ssimulacra2: scored(request, image, &bytes, codec),
                ..fixed(bytes, ImageFormat::Png, q)
            },
            None => plain(png::encode_lossless(image, icc)?, ImageFormat::Png),
        });
    }
    let target = request.target();
    let searched = quality::searched(image, target, codec)?;
    if let Some(found) = searched.as_ref().filter(|found| found.reached) {
        if let Some(bytes) = png::quantize(&rgba, found.quality, icc)? {
            return Ok(Encoded {
                ssimulacra2: Some(round_score(found.score)),
                ..fixed(bytes, ImageFormat::Png, found.quality)
            });
        }
    }
    let top_score = searched
        .as_ref()
        .map_or(f64::NEG_INFINITY, |found| found.score);
    let pixels = u64::from(rgba.width()) * u64::from(rgba.height());
    if top_score >= target - PALETTE_HARDEST_TRY_WITHIN
        && pixels <= PALETTE_HARDEST_TRY_UP_TO_PIXELS
    {
        if let Some(quantized) = png::quantize_hardest(&rgba)? {
            let raw = png::indexed_png(&rgba, &quantized, icc)?;
            if let Some(score) = quality::score_bytes(image, &raw, codec).filter(|&s| s >= target) {
                return Ok(Encoded {
                    ssimulacra2: Some(round_score(score)),
                    ..fixed(png::optimize_lossless(&raw)?, ImageFormat::Png, 100)
                });
            }
        }
    }
    let mut encoded = plain(png::encode_lossless(image, icc)?, ImageFormat::Png);
    encoded.warnings.push(Warning::new(
        warning::PALETTE_BELOW_TARGET,
        format!("256 colours cannot reach SSIMULACRA2 {target}; the PNG was written losslessly"),
    ));
    Ok(encoded)
}

fn target_not_reached(format: ImageFormat, quality: u8, score: f64, target: f64) -> Warning {
    Warning::new(
        warning::QUALITY_TARGET_NOT_REACHED,
        format!(
            "{} at its top searched quality {quality} scores SSIMULACRA2 {score:.1}, below the \
             target {target}",
            format.name(),
        ),
    )
}

/// True when some pixel is not fully opaque.
pub fn has_visible_alpha(image: &DynamicImage) -> bool {
    match image {
        DynamicImage::ImageRgba8(buffer) => buffer.pixels().any(|p| p[3] != 255),
        DynamicImage::ImageLumaA8(buffer) => buffer.pixels().any(|p| p[1] != 255),
        other if other.color().has_alpha() => other.to_rgba8().pixels().any(|p| p[3] != 255),
        _ => false,
    }
}

/// Composites over an opaque background (white unless the request names one).
pub fn flatten(image: &DynamicImage, background: Option<[u8; 4]>) -> DynamicImage {
    let [br, bg, bb, _] = background.unwrap_or([255, 255, 255, 255]);
    let rgba: RgbaImage = image.to_rgba8();
    let blend =
        |c: u8, b: u8, a: u16| ((u16::from(c) * a + u16::from(b) * (255 - a) + 127) / 255) as u8;
    let rgb = image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let ImageRgba([r, g, b, a]) = *rgba.get_pixel(x, y);
        let a = u16::from(a);
        image::Rgb([blend(r, br, a), blend(g, bg, a), blend(b, bb, a)])
    });
    DynamicImage::ImageRgb8(rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> DynamicImage {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        let bytes = std::fs::read(format!("{root}{name}")).expect("corpus file");
        image::load_from_memory(&bytes).expect("decodes")
    }

    #[test]
    fn screenshots_are_screen_content_and_photos_are_not() {
        assert!(looks_like_screen_content(&corpus(
            "png_plasma_screenshot.png"
        )));
        assert!(!looks_like_screen_content(&corpus("photo_storm.jpg")));
        assert!(!looks_like_screen_content(&corpus("png_coffee_photo.png")));
    }

    /// The luma component's sampling factors from a baseline or progressive JPEG's SOF: 0x11
    /// when chroma is not subsampled (4:4:4), 0x22 for 4:2:0.
    fn chroma_sampling(jpeg: &[u8]) -> u8 {
        let sof = jpeg
            .windows(2)
            .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))
            .expect("a frame header");
        jpeg[sof + 11]
    }

    #[test]
    fn a_fixed_quality_screenshot_is_one_4_4_4_encode_without_a_score() {
        let shot = corpus("png_plasma_screenshot.png");
        let carried = Carried::default();
        let request = Request {
            lossy: true,
            quality: Some(80),
            ..Request::default()
        };
        let chosen = encode_as(&shot, ImageFormat::Jpeg, &request, &carried).unwrap();
        assert_eq!(chosen.ssimulacra2, None);
        assert_eq!(chroma_sampling(&chosen.bytes), 0x11);
        let full = jpeg::encode(&shot, 80, Chroma::Full, &carried).unwrap();
        assert_eq!(chosen.bytes, full);
        // A photo at a fixed quality stays 4:2:0.
        let photo = corpus("photo_storm.jpg");
        let chosen = encode_as(&photo, ImageFormat::Jpeg, &request, &carried).unwrap();
        assert_ne!(chroma_sampling(&chosen.bytes), 0x11);
    }

    #[test]
    fn screen_content_jpeg_is_never_larger_than_4_2_0_at_the_same_target() {
        let shot = corpus("png_plasma_screenshot.png");
        let request = Request {
            lossy: true,
            ..Request::default()
        };
        let carried = Carried::default();
        let chosen = encode_as(&shot, ImageFormat::Jpeg, &request, &carried).unwrap();
        let half = lossy(
            &shot,
            &request,
            &Jpeg {
                chroma: Chroma::Half,
                carried: &carried,
            },
        )
        .unwrap();
        assert!(chosen.ssimulacra2.unwrap() >= 80.0);
        assert!(chosen.bytes.len() <= half.bytes.len());
    }

    #[test]
    fn better_of_prefers_reaching_the_target_then_fewer_bytes() {
        let make = |len: usize, score: f64| Encoded {
            bytes: vec![0; len],
            format: ImageFormat::Jpeg,
            quality: Some(80),
            ssimulacra2: Some(score),
            warnings: Vec::new(),
        };
        assert_eq!(
            better_of(make(10, 81.0), make(5, 82.0), 80.0).bytes.len(),
            5
        );
        assert_eq!(
            better_of(make(10, 81.0), make(5, 79.0), 80.0).bytes.len(),
            10
        );
        assert_eq!(
            better_of(make(10, 70.0), make(20, 75.0), 80.0).bytes.len(),
            20
        );
    }
}
