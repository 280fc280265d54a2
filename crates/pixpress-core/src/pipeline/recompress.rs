//! Step 2 (no resize, no conversion): make the same image smaller in its own format.
//!
//! Lossless never changes a pixel: JPEG is re-coded from its DCT coefficients, PNG goes through
//! oxipng, GIF is re-coded from its palette indices, WebP through libwebp's lossless mode (and the
//! result is decoded and compared before it is accepted). Lossy decodes, applies EXIF orientation
//! and encodes at the requested quality.

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder};

use super::encode::{gif as gif_codec, jpeg, jpeg_lossless, png, webp};
use super::probe::{self, Probe};
use super::{Request, DEFAULT_LOSSY_QUALITY};
use crate::warning::{self, Warning};
use crate::{CoreError, ImageFormat, Limits};

/// An encoder's result before the "never larger" decision.
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub quality: Option<u8>,
    pub warnings: Vec<Warning>,
}

pub fn recompress(
    input: &[u8],
    probe: &Probe,
    request: &Request,
    limits: &Limits,
) -> Result<Encoded, CoreError> {
    let quality = request.quality.unwrap_or(DEFAULT_LOSSY_QUALITY);
    match (probe.format, request.lossy) {
        (ImageFormat::Jpeg, false) => jpeg_lossless_recode(input, probe),
        (ImageFormat::Jpeg, true) => jpeg_lossy(input, probe, limits, quality),
        (ImageFormat::Png, false) => png_lossless(input, probe),
        (ImageFormat::Png, true) => png_lossy(input, probe, limits, quality),
        (ImageFormat::Gif, lossy) => gif_lossless(input, probe, limits, lossy),
        (ImageFormat::Webp, lossy) => webp_recode(input, probe, limits, lossy, quality),
    }
}

/// Decodes to pixels with EXIF orientation applied. Returns the image and its ICC profile.
pub fn decode_oriented(
    input: &[u8],
    probe: &Probe,
    limits: &Limits,
) -> Result<(DynamicImage, Option<Vec<u8>>), CoreError> {
    let reader = probe::image_reader(input, probe.format, limits);
    let mut decoder = reader.into_decoder().map_err(probe::map_image_error)?;
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(probe::map_image_error)?;
    image.apply_orientation(probe.orientation);
    Ok((image, icc))
}

fn orientation_warning(probe: &Probe) -> Option<Warning> {
    (probe.orientation != Orientation::NoTransforms).then(|| {
        Warning::new(
            warning::EXIF_ORIENTATION_APPLIED,
            format!(
                "EXIF orientation {} was applied to the pixels and the tag removed",
                probe.orientation.to_exif()
            ),
        )
    })
}

fn same_size(probe: &Probe, bytes: Vec<u8>, warnings: Vec<Warning>) -> Encoded {
    let (width, height) = probe.oriented_dimensions();
    Encoded {
        bytes,
        format: probe.format,
        width,
        height,
        quality: None,
        warnings,
    }
}

fn jpeg_lossless_recode(input: &[u8], probe: &Probe) -> Result<Encoded, CoreError> {
    let orientation = probe.orientation.to_exif();
    let bytes = jpeg_lossless::transcode(input, orientation)?;
    let mut warnings = Vec::new();
    if orientation != 1 {
        warnings.push(Warning::new(
            warning::EXIF_ORIENTATION_KEPT_AS_TAG,
            format!(
                "lossless mode keeps the pixels as stored; EXIF orientation {orientation} is kept \
                 as the only EXIF tag so viewers still show the image upright"
            ),
        ));
    }
    Ok(same_size(probe, bytes, warnings))
}

fn jpeg_lossy(
    input: &[u8],
    probe: &Probe,
    limits: &Limits,
    quality: u8,
) -> Result<Encoded, CoreError> {
    let (image, icc) = decode_oriented(input, probe, limits)?;
    let bytes = jpeg::encode(&image, quality, icc.as_deref())?;
    Ok(Encoded {
        width: image.width(),
        height: image.height(),
        bytes,
        format: ImageFormat::Jpeg,
        quality: Some(quality),
        warnings: orientation_warning(probe).into_iter().collect(),
    })
}

fn png_lossless(input: &[u8], probe: &Probe) -> Result<Encoded, CoreError> {
    let bytes = png::optimize_lossless(input)?;
    Ok(same_size(probe, bytes, Vec::new()))
}

fn png_lossy(
    input: &[u8],
    probe: &Probe,
    limits: &Limits,
    quality: u8,
) -> Result<Encoded, CoreError> {
    if probe.is_animated() {
        let mut encoded = png_lossless(input, probe)?;
        encoded.warnings.push(Warning::new(
            warning::LOSSY_NOT_AVAILABLE,
            "lossy compression of animated PNG is not supported yet; it was recompressed losslessly",
        ));
        return Ok(encoded);
    }
    let (image, _icc) = decode_oriented(input, probe, limits)?;
    let rgba = image.to_rgba8();
    match png::quantize(&rgba, quality)? {
        Some(bytes) => Ok(Encoded {
            width: rgba.width(),
            height: rgba.height(),
            bytes,
            format: ImageFormat::Png,
            quality: Some(quality),
            warnings: Vec::new(),
        }),
        // The palette could not reach the quality: fall back to lossless (SPEC §5).
        None => png_lossless(input, probe),
    }
}

fn gif_lossless(
    input: &[u8],
    probe: &Probe,
    limits: &Limits,
    lossy: bool,
) -> Result<Encoded, CoreError> {
    let bytes = gif_codec::transcode_lossless(input, limits)?;
    let mut warnings = Vec::new();
    if lossy {
        warnings.push(Warning::new(
            warning::LOSSY_NOT_AVAILABLE,
            "lossy GIF palette reduction is not supported yet; the GIF was recompressed losslessly",
        ));
    }
    Ok(same_size(probe, bytes, warnings))
}

fn webp_recode(
    input: &[u8],
    probe: &Probe,
    limits: &Limits,
    lossy: bool,
    quality: u8,
) -> Result<Encoded, CoreError> {
    if probe.is_animated() {
        // Handing back the input keeps every frame and its timing exactly.
        let warning = Warning::new(
            warning::LOSSY_NOT_AVAILABLE,
            "re-encoding animated WebP is not supported yet; the original is returned unchanged",
        );
        return Ok(same_size(probe, input.to_vec(), vec![warning]));
    }
    let (image, _icc) = decode_oriented(input, probe, limits)?;
    let quality_used = lossy.then_some(quality);
    let bytes = if lossy {
        webp::encode_lossy(&image, quality)?
    } else {
        // A failed round trip hands back the input, which the caller then returns unchanged.
        webp::encode_lossless_verified(&image)?.unwrap_or_else(|| input.to_vec())
    };
    Ok(Encoded {
        width: image.width(),
        height: image.height(),
        bytes,
        format: ImageFormat::Webp,
        quality: quality_used,
        warnings: Vec::new(),
    })
}
