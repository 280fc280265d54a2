//! Step 3: bytes → pixels, once per job, whatever the number of outputs. A still image is
//! decoded with EXIF orientation applied and its colour profile converted to sRGB ([`profile`])
//! unless the request keeps it; the metadata policy decides here what the encoder writes
//! ([`Carried`]). An animation is decoded to every frame on a full canvas with its delay. The
//! lossless shortcut decodes nothing. This module owns the general decoder.
//!
//! CMYK and YCCK JPEGs: the decoder turns the inks into RGB with the uncalibrated formula
//! (R = (1 − C)(1 − K), likewise G and B, Adobe's inverted storage undone), which is what
//! colour-unmanaged viewers show. That is an assumed profile, so it is said in a warning
//! (`cmyk_profile_assumed`), and an embedded CMYK profile is dropped: it describes the inks,
//! not the RGB pixels.
//!
//! Shrink-on-load: when every output of a JPEG or an opaque still WebP is a reduction by
//! enough, it is decoded at 1/2, 1/4 or 1/8 scale, a JPEG in the DCT domain ([`jpeg_decode`]),
//! a WebP by libwebp's rescaler ([`webp::decode_scaled`]), and the transform step finishes
//! with its usual Lanczos3 from there. As libvips' `vips_thumbnail` does it, the scale is the
//! largest that still leaves every output a reduction of at least [`SHRINK_MARGIN`] from the
//! decoded pixels ([`shrink_factor`]). Only this step picks the scale; what it hands on says
//! how the smaller pixels map onto the source the plan was made for ([`Shrink`]), so the
//! geometry (crop window in source pixels, output size) is exactly what it is without it.

use image::metadata::Orientation;
use image::{AnimationDecoder, DynamicImage, ImageDecoder};

use super::job::Job;
use super::plan::geometry::ResizePlan;
use super::plan::{Kind, OutputPlan, Plan};
use super::probe::{self, Probe};
use super::profile;
use super::request::{Metadata, Request};
use crate::codec::exif::{self, KeepExif};
use crate::codec::{avif, gif as gif_codec, jpeg_decode, jxl, webp, Carried, RgbaFrame};
use crate::error::CoreError;
use crate::format::{ImageFormat, InputFormat};
use crate::limits::Limits;
use crate::warning::{self, Warning};

/// What the decode step hands on, by the plan's [`Kind`].
pub enum Source {
    /// The lossless shortcut: the input bytes are re-coded as they are.
    Untouched,
    /// Upright sRGB pixels (unless the profile is kept) and the metadata to write with them.
    /// `shrink` is `Some` when the pixels were decoded smaller than the source.
    Still {
        image: DynamicImage,
        carried: Carried,
        shrink: Option<Shrink>,
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

/// How upright pixels decoded at 1/`factor` scale map onto the upright source the plan was
/// made for: a point `u` (in source pixels, per axis) is at `u / factor + origin` in them.
///
/// `origin` is not always zero because the decoder rounds each stored side up
/// (`ceil(side / factor)`): the extra fraction of a pixel lies past the stored image's right
/// and bottom edges, which an EXIF orientation that reverses an axis moves to the start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shrink {
    /// 2, 4 or 8.
    pub factor: u32,
    /// Where the source's top-left corner lies in the decoded pixels: 0 or a fraction of a
    /// pixel on each axis.
    pub origin: (f64, f64),
}

impl Shrink {
    /// `stored` is the source's stored size, `decoded` the reduced decoder's stored size, and
    /// `orientation` the EXIF orientation applied to the decoded pixels afterwards.
    fn new(
        factor: u32,
        stored: (u32, u32),
        decoded: (u32, u32),
        orientation: Orientation,
    ) -> Shrink {
        // The stored axis each upright axis comes from, and whether it runs backwards.
        let swap = probe::swaps_axes(orientation);
        let (reversed_x, reversed_y) = reversed_axes(orientation);
        let (along_x, along_y) = if swap {
            ((stored.1, decoded.1), (stored.0, decoded.0))
        } else {
            ((stored.0, decoded.0), (stored.1, decoded.1))
        };
        let overhang = |(side, decoded): (u32, u32), reversed: bool| {
            if reversed {
                f64::from(decoded) - f64::from(side) / f64::from(factor)
            } else {
                0.0
            }
        };
        Shrink {
            factor,
            origin: (overhang(along_x, reversed_x), overhang(along_y, reversed_y)),
        }
    }
}

/// For the upright x and y axes: whether each runs against the stored axis it comes from, as
/// `DynamicImage::apply_orientation` turns the pixels (checked against it in the tests).
pub fn reversed_axes(orientation: Orientation) -> (bool, bool) {
    match orientation {
        Orientation::NoTransforms | Orientation::Rotate90FlipH => (false, false),
        Orientation::FlipHorizontal | Orientation::Rotate90 => (true, false),
        Orientation::FlipVertical | Orientation::Rotate270 => (false, true),
        Orientation::Rotate180 | Orientation::Rotate270FlipH => (true, true),
    }
}

/// How much reduction every output keeps for the final Lanczos3 step after shrink-on-load, as
/// a fraction: the decoded crop window must be at least `SHRINK_MARGIN.0 / SHRINK_MARGIN.1`
/// times the output on both axes. The DCT-domain reduction is a cruder filter than Lanczos3
/// (it truncates each block's spectrum), and the less is left for Lanczos3 the more that
/// shows. Measured on the six corpus photos (`shrink_margin_quality`, SSIMULACRA2 against the
/// full decode + Lanczos3): a remaining reduction of 2 or more scored 92.9–97.5; 1.6 down to
/// 91.9; 1.5 down to 88.6; 1 to 1.2 down to 82.0. 2 is also libvips' and sharp's choice.
pub const SHRINK_MARGIN: (u64, u64) = (2, 1);

/// The shrink-on-load scale for a JPEG with these outputs: the largest of 8, 4 and 2 that
/// leaves every output a reduction by [`SHRINK_MARGIN`] from the decoded crop window on both
/// axes, or 1 (full size). 1 as soon as one output is at the source size or uses smart crop
/// (whose window is placed by a saliency measure over the full-size pixels, which a smaller
/// image would place differently).
pub fn shrink_factor(outputs: &[OutputPlan]) -> u32 {
    outputs
        .iter()
        .map(|output| output.resize.as_ref().map_or(1, output_shrink_factor))
        .min()
        .unwrap_or(1)
}

fn output_shrink_factor(plan: &ResizePlan) -> u32 {
    if plan.smart_crop.is_some() {
        return 1;
    }
    let (crop_w, crop_h) = plan.crop.size();
    let (out_w, out_h) = plan.scaled;
    let leaves_margin = |crop: u32, out: u32, factor: u32| {
        let (num, den) = SHRINK_MARGIN;
        u64::from(crop) * den >= u64::from(out) * u64::from(factor) * num
    };
    jpeg_decode::SCALES
        .iter()
        .rev()
        .copied()
        .find(|&f| leaves_margin(crop_w, out_w, f) && leaves_margin(crop_h, out_h, f))
        .unwrap_or(1)
}

/// The step. It gets the whole plan, output sizes included, so that a JPEG whose outputs are
/// all much smaller than it can be decoded smaller ([`shrink_factor`]); this is the only place
/// that decides it.
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
        Kind::Still => still(job, plan),
    }
}

fn still(job: &Job<'_>, plan: &Plan) -> Result<Decoded, CoreError> {
    // The factor the outputs allow; `shrunk` decides whether this input can be decoded at it.
    still_at(job, plan, shrink_factor(&plan.outputs))
}

/// [`still`] at a given shrink-on-load factor (1: full size).
fn still_at(job: &Job<'_>, plan: &Plan, shrink_by: u32) -> Result<Decoded, CoreError> {
    let probe = job.probe;
    let mut decoded = oriented(
        job.input,
        probe,
        job.limits,
        job.request.metadata,
        shrink_by,
    )?;
    let mut warnings: Vec<Warning> = orientation_warning(probe).into_iter().collect();
    if probe.format == InputFormat::Jpeg {
        if let Some(model) = four_component_model(job.input) {
            warnings.push(cmyk_profile_assumed(model, decoded.icc.is_some()));
            decoded.icc = None;
        }
    }
    if probe.is_animated() {
        warnings.push(frames_dropped(probe));
    }
    let shrink = decoded.shrink;
    let (image, carried, metadata_warnings) = apply_policy(decoded, job.request, plan.target);
    warnings.extend(metadata_warnings);
    Ok(Decoded {
        source: Source::Still {
            image,
            carried,
            shrink,
        },
        warnings,
    })
}

/// Pixels and what travels with them, decoded with EXIF orientation applied.
struct Oriented {
    image: DynamicImage,
    /// `Some` when the pixels were decoded smaller than the source.
    shrink: Option<Shrink>,
    icc: Option<Vec<u8>>,
    /// TIFF payload of the EXIF block.
    exif: Option<Vec<u8>>,
    xmp: Option<Vec<u8>>,
}

/// Upright pixels without any metadata, for the lossless shortcut's WebP check.
pub fn pixels(input: &[u8], probe: &Probe, limits: &Limits) -> Result<DynamicImage, CoreError> {
    Ok(oriented(input, probe, limits, Metadata::default(), 1)?.image)
}

/// Decodes to pixels with EXIF orientation applied. EXIF and XMP are read only when `keep`
/// asks for them (for JPEG each is a second pass over the headers); the ICC profile always is,
/// since colours depend on it. A JPEG is decoded at 1/`shrink_by` scale when that is more than
/// 1 and the reduced decoder takes the file; metadata comes from the general decoder's header
/// pass either way, so it is the same.
fn oriented(
    input: &[u8],
    probe: &Probe,
    limits: &Limits,
    keep: Metadata,
    shrink_by: u32,
) -> Result<Oriented, CoreError> {
    match probe.format {
        // libaom, not `image`: the container's ICC, EXIF and XMP items are not carried over.
        InputFormat::Avif => return Ok(without_metadata(avif::decode(input)?, None)),
        // jxl-oxide renders upright; the profile comes along when the pixels are not sRGB.
        InputFormat::Jxl => {
            let (image, icc) = jxl::decode(input, limits.max_alloc_bytes)?;
            return Ok(without_metadata(integer_samples(image), icc));
        }
        _ => {}
    }
    let reader = probe::image_reader(input, probe.format, limits)?;
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
    let (mut image, shrink) = match shrunk(input, probe, shrink_by) {
        Some((image, shrink)) => (image, Some(shrink)),
        None => (
            DynamicImage::from_decoder(decoder).map_err(probe::map_image_error)?,
            None,
        ),
    };
    image.apply_orientation(probe.orientation);
    Ok(Oriented {
        image: integer_samples(image),
        shrink,
        icc,
        exif,
        xmp,
    })
}

/// Pixels from a decoder that reads no EXIF or XMP, with the profile they are in, if any.
fn without_metadata(image: DynamicImage, icc: Option<Vec<u8>>) -> Oriented {
    Oriented {
        image,
        shrink: None,
        icc,
        exif: None,
        xmp: None,
    }
}

/// Floating-point samples (TIFF and JPEG XL can hold them) as 16-bit integers: no encoder
/// pixpress writes with takes floats, and 16 bits is the most any of them keeps (PNG).
fn integer_samples(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageRgb32F(_) => DynamicImage::ImageRgb16(image.to_rgb16()),
        DynamicImage::ImageRgba32F(_) => DynamicImage::ImageRgba16(image.to_rgba16()),
        other => other,
    }
}

/// The image decoded at 1/`factor` in stored orientation, and how it maps onto the upright
/// source: a JPEG in the DCT domain, an opaque still WebP by libwebp's rescaler. `None`
/// (decode at full size) for factor 1, other formats, or when the reduced decoder declines the
/// file or disagrees with the probe about its size.
fn shrunk(input: &[u8], probe: &Probe, factor: u32) -> Option<(DynamicImage, Shrink)> {
    if factor <= 1 {
        return None;
    }
    let stored = (probe.width, probe.height);
    let expected = (stored.0.div_ceil(factor), stored.1.div_ceil(factor));
    let image = match probe.format {
        InputFormat::Jpeg => jpeg_decode::decode_scaled(input, factor)?,
        InputFormat::Webp => webp::decode_scaled(input, expected.0, expected.1)?,
        _ => return None,
    };
    if (image.width(), image.height()) != expected {
        return None;
    }
    let shrink = Shrink::new(factor, stored, expected, probe.orientation);
    Some((image, shrink))
}

/// "CMYK" or "YCCK" (Adobe APP14 transform 2) for a four-component JPEG, from its markers;
/// `None` for grey and colour JPEGs, or when the markers end before the frame header.
fn four_component_model(input: &[u8]) -> Option<&'static str> {
    let mut pos = 2usize;
    let mut ycck = false;
    loop {
        if *input.get(pos)? != 0xFF {
            return None;
        }
        let marker = *input.get(pos + 1)?;
        if marker == 0xFF {
            pos += 1;
            continue;
        }
        let length = usize::from(u16::from_be_bytes([
            *input.get(pos + 2)?,
            *input.get(pos + 3)?,
        ]));
        let body = input.get(pos + 4..pos + 2 + length)?;
        match marker {
            // APP14 "Adobe": version (2), flags0 (2), flags1 (2), then the transform byte.
            0xEE if body.starts_with(b"Adobe") => ycck = body.get(11) == Some(&2),
            // Start of frame (not DHT, JPG or DAC): precision, height, width, components.
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let model = if ycck { "YCCK" } else { "CMYK" };
                return (*body.get(5)? == 4).then_some(model);
            }
            0xDA | 0xD9 => return None,
            _ => {}
        }
        pos += 2 + length;
    }
}

/// Why only the first frame of an animation was kept: the output format cannot animate, or
/// (AVIF and JPEG XL) the input's frames are not decoded beyond the first.
fn frames_dropped(probe: &Probe) -> Warning {
    let why = match probe.format {
        InputFormat::Avif => "animated AVIF is read as its primary image",
        InputFormat::Jxl => "animated JPEG XL is read as its first frame",
        _ => "the output format has no animation",
    };
    Warning::new(
        warning::ANIMATION_FRAMES_DROPPED,
        format!("{why}: the first of {} frames was used", probe.frames),
    )
}

fn cmyk_profile_assumed(model: &str, had_profile: bool) -> Warning {
    let profile = if had_profile {
        "its CMYK ICC profile cannot be applied here and was dropped"
    } else {
        "it has no ICC profile"
    };
    Warning::new(
        warning::CMYK_PROFILE_ASSUMED,
        format!(
            "the JPEG is {model} and {profile}: its colours were converted to sRGB assuming \
             uncalibrated device CMYK (R = (1 - C)(1 - K), likewise G and B), as viewers \
             without colour management show it; printed colours may differ"
        ),
    )
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
        InputFormat::Gif => {
            let decoder =
                image::codecs::gif::GifDecoder::new(reader).map_err(probe::map_image_error)?;
            collect(decoder.into_frames(), limits)?
        }
        InputFormat::Webp => {
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
        InputFormat::Gif => gif_codec::loop_count(input),
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use image::{GenericImageView, RgbImage};

    use super::*;
    use crate::codec::jpeg::{self, Chroma};
    use crate::pipeline::job::Sizes;
    use crate::pipeline::plan::geometry::{plan_resize, Gravity, ResizeSpec, Strategy};
    use crate::pipeline::score::Reference;
    use crate::pipeline::transform::{self, Pixels};

    const PHOTOS: [&str; 6] = [
        "photo_aqua.jpg",
        "photo_blinds.jpg",
        "photo_elephants_art.jpg",
        "photo_garden.jpg",
        "photo_storm.jpg",
        "photo_wood.jpg",
    ];

    fn corpus(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        std::fs::read(format!("{path}{name}")).expect("corpus file")
    }

    #[test]
    fn four_component_jpegs_are_found_by_their_markers() {
        assert_eq!(
            four_component_model(&corpus("edge/cmyk_adobe_ycck.jpg")),
            Some("YCCK")
        );
        for colour in ["edge/gray.jpg", "edge/progressive.jpg", "photo_storm.jpg"] {
            assert_eq!(four_component_model(&corpus(colour)), None, "{colour}");
        }
        assert_eq!(four_component_model(b"\xFF\xD8\xFF"), None);
    }

    fn spec(strategy: Strategy) -> ResizeSpec {
        ResizeSpec {
            strategy,
            enlarge: false,
        }
    }

    fn outputs(source: (u32, u32), specs: &[Strategy]) -> Vec<OutputPlan> {
        specs
            .iter()
            .map(|s| OutputPlan {
                resize: Some(plan_resize(source.0, source.1, &spec(s.clone())).expect("plan")),
                warnings: Vec::new(),
            })
            .collect()
    }

    fn factor(source: (u32, u32), specs: &[Strategy]) -> u32 {
        shrink_factor(&outputs(source, specs))
    }

    #[test]
    fn the_scale_is_the_largest_that_leaves_every_output_the_margin() {
        let landscape = |width| Strategy::Landscape { width };
        // 2560 wide: 320 is a reduction by 8, so 1/4 leaves 2; 319 by more than 8 (still 1/4).
        assert_eq!(factor((2560, 1600), &[landscape(160)]), 8);
        assert_eq!(factor((2560, 1600), &[landscape(161)]), 4);
        assert_eq!(factor((2560, 1600), &[landscape(320)]), 4);
        assert_eq!(factor((2560, 1600), &[landscape(321)]), 2);
        assert_eq!(factor((2560, 1600), &[landscape(640)]), 2);
        assert_eq!(factor((2560, 1600), &[landscape(641)]), 1);
        assert_eq!(factor((2560, 1600), &[landscape(800)]), 1);
        assert_eq!(factor((3840, 2160), &[landscape(800)]), 2);
        // Both axes count: exact 100x800 of a 2560x1600 stretches height by 1/2.
        assert_eq!(
            factor(
                (2560, 1600),
                &[Strategy::Exact {
                    width: 100,
                    height: 800
                }]
            ),
            1
        );
        assert_eq!(
            factor(
                (2560, 1600),
                &[Strategy::Exact {
                    width: 100,
                    height: 200
                }]
            ),
            4
        );
        // The smallest reduction of several outputs decides.
        assert_eq!(factor((2560, 1600), &[landscape(100), landscape(600)]), 2);
        // Fit: the crop window (1600x1600 of 2560x1600), not the whole image, is what is
        // resampled to 200x200.
        let fit = Strategy::Fit {
            width: 200,
            height: 200,
            gravity: Gravity::Center,
        };
        assert_eq!(factor((2560, 1600), &[fit]), 4);
        // Crop with a scale: a 1000x500 window at 10% is a reduction by 10.
        let scaled_crop = Strategy::Crop {
            width: 1000,
            height: 500,
            gravity: Gravity::Center,
            origin: Some((17, 33)),
            scale_percent: Some(10.0),
        };
        assert_eq!(factor((2560, 1600), &[scaled_crop]), 4);
        // Fill: the image is reduced to 400x250 and padded.
        let fill = Strategy::Fill {
            width: 400,
            height: 400,
            background: crate::Rgba {
                r: 255,
                g: 102,
                b: 0,
                a: 255,
            },
        };
        assert_eq!(factor((2560, 1600), &[fill]), 2);
    }

    #[test]
    fn no_shrink_for_smart_crop_a_plain_crop_or_an_original_size_output() {
        let smart = Strategy::Fit {
            width: 100,
            height: 100,
            gravity: Gravity::Smart,
        };
        assert_eq!(factor((2560, 1600), &[smart]), 1);
        let square_smart = Strategy::Square {
            size: 64,
            gravity: Gravity::Smart,
        };
        assert_eq!(factor((2560, 1600), &[square_smart]), 1);
        let plain_crop = Strategy::Crop {
            width: 100,
            height: 100,
            gravity: Gravity::Center,
            origin: None,
            scale_percent: None,
        };
        assert_eq!(factor((2560, 1600), &[plain_crop]), 1);
        let mut with_original = outputs((2560, 1600), &[Strategy::Landscape { width: 100 }]);
        assert_eq!(shrink_factor(&with_original), 8);
        with_original.push(OutputPlan {
            resize: None,
            warnings: Vec::new(),
        });
        assert_eq!(shrink_factor(&with_original), 1);
        assert_eq!(shrink_factor(&[]), 1);
        // Enlarging is never shrunk.
        assert_eq!(factor((100, 100), &[Strategy::Landscape { width: 400 }]), 1);
    }

    #[test]
    fn the_axis_table_matches_apply_orientation() {
        // Each pixel holds its stored coordinates; after orientation, stepping right and down
        // from the top-left pixel shows which stored axis each upright axis follows.
        let stored = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 0]));
        for exif in 1..=8u8 {
            let orientation = Orientation::from_exif(exif).expect("valid");
            let mut image = DynamicImage::ImageRgb8(stored.clone());
            image.apply_orientation(orientation);
            let at = |x, y| {
                let p = image.get_pixel(x, y).0;
                (i32::from(p[0]), i32::from(p[1]))
            };
            let origin = at(0, 0);
            let right = at(1, 0);
            let down = at(0, 1);
            let swap = probe::swaps_axes(orientation);
            // Along upright x, the stored coordinate that changes is y when the axes swap.
            let step = |to: (i32, i32), along_y: bool| {
                if along_y {
                    to.1 - origin.1
                } else {
                    to.0 - origin.0
                }
            };
            let reversed = (step(right, swap) < 0, step(down, !swap) < 0);
            assert_eq!(reversed, reversed_axes(orientation), "orientation {exif}");
        }
    }

    #[test]
    fn the_origin_is_the_overhang_of_reversed_axes() {
        // 203x157 stored at 1/8: 26x20 decoded pixels for 25.375x19.625 of source.
        let shrink = |o| Shrink::new(8, (203, 157), (26, 20), o);
        assert_eq!(shrink(Orientation::NoTransforms).origin, (0.0, 0.0));
        assert_eq!(shrink(Orientation::FlipHorizontal).origin, (0.625, 0.0));
        assert_eq!(shrink(Orientation::Rotate180).origin, (0.625, 0.375));
        // Rotate90: upright x is stored y reversed.
        assert_eq!(shrink(Orientation::Rotate90).origin, (0.375, 0.0));
        assert_eq!(shrink(Orientation::Rotate270).origin, (0.0, 0.625));
    }

    struct Probed {
        input: Vec<u8>,
        probe: Probe,
        request: Request,
        limits: Limits,
    }

    impl Probed {
        fn new(input: Vec<u8>) -> Probed {
            let limits = Limits::default();
            let probe = probe::run(&input, &limits).expect("probe");
            Probed {
                input,
                probe,
                request: Request::default(),
                limits,
            }
        }

        fn job<'a>(&'a self, specs: &'a [ResizeSpec]) -> Job<'a> {
            Job {
                input: &self.input,
                probe: &self.probe,
                request: &self.request,
                limits: &self.limits,
                sizes: Sizes::Resized(specs),
            }
        }

        /// Decode at `shrink_by` and transform the first output, as the pipeline would.
        fn output(&self, strategy: &Strategy, shrink_by: u32) -> (DynamicImage, Option<Shrink>) {
            let specs = [spec(strategy.clone())];
            let job = self.job(&specs);
            let plan = super::super::plan::run(&job).expect("plan");
            let decoded = still_at(&job, &plan, shrink_by).expect("decode");
            let Source::Still { shrink, .. } = &decoded.source else {
                panic!("a still");
            };
            let shrink = *shrink;
            let pixels = transform::run(&decoded.source, plan.outputs[0].resize.as_ref())
                .expect("transform");
            let Pixels::Still { image, .. } = pixels else {
                panic!("a still");
            };
            (image.into_owned(), shrink)
        }
    }

    fn ssimulacra2(reference: &DynamicImage, candidate: &DynamicImage) -> f64 {
        assert_eq!(reference.dimensions(), candidate.dimensions());
        Reference::new(reference)
            .expect("big enough")
            .score(candidate)
            .expect("same size")
    }

    /// A JPEG (quality 100, 4:4:4) of two ramps, red along x and green along y, with an EXIF
    /// orientation. Neither side is a multiple of 8, so partial edge blocks and the origin
    /// overhang both come into play.
    fn ramps(exif: u8) -> Vec<u8> {
        let (w, h) = (811u32, 613u32);
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / (w - 1)) as u8, (y * 255 / (h - 1)) as u8, 128])
        }));
        let carried = Carried {
            exif: Some(exif::orientation_only_exif(exif)[6..].to_vec()),
            ..Carried::default()
        };
        jpeg::encode(&image, 100, Chroma::Full, &carried).expect("encode")
    }

    /// How far the red and green ramps of `b` sit from those of `a`: the larger of the mean
    /// differences of red and of green, away from the edges (4 px in, past the reach of
    /// Lanczos3 from the partial blocks at the image's edges). A shift of the region shown
    /// moves the mean; decoder and filter noise averages out.
    fn ramp_shift(a: &DynamicImage, b: &DynamicImage) -> f64 {
        let (a, b) = (a.to_rgb8(), b.to_rgb8());
        let (w, h) = a.dimensions();
        let mut worst = 0f64;
        for channel in 0..2 {
            let mut sum = 0f64;
            let mut count = 0f64;
            for y in 4..h - 4 {
                for x in 4..w - 4 {
                    sum += f64::from(a.get_pixel(x, y)[channel])
                        - f64::from(b.get_pixel(x, y)[channel]);
                    count += 1.0;
                }
            }
            worst = worst.max((sum / count).abs());
        }
        worst
    }

    #[test]
    fn every_orientation_and_scale_shows_the_same_region_as_a_full_decode() {
        // The ramps rise by 0.31 (red) and 0.42 (green) levels per source pixel; 811x613
        // leaves 1 source pixel of overhang at 1/2, 1 and 3 at 1/4, 5 and 3 at 1/8. Measured: the
        // mapping here stays within 0.12 levels at 1/2 and 1/4 and 0.23 at 1/8, while leaving
        // out the overhang gave 0.27 and 1.7 (flipped horizontally), so the limits sit between.
        let strategies = [
            Strategy::Fit {
                width: 50,
                height: 40,
                gravity: Gravity::SouthEast,
            },
            Strategy::Crop {
                width: 500,
                height: 300,
                gravity: Gravity::Center,
                origin: Some((101, 77)),
                scale_percent: Some(6.0),
            },
            Strategy::Exact {
                width: 45,
                height: 33,
            },
        ];
        for exif in 1..=8u8 {
            let probed = Probed::new(ramps(exif));
            for strategy in &strategies {
                let (full, none) = probed.output(strategy, 1);
                assert!(none.is_none());
                for shrink_by in jpeg_decode::SCALES {
                    let (small, shrink) = probed.output(strategy, shrink_by);
                    assert_eq!(shrink.map(|s| s.factor), Some(shrink_by));
                    assert_eq!(small.dimensions(), full.dimensions());
                    let shift = ramp_shift(&small, &full);
                    let limit = if shrink_by == 8 { 0.7 } else { 0.19 };
                    assert!(
                        shift <= limit,
                        "orientation {exif}, 1/{shrink_by}, {strategy:?}: {shift} levels"
                    );
                }
            }
        }
    }

    #[test]
    fn a_corpus_photo_shrunk_on_load_matches_the_full_decode() {
        // Measured 94.85 against the full decode (`shrink_margin_quality`); the threshold
        // leaves a margin for decoder and platform differences.
        let probed = Probed::new(corpus("photo_garden.jpg"));
        let strategy = Strategy::Landscape { width: 640 };
        let (full, _) = probed.output(&strategy, 1);
        let specs = [spec(strategy.clone())];
        let job = probed.job(&specs);
        let plan = super::super::plan::run(&job).expect("plan");
        assert_eq!(shrink_factor(&plan.outputs), 2);
        let (small, shrink) = probed.output(&strategy, 2);
        assert!(shrink.is_some());
        assert_eq!(small.dimensions(), (640, 400));
        assert_eq!(small.dimensions(), full.dimensions());
        let score = ssimulacra2(&full, &small);
        assert!(score > 90.0, "SSIMULACRA2 {score}");
    }

    #[test]
    fn a_webp_photo_is_shrunk_on_load_by_libwebp_and_matches_the_full_decode() {
        let photo = image::load_from_memory(&corpus("photo_garden.jpg")).expect("decodes");
        let webp = crate::codec::webp::encode_lossy(&photo, 90).expect("encodes");
        let probed = Probed::new(webp);
        let strategy = Strategy::Landscape { width: 640 };
        let (full, _) = probed.output(&strategy, 1);
        let (small, shrink) = probed.output(&strategy, 2);
        assert!(shrink.is_some(), "decoded at 1/2");
        assert_eq!(small.dimensions(), (640, 400));
        let score = ssimulacra2(&full, &small);
        assert!(score > 90.0, "SSIMULACRA2 {score}");
        // With alpha the full decode stays.
        let mut rgba = photo.to_rgba8();
        for x in 0..64 {
            rgba.put_pixel(x, 0, image::Rgba([0, 0, 0, 0]));
        }
        let rgba = DynamicImage::ImageRgba8(rgba);
        let probed = Probed::new(crate::codec::webp::encode_lossy(&rgba, 90).expect("encodes"));
        assert!(probed.output(&strategy, 2).1.is_none());
    }

    fn mean(image: &DynamicImage) -> f64 {
        let rgb = image.to_rgb8();
        let sum: u64 = rgb.as_raw().iter().map(|&v| u64::from(v)).sum();
        sum as f64 / rgb.as_raw().len() as f64
    }

    #[test]
    fn icc_and_grey_jpegs_are_treated_as_at_full_size() {
        // A grey ramp tagged with a gamma 1.8 profile: converted to sRGB on the smaller pixels
        // just as on the full ones (measured: the mean rises from 127.0 to 139.3 both ways).
        let icc = {
            let input = corpus("edge/icc_apple_generic_rgb.jpg");
            let mut decoder = probe::image_reader(&input, InputFormat::Jpeg, &Limits::default())
                .expect("a reader")
                .into_decoder()
                .expect("decoder");
            decoder.icc_profile().expect("read").expect("a profile")
        };
        let ramp = DynamicImage::ImageRgb8(RgbImage::from_fn(400, 300, |x, _| {
            image::Rgb([(x * 255 / 399) as u8; 3])
        }));
        let plain = jpeg::encode(&ramp, 95, Chroma::Full, &Carried::default()).expect("encode");
        // The APP2 marker by hand, numbered from 1 as the ICC specification says (mozjpeg
        // 0.10's `write_icc_profile` numbers from 0, which zune-jpeg does not read).
        let mut marker = b"ICC_PROFILE\0\x01\x01".to_vec();
        marker.extend_from_slice(&icc);
        let length = u16::try_from(marker.len() + 2).expect("fits");
        let mut tagged = plain[..2].to_vec();
        tagged.extend_from_slice(&[0xFF, 0xE2]);
        tagged.extend_from_slice(&length.to_be_bytes());
        tagged.extend_from_slice(&marker);
        tagged.extend_from_slice(&plain[2..]);
        let probed = Probed::new(tagged);
        let strategy = Strategy::Landscape { width: 50 };
        let (full, _) = probed.output(&strategy, 1);
        let (small, shrink) = probed.output(&strategy, 4);
        assert_eq!(shrink.map(|s| s.factor), Some(4));
        let (full_mean, small_mean) = (mean(&full), mean(&small));
        assert!(full_mean - mean(&ramp) > 5.0, "converted: {full_mean}");
        assert!(
            (full_mean - small_mean).abs() < 1.0,
            "{full_mean} vs {small_mean}"
        );
        // Greyscale stays one channel. Measured 96.96.
        let probed = Probed::new(corpus("edge/gray.jpg")); // 128x128
        let strategy = Strategy::Landscape { width: 32 };
        let (full, _) = probed.output(&strategy, 1);
        let (small, shrink) = probed.output(&strategy, 2);
        assert!(shrink.is_some());
        assert!(matches!(full, DynamicImage::ImageLuma8(_)));
        assert!(matches!(small, DynamicImage::ImageLuma8(_)));
        let score = ssimulacra2(&full, &small);
        assert!(score > 90.0, "grey: SSIMULACRA2 {score}");
    }

    #[test]
    fn inputs_the_reduced_decoder_declines_are_decoded_at_full_size() {
        for (name, strategy) in [
            (
                "edge/cmyk_adobe_ycck.jpg",
                Strategy::Landscape { width: 10 },
            ),
            ("png_coffee_photo.png", Strategy::Landscape { width: 10 }),
        ] {
            let probed = Probed::new(corpus(name));
            let (image, shrink) = probed.output(&strategy, 8);
            assert!(shrink.is_none(), "{name}");
            assert_eq!(image.width(), 10, "{name}");
        }
    }

    fn best_of<T>(runs: usize, mut work: impl FnMut() -> T) -> (Duration, T) {
        let mut best = Duration::MAX;
        let mut last = None;
        for _ in 0..runs {
            let start = Instant::now();
            let out = work();
            best = best.min(start.elapsed());
            last = Some(out);
        }
        (best, last.expect("at least one run"))
    }

    /// The measurement behind [`SHRINK_MARGIN`] and the figures in the change description:
    /// for each corpus photo and output width, decode + resize time and SSIMULACRA2 against
    /// the full decode + Lanczos3 at every scale that leaves the output no larger than the
    /// decoded pixels. `cargo test --workspace --lib -- --ignored --nocapture shrink_margin`
    /// Before and after for the thumbnail job (landscape 800): decode + resize time at full
    /// size and at the scale [`shrink_factor`] picks, and SSIMULACRA2 of the new output against
    /// the old. `cargo test --workspace --lib -- --ignored --nocapture thumbnail_job`
    #[test]
    #[ignore = "a measurement, not a check: prints a table"]
    fn thumbnail_job_before_and_after() {
        println!("photo size before_ms scale after_ms ssimulacra2");
        for name in PHOTOS {
            let probed = Probed::new(corpus(name));
            let strategy = Strategy::Landscape { width: 800 };
            let specs = [spec(strategy.clone())];
            let job = probed.job(&specs);
            let plan = super::super::plan::run(&job).expect("plan");
            let chosen = shrink_factor(&plan.outputs);
            let (before_ms, (before, _)) = best_of(5, || probed.output(&strategy, 1));
            let (after_ms, (after, _)) = best_of(5, || probed.output(&strategy, chosen));
            let (w, h) = probed.probe.oriented_dimensions();
            println!(
                "{name} {w}x{h} {:.1} 1/{chosen} {:.1} {:.2}",
                before_ms.as_secs_f64() * 1e3,
                after_ms.as_secs_f64() * 1e3,
                ssimulacra2(&before, &after)
            );
        }
    }

    #[test]
    #[ignore = "a measurement, not a check: prints a table"]
    fn shrink_margin_quality() {
        println!("photo width factor scale ms ssimulacra2 (full decode: ms)");
        for name in PHOTOS {
            let probed = Probed::new(corpus(name));
            let (w, h) = probed.probe.oriented_dimensions();
            for width in [1600u32, 1200, 800, 640, 400, 320, 200] {
                let strategy = Strategy::Landscape { width };
                let (full_ms, (full, _)) = best_of(3, || probed.output(&strategy, 1));
                let factor = f64::from(w) / f64::from(width);
                for shrink_by in jpeg_decode::SCALES {
                    if w / shrink_by < width || h / shrink_by < 1 {
                        continue;
                    }
                    let (ms, (small, _)) = best_of(3, || probed.output(&strategy, shrink_by));
                    println!(
                        "{name} {width} {factor:.2} 1/{shrink_by} {:.1} {:.2} (full {:.1})",
                        ms.as_secs_f64() * 1e3,
                        ssimulacra2(&full, &small),
                        full_ms.as_secs_f64() * 1e3
                    );
                }
            }
        }
    }
}
