//! The encode step for the lossless shortcut (no resize, no conversion, `lossy: false`): make
//! the same image smaller in its own format without changing a pixel. JPEG is re-coded from its DCT
//! coefficients, turning it upright losslessly in the DCT domain (partial edge blocks trimmed) and
//! proving the result itself; PNG goes through oxipng, GIF is re-coded from its palette indices,
//! a still WebP through libwebp's lossless mode. Every PNG, GIF and WebP result is decoded and
//! compared with the input ([`verify`]) before it is handed on; a failure is
//! [`CoreError::LosslessCheckFailed`], for which the choose step keeps the original. A result
//! that is not smaller is not checked: the choose step returns the input in its place anyway.
//! Formats other than JPEG keep their pixels as stored, so their orientation and ICC profile
//! stay with them.

use super::encoded::Encoded;
use crate::codec::jpeg_lossless::{self, Keep, Rotation};
use crate::codec::{gif as gif_codec, png, webp};
use crate::error::CoreError;
use crate::format::{ImageFormat, InputFormat};
use crate::limits::Limits;
use crate::pipeline::decode;
use crate::pipeline::probe::Probe;
use crate::pipeline::request::{Metadata, Request};
use crate::pipeline::verify;
use crate::warning::{self, Warning};

/// Re-codes `input` (described by `probe`) in its own format.
pub fn run(
    input: &[u8],
    probe: &Probe,
    request: &Request,
    limits: &Limits,
) -> Result<Encoded, CoreError> {
    // The plan re-codes only inputs in a format pixpress writes.
    let Some(format) = probe.format.writable() else {
        return Err(CoreError::Encode(format!(
            "{} has no lossless re-code of its own",
            probe.format.name()
        )));
    };
    match format {
        ImageFormat::Jpeg => jpeg_lossless_recode(input, probe, request.metadata),
        ImageFormat::Png => png_lossless(input, probe, request, limits),
        ImageFormat::Gif => gif_lossless(input, probe, limits),
        ImageFormat::Webp => webp_lossless(input, probe, limits),
        ImageFormat::Avif => Ok(avif_unchanged(input, probe, request)),
    }
}

/// The warnings a re-code of this input gives whatever bytes it makes, known from the header
/// and the request (a dry run reports them too). A JPEG's depend on its rotation
/// ([`rotation_warnings`]).
pub(crate) fn known_warnings(probe: &Probe, request: &Request) -> Vec<Warning> {
    let mut warnings = Vec::new();
    match probe.format {
        InputFormat::Png => {
            if request.metadata.exif_subset() {
                warnings.push(Warning::new(
                    warning::METADATA_NOT_KEPT,
                    "copyright and geotag subsets of EXIF are written to JPEG output only; keep \
                     \"exif\" whole to keep a PNG's EXIF",
                ));
            }
            if request.lossy {
                warnings.push(Warning::new(
                    warning::LOSSY_NOT_AVAILABLE,
                    "lossy compression of animated PNG is not supported; it was recompressed \
                     losslessly with every frame kept",
                ));
            }
        }
        InputFormat::Avif => warnings.push(Warning::new(
            warning::LOSSLESS_NOT_AVAILABLE,
            "AVIF cannot be made smaller without changing pixels; send lossy: true (or a format) \
             to re-encode it",
        )),
        _ => {}
    }
    warnings
}

/// Bytes in the input's own format, at its own size, with no quality to report. Only re-codes
/// get here, and they exist only for inputs whose own format is their default output.
fn same_size(probe: &Probe, bytes: Vec<u8>, warnings: Vec<Warning>) -> Encoded {
    Encoded {
        bytes,
        format: probe.default_output,
        quality: None,
        ssimulacra2: None,
        warnings,
    }
}

fn jpeg_lossless_recode(input: &[u8], probe: &Probe, keep: Metadata) -> Result<Encoded, CoreError> {
    let orientation = probe.orientation.to_exif();
    let keep = Keep {
        exif: keep.keep_exif(),
        xmp: keep.xmp,
    };
    let recoded = jpeg_lossless::transcode(input, orientation, keep)?;
    let warnings = rotation_warnings(orientation, recoded.rotation);
    Ok(same_size(probe, recoded.bytes, warnings))
}

/// What the caller is told about the EXIF orientation of a lossless JPEG re-code.
pub(crate) fn rotation_warnings(orientation: u8, rotation: Rotation) -> Vec<Warning> {
    match rotation {
        Rotation::Upright => Vec::new(),
        Rotation::KeptAsTag => vec![Warning::new(
            warning::EXIF_ORIENTATION_KEPT_AS_TAG,
            format!(
                "the image is smaller than one JPEG block group along an axis EXIF orientation \
                 {orientation} reverses, so its pixels cannot be turned losslessly; the \
                 orientation is kept as a tag so viewers still show the image upright"
            ),
        )],
        Rotation::Applied {
            trimmed_columns,
            trimmed_rows,
            imcu_width,
            imcu_height,
            width,
            height,
        } => {
            let mut warnings = vec![Warning::new(
                warning::EXIF_ORIENTATION_APPLIED,
                format!(
                    "EXIF orientation {orientation} was applied to the pixels losslessly (in the \
                     DCT domain) and the tag reset"
                ),
            )];
            if trimmed_columns > 0 || trimmed_rows > 0 {
                warnings.push(Warning::new(
                    warning::EDGE_TRIMMED_FOR_LOSSLESS_ROTATION,
                    format!(
                        "the stored image's last {trimmed_columns} pixel column(s) and \
                         {trimmed_rows} pixel row(s) are a partial {imcu_width}x{imcu_height} \
                         block group that cannot be moved losslessly, so they were dropped \
                         (as jpegtran -trim does); the output is {width}x{height}"
                    ),
                ));
            }
            warnings
        }
    }
}

/// The never-larger rule returns the input in place of a result that is not smaller, so only
/// a smaller one needs the proof.
fn proven_recode(
    input: &[u8],
    output: &[u8],
    probe: &Probe,
    limits: &Limits,
) -> Result<(), CoreError> {
    if output.len() >= input.len() {
        return Ok(());
    }
    verify::recode(
        input,
        output,
        probe.default_output,
        probe.is_animated(),
        limits,
    )
}

fn png_lossless(
    input: &[u8],
    probe: &Probe,
    request: &Request,
    limits: &Limits,
) -> Result<Encoded, CoreError> {
    let keep = request.metadata;
    let bytes = png::optimize_lossless_keeping(input, keep.exif || keep.xmp)?;
    proven_recode(input, &bytes, probe, limits)?;
    Ok(same_size(probe, bytes, known_warnings(probe, request)))
}

fn gif_lossless(input: &[u8], probe: &Probe, limits: &Limits) -> Result<Encoded, CoreError> {
    let bytes = gif_codec::transcode_lossless(input, limits)?;
    proven_recode(input, &bytes, probe, limits)?;
    Ok(same_size(probe, bytes, Vec::new()))
}

/// There is no lossless AVIF re-coder: the input comes back as it is, and says why.
fn avif_unchanged(input: &[u8], probe: &Probe, request: &Request) -> Encoded {
    same_size(probe, input.to_vec(), known_warnings(probe, request))
}

fn webp_lossless(input: &[u8], probe: &Probe, limits: &Limits) -> Result<Encoded, CoreError> {
    let image = decode::pixels(input, probe, limits)?;
    let bytes = webp::encode_lossless(&image)?;
    // Compared with the pixels already decoded to encode them: one decode, of the output.
    if bytes.len() < input.len() {
        verify::still(&image, &bytes, ImageFormat::Webp)?;
    }
    Ok(same_size(probe, bytes, Vec::new()))
}
