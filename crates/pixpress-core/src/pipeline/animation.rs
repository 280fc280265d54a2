//! Animated GIF and WebP through resize, compression and conversion (SPEC §5): decode every
//! frame to a full RGBA canvas with its delay, follow the same plan on each, and write them
//! again as an animated GIF (one imagequant palette per frame, changed rectangles only) or an
//! animated WebP (libwebp's animation encoder, which finds sub-rectangles and blending itself).
//! Lossy quality is searched on the first frame and used for all of them: scoring every frame
//! of every trial would cost frames × trials encodes.

use image::{AnimationDecoder, DynamicImage, RgbaImage};

use super::encode::gif::{self as gif_codec, RgbaFrame};
use super::encode::webp;
use super::output::{self, round_score};
use super::plan::Plan;
use super::probe::{self, Probe};
use super::{quality, transform, OutputFormat, Request};
use crate::{CoreError, ImageFormat, Limits};

pub struct Animation {
    pub frames: Vec<RgbaFrame>,
    /// `None` plays once, `Some(0)` loops forever.
    pub loops: Option<u16>,
}

pub struct Encoded {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    pub quality: Option<u8>,
    pub ssimulacra2: Option<f64>,
    pub width: u32,
    pub height: u32,
}

/// Whether the request's target keeps animation (GIF, WebP or auto).
pub fn target_animates(request: &Request, input: ImageFormat) -> bool {
    match request.format {
        OutputFormat::Same => matches!(input, ImageFormat::Gif | ImageFormat::Webp),
        OutputFormat::Gif | OutputFormat::Webp | OutputFormat::Auto => true,
        OutputFormat::Jpeg | OutputFormat::Png | OutputFormat::Avif => false,
    }
}

pub fn decode(input: &[u8], probe: &Probe, limits: &Limits) -> Result<Animation, CoreError> {
    let reader = std::io::Cursor::new(input);
    let frames = match probe.format {
        ImageFormat::Gif => {
            let decoder =
                image::codecs::gif::GifDecoder::new(reader).map_err(probe::map_image_error)?;
            collect(decoder.into_frames(), limits)?
        }
        ImageFormat::Webp => {
            let decoder =
                image::codecs::webp::WebPDecoder::new(reader).map_err(probe::map_image_error)?;
            collect(decoder.into_frames(), limits)?
        }
        other => {
            return Err(CoreError::NotSupported(format!(
                "animated {} cannot be re-encoded yet",
                other.name()
            )))
        }
    };
    let loops = match probe.format {
        ImageFormat::Gif => gif_codec::loop_count(input),
        _ => webp_loop_count(input),
    };
    Ok(Animation { frames, loops })
}

fn collect(frames: image::Frames<'_>, limits: &Limits) -> Result<Vec<RgbaFrame>, CoreError> {
    let mut out = Vec::new();
    let mut pixels: u64 = 0;
    for frame in frames {
        let frame = frame.map_err(probe::map_image_error)?;
        let (numerator, denominator) = frame.delay().numer_denom_ms();
        let delay_ms = numerator.checked_div(denominator).unwrap_or(0);
        let image = frame.into_buffer();
        pixels = pixels.saturating_add(u64::from(image.width()) * u64::from(image.height()));
        limits.check_pixels(pixels, 1, 1)?;
        out.push(RgbaFrame { image, delay_ms });
    }
    if out.is_empty() {
        return Err(CoreError::Corrupt("the animation has no frames".into()));
    }
    Ok(out)
}

/// The loop count in a WebP's ANIM chunk (bytes 4–5 of its payload, 0 = forever).
fn webp_loop_count(input: &[u8]) -> Option<u16> {
    let mut at = 12;
    while at + 8 <= input.len() {
        let id = &input[at..at + 4];
        let size = u32::from_le_bytes(input[at + 4..at + 8].try_into().ok()?) as usize;
        if id == b"ANIM" {
            let payload = input.get(at + 8..at + 8 + 6)?;
            return Some(u16::from_le_bytes([payload[4], payload[5]]));
        }
        at = at.checked_add(8 + size + (size & 1))?;
    }
    Some(0)
}

/// Applies `plan` to every frame.
pub fn transform_frames(animation: &Animation, plan: &Plan) -> Result<Vec<RgbaFrame>, CoreError> {
    animation
        .frames
        .iter()
        .map(|frame| {
            let source = DynamicImage::ImageRgba8(frame.image.clone());
            let image: RgbaImage = transform::execute(&source, plan)?.to_rgba8();
            Ok(RgbaFrame {
                image,
                delay_ms: frame.delay_ms,
            })
        })
        .collect()
}

/// Writes frames in the request's animated format (`auto`: the smaller of GIF and WebP).
pub fn encode(
    frames: &[RgbaFrame],
    loops: Option<u16>,
    input: ImageFormat,
    request: &Request,
) -> Result<Encoded, CoreError> {
    let candidates: &[ImageFormat] = match request.format {
        OutputFormat::Auto => &[ImageFormat::Webp, ImageFormat::Gif],
        OutputFormat::Gif => &[ImageFormat::Gif],
        OutputFormat::Webp => &[ImageFormat::Webp],
        _ => std::slice::from_ref(match input {
            ImageFormat::Gif => &ImageFormat::Gif,
            _ => &ImageFormat::Webp,
        }),
    };
    output::smallest(
        candidates,
        |format| encode_as(frames, loops, format, request),
        |e| e.bytes.len(),
    )
}

fn encode_as(
    frames: &[RgbaFrame],
    loops: Option<u16>,
    format: ImageFormat,
    request: &Request,
) -> Result<Encoded, CoreError> {
    let first = frames
        .first()
        .ok_or_else(|| CoreError::Encode("no frames".into()))?;
    let (width, height) = first.image.dimensions();
    let (quality, score) = if request.lossy {
        first_frame_quality(&first.image, format, request)?
    } else {
        (None, None)
    };
    let bytes = match format {
        ImageFormat::Gif => gif_codec::encode_animation(frames, loops, quality.unwrap_or(100))?,
        _ => webp::encode_animation(frames, loops, quality)?,
    };
    Ok(Encoded {
        bytes,
        format,
        quality,
        ssimulacra2: score,
        width,
        height,
    })
}

/// The quality for every frame: the caller's, or the one the search finds on the first frame.
fn first_frame_quality(
    first: &RgbaImage,
    format: ImageFormat,
    request: &Request,
) -> Result<(Option<u8>, Option<f64>), CoreError> {
    if let Some(q) = request.quality {
        return Ok((Some(q), None));
    }
    let image = DynamicImage::ImageRgba8(first.clone());
    let (range, trial): (_, Box<quality::Trial<'_>>) = match format {
        ImageFormat::Gif => (
            0..=100,
            Box::new(|img: &DynamicImage, q| gif_codec::encode_still(img, q).map(Some)),
        ),
        _ => (
            30..=95,
            Box::new(|img: &DynamicImage, q| webp::encode_lossy(img, q).map(Some)),
        ),
    };
    Ok(
        match quality::search(&image, request.target(), range, &*trial)? {
            Some(found) => (Some(found.quality), Some(round_score(found.score))),
            None => (Some(output::FALLBACK_QUALITY), None),
        },
    )
}
