//! Decode once, then for every output (one per resize spec, or one unresized output) transform
//! and encode in the target format. Plans are made from the header's size first, so a bad
//! request fails before any pixel is decoded. The colour profile is converted to sRGB here
//! unless the request keeps it; kept EXIF has its orientation reset since the pixels are upright.

use super::animation;
use super::output::{self, Carried};
use super::plan::{self, Plan, PlanError, PlanWarning, ResizeSpec};
use super::probe::Probe;
use super::recompress::{decode_oriented, orientation_warning};
use super::{profile, transform, Output, Request};
use crate::warning::{self, Warning};
use crate::{CoreError, ImageFormat, Limits};

/// `specs` empty: one output at the source size.
pub fn run(
    input: &[u8],
    probe: &Probe,
    request: &Request,
    specs: &[ResizeSpec],
    limits: &Limits,
) -> Result<Vec<Output>, CoreError> {
    let (width, height) = probe.oriented_dimensions();
    let target = output::resolve(request.format, probe.format);
    let plans: Vec<Option<Plan>> = if specs.is_empty() {
        vec![None]
    } else {
        plan_all(width, height, specs, target)?
            .into_iter()
            .map(Some)
            .collect()
    };
    if probe.is_animated() && animation::target_animates(request, probe.format) {
        return run_animated(input, probe, request, &plans, limits);
    }
    let decoded = decode_oriented(input, probe, limits, request.metadata)?;
    let mut shared_warnings: Vec<Warning> = orientation_warning(probe).into_iter().collect();
    if probe.is_animated() {
        shared_warnings.push(Warning::new(
            warning::ANIMATION_FRAMES_DROPPED,
            format!(
                "the output format has no animation: the first of {} frames was used",
                probe.frames
            ),
        ));
    }
    let (image, carried, metadata_warnings) = prepare(decoded, request, target);
    shared_warnings.extend(metadata_warnings);
    plans
        .iter()
        .map(|plan| {
            let transformed;
            let pixels = match plan {
                Some(plan) => {
                    transformed = transform::execute(&image, plan)?;
                    &transformed
                }
                None => &image,
            };
            let encoded = output::encode(pixels, probe.format, request, &carried)?;
            let mut warnings = shared_warnings.clone();
            warnings.extend(encoded.warnings);
            if let Some(plan) = plan {
                warnings.extend(plan.warnings.iter().map(plan_warning));
            }
            Ok(Output {
                bytes: encoded.bytes,
                format: encoded.format,
                original_width: width,
                original_height: height,
                width: pixels.width(),
                height: pixels.height(),
                quality: encoded.quality,
                ssimulacra2: encoded.ssimulacra2,
                warnings,
                original_returned: false,
            })
        })
        .collect()
}

/// Applies the metadata policy: convert to sRGB unless the profile is kept; keep EXIF (upright)
/// and XMP only when asked and only where the target format can carry them.
fn prepare(
    decoded: super::recompress::Decoded,
    request: &Request,
    target: Option<ImageFormat>,
) -> (image::DynamicImage, Carried, Vec<Warning>) {
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
    if keep.wants_exif() {
        let kept = match decoded.exif {
            Some(exif) if keep.exif => Some(exif),
            Some(exif) => profile::exif_subset(&exif, keep.copyright, keep.geotag),
            None => None,
        };
        if let Some(mut exif) = kept {
            if jpeg_target {
                profile::reset_orientation(&mut exif);
                carried.exif = Some(exif);
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

fn run_animated(
    input: &[u8],
    probe: &Probe,
    request: &Request,
    plans: &[Option<Plan>],
    limits: &Limits,
) -> Result<Vec<Output>, CoreError> {
    let (width, height) = probe.oriented_dimensions();
    let source = animation::decode(input, probe, limits)?;
    plans
        .iter()
        .map(|plan| {
            let transformed;
            let frames = match plan {
                Some(plan) => {
                    transformed = animation::transform_frames(&source, plan)?;
                    &transformed
                }
                None => &source.frames,
            };
            let encoded = animation::encode(frames, source.loops, probe.format, request)?;
            let warnings = plan
                .iter()
                .flat_map(|p| p.warnings.iter().map(plan_warning))
                .collect();
            Ok(Output {
                bytes: encoded.bytes,
                format: encoded.format,
                original_width: width,
                original_height: height,
                width: encoded.width,
                height: encoded.height,
                quality: encoded.quality,
                ssimulacra2: encoded.ssimulacra2,
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
    target: Option<ImageFormat>,
) -> Result<Vec<Plan>, CoreError> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let prefix = if specs.len() > 1 { format!("resize[{i}]") } else { "resize".to_string() };
            let plan = plan::plan(width, height, spec).map_err(|e| plan_error(&prefix, e))?;
            if plan.background.is_some_and(|bg| bg.a < 255) && target == Some(ImageFormat::Jpeg) {
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
