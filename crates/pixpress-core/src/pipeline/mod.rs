//! The pipeline, in the order it runs:
//!
//! 1. [`probe`]: sniff the format and read dimensions, frame count and orientation from the
//!    header; enforce the pixel limit before any pixel buffer exists.
//! 2. [`plan`]: resize geometry for every requested output, from the header's size alone.
//! 3. decode (in [`render`]): pixels with EXIF orientation applied, colour profile converted to
//!    sRGB unless kept ([`profile`]); every frame for animations ([`animation`]).
//! 4. [`transform`]: crop, resample, pad, following the plan.
//! 5. [`output`]: encode in the target format at a fixed or searched quality ([`quality`],
//!    scored by [`score`]); codec details live in [`encode`].
//!
//! When nothing asks for new pixels (no resize, no conversion, `lossy: false`), [`recompress`]
//! re-codes the input without decoding it. Either way [`choose_output`] never hands back more
//! bytes than came in unless a resize or conversion was asked for. Everything here is
//! synchronous and CPU-bound: callers run it off their async runtime.

pub mod animation;
pub mod color;
pub mod encode;
pub mod output;
pub mod plan;
pub mod probe;
pub mod profile;
pub mod quality;
pub mod recompress;
pub mod render;
pub mod score;
pub mod smart;
pub mod transform;

use crate::warning::{self, Warning};
use crate::{CoreError, ImageFormat, Limits};

/// The output format a request asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// The input's format (the default).
    #[default]
    Same,
    Jpeg,
    Png,
    Webp,
    Gif,
    Avif,
    /// The smallest suitable format at the same perceptual target.
    Auto,
}

/// Which metadata survives (SPEC §3). The default strips everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub exif: bool,
    /// Keep the embedded colour profile instead of converting the pixels to sRGB.
    pub icc: bool,
    pub xmp: bool,
    /// Keep only EXIF's Copyright and Artist tags (when `exif` is not kept whole).
    pub copyright: bool,
    /// Keep only EXIF's GPS tags (when `exif` is not kept whole).
    pub geotag: bool,
}

impl Metadata {
    /// Some part of the EXIF block is to be kept.
    pub fn wants_exif(&self) -> bool {
        self.exif || self.copyright || self.geotag
    }

    /// Only chosen EXIF tags are kept: the block must be rewritten, not copied.
    pub fn exif_subset(&self) -> bool {
        !self.exif && (self.copyright || self.geotag)
    }
}

/// What the caller asked for, already validated at the edge.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub lossy: bool,
    /// 0–100; `None` means "choose by the perceptual target".
    pub quality: Option<u8>,
    /// SSIMULACRA2 the automatic quality must reach; `None` is [`quality::DEFAULT_TARGET`].
    pub quality_target: Option<f64>,
    pub format: OutputFormat,
    pub metadata: Metadata,
    /// Opaque colour transparent pixels are flattened on when the output has no alpha.
    pub background: Option<[u8; 4]>,
}

impl Request {
    pub fn target(&self) -> f64 {
        self.quality_target.unwrap_or(quality::DEFAULT_TARGET)
    }
}

/// One finished image and what was done to it.
#[derive(Clone, Debug)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    /// As the viewer sees it (after EXIF orientation).
    pub original_width: u32,
    pub original_height: u32,
    pub width: u32,
    pub height: u32,
    /// The lossy quality used, when a lossy encoder produced the output.
    pub quality: Option<u8>,
    /// SSIMULACRA2 of the output against its source pixels, when a lossy encoder was scored.
    pub ssimulacra2: Option<f64>,
    pub warnings: Vec<Warning>,
    /// True when the input bytes were handed back unchanged.
    pub original_returned: bool,
}

/// Reads format, dimensions and frame count from the header and applies the pixel limit.
/// Cheap: no pixel is decoded. The probe it returns is what the two `optimize` calls take, so
/// a caller that needs the header first (admission by predicted memory) reads it only once.
pub fn inspect(input: &[u8], limits: &Limits) -> Result<probe::Probe, CoreError> {
    guarded("the header could not be read", || {
        probe::probe(input, limits)
    })
}

/// Runs the pipeline on one input described by `probe` (from [`inspect`]), without resize.
pub fn optimize(
    input: &[u8],
    probe: &probe::Probe,
    request: &Request,
    limits: &Limits,
) -> Result<Output, CoreError> {
    guarded("the decoder gave up on this image", || {
        let candidate = if recompress::applies(probe, request) {
            recompress::recompress(input, probe, request, limits)?
        } else {
            let mut outputs = render::run(input, probe, request, &[], limits)?;
            outputs
                .pop()
                .ok_or_else(|| CoreError::Encode("no output was produced".into()))?
        };
        Ok(if keeps_never_larger(probe, request) {
            choose_output(input, probe, candidate)
        } else {
            candidate
        })
    })
}

/// Runs the pipeline with one output per resize spec: decode once, then plan, transform and
/// encode each. The order of outputs is the order of `specs`.
pub fn optimize_resized(
    input: &[u8],
    probe: &probe::Probe,
    request: &Request,
    specs: &[plan::ResizeSpec],
    limits: &Limits,
) -> Result<Vec<Output>, CoreError> {
    guarded("the decoder gave up on this image", || {
        render::run(input, probe, request, specs, limits)
    })
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
            encode::panic_text(panic)
        )))
    })
}

/// SPEC §5: without a resize or an explicit conversion to another format, the original is a
/// candidate too. `auto` asks for the smallest, so the original competes there as well.
fn keeps_never_larger(probe: &probe::Probe, request: &Request) -> bool {
    match output::resolve(request.format, probe.format) {
        Some(format) => format == probe.format,
        None => true,
    }
}

/// Keeps the re-encoded result only when it is smaller than the input (SPEC §5).
fn choose_output(input: &[u8], probe: &probe::Probe, candidate: Output) -> Output {
    if candidate.bytes.len() < input.len() {
        return candidate;
    }
    let (orig_w, orig_h) = probe.oriented_dimensions();
    let mut warnings = candidate.warnings;
    warnings.retain(|w| w.code != warning::EXIF_ORIENTATION_APPLIED);
    warnings.push(Warning::new(
        warning::ORIGINAL_RETURNED_NOT_SMALLER,
        format!(
            "re-encoding gave {} bytes ({}), not fewer than the input's {}; the original is returned",
            candidate.bytes.len(),
            candidate.format.name(),
            input.len()
        ),
    ));
    Output {
        bytes: input.to_vec(),
        format: probe.format,
        original_width: orig_w,
        original_height: orig_h,
        width: orig_w,
        height: orig_h,
        quality: None,
        ssimulacra2: None,
        warnings,
        original_returned: true,
    }
}
