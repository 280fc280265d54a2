//! The pipeline, in the order it runs:
//!
//! 1. [`probe`]: sniff the format and read dimensions, frame count and orientation from the
//!    header; enforce the pixel limit before any pixel buffer exists.
//! 2. [`recompress`]: per format, either re-code without touching pixels (lossless) or decode,
//!    orient and encode at a quality (lossy). Codec details live in [`encode`].
//! 3. [`choose_output`]: never hand back more bytes than came in when nothing forced a re-encode.
//!
//! Resize planning and transforms slot in between 1 and 2 (see `plan`), once they exist.
//! Everything here is synchronous and CPU-bound: callers run it off their async runtime.

pub mod color;
pub mod encode;
pub mod plan;
pub mod probe;
pub mod recompress;
pub mod resized;
pub mod smart;
pub mod transform;

use crate::warning::{self, Warning};
use crate::{CoreError, ImageFormat, Limits};

/// Quality used for lossy output until perceptual auto-quality lands (SPEC §5).
pub const DEFAULT_LOSSY_QUALITY: u8 = 80;

/// What the caller asked for, already validated at the edge.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub lossy: bool,
    /// 0–100; `None` means "choose for me".
    pub quality: Option<u8>,
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

/// Runs the pipeline on one input described by `probe` (from [`inspect`]).
pub fn optimize(
    input: &[u8],
    probe: &probe::Probe,
    request: &Request,
    limits: &Limits,
) -> Result<Output, CoreError> {
    guarded("the decoder gave up on this image", || {
        let encoded = recompress::recompress(input, probe, request, limits)?;
        Ok(choose_output(input, probe, encoded))
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
        resized::run(input, probe, request, specs, limits)
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

/// Keeps the re-encoded result only when it is smaller than the input (SPEC §5).
fn choose_output(input: &[u8], probe: &probe::Probe, encoded: recompress::Encoded) -> Output {
    let (orig_w, orig_h) = probe.oriented_dimensions();
    let mut warnings = encoded.warnings;
    if encoded.bytes.len() >= input.len() {
        warnings.retain(|w| w.code != warning::EXIF_ORIENTATION_APPLIED);
        warnings.push(Warning::new(
            warning::ORIGINAL_RETURNED_NOT_SMALLER,
            format!(
                "re-encoding gave {} bytes, not fewer than the input's {}; the original is returned",
                encoded.bytes.len(),
                input.len()
            ),
        ));
        return Output {
            bytes: input.to_vec(),
            format: probe.format,
            original_width: orig_w,
            original_height: orig_h,
            width: orig_w,
            height: orig_h,
            quality: None,
            warnings,
            original_returned: true,
        };
    }
    Output {
        bytes: encoded.bytes,
        format: encoded.format,
        original_width: orig_w,
        original_height: orig_h,
        width: encoded.width,
        height: encoded.height,
        quality: encoded.quality,
        warnings,
        original_returned: false,
    }
}
