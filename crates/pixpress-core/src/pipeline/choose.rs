//! Step 6: the finished [`Output`] for one planned output. SPEC §5's never-larger rule lives
//! here: without a resize or a conversion to another format, the input itself competes, and a
//! re-encode that is not smaller gives way to it. This is the one place an [`Output`] is built.

use super::encode::Encoded;
use super::job::{Job, Sizes};
use super::plan::{OutputPlan, Plan};
use super::probe;
use super::transform::Pixels;
use crate::format::ImageFormat;
use crate::warning::{self, Warning};

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
    /// How long decode, transform and encode took for this output (filled by `pipeline::run`).
    pub steps: super::StepTimes,
}

/// The step. Warnings come in a fixed order: those the decode shared with every output, the
/// encoder's, then the resize geometry's.
pub fn run(
    job: &Job<'_>,
    plan: &Plan,
    shared_warnings: &[Warning],
    output: &OutputPlan,
    pixels: &Pixels<'_>,
    encoded: Encoded,
) -> Output {
    let mut warnings = shared_warnings.to_vec();
    warnings.extend(encoded.warnings);
    warnings.extend(output.warnings.iter().cloned());
    let oriented = job.probe.oriented_dimensions();
    let candidate = Candidate {
        size: pixels
            .dimensions()
            .unwrap_or_else(|| recoded_size(job, &encoded.bytes)),
        quality: encoded.quality,
        ssimulacra2: encoded.ssimulacra2,
        bytes: encoded.bytes,
        format: encoded.format,
        warnings,
    };
    let chosen = if original_competes(job, plan) && candidate.bytes.len() >= job.input.len() {
        original(job, candidate)
    } else {
        Chosen {
            candidate,
            original_returned: false,
        }
    };
    let Chosen {
        candidate,
        original_returned,
    } = chosen;
    Output {
        bytes: candidate.bytes,
        format: candidate.format,
        original_width: oriented.0,
        original_height: oriented.1,
        width: candidate.size.0,
        height: candidate.size.1,
        quality: candidate.quality,
        ssimulacra2: candidate.ssimulacra2,
        warnings: candidate.warnings,
        original_returned,
        steps: super::StepTimes::default(),
    }
}

/// The size of a lossless re-code, from its own header: the input's, except where a lossless
/// JPEG rotation dropped partial edge blocks.
fn recoded_size(job: &Job<'_>, bytes: &[u8]) -> (u32, u32) {
    probe::run(bytes, job.limits)
        .map(|p| p.oriented_dimensions())
        .unwrap_or_else(|_| job.probe.oriented_dimensions())
}

/// What an output is made of before the never-larger rule has had its say.
struct Candidate {
    bytes: Vec<u8>,
    format: ImageFormat,
    size: (u32, u32),
    quality: Option<u8>,
    ssimulacra2: Option<f64>,
    warnings: Vec<Warning>,
}

struct Chosen {
    candidate: Candidate,
    original_returned: bool,
}

/// SPEC §5: only `optimize` (no resize) keeps the original as a candidate, and only when the
/// output stays in the input's format. `auto` asks for the smallest, so the original competes
/// there as well.
fn original_competes(job: &Job<'_>, plan: &Plan) -> bool {
    matches!(job.sizes, Sizes::Original)
        && plan.target.is_none_or(|format| format == job.probe.format)
}

/// The input handed back in place of a re-encode that was not smaller. Its pixels were never
/// turned upright, so the warning that says they were is dropped.
fn original(job: &Job<'_>, candidate: Candidate) -> Chosen {
    let mut warnings = candidate.warnings;
    warnings.retain(|w| {
        w.code != warning::EXIF_ORIENTATION_APPLIED
            && w.code != warning::EDGE_TRIMMED_FOR_LOSSLESS_ROTATION
    });
    warnings.push(Warning::new(
        warning::ORIGINAL_RETURNED_NOT_SMALLER,
        format!(
            "re-encoding gave {} bytes ({}), not fewer than the input's {}; the original is returned",
            candidate.bytes.len(),
            candidate.format.name(),
            job.input.len()
        ),
    ));
    Chosen {
        candidate: Candidate {
            bytes: job.input.to_vec(),
            format: job.probe.format,
            size: job.probe.oriented_dimensions(),
            quality: None,
            ssimulacra2: None,
            warnings,
        },
        original_returned: true,
    }
}
