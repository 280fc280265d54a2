//! Step 6: the finished [`Output`] for one planned output. SPEC §5's never-larger rule lives
//! here: without a resize or a conversion to another format, the input itself competes, and a
//! re-encode that is not smaller gives way to it. So does the lossless fallback: an output that
//! failed its lossless proof ([`super::verify`], or the JPEG re-code's own) is replaced by the
//! input, whatever was asked, with a warning. An input in a format pixpress does not write
//! (BMP, TIFF, JPEG XL) cannot stand in for an output: it never competes, and a failed proof
//! of its output is the error itself (a bug on our side, never changed pixels passed off as
//! lossless). This is the one place an [`Output`] is built.

use super::encode::Encoded;
use super::job::{Job, Sizes};
use super::plan::{OutputPlan, Plan};
use super::probe;
use super::transform::Pixels;
use crate::error::CoreError;
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
/// encoder's, then the resize geometry's. A failed lossless check becomes the original; any
/// other encode error is passed on.
pub fn run(
    job: &Job<'_>,
    plan: &Plan,
    shared_warnings: &[Warning],
    output: &OutputPlan,
    pixels: &Pixels<'_>,
    encoded: Result<Encoded, CoreError>,
) -> Result<Output, CoreError> {
    let encoded = match encoded {
        Ok(encoded) => encoded,
        Err(CoreError::LosslessCheckFailed(why)) => {
            return lossless_check_failed(job, &why).map(|chosen| finish(job, chosen))
        }
        Err(e) => return Err(e),
    };
    let mut warnings = shared_warnings.to_vec();
    warnings.extend(encoded.warnings);
    warnings.extend(output.warnings.iter().cloned());
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
    let chosen = match original_competes(job, plan) {
        Some(input_format) if candidate.bytes.len() >= job.input.len() => {
            original(job, candidate, input_format)
        }
        _ => Chosen {
            candidate,
            original_returned: false,
        },
    };
    Ok(finish(job, chosen))
}

fn finish(job: &Job<'_>, chosen: Chosen) -> Output {
    let Chosen {
        candidate,
        original_returned,
    } = chosen;
    let oriented = job.probe.oriented_dimensions();
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
/// there as well. The input's format when it competes.
pub(crate) fn original_competes(job: &Job<'_>, plan: &Plan) -> Option<ImageFormat> {
    let input = job.probe.format.writable()?;
    (matches!(job.sizes, Sizes::Original) && plan.target.is_none_or(|format| format == input))
        .then_some(input)
}

/// The input handed back in place of a re-encode that was not smaller.
fn original(job: &Job<'_>, candidate: Candidate, input_format: ImageFormat) -> Chosen {
    let why = Warning::new(
        warning::ORIGINAL_RETURNED_NOT_SMALLER,
        format!(
            "re-encoding gave {} bytes ({}), not fewer than the input's {}; the original is returned",
            candidate.bytes.len(),
            candidate.format.name(),
            job.input.len()
        ),
    );
    the_input(job, candidate.warnings, why, input_format)
}

/// The input handed back because the lossless output failed its check (`why`, which names
/// the format and where the pixels differ, never pixel values). It is served whatever the
/// request asked for, resize or format included: returning changed pixels as "lossless"
/// would be worse. The other warnings are left out: they describe decoded, turned or resized
/// pixels, and the input is none of those.
fn lossless_check_failed(job: &Job<'_>, why: &str) -> Result<Chosen, CoreError> {
    let Some(input_format) = job.probe.format.writable() else {
        return Err(CoreError::LosslessCheckFailed(format!(
            "{why}; a {} input cannot be returned in its place",
            job.probe.format.name().to_uppercase()
        )));
    };
    let warning = Warning::new(
        warning::LOSSLESS_CHECK_FAILED_ORIGINAL_KEPT,
        format!("{why}; the original is returned unchanged"),
    );
    Ok(the_input(job, Vec::new(), warning, input_format))
}

/// The input as the output, with `why` last among the warnings. Its pixels were never turned
/// upright, so the warning that says they were is dropped.
fn the_input(
    job: &Job<'_>,
    mut warnings: Vec<Warning>,
    why: Warning,
    input_format: ImageFormat,
) -> Chosen {
    warnings.retain(|w| {
        w.code != warning::EXIF_ORIENTATION_APPLIED
            && w.code != warning::EDGE_TRIMMED_FOR_LOSSLESS_ROTATION
    });
    warnings.push(why);
    Chosen {
        candidate: Candidate {
            bytes: job.input.to_vec(),
            format: input_format,
            size: job.probe.oriented_dimensions(),
            quality: None,
            ssimulacra2: None,
            warnings,
        },
        original_returned: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::pipeline::plan;
    use crate::pipeline::probe;
    use crate::pipeline::request::{OutputFormat, Request};

    fn corpus(name: &str) -> Vec<u8> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        std::fs::read(format!("{root}{name}")).expect("corpus file")
    }

    /// A bad candidate injected as the encode step's answer: the input comes back, whole, with
    /// the warning saying why, even for a conversion with a resize-free plan.
    #[test]
    fn a_failed_lossless_check_keeps_the_original_with_a_warning() {
        let input = corpus("png_page_gray.png");
        let limits = Limits::default();
        let probe = probe::run(&input, &limits).unwrap();
        for format in [OutputFormat::Same, OutputFormat::Webp] {
            let request = Request {
                format,
                ..Request::default()
            };
            let job = Job {
                input: &input,
                probe: &probe,
                request: &request,
                limits: &limits,
                sizes: Sizes::Original,
            };
            let plan = plan::run(&job).unwrap();
            let shared = [Warning::new(
                warning::METADATA_NOT_KEPT,
                "about decoded pixels",
            )];
            let failed = Err(CoreError::LosslessCheckFailed(
                "the PNG output differs from its source in 1 of 4 pixels".into(),
            ));
            let output = run(
                &job,
                &plan,
                &shared,
                &plan.outputs[0],
                &Pixels::Untouched,
                failed,
            )
            .unwrap();
            assert_eq!(output.bytes, input);
            assert_eq!(output.format, ImageFormat::Png);
            assert!(output.original_returned);
            assert_eq!((output.width, output.height), probe.oriented_dimensions());
            let codes: Vec<_> = output.warnings.iter().map(|w| w.code).collect();
            assert_eq!(codes, [warning::LOSSLESS_CHECK_FAILED_ORIGINAL_KEPT]);
            assert!(output.warnings[0].message.contains("1 of 4 pixels"));
        }
    }

    #[test]
    fn other_encode_errors_are_passed_on() {
        let input = corpus("png_page_gray.png");
        let limits = Limits::default();
        let probe = probe::run(&input, &limits).unwrap();
        let request = Request::default();
        let job = Job {
            input: &input,
            probe: &probe,
            request: &request,
            limits: &limits,
            sizes: Sizes::Original,
        };
        let plan = plan::run(&job).unwrap();
        let failed = Err(CoreError::Encode("bug".into()));
        let result = run(
            &job,
            &plan,
            &[],
            &plan.outputs[0],
            &Pixels::Untouched,
            failed,
        );
        assert!(matches!(result, Err(CoreError::Encode(_))));
    }
}
