//! Step 1: what is this input? Format from magic bytes; width, height, frame count and EXIF
//! orientation from the headers only. The pixel limit (width × height × frames) is enforced
//! here, before any decoder allocates a pixel buffer, so a 50 KB decompression bomb costs
//! microseconds. GIF frames are walked without LZW-decoding them, because a GIF's logical screen
//! can claim 32×32 while a frame descriptor claims 65535×66601. BMP and TIFF sizes come from
//! `image`'s header readers, JPEG XL's from jxl-oxide's image header (frames are counted only
//! after that size has passed), AVIF's from the container and AV1 sequence header.
//!
//! The probe also decides what `format` omitted (or "same") writes, [`Probe::default_output`]:
//! the input's own format for the five pixpress writes; PNG for BMP and TIFF (both are
//! lossless formats, so PNG keeps every pixel); for JPEG XL, PNG when it is coded losslessly
//! or has alpha, JPEG otherwise (a lossy photo stays a lossy photo).

use std::io::Cursor;

use image::metadata::Orientation;
use image::ImageDecoder;

use crate::codec::{avif, jxl};
use crate::error::CoreError;
use crate::format::{self, ImageFormat, InputFormat, Sniffed};
use crate::limits::Limits;

#[derive(Clone, Debug)]
pub struct Probe {
    pub format: InputFormat,
    /// What the request's `format: same` (the default) writes for this input.
    pub default_output: ImageFormat,
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

/// The step: format, dimensions, frames and orientation from the header, within the pixel limit.
pub fn run(input: &[u8], limits: &Limits) -> Result<Probe, CoreError> {
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
        InputFormat::Gif => probe_gif(input)?,
        InputFormat::Webp => probe_with_image(input, format, count_webp_frames(input))?,
        InputFormat::Png => probe_with_image(input, format, count_apng_frames(input))?,
        InputFormat::Jpeg => {
            check_jpeg_complete(input)?;
            probe_with_image(input, format, 1)?
        }
        // A multi-page TIFF is read as its first page, like a viewer shows it: pages are not
        // frames of an animation.
        InputFormat::Bmp | InputFormat::Tiff => probe_with_image(input, format, 1)?,
        InputFormat::Avif => probe_avif(input)?,
        InputFormat::Jxl => return probe_jxl(input, limits),
    };
    check_size(&probe, limits)?;
    Ok(probe)
}

/// Both dimensions above zero, and width × height × frames within the pixel limit.
fn check_size(probe: &Probe, limits: &Limits) -> Result<(), CoreError> {
    if probe.width == 0 || probe.height == 0 {
        return Err(CoreError::Corrupt(format!(
            "the header says {}x{}; an image needs both dimensions above zero",
            probe.width, probe.height
        )));
    }
    limits.check_pixels(probe.width.into(), probe.height.into(), probe.frames)
}

/// The writable format itself, or PNG for the lossless read-only formats (BMP, TIFF).
fn default_output(format: InputFormat) -> ImageFormat {
    format.writable().unwrap_or(ImageFormat::Png)
}

/// Builds an `image` reader with the pixpress limits applied.
pub fn image_reader<'a>(
    input: &'a [u8],
    format: InputFormat,
    limits: &Limits,
) -> Result<image::ImageReader<Cursor<&'a [u8]>>, CoreError> {
    let mut reader =
        image::ImageReader::with_format(Cursor::new(input), image_input_format(format)?);
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(image_limits);
    Ok(reader)
}

pub fn image_format(format: ImageFormat) -> image::ImageFormat {
    match format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Webp => image::ImageFormat::WebP,
        ImageFormat::Avif => image::ImageFormat::Avif,
    }
}

/// `image`'s name for an input format it reads: every one but JPEG XL (read with jxl-oxide,
/// so asking here for it is a bug on our side).
fn image_input_format(format: InputFormat) -> Result<image::ImageFormat, CoreError> {
    match (format.writable(), format) {
        (Some(writable), _) => Ok(image_format(writable)),
        (None, InputFormat::Bmp) => Ok(image::ImageFormat::Bmp),
        (None, InputFormat::Tiff) => Ok(image::ImageFormat::Tiff),
        (None, other) => Err(CoreError::Encode(format!(
            "{} is not read through the image crate",
            other.name()
        ))),
    }
}

fn probe_with_image(input: &[u8], format: InputFormat, frames: u64) -> Result<Probe, CoreError> {
    // Header-only: image's decoders read dimensions without decoding pixel data.
    let reader = image::ImageReader::with_format(Cursor::new(input), image_input_format(format)?);
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let (width, height) = decoder.dimensions();
    // A broken EXIF block must not fail the image: the orientation is then "as stored".
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    Ok(Probe {
        format,
        default_output: default_output(format),
        width,
        height,
        frames,
        orientation,
    })
}

/// AVIF: size from the container and AV1 sequence header; an image sequence counts its
/// frames, though only its primary image (the first frame) is ever decoded. Orientation
/// (`irot`/`imir`) is not read: the image is taken as stored, like a JPEG without EXIF.
fn probe_avif(input: &[u8]) -> Result<Probe, CoreError> {
    let (width, height) = avif::dimensions(input)?;
    Ok(Probe {
        format: InputFormat::Avif,
        default_output: ImageFormat::Avif,
        width,
        height,
        frames: avif::sequence_frames(input),
        orientation: Orientation::NoTransforms,
    })
}

/// JPEG XL: the size from the image header is checked against the pixel limit before any
/// frame is read; only then are the frames counted (and checked again with them). The decoder
/// renders upright, so the size is the upright one and there is no orientation left to apply.
fn probe_jxl(input: &[u8], limits: &Limits) -> Result<Probe, CoreError> {
    let header = jxl::header(input)?;
    let mut probe = Probe {
        format: InputFormat::Jxl,
        default_output: if header.lossless || header.has_alpha {
            ImageFormat::Png
        } else {
            ImageFormat::Jpeg
        },
        width: header.width,
        height: header.height,
        frames: 1,
        orientation: Orientation::NoTransforms,
    };
    check_size(&probe, limits)?;
    probe.frames = jxl::frame_count(input, limits.max_alloc_bytes)?;
    check_size(&probe, limits)?;
    Ok(probe)
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
    let canvas = walk_gif_frames(input)?;
    Ok(Probe {
        format: InputFormat::Gif,
        default_output: ImageFormat::Gif,
        width: u32::try_from(canvas.width).unwrap_or(u32::MAX),
        height: u32::try_from(canvas.height).unwrap_or(u32::MAX),
        frames: canvas.frames.max(1),
        orientation: Orientation::NoTransforms,
    })
}

struct GifCanvas {
    width: u64,
    height: u64,
    frames: u64,
}

/// Walks a GIF's block structure (descriptors and sub-block lengths only, no LZW) and returns
/// the canvas every frame needs and the frame count. A truncated tail after at least one frame
/// ends the walk; the decoder decides later whether what is there is usable.
fn walk_gif_frames(input: &[u8]) -> Result<GifCanvas, CoreError> {
    let short = || CoreError::Corrupt("the GIF ends inside its header".into());
    let u16_at = |pos: usize| -> Option<u64> {
        Some(u64::from(u16::from_le_bytes([
            *input.get(pos)?,
            *input.get(pos + 1)?,
        ])))
    };
    let mut canvas = GifCanvas {
        width: u16_at(6).ok_or_else(short)?,
        height: u16_at(8).ok_or_else(short)?,
        frames: 0,
    };
    let flags = *input.get(10).ok_or_else(short)?;
    let mut pos = 13 + color_table_len(flags);
    loop {
        match input.get(pos) {
            Some(0x21) => pos = skip_sub_blocks(input, pos + 2),
            Some(0x2C) => {
                let (Some(left), Some(top), Some(w), Some(h), Some(&local)) = (
                    u16_at(pos + 1),
                    u16_at(pos + 3),
                    u16_at(pos + 5),
                    u16_at(pos + 7),
                    input.get(pos + 9),
                ) else {
                    break;
                };
                canvas.frames += 1;
                canvas.width = canvas.width.max(left + w);
                canvas.height = canvas.height.max(top + h);
                // descriptor (10) + local colour table + LZW minimum code size (1)
                pos = skip_sub_blocks(input, pos + 10 + color_table_len(local) + 1);
            }
            _ => break,
        }
    }
    if canvas.frames == 0 {
        return Err(CoreError::Corrupt("the GIF has no image frames".into()));
    }
    Ok(canvas)
}

fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 * (1usize << ((flags & 0x07) + 1))
    }
}

/// Skips a chain of GIF data sub-blocks starting at `pos`; returns the position after the
/// terminator (or past the end of the input when it is truncated).
fn skip_sub_blocks(input: &[u8], mut pos: usize) -> usize {
    while let Some(&len) = input.get(pos) {
        pos += 1;
        if len == 0 {
            return pos;
        }
        pos += usize::from(len);
    }
    usize::MAX / 2
}

/// JPEG decoders (zune-jpeg, libjpeg) fill a truncated scan with grey and carry on; a file
/// whose scan data never reaches an end-of-image marker is reported as truncated instead.
/// Segments before the first SOS are skipped by their lengths, so an EXIF thumbnail's own
/// end marker does not count.
fn check_jpeg_complete(input: &[u8]) -> Result<(), CoreError> {
    let truncated = || {
        CoreError::Corrupt(
            "truncated JPEG: the scan data ends before the end-of-image marker".into(),
        )
    };
    let mut pos = 2usize;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while input.get(pos) == Some(&0xFF) && input.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (input.get(pos), input.get(pos + 1)) else {
            return Err(truncated());
        };
        if marker == 0xD9 {
            return Err(CoreError::Corrupt(
                "the JPEG ends before any image data".into(),
            ));
        }
        let len = match (input.get(pos + 2), input.get(pos + 3)) {
            (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
            _ => return Err(truncated()),
        };
        let next = pos + 2 + len;
        if marker == 0xDA {
            let scan = input.get(next..).ok_or_else(truncated)?;
            return if scan.windows(2).any(|w| w == [0xFF, 0xD9]) {
                Ok(())
            } else {
                Err(truncated())
            };
        }
        pos = next;
    }
}

/// Counts `ANMF` chunks of an animated WebP (1 for a still image) by walking the RIFF chunks.
fn count_webp_frames(input: &[u8]) -> u64 {
    let mut frames = 0u64;
    let mut pos = 12usize;
    while pos + 8 <= input.len() {
        let fourcc = &input[pos..pos + 4];
        let size = u32::from_le_bytes([
            input[pos + 4],
            input[pos + 5],
            input[pos + 6],
            input[pos + 7],
        ]);
        if fourcc == b"ANMF" {
            frames += 1;
        }
        let padded = (size as usize).saturating_add(size as usize & 1);
        pos = pos.saturating_add(8).saturating_add(padded);
    }
    frames.max(1)
}

/// Counts the images an APNG holds: one per `fcTL`, plus the default image when it is not
/// itself a frame (no `fcTL` before the first `IDAT`). A plain PNG is one image.
fn count_apng_frames(input: &[u8]) -> u64 {
    let mut pos = 8usize;
    let mut frame_controls = 0u64;
    let mut default_image_is_frame = false;
    let mut animated = false;
    let mut seen_idat = false;
    while pos + 8 <= input.len() {
        let len = u32::from_be_bytes([input[pos], input[pos + 1], input[pos + 2], input[pos + 3]])
            as usize;
        match &input[pos + 4..pos + 8] {
            b"acTL" => animated = true,
            b"fcTL" => {
                if !seen_idat {
                    default_image_is_frame = true;
                }
                frame_controls += 1;
            }
            b"IDAT" => seen_idat = true,
            b"IEND" => break,
            _ => {}
        }
        pos = pos.saturating_add(12).saturating_add(len);
    }
    if !animated {
        return 1;
    }
    (frame_controls + u64::from(!default_image_is_frame)).max(1)
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
        let err = run(&corpus("edge/bomb_gif_65535x66601.gif"), &Limits::default()).unwrap_err();
        match err {
            CoreError::TooManyPixels { width, height, .. } => {
                assert_eq!((width, height), (65535, 66601));
            }
            other => panic!("expected TooManyPixels, got {other:?}"),
        }
    }

    #[test]
    fn orientation_8_swaps_dimensions() {
        let p = run(&corpus("edge/orientation_8_2x1.jpg"), &Limits::default()).unwrap();
        assert_eq!((p.width, p.height), (2, 1));
        assert_eq!(p.oriented_dimensions(), (1, 2));
    }

    #[test]
    fn animated_inputs_count_frames() {
        let p = run(&corpus("gif_chi_anim.gif"), &Limits::default()).unwrap();
        assert_eq!(p.frames, 31);
        let p = run(&corpus("edge/webp_animated.webp"), &Limits::default()).unwrap();
        assert_eq!(p.frames, 4);
        let p = run(
            &corpus("edge/apng_palette_alpha_3frames.png"),
            &Limits::default(),
        )
        .unwrap();
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
            match run(&corpus(name), &Limits::default()) {
                Err(CoreError::Unsupported { detected }) => {
                    assert!(detected.contains(needle), "{name}: {detected}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn truncated_jpeg_is_corrupt_but_complete_ones_pass() {
        assert!(matches!(
            run(&corpus("edge/truncated.jpg"), &Limits::default()),
            Err(CoreError::Corrupt(_))
        ));
        for name in [
            "photo_wood.jpg",
            "edge/progressive.jpg",
            "edge/exif_huge_canon_makernote.jpg",
            "edge/cmyk_adobe_ycck.jpg",
        ] {
            assert!(run(&corpus(name), &Limits::default()).is_ok(), "{name}");
        }
    }

    #[test]
    fn zero_width_png_is_corrupt() {
        assert!(matches!(
            run(&corpus("edge/png_zero_width.png"), &Limits::default()),
            Err(CoreError::Corrupt(_))
        ));
    }

    #[test]
    fn bmp_and_tiff_are_read_from_their_headers_and_default_to_png() {
        for (name, format, size) in [
            ("edge/bmp_pal8.bmp", InputFormat::Bmp, (127, 64)),
            ("edge/tiff_rgb_lzw.tif", InputFormat::Tiff, (128, 128)),
        ] {
            let p = run(&corpus(name), &Limits::default()).unwrap();
            assert_eq!(p.format, format, "{name}");
            assert_eq!((p.width, p.height), size, "{name}");
            assert_eq!(p.frames, 1, "{name}");
            assert_eq!(p.default_output, ImageFormat::Png, "{name}");
        }
    }

    fn expect_too_many_pixels(input: &[u8], limits: &Limits, size: (u64, u64), what: &str) {
        match run(input, limits) {
            Err(CoreError::TooManyPixels { width, height, .. }) => {
                assert_eq!((width, height), size, "{what}")
            }
            other => panic!("{what}: expected TooManyPixels, got {other:?}"),
        }
    }

    /// A BMP file header and BITMAPINFOHEADER claiming 60000x60000 at 24 bits, and no pixels.
    fn bmp_bomb() -> Vec<u8> {
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 8]);
        bmp.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
        bmp.extend_from_slice(&40u32.to_le_bytes()); // DIB header size
        bmp.extend_from_slice(&60_000i32.to_le_bytes());
        bmp.extend_from_slice(&60_000i32.to_le_bytes());
        bmp.extend_from_slice(&1u16.to_le_bytes()); // planes
        bmp.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
        bmp.extend_from_slice(&[0; 24]); // no compression, sizes, resolution, palette
        bmp
    }

    /// A little-endian, uncompressed 8-bit grey TIFF of one strip: `pixels` (which may be
    /// shorter than width × height says, for a bomb), with an `Orientation` tag when given.
    fn grey_tiff(width: u32, height: u32, orientation: Option<u32>, pixels: &[u8]) -> Vec<u8> {
        // (tag, type: 3 SHORT / 4 LONG, value)
        let mut entries: Vec<(u16, u16, u32)> = vec![
            (256, 4, width),
            (257, 4, height),
            (258, 3, 8), // bits per sample
            (259, 3, 1), // no compression
            (262, 3, 1), // black is zero
            (273, 4, 0), // strip offset, set below
        ];
        entries.extend(orientation.map(|o| (274, 3, o)));
        entries.extend([(277, 3, 1), (278, 4, height), (279, 4, width * height)]);
        let ifd_len = 2 + 12 * entries.len() + 4;
        let strip_offset = u32::try_from(8 + ifd_len).expect("small");
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        tiff.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, value) in entries {
            let value = if tag == 273 { strip_offset } else { value };
            tiff.extend_from_slice(&tag.to_le_bytes());
            tiff.extend_from_slice(&kind.to_le_bytes());
            tiff.extend_from_slice(&1u32.to_le_bytes());
            if kind == 3 {
                tiff.extend_from_slice(&(value as u16).to_le_bytes());
                tiff.extend_from_slice(&[0, 0]);
            } else {
                tiff.extend_from_slice(&value.to_le_bytes());
            }
        }
        tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        tiff.extend_from_slice(pixels);
        tiff
    }

    fn tiff_bomb() -> Vec<u8> {
        grey_tiff(60_000, 60_000, None, &[0; 16])
    }

    #[test]
    fn a_tiff_orientation_tag_is_applied() {
        // 3x2 stored, Orientation 6 (rotate 90° clockwise to view): 2x3 upright.
        let stored = [10, 20, 30, 40, 50, 60];
        let input = grey_tiff(3, 2, Some(6), &stored);
        let limits = Limits::default();
        let p = run(&input, &limits).unwrap();
        assert_eq!(p.orientation, Orientation::Rotate90);
        assert_eq!(p.oriented_dimensions(), (2, 3));
        let upright = crate::pipeline::decode::pixels(&input, &p, &limits)
            .unwrap()
            .to_luma8();
        // Rotating clockwise puts the stored bottom-left (40) at the top-left.
        assert_eq!(upright.as_raw(), &vec![40, 10, 50, 20, 60, 30]);
    }

    #[test]
    fn bmp_and_tiff_bombs_are_refused_from_the_header() {
        let limits = Limits::default();
        expect_too_many_pixels(&bmp_bomb(), &limits, (60_000, 60_000), "BMP");
        expect_too_many_pixels(&tiff_bomb(), &limits, (60_000, 60_000), "TIFF");
    }

    #[test]
    fn jpeg_xl_is_refused_from_its_header_before_any_frame() {
        use crate::codec::jxl::tests::{ALPHA_8X6, ANIMATED_8X6, LOSSLESS_16X12, LOSSY_16X12};
        let small = Limits {
            max_pixels: 100,
            ..Limits::default()
        };
        // 16x12 is 192 pixels. Cut right after the header, the file has no frame to read: the
        // limit is met first all the same.
        expect_too_many_pixels(LOSSLESS_16X12, &small, (16, 12), "whole file");
        let header_end = (1..LOSSLESS_16X12.len())
            .find(|&n| jxl::header(&LOSSLESS_16X12[..n]).is_ok())
            .expect("some prefix holds the header");
        assert!(
            header_end < LOSSLESS_16X12.len() / 2,
            "header {header_end} bytes"
        );
        let header_only = &LOSSLESS_16X12[..header_end];
        expect_too_many_pixels(header_only, &small, (16, 12), "header only");
        // Two 8x6 frames are 96 pixels: within 100, refused at 95 once the frames are counted.
        let animated = run(ANIMATED_8X6, &small).unwrap();
        assert_eq!((animated.format, animated.frames), (InputFormat::Jxl, 2));
        let tighter = Limits {
            max_pixels: 95,
            ..Limits::default()
        };
        assert!(matches!(
            run(ANIMATED_8X6, &tighter),
            Err(CoreError::TooManyPixels { frames: 2, .. })
        ));
        // What `format: same` writes: PNG when lossless or with alpha, JPEG for a lossy photo.
        for (input, expected) in [
            (LOSSLESS_16X12, ImageFormat::Png),
            (ALPHA_8X6, ImageFormat::Png),
            (LOSSY_16X12, ImageFormat::Jpeg),
        ] {
            let p = run(input, &Limits::default()).unwrap();
            assert_eq!(p.default_output, expected);
        }
    }

    #[test]
    fn an_avif_sequence_counts_its_frames() {
        use crate::codec::avif::tests::SEQUENCE_8X6;
        let p = run(SEQUENCE_8X6, &Limits::default()).unwrap();
        assert_eq!((p.format, p.width, p.height), (InputFormat::Avif, 8, 6));
        assert_eq!(p.frames, 2);
        assert_eq!(p.default_output, ImageFormat::Avif);
    }
}
