//! Step 2: what the job will make, from the probe and the request alone (no pixel yet): which
//! variant of the pipeline runs ([`Kind`]: the lossless shortcut, a still image or an
//! animation), the format a still image is written in, and one [`OutputPlan`] per output with
//! its resize geometry ([`geometry`]). A request that cannot be honoured fails here, before
//! anything is decoded.

pub mod geometry;

use self::geometry::{ResizeError, ResizePlan, ResizeSpec, ResizeWarning};
use super::job::{Job, Sizes};
use super::probe::Probe;
use super::request::{OutputFormat, Request};
use crate::error::CoreError;
use crate::format::{ImageFormat, InputFormat};
use crate::warning::{self, Warning};

/// Which variant of the step list runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The lossless shortcut: re-code the input in its own format without decoding it to
    /// pixels (no resize, no conversion, `lossy: false`).
    Recode,
    /// One still image: decoded, transformed and encoded.
    Still,
    /// Every frame of an animated GIF or WebP, written again as an animation.
    Animated,
}

/// The plan step's answer: the variant, the still-image format, and the outputs in order.
#[derive(Clone, Debug)]
pub struct Plan {
    pub kind: Kind,
    /// The format a still image is written in; `None` for `auto` (chosen per image later).
    pub target: Option<ImageFormat>,
    pub outputs: Vec<OutputPlan>,
}

/// One output: its resize geometry (`None`: the source size) and what the geometry did
/// differently from what was asked.
#[derive(Clone, Debug)]
pub struct OutputPlan {
    pub resize: Option<ResizePlan>,
    pub warnings: Vec<Warning>,
}

/// The step.
pub fn run(job: &Job<'_>) -> Result<Plan, CoreError> {
    let (width, height) = job.probe.oriented_dimensions();
    let target = job.request.format.resolve(job.probe.default_output);
    let specs = match job.sizes {
        Sizes::Original => &[][..],
        Sizes::Resized(specs) => specs,
    };
    let outputs = if specs.is_empty() {
        vec![OutputPlan {
            resize: None,
            warnings: Vec::new(),
        }]
    } else {
        plan_all(width, height, specs, target)?
    };
    Ok(Plan {
        kind: kind(job),
        target,
        outputs,
    })
}

/// The shortcut serves only `optimize` (the resize entry point always encodes anew); an
/// animation stays one when its target format can animate and its frames can be decoded (GIF,
/// WebP; an APNG is re-coded whole or refused, an AVIF or JPEG XL animation gives its first
/// frame); everything else is a still.
fn kind(job: &Job<'_>) -> Kind {
    let (probe, request) = (job.probe, job.request);
    let first_frame_only = matches!(probe.format, InputFormat::Avif | InputFormat::Jxl);
    if matches!(job.sizes, Sizes::Original) && recodes(probe, request) {
        Kind::Recode
    } else if probe.is_animated() && !first_frame_only && target_animates(request, probe.format) {
        Kind::Animated
    } else {
        Kind::Still
    }
}

/// Whether this request can be served without decoding to pixels: only in the input's own
/// format, so never for a read-only one (BMP, TIFF, JPEG XL). Animated PNG also comes here
/// when `lossy` (there is no lossy APNG encoder; decoding would keep one frame of it).
pub(crate) fn recodes(probe: &Probe, request: &Request) -> bool {
    let apng = probe.format == InputFormat::Png && probe.is_animated();
    probe.format.writable().is_some()
        && request.format.resolve(probe.default_output) == probe.format.writable()
        && (!request.lossy || apng)
        && !(probe.format == InputFormat::Webp && probe.is_animated())
}

/// Whether the request's target keeps animation (GIF, WebP or auto).
fn target_animates(request: &Request, input: InputFormat) -> bool {
    match request.format {
        OutputFormat::Same => matches!(input, InputFormat::Gif | InputFormat::Webp),
        OutputFormat::Gif | OutputFormat::Webp | OutputFormat::Auto => true,
        OutputFormat::Jpeg | OutputFormat::Png | OutputFormat::Avif => false,
        OutputFormat::Among(set) => {
            set.contains(ImageFormat::Gif) || set.contains(ImageFormat::Webp)
        }
    }
}

fn plan_all(
    width: u32,
    height: u32,
    specs: &[ResizeSpec],
    target: Option<ImageFormat>,
) -> Result<Vec<OutputPlan>, CoreError> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let prefix = if specs.len() > 1 {
                format!("resize[{i}]")
            } else {
                "resize".to_string()
            };
            let resize =
                geometry::plan_resize(width, height, spec).map_err(|e| resize_error(&prefix, e))?;
            check_background(&resize, target, &prefix)?;
            Ok(OutputPlan {
                warnings: resize.warnings.iter().map(resize_warning).collect(),
                resize: Some(resize),
            })
        })
        .collect()
}

/// A transparent padding colour cannot be written to JPEG, which has no alpha.
fn check_background(
    resize: &ResizePlan,
    target: Option<ImageFormat>,
    prefix: &str,
) -> Result<(), CoreError> {
    if resize.background.is_some_and(|bg| bg.a < 255) && target == Some(ImageFormat::Jpeg) {
        return Err(CoreError::InvalidOption {
            field: format!("{prefix}.background"),
            message: "a transparent background needs an output format with alpha (PNG, WebP, \
                      GIF); JPEG has none: choose an opaque colour"
                .into(),
        });
    }
    Ok(())
}

fn resize_error(prefix: &str, e: ResizeError) -> CoreError {
    let field = match e.field() {
        Some(f) => format!("{prefix}.{f}"),
        None => prefix.to_string(),
    };
    CoreError::InvalidOption {
        field,
        message: e.message(),
    }
}

fn resize_warning(w: &ResizeWarning) -> Warning {
    match w {
        ResizeWarning::NotEnlarged { requested, kept } => Warning::new(
            warning::NOT_ENLARGED,
            format!(
                "{}x{} would enlarge the image; kept {}x{} (send \"enlarge\": true to upscale)",
                requested.0, requested.1, kept.0, kept.1
            ),
        ),
        ResizeWarning::CropWindowClamped { requested, clamped } => Warning::new(
            warning::CROP_WINDOW_CLAMPED,
            format!(
                "crop window {}x{} at ({},{}) reaches outside the image; clamped to {}x{} at \
                 ({},{})",
                requested.width,
                requested.height,
                requested.x,
                requested.y,
                clamped.width,
                clamped.height,
                clamped.x,
                clamped.y
            ),
        ),
    }
}
