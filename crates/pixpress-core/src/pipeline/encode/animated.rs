//! The encode step for animations (SPEC §5): frames written again as an animated GIF (one
//! imagequant palette per frame, changed rectangles only) or an animated WebP (libwebp's
//! animation encoder, which finds sub-rectangles and blending itself). Lossy quality is searched
//! on the first frame and used for all of them: scoring every frame of every trial would cost
//! frames × trials encodes. For `lossy: false` every frame of the output is decoded and
//! compared with its source frame ([`verify`]); an output that differs is kept but says so
//! (warning `lossless_not_available`), and `auto` prefers one that passed. Not the original as
//! the fallback here: an animation is re-encoded for a resize or a format, which the input
//! would not honour (libwebp's animation encoder changes a few hundred pixels of some frames
//! of gif_chi_anim.gif, found by this check).

use image::{DynamicImage, RgbaImage};

use super::encoded::{lossless_rank, round_score, smallest, Encoded, FALLBACK_QUALITY};
use super::still::gif_not_lossless;
use crate::codec::gif::{self as gif_codec, Gif};
use crate::codec::webp::{self, Webp};
use crate::codec::{Codec, RgbaFrame};
use crate::error::CoreError;
use crate::format::ImageFormat;
use crate::pipeline::quality;
use crate::pipeline::request::{OutputFormat, Request};
use crate::pipeline::verify;
use crate::warning::{self, Warning};

/// Writes frames in the request's animated format (`auto`: the smaller of GIF and WebP).
pub fn encode(
    frames: &[RgbaFrame],
    loops: Option<u16>,
    input: ImageFormat,
    request: &Request,
) -> Result<Encoded, CoreError> {
    if request.has_budget() {
        return Err(CoreError::NotSupported(
            "max_bytes and min_ssimulacra2 for animations (send them for still images)".into(),
        ));
    }
    let candidates = candidates(input, request);
    smallest(
        &candidates,
        |format| encode_as(frames, loops, format, request),
        |e| lossless_rank(e, request.lossy),
    )
}

/// The animated formats the request lets an animation be written in, in trial order.
pub fn candidates(input: ImageFormat, request: &Request) -> Vec<ImageFormat> {
    let animating = [ImageFormat::Webp, ImageFormat::Gif];
    match request.format {
        OutputFormat::Auto => animating.to_vec(),
        OutputFormat::Among(set) => animating.into_iter().filter(|f| set.contains(*f)).collect(),
        OutputFormat::Gif => vec![ImageFormat::Gif],
        OutputFormat::Webp => vec![ImageFormat::Webp],
        _ => vec![match input {
            ImageFormat::Gif => ImageFormat::Gif,
            _ => ImageFormat::Webp,
        }],
    }
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
    let (quality, score) = if request.lossy {
        first_frame_quality(&first.image, format, request)?
    } else {
        (None, None)
    };
    let bytes = match format {
        ImageFormat::Gif => gif_codec::encode_animation(frames, loops, quality.unwrap_or(100))?,
        _ => webp::encode_animation(frames, loops, quality)?,
    };
    let mut warnings = Vec::new();
    if !request.lossy {
        match verify::frames(frames, &bytes, format) {
            Ok(()) => {}
            Err(CoreError::LosslessCheckFailed(why)) => warnings.push(not_lossless(format, &why)),
            Err(e) => return Err(e),
        }
    }
    Ok(Encoded {
        bytes,
        format,
        quality,
        ssimulacra2: score,
        warnings,
    })
}

fn not_lossless(format: ImageFormat, why: &str) -> Warning {
    if format == ImageFormat::Gif {
        return gif_not_lossless(why);
    }
    Warning::new(
        warning::LOSSLESS_NOT_AVAILABLE,
        format!("{why}: the animated WebP encoder did not keep every pixel, so it is not lossless"),
    )
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
    let codec: &dyn Codec = match format {
        ImageFormat::Gif => &Gif,
        _ => &Webp,
    };
    Ok(match quality::search(&image, request.target(), codec)? {
        Some(found) => (Some(found.quality), Some(round_score(found.score))),
        None => (Some(FALLBACK_QUALITY), None),
    })
}
