//! The dry run (`dry_run: true`): what a job would make, without making it. The plan step runs
//! as it does for real, and so does the decode step (at the plan's scale: shrink-on-load keeps
//! it cheap for thumbnails), which gives the warnings every output shares exactly; of the
//! transform step only the crop window is placed (a smart crop needs the pixels); nothing is
//! resampled or encoded. The lossless shortcut decodes nothing: a JPEG's header says how its
//! DCT-domain rotation will trim it.
//!
//! Each output reports the crop rectangle in upright source pixels, its size, and the format it
//! is written in (`None`, with the candidates, when `auto` or a list picks after encoding),
//! with the warnings known before encoding: the decode's, the geometry's and the shortcut's.
//! What only an encode can tell (`alpha_flattened`, `quality_target_not_reached`,
//! `palette_below_target`, a failed lossless proof, whether the result is smaller than the
//! input) is not predicted; `original_may_be_returned` says where the never-larger rule may
//! hand back the input instead.

use super::decode::{self, Source};
use super::job::Job;
use super::plan::geometry::{Rect, ResizePlan};
use super::plan::{self, Kind, OutputPlan, Plan};
use super::probe::{self, Probe};
use super::{choose, encode, transform};
use crate::codec::jpeg_lossless::{self, Rotation};
use crate::error::CoreError;
use crate::format::{ImageFormat, InputFormat};
use crate::warning::Warning;

/// What the job would make.
#[derive(Clone, Debug, PartialEq)]
pub struct DryRun {
    pub source_format: InputFormat,
    /// Upright (after EXIF orientation).
    pub source_width: u32,
    pub source_height: u32,
    pub frames: u64,
    pub outputs: Vec<PlannedOutput>,
}

/// One output as it would be made.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedOutput {
    /// The part of the upright source the output shows.
    pub crop: Rect,
    pub width: u32,
    pub height: u32,
    /// Where the crop, resampled, lands in the output: all of it except for `fill`, which pads.
    pub placed: Rect,
    /// The format it is written in; `None` when it is picked among `candidates` by size.
    pub format: Option<ImageFormat>,
    pub candidates: Vec<ImageFormat>,
    pub animated: bool,
    /// The never-larger rule applies: the input itself is returned if the output is not smaller.
    pub original_may_be_returned: bool,
    pub warnings: Vec<Warning>,
}

/// The dry run of `job`.
pub fn run(job: &Job<'_>) -> Result<DryRun, CoreError> {
    let plan = plan::run(job)?;
    let outputs = match plan.kind {
        Kind::Recode => vec![recode_output(job, &plan)?],
        Kind::Still => still_outputs(job, &plan)?,
        Kind::Animated => animated_outputs(job, &plan)?,
    };
    let (source_width, source_height) = job.probe.oriented_dimensions();
    Ok(DryRun {
        source_format: job.probe.format,
        source_width,
        source_height,
        frames: job.probe.frames,
        outputs,
    })
}

/// The lossless shortcut: the source's size and format, except where a JPEG's rotation trims
/// partial edge blocks.
fn recode_output(job: &Job<'_>, plan: &Plan) -> Result<PlannedOutput, CoreError> {
    let probe = job.probe;
    let (width, height) = probe.oriented_dimensions();
    let mut crop = Rect::full(width, height);
    let mut warnings = Vec::new();
    let format = probe.format.writable().ok_or_else(|| {
        CoreError::Encode(format!("{} has no lossless re-code", probe.format.name()))
    })?;
    if format == ImageFormat::Jpeg {
        let orientation = probe.orientation.to_exif();
        let rotation = jpeg_lossless::planned_rotation(job.input, orientation)?;
        if let Rotation::Applied {
            trimmed_columns,
            trimmed_rows,
            ..
        } = rotation
        {
            crop = kept_window(probe, trimmed_columns, trimmed_rows);
        }
        warnings = encode::rotation_warnings(orientation, rotation);
    }
    warnings.extend(encode::recode_warnings(probe, job.request));
    Ok(PlannedOutput {
        crop,
        width: crop.width,
        height: crop.height,
        placed: Rect::full(crop.width, crop.height),
        format: Some(format),
        candidates: vec![format],
        animated: probe.is_animated(),
        original_may_be_returned: choose::original_competes(job, plan).is_some(),
        warnings,
    })
}

/// The upright window a lossless rotation keeps when it drops the stored image's last
/// `trimmed_columns` and `trimmed_rows`: on an upright axis that runs against its stored axis,
/// the stored end (where the trimmed pixels were) is the upright start.
fn kept_window(probe: &Probe, trimmed_columns: u32, trimmed_rows: u32) -> Rect {
    let stored = (probe.width, probe.height);
    let kept = (
        probe.width.saturating_sub(trimmed_columns),
        probe.height.saturating_sub(trimmed_rows),
    );
    // (size, kept) along the stored axis each upright axis comes from.
    let (along_x, along_y) = if probe::swaps_axes(probe.orientation) {
        ((stored.1, kept.1), (stored.0, kept.0))
    } else {
        ((stored.0, kept.0), (stored.1, kept.1))
    };
    let (reversed_x, reversed_y) = decode::reversed_axes(probe.orientation);
    let start = |(size, kept): (u32, u32), reversed: bool| if reversed { size - kept } else { 0 };
    Rect::new(
        start(along_x, reversed_x),
        start(along_y, reversed_y),
        along_x.1,
        along_y.1,
    )
}

/// A still image: decoded as for real, each output's window placed on the pixels.
fn still_outputs(job: &Job<'_>, plan: &Plan) -> Result<Vec<PlannedOutput>, CoreError> {
    let decoded = decode::run(job, plan)?;
    let Source::Still { image, .. } = &decoded.source else {
        return Err(CoreError::Encode(
            "the decode step gave no still image for a still plan".into(),
        ));
    };
    let candidates = match plan.target {
        Some(format) => vec![format],
        None => encode::auto_candidates(job.request, encode::has_visible_alpha(image)),
    };
    let outputs = plan.outputs.iter().map(|output| {
        // Only a smart crop is placed from pixels, and the decode step never shrinks for one:
        // the window is in full-size source pixels either way.
        let crop = output
            .resize
            .as_ref()
            .map(|resize| match resize.smart_crop {
                Some(_) => transform::resolve_crop(image, resize),
                None => resize.crop,
            });
        let mut warnings = decoded.warnings.clone();
        warnings.extend(output.warnings.iter().cloned());
        planned(job, plan, output, crop, &candidates, false, warnings)
    });
    Ok(outputs.collect())
}

/// An animation: a smart crop is placed on the first frame, as the transform step does.
fn animated_outputs(job: &Job<'_>, plan: &Plan) -> Result<Vec<PlannedOutput>, CoreError> {
    let smart = |output: &OutputPlan| {
        output
            .resize
            .as_ref()
            .is_some_and(|resize| resize.smart_crop.is_some())
    };
    let decoded = if plan.outputs.iter().any(smart) {
        Some(decode::run(job, plan)?)
    } else {
        None
    };
    let first = decoded.as_ref().and_then(|d| match &d.source {
        Source::Frames(animation) => animation
            .frames
            .first()
            .map(|f| image::DynamicImage::ImageRgba8(f.image.clone())),
        _ => None,
    });
    let candidates = encode::animated_candidates(job.probe.default_output, job.request);
    let outputs = plan.outputs.iter().map(|output| {
        let crop = output.resize.as_ref().map(|resize| match (&first, resize) {
            (
                Some(frame),
                ResizePlan {
                    smart_crop: Some(_),
                    ..
                },
            ) => transform::resolve_crop(frame, resize),
            _ => resize.crop,
        });
        planned(
            job,
            plan,
            output,
            crop,
            &candidates,
            true,
            output.warnings.clone(),
        )
    });
    Ok(outputs.collect())
}

/// One still or animated output: `crop` is `None` at the source size.
fn planned(
    job: &Job<'_>,
    plan: &Plan,
    output: &OutputPlan,
    crop: Option<Rect>,
    candidates: &[ImageFormat],
    animated: bool,
    warnings: Vec<Warning>,
) -> PlannedOutput {
    let (source_width, source_height) = job.probe.oriented_dimensions();
    let (width, height) = output
        .resize
        .as_ref()
        .map_or((source_width, source_height), |resize| resize.canvas);
    let placed = output
        .resize
        .as_ref()
        .map_or(Rect::full(width, height), |resize| {
            Rect::new(
                resize.offset.0,
                resize.offset.1,
                resize.scaled.0,
                resize.scaled.1,
            )
        });
    let format = match candidates {
        [only] => Some(*only),
        _ => None,
    };
    PlannedOutput {
        crop: crop.unwrap_or(Rect::full(source_width, source_height)),
        width,
        height,
        placed,
        format,
        candidates: candidates.to_vec(),
        animated,
        original_may_be_returned: choose::original_competes(job, plan).is_some(),
        warnings,
    }
}
