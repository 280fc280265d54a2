//! Step 5: pixels → bytes in the target format. Lossless encoders when `lossy` is false (a
//! high fixed quality for JPEG, which has none); otherwise the lossy encoder at the caller's
//! quality, or at the lowest quality whose SSIMULACRA2 reaches the target ([`quality::search`]).
//! `auto` encodes each candidate format this way and keeps the smallest. Transparent pixels
//! going to JPEG are flattened on the background colour first.

use image::{DynamicImage, Rgba as ImageRgba, RgbaImage};

use super::encode::jpeg::{self, Chroma};
use super::encode::{avif, gif as gif_codec, png, webp};
use super::quality::{self, Found};
use super::{OutputFormat, Request};
use crate::warning::{self, Warning};
use crate::{CoreError, ImageFormat};

/// JPEG quality when something forces a re-encode but `lossy` is false (SPEC §5: ≥ 90).
pub const LOSSLESS_JPEG_QUALITY: u8 = 92;
/// AVIF quality when `lossy` is false but the request asks for AVIF: ravif has no lossless mode.
pub const LOSSLESS_AVIF_QUALITY: u8 = 92;
/// Lossy quality when the image is too small to score (under 8×8).
pub const FALLBACK_QUALITY: u8 = 80;
const JPEG_RANGE: std::ops::RangeInclusive<u8> = 30..=95;
const WEBP_RANGE: std::ops::RangeInclusive<u8> = 30..=95;
/// At AVIF quality 40 the corpus photos already score 44–69 (png_coffee_photo 44.3, photo_storm
/// 68.6), below any sensible target; starting there saves one of the slow AVIF trials.
const AVIF_RANGE: std::ops::RangeInclusive<u8> = 40..=95;
const PALETTE_RANGE: std::ops::RangeInclusive<u8> = 0..=100;
/// When the palette search's top quality falls short of the target by at most this much,
/// libimagequant's slower speed 2 gets one try before the lossless fallback (a few tenths of a
/// point is what the slower speed gains; further away it would only cost time).
const PALETTE_HARDEST_TRY_WITHIN: f64 = 1.0;
/// ...and only up to this many pixels: the slow palette costs seconds per megapixel (8 s more
/// for the 3 MP emerald logo, on a loaded machine, where 0.25 MP logos take 0.3 s).
const PALETTE_HARDEST_TRY_UP_TO_PIXELS: u64 = 1_000_000;

/// Metadata that travels with the pixels to the encoder (already filtered by the policy).
#[derive(Clone, Debug, Default)]
pub struct Carried {
    pub icc: Option<Vec<u8>>,
    /// TIFF payload of an EXIF block (after "Exif\0\0"), orientation already reset to 1.
    pub exif: Option<Vec<u8>>,
    pub xmp: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    pub quality: Option<u8>,
    pub ssimulacra2: Option<f64>,
    pub warnings: Vec<Warning>,
}

/// The concrete format a still image is written in.
pub fn resolve(target: OutputFormat, input: ImageFormat) -> Option<ImageFormat> {
    match target {
        OutputFormat::Same => Some(input),
        OutputFormat::Jpeg => Some(ImageFormat::Jpeg),
        OutputFormat::Png => Some(ImageFormat::Png),
        OutputFormat::Webp => Some(ImageFormat::Webp),
        OutputFormat::Gif => Some(ImageFormat::Gif),
        OutputFormat::Avif => Some(ImageFormat::Avif),
        OutputFormat::Auto => None,
    }
}

/// Encodes one still image for `request`, in `input`'s format unless the request converts.
pub fn encode(
    image: &DynamicImage,
    input: ImageFormat,
    request: &Request,
    carried: &Carried,
) -> Result<Encoded, CoreError> {
    match resolve(request.format, input) {
        Some(format) => encode_as(image, format, request, carried),
        None => encode_auto(image, request, carried),
    }
}

/// `auto`: the smallest of the formats that suit the image, each at the same perceptual target.
/// PNG is only a candidate when the image has alpha (JPEG has none) or the request is lossless;
/// AVIF only when lossy (it has no lossless mode here).
fn encode_auto(
    image: &DynamicImage,
    request: &Request,
    carried: &Carried,
) -> Result<Encoded, CoreError> {
    let alpha = has_visible_alpha(image);
    let candidates: &[ImageFormat] = match (request.lossy, alpha) {
        (false, _) => &[ImageFormat::Png, ImageFormat::Webp],
        (true, false) => &[ImageFormat::Jpeg, ImageFormat::Webp, ImageFormat::Avif],
        (true, true) => &[ImageFormat::Webp, ImageFormat::Avif, ImageFormat::Png],
    };
    smallest(
        candidates,
        |format| encode_as(image, format, request, carried),
        |e| e.bytes.len(),
    )
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

pub fn encode_as(
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
        (ImageFormat::Webp, false) => plain(webp::encode_lossless(image)?, format),
        (ImageFormat::Webp, true) => lossy(image, format, request, WEBP_RANGE, &|img, q| {
            webp::encode_lossy(img, q).map(Some)
        })?,
        (ImageFormat::Png, false) => {
            plain(png::encode_lossless(image, carried.icc.as_deref())?, format)
        }
        (ImageFormat::Png, true) => png_lossy(image, request, carried)?,
        (ImageFormat::Avif, false) => {
            let q = LOSSLESS_AVIF_QUALITY.max(request.quality.unwrap_or(0));
            let bytes = avif::encode_lossy(image, q)?;
            Encoded {
                ssimulacra2: quality::score_bytes(image, &bytes).map(round_score),
                ..fixed(bytes, format, q)
            }
        }
        (ImageFormat::Avif, true) => lossy(image, format, request, AVIF_RANGE, &|img, q| {
            avif::encode_lossy(img, q).map(Some)
        })?,
        (ImageFormat::Gif, false) => plain(gif_codec::encode_still(image, 100)?, format),
        (ImageFormat::Gif, true) => lossy(image, format, request, PALETTE_RANGE, &|img, q| {
            gif_codec::encode_still(img, q).map(Some)
        })?,
    };
    encoded.warnings.splice(0..0, warnings);
    Ok(encoded)
}

fn plain(bytes: Vec<u8>, format: ImageFormat) -> Encoded {
    Encoded {
        bytes,
        format,
        quality: None,
        ssimulacra2: None,
        warnings: Vec::new(),
    }
}

fn fixed(bytes: Vec<u8>, format: ImageFormat, quality: u8) -> Encoded {
    Encoded {
        quality: Some(quality),
        ..plain(bytes, format)
    }
}

/// Lossy at the caller's quality (scored for the response), or at the searched one.
fn lossy(
    image: &DynamicImage,
    format: ImageFormat,
    request: &Request,
    range: std::ops::RangeInclusive<u8>,
    encode: &quality::Trial<'_>,
) -> Result<Encoded, CoreError> {
    if let Some(q) = request.quality {
        let bytes = encode(image, q)?
            .ok_or_else(|| CoreError::Encode(format!("{} encoder gave nothing", format.name())))?;
        let score = quality::score_bytes(image, &bytes);
        return Ok(Encoded {
            ssimulacra2: score,
            ..fixed(bytes, format, q)
        });
    }
    let target = request.target();
    let Some(found) = quality::search(image, target, range.clone(), encode)? else {
        let bytes = encode(image, FALLBACK_QUALITY)?
            .ok_or_else(|| CoreError::Encode(format!("{} encoder gave nothing", format.name())))?;
        return Ok(fixed(bytes, format, FALLBACK_QUALITY));
    };
    let mut warnings = Vec::new();
    if !found.reached {
        warnings.push(target_not_reached(format, &found, target));
    }
    let (bytes, quality, score) = match found.whole_image_bytes {
        Some(bytes) => (bytes, found.quality, found.score),
        None => quality::finish_on_whole_image(image, &found, target, *range.end(), encode)?
            .ok_or_else(|| CoreError::Encode(format!("{} encoder gave nothing", format.name())))?,
    };
    Ok(Encoded {
        bytes,
        format,
        quality: Some(quality),
        ssimulacra2: Some(round_score(score)),
        warnings,
    })
}

/// JPEG lossy at 4:2:0; for screen content also at 4:4:4, keeping the smaller of the two that
/// reach the target (4:4:4 often needs a lower quality there, since 4:2:0 smears coloured edges
/// that SSIMULACRA2 sees).
fn jpeg_lossy(
    image: &DynamicImage,
    request: &Request,
    carried: &Carried,
) -> Result<Encoded, CoreError> {
    let at = |chroma: Chroma| {
        lossy(image, ImageFormat::Jpeg, request, JPEG_RANGE, &|img, q| {
            jpeg::encode(img, q, chroma, carried).map(Some)
        })
    };
    let half = at(Chroma::Half)?;
    if !looks_like_screen_content(image) {
        return Ok(half);
    }
    let full = at(Chroma::Full)?;
    Ok(better_of(half, full, request.target()))
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
    carried: &Carried,
) -> Result<Encoded, CoreError> {
    let rgba = image.to_rgba8();
    let icc = carried.icc.as_deref();
    if let Some(q) = request.quality {
        return Ok(match png::quantize(&rgba, q, icc)? {
            Some(bytes) => Encoded {
                ssimulacra2: quality::score_bytes(image, &bytes).map(round_score),
                ..fixed(bytes, ImageFormat::Png, q)
            },
            None => plain(png::encode_lossless(image, icc)?, ImageFormat::Png),
        });
    }
    let trial = |img: &DynamicImage, q: u8| png::quantize_raw(&img.to_rgba8(), q);
    let target = request.target();
    let found = quality::search(image, target, PALETTE_RANGE, &trial)?;
    let settled = match &found {
        Some(found) if found.reached && found.whole_image_bytes.is_some() => {
            Some((found.quality, found.score))
        }
        // Searched on the sample: check (and raise) on the whole image before trusting it.
        Some(found) if found.reached => {
            quality::finish_on_whole_image(image, found, target, *PALETTE_RANGE.end(), &trial)?
                .map(|(_, q, score)| (q, score))
        }
        _ => None,
    };
    if let Some((q, score)) = settled.filter(|&(_, score)| score >= target) {
        if let Some(bytes) = png::quantize(&rgba, q, icc)? {
            return Ok(Encoded {
                ssimulacra2: Some(round_score(score)),
                ..fixed(bytes, ImageFormat::Png, q)
            });
        }
    }
    let top_score = found
        .as_ref()
        .map_or(f64::NEG_INFINITY, |found| found.score);
    let pixels = u64::from(rgba.width()) * u64::from(rgba.height());
    if top_score >= target - PALETTE_HARDEST_TRY_WITHIN
        && pixels <= PALETTE_HARDEST_TRY_UP_TO_PIXELS
    {
        if let Some(quantized) = png::quantize_hardest(&rgba)? {
            let raw = png::indexed_png(&rgba, &quantized, icc)?;
            if let Some(score) = quality::score_bytes(image, &raw).filter(|&s| s >= target) {
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

fn target_not_reached(format: ImageFormat, found: &Found, target: f64) -> Warning {
    Warning::new(
        warning::QUALITY_TARGET_NOT_REACHED,
        format!(
            "{} at its top searched quality {} scores SSIMULACRA2 {:.1}, below the target {target}",
            format.name(),
            found.quality,
            found.score
        ),
    )
}

pub fn round_score(score: f64) -> f64 {
    (score * 100.0).round() / 100.0
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

    #[test]
    fn screen_content_jpeg_is_never_larger_than_4_2_0_at_the_same_target() {
        let shot = corpus("png_plasma_screenshot.png");
        let request = Request {
            lossy: true,
            ..Request::default()
        };
        let carried = Carried::default();
        let chosen = encode_as(&shot, ImageFormat::Jpeg, &request, &carried).unwrap();
        let half = lossy(&shot, ImageFormat::Jpeg, &request, JPEG_RANGE, &|img, q| {
            jpeg::encode(img, q, Chroma::Half, &carried).map(Some)
        })
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
