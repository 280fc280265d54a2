//! The pipeline: one entry point, [`run`], takes a [`Job`] through named steps in order, one
//! file each:
//!
//! 1. [`probe`]: sniff the format and read dimensions, frame count and orientation from the
//!    header; enforce the pixel limit before any pixel buffer exists. Run by [`inspect`], so a
//!    caller can admit the job by its predicted memory before the rest runs.
//! 2. [`plan`]: what the job makes, from the header alone: the variant ([`plan::Kind`]: the
//!    lossless shortcut, a still image, an animation), the still-image format, and each
//!    output's resize geometry. A bad request fails here, before anything is decoded.
//! 3. [`decode`]: pixels once for all outputs (upright, sRGB unless the profile is kept), every
//!    frame of an animation, or nothing for the shortcut.
//!
//! Then for each output, in the order of the resize specs:
//!
//! 4. [`transform`]: crop, resample, pad, following the output's resize geometry.
//! 5. [`encode`]: the target format at a fixed or searched quality ([`quality`], scored by
//!    [`score`]), or a lossless re-code of the input for the shortcut; codecs live below, in
//!    [`crate::codec`].
//! 6. [`choose`]: the never-larger rule, the original kept when a lossless output failed its
//!    proof ([`verify`]), and the finished [`Output`].
//!
//! [`dry_run`] runs steps 2 and 3 and places step 4's crop windows, and stops there: what
//! each output would be, without encoding anything.
//!
//! The variants are chosen inside the steps (what [`decode`] hands on, what [`transform`]
//! returns, which encoder [`encode`] calls), never by a separate runner. Helpers the steps
//! share sit beside them: [`color`], [`profile`], [`smart`], [`quality`], [`score`], [`budget`]; [`memory`] predicts a job's peak memory for admission. Everything
//! here is synchronous and CPU-bound: callers run it off their async runtime.

pub mod budget;
pub mod choose;
pub mod color;
pub mod decode;
pub mod dry_run;
pub mod encode;
pub mod job;
pub mod memory;
pub mod plan;
pub mod probe;
pub mod profile;
pub mod quality;
pub mod request;
pub mod score;
pub mod smart;
pub mod timings;
pub mod transform;
pub mod verify;

pub use choose::Output;
pub use dry_run::{DryRun, PlannedOutput};
pub use request::{Metadata, OutputFormat, Request};
pub use timings::StepTimes;

use job::{Job, Sizes};
use plan::geometry::ResizeSpec;
use probe::Probe;

use crate::error::CoreError;
use crate::limits::Limits;

/// Runs steps 2–6 on a probed input: one [`Output`] per planned output, in order.
pub fn run(job: &Job<'_>) -> Result<Vec<Output>, CoreError> {
    let plan = plan::run(job)?;
    let mut first = StepTimes::default();
    let decoded = timings::timed(&mut first.decode, || decode::run(job, &plan))?;
    plan.outputs
        .iter()
        .enumerate()
        .map(|(i, output)| {
            let mut steps = if i == 0 { first } else { StepTimes::default() };
            let pixels = timings::timed(&mut steps.transform, || {
                transform::run(&decoded.source, output.resize.as_ref())
            })?;
            let encoded = timings::timed(&mut steps.encode, || encode::run(job, &plan, &pixels));
            let mut chosen = choose::run(job, &plan, &decoded.warnings, output, &pixels, encoded)?;
            chosen.steps = steps;
            Ok(chosen)
        })
        .collect()
}

/// Reads format, dimensions and frame count from the header and applies the pixel limit.
/// Cheap: no pixel is decoded. The probe it returns is what the two `optimize` calls take, so
/// a caller that needs the header first (admission by predicted memory) reads it only once.
pub fn inspect(input: &[u8], limits: &Limits) -> Result<Probe, CoreError> {
    guarded("the header could not be read", || probe::run(input, limits))
}

/// Runs the pipeline on one input described by `probe` (from [`inspect`]), without resize.
pub fn optimize(
    input: &[u8],
    probe: &Probe,
    request: &Request,
    limits: &Limits,
) -> Result<Output, CoreError> {
    let job = Job {
        input,
        probe,
        request,
        limits,
        sizes: Sizes::Original,
    };
    guarded_job(&job, |job| {
        run(job)?
            .pop()
            .ok_or_else(|| CoreError::Encode("no output was produced".into()))
    })
}

/// Runs the pipeline with one output per resize spec: decode once, then transform and encode
/// each. The order of outputs is the order of `specs`.
pub fn optimize_resized(
    input: &[u8],
    probe: &Probe,
    request: &Request,
    specs: &[ResizeSpec],
    limits: &Limits,
) -> Result<Vec<Output>, CoreError> {
    let job = Job {
        input,
        probe,
        request,
        limits,
        sizes: Sizes::Resized(specs),
    };
    guarded_job(&job, run)
}

/// What [`optimize`] (`specs` `None`) or [`optimize_resized`] would make, without encoding:
/// see [`dry_run`].
pub fn dry_run(
    input: &[u8],
    probe: &Probe,
    request: &Request,
    specs: Option<&[ResizeSpec]>,
    limits: &Limits,
) -> Result<DryRun, CoreError> {
    let job = Job {
        input,
        probe,
        request,
        limits,
        sizes: specs.map_or(Sizes::Original, Sizes::Resized),
    };
    guarded_job(&job, dry_run::run)
}

/// `steps` on `job` behind the panic boundary.
fn guarded_job<T>(
    job: &Job<'_>,
    steps: impl FnOnce(&Job<'_>) -> Result<T, CoreError> + std::panic::UnwindSafe,
) -> Result<T, CoreError> {
    let job = std::panic::AssertUnwindSafe(job);
    guarded("the decoder gave up on this image", move || steps(*job))
}

/// The panic boundary: a codec panic (or a libjpeg fatal error, which unwinds) becomes
/// [`CoreError::Corrupt`] for this input only; a bug in a decoder must not take the server down.
fn guarded<T>(
    what: &str,
    work: impl FnOnce() -> Result<T, CoreError> + std::panic::UnwindSafe,
) -> Result<T, CoreError> {
    std::panic::catch_unwind(work).unwrap_or_else(|panic| {
        Err(CoreError::Corrupt(format!(
            "{what} ({})",
            crate::codec::panic_text(panic)
        )))
    })
}
