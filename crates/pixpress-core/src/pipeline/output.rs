//! Step 5: pixels → bytes in the target format. Lossless encoders when `lossy` is false (a
//! high fixed quality for JPEG, which has none); otherwise the lossy encoder at the caller's
//! quality, or at the lowest quality whose SSIMULACRA2 reaches the target ([`quality::search`]).
//! `auto` encodes each candidate format this way and keeps the smallest. Transparent pixels
//! going to JPEG are flattened on the background colour first.

use image::{DynamicImage, Rgba as ImageRgba, RgbaImage};

use super::encode::{gif as gif_codec, jpeg, png, webp};
use super::quality::{self, Found};
use super::{OutputFormat, Request};
use crate::warning::{self, Warning};
use crate::{CoreError, ImageFormat};

/// JPEG quality when something forces a re-encode but `lossy` is false (SPEC §5: ≥ 90).
pub const LOSSLESS_JPEG_QUALITY: u8 = 92;
/// Lossy quality when the image is too small to score (under 8×8).
pub const FALLBACK_QUALITY: u8 = 80;
const JPEG_RANGE: std::ops::RangeInclusive<u8> = 30..=95;
const WEBP_RANGE: std::ops::RangeInclusive<u8> = 30..=95;
const PALETTE_RANGE: std::ops::RangeInclusive<u8> = 0..=100;

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
/// PNG is only a candidate when the image has alpha (JPEG has none) or the request is lossless.
fn encode_auto(
    image: &DynamicImage,
    request: &Request,
    carried: &Carried,
) -> Result<Encoded, CoreError> {
    let alpha = has_visible_alpha(image);
    let candidates: &[ImageFormat] = match (request.lossy, alpha) {
        (false, _) => &[ImageFormat::Png, ImageFormat::Webp],
        (true, false) => &[ImageFormat::Jpeg, ImageFormat::Webp],
        (true, true) => &[ImageFormat::Webp, ImageFormat::Png],
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
            fixed(jpeg::encode(image, q, carried)?, format, q)
        }
        (ImageFormat::Jpeg, true) => lossy(image, format, request, JPEG_RANGE, &|img, q| {
            jpeg::encode(img, q, carried).map(Some)
        })?,
        (ImageFormat::Webp, false) => plain(webp::encode_lossless(image)?, format),
        (ImageFormat::Webp, true) => lossy(image, format, request, WEBP_RANGE, &|img, q| {
            webp::encode_lossy(img, q).map(Some)
        })?,
        (ImageFormat::Png, false) => {
            plain(png::encode_lossless(image, carried.icc.as_deref())?, format)
        }
        (ImageFormat::Png, true) => png_lossy(image, request, carried)?,
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
    let settled = match quality::search(image, target, PALETTE_RANGE, &trial)? {
        Some(found) if found.reached && found.whole_image_bytes.is_some() => {
            Some((found.quality, found.score))
        }
        // Searched on the sample: check (and raise) on the whole image before trusting it.
        Some(found) if found.reached => {
            quality::finish_on_whole_image(image, &found, target, *PALETTE_RANGE.end(), &trial)?
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
