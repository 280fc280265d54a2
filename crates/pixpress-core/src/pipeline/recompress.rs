//! The lossless shortcut (no resize, no conversion, `lossy: false`): make the same image
//! smaller in its own format without changing a pixel. JPEG is re-coded from its DCT
//! coefficients, PNG goes through oxipng, GIF is re-coded from its palette indices, a still WebP
//! through libwebp's lossless mode (decoded and compared before it is accepted). Pixels are not
//! rotated here, so EXIF orientation and the ICC profile stay with them.

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder};

use super::encode::{avif, gif as gif_codec, jpeg_lossless, png, webp};
use super::probe::{self, Probe};
use super::{output, Metadata, Output, Request};
use crate::warning::{self, Warning};
use crate::{CoreError, ImageFormat, Limits};

/// Whether this request can be served without decoding to pixels. Animated PNG also comes
/// here when `lossy` (there is no lossy APNG encoder; decoding would keep one frame of it).
pub fn applies(probe: &Probe, request: &Request) -> bool {
    let apng = probe.format == ImageFormat::Png && probe.is_animated();
    output::resolve(request.format, probe.format) == Some(probe.format)
        && (!request.lossy || apng)
        && !(probe.format == ImageFormat::Webp && probe.is_animated())
}

pub fn recompress(
    input: &[u8],
    probe: &Probe,
    request: &Request,
    limits: &Limits,
) -> Result<Output, CoreError> {
    match probe.format {
        ImageFormat::Jpeg => jpeg_lossless_recode(input, probe, request.metadata),
        ImageFormat::Png => {
            let mut output = png_lossless(input, probe, request.metadata)?;
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

/// Pixels and what travels with them, decoded with EXIF orientation applied.
pub struct Decoded {
    pub image: DynamicImage,
    pub icc: Option<Vec<u8>>,
    /// TIFF payload of the EXIF block.
    pub exif: Option<Vec<u8>>,
    pub xmp: Option<Vec<u8>>,
}

/// Decodes to pixels with EXIF orientation applied. EXIF and XMP are read only when `keep`
/// asks for them (for JPEG each is a second pass over the headers); the ICC profile always is,
/// since colours depend on it.
pub fn decode_oriented(
    input: &[u8],
    probe: &Probe,
    limits: &Limits,
    keep: Metadata,
) -> Result<Decoded, CoreError> {
    if probe.format == ImageFormat::Avif {
        // libaom, not `image`: the container's ICC, EXIF and XMP items are not carried over.
        return Ok(Decoded {
            image: avif::decode(input)?,
            icc: None,
            exif: None,
            xmp: None,
        });
    }
    let reader = probe::image_reader(input, probe.format, limits);
    let mut decoder = reader.into_decoder().map_err(probe::map_image_error)?;
    let icc = decoder.icc_profile().ok().flatten();
    let exif = if keep.wants_exif() {
        decoder.exif_metadata().ok().flatten()
    } else {
        None
    };
    let xmp = if keep.xmp {
        decoder.xmp_metadata().ok().flatten()
    } else {
        None
    };
    let mut image = DynamicImage::from_decoder(decoder).map_err(probe::map_image_error)?;
    image.apply_orientation(probe.orientation);
    Ok(Decoded {
        image,
        icc,
        exif,
        xmp,
    })
}

pub fn orientation_warning(probe: &Probe) -> Option<Warning> {
    (probe.orientation != Orientation::NoTransforms).then(|| {
        Warning::new(
            warning::EXIF_ORIENTATION_APPLIED,
            format!(
                "EXIF orientation {} was applied to the pixels and the tag reset",
                probe.orientation.to_exif()
            ),
        )
    })
}

fn same_size(probe: &Probe, bytes: Vec<u8>, warnings: Vec<Warning>) -> Output {
    let (width, height) = probe.oriented_dimensions();
    Output {
        bytes,
        format: probe.format,
        original_width: width,
        original_height: height,
        width,
        height,
        quality: None,
        ssimulacra2: None,
        warnings,
        original_returned: false,
    }
}

fn jpeg_lossless_recode(input: &[u8], probe: &Probe, keep: Metadata) -> Result<Output, CoreError> {
    let orientation = probe.orientation.to_exif();
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

fn png_lossless(input: &[u8], probe: &Probe, keep: Metadata) -> Result<Output, CoreError> {
    let bytes = png::optimize_lossless_keeping(input, keep.exif || keep.xmp)?;
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

fn gif_lossless(input: &[u8], probe: &Probe, limits: &Limits) -> Result<Output, CoreError> {
    let bytes = gif_codec::transcode_lossless(input, limits)?;
    Ok(same_size(probe, bytes, Vec::new()))
}

/// There is no lossless AVIF re-coder: the input comes back as it is, and says why.
fn avif_unchanged(input: &[u8], probe: &Probe) -> Output {
    let warning = Warning::new(
        warning::LOSSLESS_NOT_AVAILABLE,
        "AVIF cannot be made smaller without changing pixels; send lossy: true (or a format) to \
         re-encode it",
    );
    same_size(probe, input.to_vec(), vec![warning])
}

fn webp_lossless(input: &[u8], probe: &Probe, limits: &Limits) -> Result<Output, CoreError> {
    let decoded = decode_oriented(input, probe, limits, Metadata::default())?;
    // A failed round trip hands back the input, which the caller then returns unchanged.
    let bytes = webp::encode_lossless_verified(&decoded.image)?.unwrap_or_else(|| input.to_vec());
    Ok(same_size(probe, bytes, Vec::new()))
}
