//! Step 3: bytes → pixels, once per job, whatever the number of outputs. A still image is
//! decoded with EXIF orientation applied and its colour profile converted to sRGB ([`profile`])
//! unless the request keeps it; the metadata policy decides here what the encoder writes
//! ([`Carried`]). An animation is decoded to every frame on a full canvas with its delay. The
//! lossless shortcut decodes nothing. This module owns the general decoder.

use image::metadata::Orientation;
use image::{AnimationDecoder, DynamicImage, ImageDecoder};

use super::job::Job;
use super::plan::{Kind, Plan};
use super::probe::{self, Probe};
use super::profile;
use super::request::{Metadata, Request};
use crate::codec::exif::{self, KeepExif};
use crate::codec::{avif, gif as gif_codec, Carried, RgbaFrame};
use crate::error::CoreError;
use crate::format::ImageFormat;
use crate::limits::Limits;
use crate::warning::{self, Warning};

/// What the decode step hands on, by the plan's [`Kind`].
pub enum Source {
    /// The lossless shortcut: the input bytes are re-coded as they are.
    Untouched,
    /// Upright sRGB pixels (unless the profile is kept) and the metadata to write with them.
    Still {
        image: DynamicImage,
        carried: Carried,
    },
    /// Every frame of an animation.
    Frames(Animation),
}

pub struct Animation {
    pub frames: Vec<RgbaFrame>,
    /// `None` plays once, `Some(0)` loops forever.
    pub loops: Option<u16>,
}

/// The decoded source and the warnings every output of it shares.
pub struct Decoded {
    pub source: Source,
    pub warnings: Vec<Warning>,
}

/// The step. It gets the whole plan, output sizes included, although it decodes at full size
/// for now: shrink-on-load (a JPEG decoded at 1/2, 1/4 or 1/8 scale when every output is
/// that much smaller) goes here and nowhere else.
pub fn run(job: &Job<'_>, plan: &Plan) -> Result<Decoded, CoreError> {
    match plan.kind {
        Kind::Recode => Ok(Decoded {
            source: Source::Untouched,
            warnings: Vec::new(),
        }),
        Kind::Animated => Ok(Decoded {
            source: Source::Frames(frames(job.input, job.probe, job.limits)?),
            warnings: Vec::new(),
        }),
        Kind::Still => still(job, plan.target),
    }
}

fn still(job: &Job<'_>, target: Option<ImageFormat>) -> Result<Decoded, CoreError> {
    let probe = job.probe;
    let decoded = oriented(job.input, probe, job.limits, job.request.metadata)?;
    let mut warnings: Vec<Warning> = orientation_warning(probe).into_iter().collect();
    if probe.is_animated() {
        warnings.push(Warning::new(
            warning::ANIMATION_FRAMES_DROPPED,
            format!(
                "the output format has no animation: the first of {} frames was used",
                probe.frames
            ),
        ));
    }
    let (image, carried, metadata_warnings) = apply_policy(decoded, job.request, target);
    warnings.extend(metadata_warnings);
    Ok(Decoded {
        source: Source::Still { image, carried },
        warnings,
    })
}

/// Pixels and what travels with them, decoded with EXIF orientation applied.
struct Oriented {
    image: DynamicImage,
    icc: Option<Vec<u8>>,
    /// TIFF payload of the EXIF block.
    exif: Option<Vec<u8>>,
    xmp: Option<Vec<u8>>,
}

/// Upright pixels without any metadata, for the lossless shortcut's WebP check.
pub fn pixels(input: &[u8], probe: &Probe, limits: &Limits) -> Result<DynamicImage, CoreError> {
    Ok(oriented(input, probe, limits, Metadata::default())?.image)
}

/// Decodes to pixels with EXIF orientation applied. EXIF and XMP are read only when `keep`
/// asks for them (for JPEG each is a second pass over the headers); the ICC profile always is,
/// since colours depend on it.
fn oriented(
    input: &[u8],
    probe: &Probe,
    limits: &Limits,
    keep: Metadata,
) -> Result<Oriented, CoreError> {
    if probe.format == ImageFormat::Avif {
        // libaom, not `image`: the container's ICC, EXIF and XMP items are not carried over.
        return Ok(Oriented {
            image: avif::decode(input)?,
            icc: None,
            exif: None,
            xmp: None,
        });
    }
    let reader = probe::image_reader(input, probe.format, limits);
    let mut decoder = reader.into_decoder().map_err(probe::map_image_error)?;
    let icc = decoder.icc_profile().ok().flatten();
    let exif = if keep.wants_exif() {
        decoder.exif_metadata().ok().flatten()
    } else {
        None
    };
    let xmp = if keep.xmp {
        decoder.xmp_metadata().ok().flatten()
    } else {
        None
    };
    let mut image = DynamicImage::from_decoder(decoder).map_err(probe::map_image_error)?;
    image.apply_orientation(probe.orientation);
    Ok(Oriented {
        image,
        icc,
        exif,
        xmp,
    })
}

fn orientation_warning(probe: &Probe) -> Option<Warning> {
    (probe.orientation != Orientation::NoTransforms).then(|| {
        Warning::new(
            warning::EXIF_ORIENTATION_APPLIED,
            format!(
                "EXIF orientation {} was applied to the pixels and the tag reset",
                probe.orientation.to_exif()
            ),
        )
    })
}

/// Applies the metadata policy: convert to sRGB unless the profile is kept; keep EXIF (upright)
/// and XMP only when asked and only where the target format can carry them.
fn apply_policy(
    decoded: Oriented,
    request: &Request,
    target: Option<ImageFormat>,
) -> (DynamicImage, Carried, Vec<Warning>) {
    let keep = request.metadata;
    let mut warnings = Vec::new();
    let mut image = decoded.image;
    let mut carried = Carried::default();
    if let Some(icc) = decoded.icc {
        if keep.icc && matches!(target, Some(ImageFormat::Jpeg | ImageFormat::Png)) {
            carried.icc = Some(icc);
        } else {
            if keep.icc {
                warnings.push(not_written("the ICC profile", target));
            }
            if let Some(converted) = profile::to_srgb(&image, &icc) {
                image = converted;
            }
        }
    }
    let jpeg_target = target == Some(ImageFormat::Jpeg);
    let keep_exif = keep.keep_exif();
    if keep_exif != KeepExif::Nothing {
        if let Some(mut kept) = decoded.exif.and_then(|tiff| keep_exif.apply(tiff)) {
            if jpeg_target {
                exif::reset_orientation(&mut kept);
                carried.exif = Some(kept);
            } else {
                warnings.push(not_written("EXIF", target));
            }
        }
    }
    if keep.xmp {
        if let Some(xmp) = decoded.xmp {
            if jpeg_target {
                carried.xmp = Some(xmp);
            } else {
                warnings.push(not_written("XMP", target));
            }
        }
    }
    (image, carried, warnings)
}

fn not_written(what: &str, target: Option<ImageFormat>) -> Warning {
    let format = target.map_or("the chosen format", |f| f.name());
    Warning::new(
        warning::METADATA_NOT_KEPT,
        format!("{what} was asked to be kept but is not written to {format} output yet"),
    )
}

/// Every frame of an animated GIF or WebP on a full RGBA canvas, with its delay and the loop
/// count. The pixel limit is checked again as frames arrive (the header's count may lie).
fn frames(input: &[u8], probe: &Probe, limits: &Limits) -> Result<Animation, CoreError> {
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
