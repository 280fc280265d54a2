//! Step 1: what is this input? Format from magic bytes; width, height, frame count and EXIF
//! orientation from the headers only. The pixel limit (width × height × frames) is enforced
//! here, before any decoder allocates a pixel buffer, so a 50 KB decompression bomb costs
//! microseconds. GIF frames are walked without LZW-decoding them, because a GIF's logical screen
//! can claim 32×32 while a frame descriptor claims 65535×66601.

use std::io::Cursor;

use image::metadata::Orientation;
use image::ImageDecoder;

use crate::format::{self, Sniffed};
use crate::{CoreError, ImageFormat, Limits};

#[derive(Clone, Debug)]
pub struct Probe {
    pub format: ImageFormat,
    /// As stored, before orientation.
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub orientation: Orientation,
}

impl Probe {
    /// Dimensions as the viewer sees them, after EXIF orientation.
    pub fn oriented_dimensions(&self) -> (u32, u32) {
        if swaps_axes(self.orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    pub fn is_animated(&self) -> bool {
        self.frames > 1
    }
}

pub fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

pub fn probe(input: &[u8], limits: &Limits) -> Result<Probe, CoreError> {
    let format = match format::sniff(input) {
        Sniffed::Supported(f) => f,
        Sniffed::Unsupported(name) => {
            return Err(CoreError::Unsupported {
                detected: format!("{name} is not an accepted input format"),
            })
        }
        Sniffed::Empty => {
            return Err(CoreError::Unsupported {
                detected: "an empty file (0 bytes) is not an image".to_string(),
            })
        }
        Sniffed::Unknown => {
            return Err(CoreError::Unsupported {
                detected: format::describe_unknown(input),
            })
        }
    };
    let probe = match format {
        ImageFormat::Gif => probe_gif(input)?,
        ImageFormat::Webp => probe_with_image(input, format, count_webp_frames(input))?,
        ImageFormat::Png => probe_with_image(input, format, count_apng_frames(input))?,
        ImageFormat::Jpeg => probe_with_image(input, format, 1)?,
    };
    if probe.width == 0 || probe.height == 0 {
        return Err(CoreError::Corrupt(format!(
            "the header says {}x{}; an image needs both dimensions above zero",
            probe.width, probe.height
        )));
    }
    limits.check_pixels(probe.width.into(), probe.height.into(), probe.frames)?;
    Ok(probe)
}

/// Builds an `image` reader with the pixpress limits applied.
pub fn image_reader<'a>(
    input: &'a [u8],
    format: ImageFormat,
    limits: &Limits,
) -> image::ImageReader<Cursor<&'a [u8]>> {
    let mut reader = image::ImageReader::with_format(Cursor::new(input), image_format(format));
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(image_limits);
    reader
}

pub fn image_format(format: ImageFormat) -> image::ImageFormat {
    match format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Webp => image::ImageFormat::WebP,
    }
}

fn probe_with_image(input: &[u8], format: ImageFormat, frames: u64) -> Result<Probe, CoreError> {
    // Header-only: image's decoders read dimensions without decoding pixel data.
    let reader = image::ImageReader::with_format(Cursor::new(input), image_format(format));
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let (width, height) = decoder.dimensions();
    // A broken EXIF block must not fail the image: the orientation is then "as stored".
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    Ok(Probe {
        format,
        width,
        height,
        frames,
        orientation,
    })
}

/// Maps a decoder error to the client-facing kind: limits are 413, the rest 422.
pub fn map_image_error(e: image::ImageError) -> CoreError {
    match e {
        image::ImageError::Limits(l) => CoreError::LimitExceeded(l.to_string()),
        image::ImageError::Unsupported(u) => CoreError::Corrupt(u.to_string()),
        other => CoreError::corrupt(other),
    }
}

fn probe_gif(input: &[u8]) -> Result<Probe, CoreError> {
    let mut options = gif::DecodeOptions::new();
    options.skip_frame_decoding(true);
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(Cursor::new(input)).map_err(CoreError::corrupt)?;
    let (mut width, mut height) = (u64::from(decoder.width()), u64::from(decoder.height()));
    let mut frames: u64 = 0;
    loop {
        match decoder.read_next_frame() {
            Ok(Some(frame)) => {
                frames += 1;
                width = width.max(u64::from(frame.left) + u64::from(frame.width));
                height = height.max(u64::from(frame.top) + u64::from(frame.height));
            }
            Ok(None) => break,
            // A truncated trailer after complete frames is common in the wild; the full decode
            // decides whether what is there is usable.
            Err(_) if frames > 0 => break,
            Err(e) => return Err(CoreError::corrupt(e)),
        }
    }
    Ok(Probe {
        format: ImageFormat::Gif,
        width: u32::try_from(width).unwrap_or(u32::MAX),
        height: u32::try_from(height).unwrap_or(u32::MAX),
        frames: frames.max(1),
        orientation: Orientation::NoTransforms,
    })
}

/// Counts `ANMF` chunks of an animated WebP (1 for a still image) by walking the RIFF chunks.
fn count_webp_frames(input: &[u8]) -> u64 {
    let mut frames = 0u64;
    let mut pos = 12usize;
    while pos + 8 <= input.len() {
        let fourcc = &input[pos..pos + 4];
        let size = u32::from_le_bytes([input[pos + 4], input[pos + 5], input[pos + 6], input[pos + 7]]);
        if fourcc == b"ANMF" {
            frames += 1;
        }
        let padded = (size as usize).saturating_add(size as usize & 1);
        pos = pos.saturating_add(8).saturating_add(padded);
    }
    frames.max(1)
}

/// Reads `num_frames` from an APNG's `acTL` chunk (1 for a plain PNG).
fn count_apng_frames(input: &[u8]) -> u64 {
    let mut pos = 8usize;
    while pos + 12 <= input.len() {
        let len = u32::from_be_bytes([input[pos], input[pos + 1], input[pos + 2], input[pos + 3]]) as usize;
        let kind = &input[pos + 4..pos + 8];
        if kind == b"acTL" && pos + 12 <= input.len() {
            let n = u32::from_be_bytes([input[pos + 8], input[pos + 9], input[pos + 10], input[pos + 11]]);
            return u64::from(n).max(1);
        }
        if kind == b"IDAT" || kind == b"IEND" {
            break;
        }
        pos = pos.saturating_add(12).saturating_add(len);
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        std::fs::read(format!("{path}{name}")).expect("corpus file")
    }

    #[test]
    fn gif_bomb_is_refused_from_its_frame_descriptor() {
        let err = probe(&corpus("edge/bomb_gif_65535x66601.gif"), &Limits::default()).unwrap_err();
        match err {
            CoreError::TooManyPixels { width, height, .. } => {
                assert_eq!((width, height), (65535, 66601));
            }
            other => panic!("expected TooManyPixels, got {other:?}"),
        }
    }

    #[test]
    fn orientation_8_swaps_dimensions() {
        let p = probe(&corpus("edge/orientation_8_2x1.jpg"), &Limits::default()).unwrap();
        assert_eq!((p.width, p.height), (2, 1));
        assert_eq!(p.oriented_dimensions(), (1, 2));
    }

    #[test]
    fn animated_inputs_count_frames() {
        let p = probe(&corpus("gif_chi_anim.gif"), &Limits::default()).unwrap();
        assert_eq!(p.frames, 31);
        let p = probe(&corpus("edge/webp_animated.webp"), &Limits::default()).unwrap();
        assert_eq!(p.frames, 4);
        let p = probe(&corpus("edge/apng_palette_alpha_3frames.png"), &Limits::default()).unwrap();
        assert_eq!(p.frames, 3);
    }

    #[test]
    fn unsupported_and_empty_inputs_are_named() {
        for (name, needle) in [
            ("edge/heif.heic", "HEIF"),
            ("edge/zero_bytes.jpg", "empty"),
            ("edge/not_an_image.txt", "text"),
            ("edge/vector.svg", "SVG"),
        ] {
            match probe(&corpus(name), &Limits::default()) {
                Err(CoreError::Unsupported { detected }) => assert!(detected.contains(needle), "{name}: {detected}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn zero_width_png_is_corrupt() {
        assert!(matches!(
            probe(&corpus("edge/png_zero_width.png"), &Limits::default()),
            Err(CoreError::Corrupt(_))
        ));
    }
}
