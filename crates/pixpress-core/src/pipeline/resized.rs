//! The pipeline with `resize`: plan every requested output against the oriented source size
//! (pure geometry, so a bad request fails before any pixel is decoded), decode once, then per
//! output transform and encode in the input's format. A resize always re-encodes, so "lossless"
//! here means the best lossless encoder the format has, or for JPEG a high quality (SPEC §5).

use image::DynamicImage;

use super::encode::{gif as gif_codec, jpeg, png, webp};
use super::plan::{self, Plan, PlanError, PlanWarning, ResizeSpec};
use super::probe::Probe;
use super::recompress::decode_oriented;
use super::{transform, Output, Request, DEFAULT_LOSSY_QUALITY};
use crate::warning::{self, Warning};
use crate::{CoreError, ImageFormat, Limits};

/// JPEG quality when a resize forces re-encoding but `lossy` is false.
pub const RESIZE_LOSSLESS_JPEG_QUALITY: u8 = 92;

pub fn run(
    input: &[u8],
    probe: &Probe,
    request: &Request,
    specs: &[ResizeSpec],
    limits: &Limits,
) -> Result<Vec<Output>, CoreError> {
    let (width, height) = probe.oriented_dimensions();
    let plans = plan_all(width, height, specs, probe.format)?;
    let (image, icc) = decode_oriented(input, probe, limits)?;
    let mut shared_warnings = Vec::new();
    if probe.is_animated() {
        shared_warnings.push(Warning::new(
            warning::ANIMATION_FRAMES_DROPPED,
            format!(
                "resizing animations is not supported yet: the first of {} frames was resized",
                probe.frames
            ),
        ));
    }
    plans
        .iter()
        .map(|plan| {
            let pixels = transform::execute(&image, plan)?;
            let (bytes, quality) = encode(&pixels, probe.format, request, icc.as_deref())?;
            let mut warnings = shared_warnings.clone();
            warnings.extend(plan.warnings.iter().map(plan_warning));
            Ok(Output {
                bytes,
                format: probe.format,
                original_width: width,
                original_height: height,
                width: pixels.width(),
                height: pixels.height(),
                quality,
                warnings,
                original_returned: false,
            })
        })
        .collect()
}

fn plan_all(
    width: u32,
    height: u32,
    specs: &[ResizeSpec],
    format: ImageFormat,
) -> Result<Vec<Plan>, CoreError> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let prefix = if specs.len() > 1 { format!("resize[{i}]") } else { "resize".to_string() };
            let plan = plan::plan(width, height, spec).map_err(|e| plan_error(&prefix, e))?;
            if plan.background.is_some_and(|bg| bg.a < 255) && format == ImageFormat::Jpeg {
                return Err(CoreError::InvalidOption {
                    field: format!("{prefix}.background"),
                    message: "a transparent background needs an output format with alpha (PNG, WebP, GIF); \
                              JPEG has none: choose an opaque colour"
                        .into(),
                });
            }
            Ok(plan)
        })
        .collect()
}

fn plan_error(prefix: &str, e: PlanError) -> CoreError {
    let field = match e.field() {
        Some(f) => format!("{prefix}.{f}"),
        None => prefix.to_string(),
    };
    CoreError::InvalidOption {
        field,
        message: e.message(),
    }
}

fn plan_warning(w: &PlanWarning) -> Warning {
    match w {
        PlanWarning::NotEnlarged { requested, kept } => Warning::new(
            warning::NOT_ENLARGED,
            format!(
                "{}x{} would enlarge the image; kept {}x{} (send \"enlarge\": true to upscale)",
                requested.0, requested.1, kept.0, kept.1
            ),
        ),
        PlanWarning::CropWindowClamped { requested, clamped } => Warning::new(
            warning::CROP_WINDOW_CLAMPED,
            format!(
                "crop window {}x{} at ({},{}) reaches outside the image; clamped to {}x{} at ({},{})",
                requested.width, requested.height, requested.x, requested.y, clamped.width, clamped.height, clamped.x, clamped.y
            ),
        ),
    }
}

/// Encodes transformed pixels in `format`; returns the bytes and the lossy quality used, if any.
fn encode(
    image: &DynamicImage,
    format: ImageFormat,
    request: &Request,
    icc: Option<&[u8]>,
) -> Result<(Vec<u8>, Option<u8>), CoreError> {
    let quality = request.quality.unwrap_or(DEFAULT_LOSSY_QUALITY);
    match (format, request.lossy) {
        (ImageFormat::Jpeg, true) => Ok((jpeg::encode(image, quality, icc)?, Some(quality))),
        (ImageFormat::Jpeg, false) => {
            let q = RESIZE_LOSSLESS_JPEG_QUALITY.max(request.quality.unwrap_or(0));
            Ok((jpeg::encode(image, q, icc)?, Some(q)))
        }
        (ImageFormat::Png, true) => match png::quantize(&image.to_rgba8(), quality)? {
            Some(bytes) => Ok((bytes, Some(quality))),
            None => Ok((png::encode_lossless(image)?, None)),
        },
        (ImageFormat::Png, false) => Ok((png::encode_lossless(image)?, None)),
        (ImageFormat::Gif, _) => Ok((gif_codec::encode_still(image)?, None)),
        (ImageFormat::Webp, true) => Ok((webp::encode_lossy(image, quality)?, Some(quality))),
        (ImageFormat::Webp, false) => Ok((webp::encode_lossless(image)?, None)),
    }
}
