//! The encode step for the lossless shortcut (no resize, no conversion, `lossy: false`): make
//! the same image smaller in its own format without changing a pixel. JPEG is re-coded from its DCT
//! coefficients (and proves that itself), PNG goes through oxipng, GIF is re-coded from its
//! palette indices, a still WebP through libwebp's lossless mode. Every PNG, GIF and WebP result
//! is decoded and compared with the input ([`verify`]) before it is handed on; a failure is
//! [`CoreError::LosslessCheckFailed`], for which the choose step keeps the original. A result
//! that is not smaller is not checked: the choose step returns the input in its place anyway.
//! Pixels are not rotated here, so EXIF orientation and the ICC profile stay with them.

use super::encoded::Encoded;
use crate::codec::jpeg_lossless::{self, Keep};
use crate::codec::{gif as gif_codec, png, webp};
use crate::error::CoreError;
use crate::format::ImageFormat;
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
    match probe.format {
        ImageFormat::Jpeg => jpeg_lossless_recode(input, probe, request.metadata),
        ImageFormat::Png => {
            let mut output = png_lossless(input, probe, request.metadata, limits)?;
            if request.lossy {
                output.warnings.push(Warning::new(
                    warning::LOSSY_NOT_AVAILABLE,
                    "lossy compression of animated PNG is not supported; it was recompressed \
                     losslessly with every frame kept",
                ));
            }
            Ok(output)
        }
        ImageFormat::Gif => gif_lossless(input, probe, limits),
        ImageFormat::Webp => webp_lossless(input, probe, limits),
        ImageFormat::Avif => Ok(avif_unchanged(input, probe)),
    }
}

/// Bytes in the input's own format, at its own size, with no quality to report.
fn same_size(probe: &Probe, bytes: Vec<u8>, warnings: Vec<Warning>) -> Encoded {
    Encoded {
        bytes,
        format: probe.format,
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
    let bytes = jpeg_lossless::transcode(input, orientation, keep)?;
    let mut warnings = Vec::new();
    if orientation != 1 {
        warnings.push(Warning::new(
            warning::EXIF_ORIENTATION_KEPT_AS_TAG,
            format!(
                "lossless mode keeps the pixels as stored; EXIF orientation {orientation} is kept \
                 as a tag so viewers still show the image upright"
            ),
        ));
    }
    Ok(same_size(probe, bytes, warnings))
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
    verify::recode(input, output, probe.format, probe.is_animated(), limits)
}

fn png_lossless(
    input: &[u8],
    probe: &Probe,
    keep: Metadata,
    limits: &Limits,
) -> Result<Encoded, CoreError> {
    let bytes = png::optimize_lossless_keeping(input, keep.exif || keep.xmp)?;
    proven_recode(input, &bytes, probe, limits)?;
    let mut warnings = Vec::new();
    if keep.exif_subset() {
        warnings.push(Warning::new(
            warning::METADATA_NOT_KEPT,
            "copyright and geotag subsets of EXIF are written to JPEG output only; keep \"exif\" \
             whole to keep a PNG's EXIF",
        ));
    }
    Ok(same_size(probe, bytes, warnings))
}

fn gif_lossless(input: &[u8], probe: &Probe, limits: &Limits) -> Result<Encoded, CoreError> {
    let bytes = gif_codec::transcode_lossless(input, limits)?;
    proven_recode(input, &bytes, probe, limits)?;
    Ok(same_size(probe, bytes, Vec::new()))
}

/// There is no lossless AVIF re-coder: the input comes back as it is, and says why.
fn avif_unchanged(input: &[u8], probe: &Probe) -> Encoded {
    let warning = Warning::new(
        warning::LOSSLESS_NOT_AVAILABLE,
        "AVIF cannot be made smaller without changing pixels; send lossy: true (or a format) to \
         re-encode it",
    );
    same_size(probe, input.to_vec(), vec![warning])
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
