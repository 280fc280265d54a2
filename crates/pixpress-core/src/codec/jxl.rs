//! JPEG XL input, read with jxl-oxide (pure Rust; pixpress writes no JPEG XL). This file owns
//! the two calls the pipeline makes: the header (size, alpha, how it was coded, frame count)
//! for the probe, and the first keyframe as pixels for the decode step. The decoder turns the
//! pixels upright itself (the header's orientation), so callers see upright sizes only.
//!
//! Memory: the header is read from a short prefix before the rest of the file is handed over,
//! so the pixel limit is checked before jxl-oxide parses any frame; every buffer the decoder
//! allocates afterwards goes through its allocation tracker, capped at the caller's budget.

use image::DynamicImage;
use jxl_oxide::{AllocTracker, InitializeResult, JxlImage, PixelFormat};

use super::panic_text;
use crate::error::CoreError;

/// What the probe needs from a JPEG XL header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Upright, as the decoder renders it.
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    /// Coded without the XYB colour transform, which is how lossless JPEG XL is written (cjxl
    /// `-d 0`); lossy files are coded in XYB.
    pub lossless: bool,
}

/// Bytes handed to the header parser at a time: the header and an embedded ICC profile fit in
/// the first few, and no frame is parsed before the header is complete.
const HEADER_CHUNK: usize = 256;

/// The image header, from the first bytes only: no frame is parsed.
pub fn header(input: &[u8]) -> Result<Header, CoreError> {
    let image = guarded(|| initialized(input, None).map(|(image, _)| image))?;
    let metadata = &image.image_header().metadata;
    Ok(Header {
        width: image.width(),
        height: image.height(),
        has_alpha: metadata.ec_info.iter().any(|channel| channel.is_alpha()),
        lossless: !metadata.xyb_encoded,
    })
}

/// The number of frames shown (keyframes), after every frame header has been read. Call it only
/// once the header's size has passed the pixel limit: frame headers are sized by it.
pub fn frame_count(input: &[u8], max_alloc: u64) -> Result<u64, CoreError> {
    let image = guarded(|| loaded(input, max_alloc))?;
    Ok(u64::try_from(image.num_loaded_keyframes()).unwrap_or(u64::MAX))
}

/// The first keyframe, upright, at 8 bits per channel or 16 when the file holds more. The ICC
/// profile that describes the pixels comes with them when they are not sRGB (the decode step
/// converts them as it does for other formats).
pub fn decode(input: &[u8], max_alloc: u64) -> Result<(DynamicImage, Option<Vec<u8>>), CoreError> {
    guarded(|| {
        let image = loaded(input, max_alloc)?;
        let format = image.pixel_format();
        if format.has_black() {
            return Err(CoreError::Unsupported {
                detected: "a CMYK JPEG XL image (its colour conversion needs a CMS pixpress does \
                           not carry) is not an accepted input"
                    .into(),
            });
        }
        if image.num_loaded_keyframes() == 0 {
            return Err(CoreError::Corrupt(
                "the JPEG XL file ends before its first frame".into(),
            ));
        }
        let render = image.render_frame(0).map_err(corrupt)?;
        let deep = image.image_header().metadata.bit_depth.bits_per_sample() > 8;
        let pixels = to_dynamic(render.stream(), format, deep)?;
        // CICP 1/13/0/1: sRGB primaries and transfer, RGB, full range.
        let srgb = image.rendered_cicp() == Some([1, 13, 0, 1]);
        let icc = (!srgb).then(|| image.rendered_icc());
        Ok((pixels, icc))
    })
}

/// Parses the header from successive prefixes of `input`; returns the image and how many
/// bytes of `input` it has consumed. With `tracker`, the decoder's buffers are counted by it.
fn initialized(
    input: &[u8],
    tracker: Option<AllocTracker>,
) -> Result<(JxlImage, usize), CoreError> {
    let mut builder = JxlImage::builder();
    if let Some(tracker) = tracker {
        builder = builder.alloc_tracker(tracker);
    }
    let mut uninit = builder.build_uninit();
    // `pos`: bytes the parser has consumed; `end`: bytes offered so far. The parser may keep
    // an incomplete box or header unconsumed, so the offer grows whatever it took.
    let (mut pos, mut end) = (0usize, 0usize);
    loop {
        end = input.len().min(end + HEADER_CHUNK);
        pos += uninit.feed_bytes(&input[pos..end]).map_err(corrupt)?;
        match uninit.try_init().map_err(corrupt)? {
            InitializeResult::Initialized(image) => return Ok((image, pos)),
            InitializeResult::NeedMoreData(_) if end == input.len() => {
                return Err(CoreError::Corrupt(
                    "the JPEG XL file ends inside its header".into(),
                ))
            }
            InitializeResult::NeedMoreData(more) => uninit = more,
        }
    }
}

/// The whole file read (frame headers and coded data, nothing decoded yet).
fn loaded(input: &[u8], max_alloc: u64) -> Result<JxlImage, CoreError> {
    let budget = usize::try_from(max_alloc).unwrap_or(usize::MAX);
    let (mut image, mut pos) = initialized(input, Some(AllocTracker::with_limit(budget)))?;
    while pos < input.len() && !image.is_loading_done() {
        let consumed = image.feed_bytes(&input[pos..]).map_err(corrupt)?;
        if consumed == 0 {
            break;
        }
        pos += consumed;
    }
    image.finalize().map_err(corrupt)?;
    Ok(image)
}

/// The rendered samples as an `image` buffer of the matching layout.
fn to_dynamic(
    mut stream: jxl_oxide::ImageStream<'_>,
    format: PixelFormat,
    deep: bool,
) -> Result<DynamicImage, CoreError> {
    let (width, height) = (stream.width(), stream.height());
    let samples =
        usize::try_from(u64::from(width) * u64::from(height) * u64::from(stream.channels()))
            .map_err(|_| CoreError::LimitExceeded("the JPEG XL frame is too large".into()))?;
    let mismatch = || CoreError::Corrupt("JPEG XL: rendered samples do not match the size".into());
    if deep {
        let mut buf = vec![0u16; samples];
        stream.write_to_buffer(&mut buf);
        let image = match format {
            PixelFormat::Gray => {
                image::ImageBuffer::from_raw(width, height, buf).map(DynamicImage::ImageLuma16)
            }
            PixelFormat::Graya => {
                image::ImageBuffer::from_raw(width, height, buf).map(DynamicImage::ImageLumaA16)
            }
            PixelFormat::Rgb => {
                image::ImageBuffer::from_raw(width, height, buf).map(DynamicImage::ImageRgb16)
            }
            _ => image::ImageBuffer::from_raw(width, height, buf).map(DynamicImage::ImageRgba16),
        };
        image.ok_or_else(mismatch)
    } else {
        let mut buf = vec![0u8; samples];
        stream.write_to_buffer(&mut buf);
        let image = match format {
            PixelFormat::Gray => {
                image::ImageBuffer::from_raw(width, height, buf).map(DynamicImage::ImageLuma8)
            }
            PixelFormat::Graya => {
                image::ImageBuffer::from_raw(width, height, buf).map(DynamicImage::ImageLumaA8)
            }
            PixelFormat::Rgb => {
                image::ImageBuffer::from_raw(width, height, buf).map(DynamicImage::ImageRgb8)
            }
            _ => image::ImageBuffer::from_raw(width, height, buf).map(DynamicImage::ImageRgba8),
        };
        image.ok_or_else(mismatch)
    }
}

/// jxl-oxide's errors are boxed; all of them mean the file cannot be read as it stands.
fn corrupt(e: Box<dyn std::error::Error + Send + Sync>) -> CoreError {
    CoreError::Corrupt(format!("JPEG XL: {e}"))
}

/// jxl-oxide is fuzzed, but a panic on a hostile file must still stay this input's failure.
fn guarded<T>(
    work: impl FnOnce() -> Result<T, CoreError> + std::panic::UnwindSafe,
) -> Result<T, CoreError> {
    std::panic::catch_unwind(work).unwrap_or_else(|panic| {
        Err(CoreError::Corrupt(format!(
            "JPEG XL: {}",
            panic_text(panic)
        )))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // The files below were written here with Debian bookworm's `cjxl` (libjxl-tools 0.7.0) from
    // PNGs made by a few lines of Python; the pixel formulas are those PNGs'.

    /// 16x12 RGB, red 16·x, green 20·y, blue 40: `cjxl a.png a.jxl -d 0`.
    pub(crate) const LOSSLESS_16X12: &[u8] = &[
        0xff, 0x0a, 0x58, 0x30, 0x10, 0x50, 0x5c, 0x08, 0x08, 0x02, 0x01, 0x00, 0x34, 0x01, 0x4b,
        0x38, 0x68, 0x98, 0xc2, 0x83, 0xf7, 0x15, 0x14, 0x4c, 0x50, 0x30, 0x22, 0xaf, 0x51, 0x31,
        0x06, 0xcb, 0xc6, 0x18, 0xe3, 0x65, 0x8c, 0x99, 0x4b, 0x1c, 0xb5, 0x85, 0x08, 0x30, 0x00,
        0x90, 0x3d, 0x6b, 0x52, 0xf5, 0x6f, 0xa8, 0xaa, 0xb6, 0x5f, 0x2b, 0x38, 0xd1, 0x78, 0xde,
        0xdf, 0xf3, 0xde, 0xfb, 0xde, 0xfb, 0x9e, 0xf4, 0xbe, 0x25, 0x4c, 0x4a, 0xe9, 0x56, 0x07,
        0x3e, 0xdd, 0x5a, 0xf7, 0xc7, 0xec, 0x49, 0x2f, 0x00, 0x00, 0x00, 0x00, 0xa1, 0x65, 0x08,
        0x35,
    ];

    /// The same pixels, lossy: `cjxl a.png a.jxl -d 1`.
    pub(crate) const LOSSY_16X12: &[u8] = &[
        0xff, 0x0a, 0x58, 0x30, 0x90, 0x50, 0x5c, 0x08, 0x00, 0x12, 0x88, 0x02, 0x00, 0xd4, 0x01,
        0x5d, 0xe5, 0x12, 0x00, 0x00, 0x15, 0x2a, 0xa3, 0x8c, 0x1b, 0xbc, 0x9c, 0xeb, 0xf9, 0xf2,
        0x43, 0x87, 0xc5, 0xb4, 0x8d, 0xeb, 0x0c, 0x6d, 0xb5, 0x6d, 0x61, 0x49, 0xa2, 0xc8, 0x38,
        0x36, 0x49, 0x27, 0x70, 0x48, 0x12, 0x0b, 0xb8, 0x5d, 0x79, 0x0e, 0xc0, 0x98, 0xf9, 0xcd,
        0x3c, 0x76, 0xec, 0x14, 0x6d, 0xd8, 0x86, 0x4a, 0xa6, 0xbe, 0x60, 0x48, 0xb9, 0x00, 0x54,
        0x48, 0x81, 0x34, 0x18, 0x62, 0x19, 0x45, 0xc6, 0x18, 0x15, 0xc9, 0xa8, 0xa8, 0x18, 0xc9,
        0xfc, 0x0a, 0xe3, 0xb2, 0x88, 0x5f, 0x8f, 0x22, 0x88, 0xf6, 0xf3, 0xde, 0x23, 0xb3, 0xd0,
        0xe3, 0x7f, 0x3b, 0x20, 0x6c, 0x01, 0x09, 0xb1, 0x88, 0x6c, 0xf9, 0x7d, 0xd6, 0x22, 0x2e,
        0xe7, 0x3b, 0x92, 0x8b, 0x71, 0xc7, 0xc7, 0xc6, 0xeb, 0x0b, 0xc0, 0x16,
    ];

    /// 8x6 RGBA, red 30·x, green 40·y, blue 200, opaque left half, transparent right
    /// half: `cjxl alpha.png alpha.jxl -d 0`.
    pub(crate) const ALPHA_8X6: &[u8] = &[
        0xff, 0x0a, 0x28, 0x30, 0xb0, 0xa0, 0xb8, 0x10, 0x08, 0x08, 0x10, 0x00, 0xec, 0x00, 0x4b,
        0x18, 0x93, 0x6e, 0x1c, 0x1c, 0x04, 0x40, 0xdd, 0xbb, 0x18, 0xdb, 0x9e, 0x16, 0x62, 0x20,
        0x00, 0x40, 0xf6, 0x7e, 0x91, 0x2b, 0x34, 0xfc, 0x21, 0xd5, 0xe0, 0x95, 0xa5, 0x8e, 0xdd,
        0xdd, 0x2f, 0xd5, 0xdd, 0xd4, 0x63, 0x0d, 0x41, 0x20, 0x60, 0x10, 0xc4, 0x52, 0x0e, 0x3d,
        0x72, 0x92, 0x31, 0xce, 0xb9, 0xde, 0x18, 0xe7, 0x9c, 0xf3, 0x0b, 0x40, 0x2a,
    ];

    /// Two 8x6 RGB frames of 100 ms: `cjxl anim.png anim.jxl -d 0` from a hand-written APNG.
    pub(crate) const ANIMATED_8X6: &[u8] = &[
        0xff, 0x0a, 0x28, 0x30, 0xc1, 0x00, 0x02, 0x8a, 0x4b, 0x02, 0x08, 0x02, 0x92, 0x09, 0x00,
        0x00, 0xc0, 0x00, 0x4b, 0x28, 0x24, 0xc6, 0x45, 0x41, 0x41, 0x20, 0xc2, 0xc9, 0x31, 0x06,
        0x91, 0x76, 0xec, 0x01, 0xf6, 0x16, 0x68, 0xb3, 0x02, 0xf4, 0x6e, 0x4c, 0xf6, 0x84, 0xed,
        0x4e, 0x7a, 0xdb, 0x46, 0xc5, 0x44, 0x28, 0x53, 0x15, 0x21, 0x54, 0x7d, 0x1a, 0xf7, 0x8f,
        0x2a, 0x77, 0x77, 0x70, 0x7b, 0x07, 0x08, 0x02, 0x92, 0x05, 0x00, 0xb4, 0x00, 0x4b, 0x38,
        0x68, 0x98, 0xc2, 0x83, 0xfb, 0x15, 0x14, 0x04, 0x22, 0x9c, 0x1d, 0x63, 0xb0, 0x70, 0x23,
        0xc9, 0x03, 0x88, 0x02, 0xb7, 0x2b, 0x00, 0x46, 0xcb, 0x24, 0x50, 0xed, 0x88, 0x90, 0xf3,
        0x0a, 0x42, 0x3f, 0x1e, 0xc8, 0xd2, 0xad, 0xff, 0xdd, 0xdd, 0x80, 0x9f, 0xdd,
    ];

    const BUDGET: u64 = 64 << 20;

    #[test]
    fn headers_give_size_alpha_and_coding() {
        let plain = header(LOSSLESS_16X12).expect("header");
        assert_eq!(
            plain,
            Header {
                width: 16,
                height: 12,
                has_alpha: false,
                lossless: true
            }
        );
        assert!(!header(LOSSY_16X12).expect("header").lossless);
        let alpha = header(ALPHA_8X6).expect("header");
        assert!(alpha.has_alpha && alpha.lossless);
        assert_eq!((alpha.width, alpha.height), (8, 6));
    }

    #[test]
    fn frames_are_counted() {
        assert_eq!(frame_count(LOSSLESS_16X12, BUDGET).expect("count"), 1);
        assert_eq!(frame_count(ANIMATED_8X6, BUDGET).expect("count"), 2);
    }

    #[test]
    fn lossless_decodes_to_the_exact_source_pixels() {
        let (image, icc) = decode(LOSSLESS_16X12, BUDGET).expect("decode");
        assert!(icc.is_none(), "sRGB needs no profile");
        let DynamicImage::ImageRgb8(rgb) = image else {
            panic!("expected 8-bit RGB, got {:?}", image.color());
        };
        for (x, y, p) in rgb.enumerate_pixels() {
            assert_eq!(p.0, [(x * 16) as u8, (y * 20) as u8, 40], "at ({x}, {y})");
        }
    }

    #[test]
    fn lossy_decodes_close_to_the_source() {
        let (image, _) = decode(LOSSY_16X12, BUDGET).expect("decode");
        let rgb = image.to_rgb8();
        assert_eq!(rgb.dimensions(), (16, 12));
        let total: u32 = rgb
            .enumerate_pixels()
            .map(|(x, y, p)| {
                let want = [(x * 16) as u8, (y * 20) as u8, 40];
                (0..3)
                    .map(|c| u32::from(p[c].abs_diff(want[c])))
                    .sum::<u32>()
            })
            .sum();
        let mean = f64::from(total) / (16.0 * 12.0 * 3.0);
        assert!(mean < 6.0, "mean abs diff {mean}");
    }

    #[test]
    fn alpha_is_kept() {
        let (image, _) = decode(ALPHA_8X6, BUDGET).expect("decode");
        let rgba = image.to_rgba8();
        assert_eq!(rgba.get_pixel(1, 1).0, [30, 40, 200, 255]);
        assert_eq!(rgba.get_pixel(6, 1)[3], 0);
    }

    #[test]
    fn the_first_frame_of_an_animation_is_decoded() {
        let (image, _) = decode(ANIMATED_8X6, BUDGET).expect("decode");
        assert_eq!(image.to_rgb8().get_pixel(2, 3).0, [60, 120, 10]);
    }

    #[test]
    fn truncated_files_are_corrupt_not_a_panic() {
        for cut in [1, 3, 8, LOSSLESS_16X12.len() / 2, LOSSLESS_16X12.len() - 2] {
            let truncated = &LOSSLESS_16X12[..cut];
            let result = header(truncated).and_then(|_| decode(truncated, BUDGET));
            assert!(
                matches!(result, Err(CoreError::Corrupt(_))),
                "cut at {cut}: {:?}",
                result.map(|(i, _)| (i.width(), i.height()))
            );
        }
    }

    #[test]
    fn the_allocation_budget_is_enforced() {
        assert!(decode(LOSSLESS_16X12, 16).is_err());
    }
}
