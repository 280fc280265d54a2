//! The lossless proof: is this output pixel-identical to that input? Every output a lossless
//! encoder makes for `lossy: false` (oxipng, libwebp lossless, the GIF and PNG re-codes,
//! animations frame by frame) is decoded once here and compared with the pixels it was made
//! from before it is returned. A difference is [`CoreError::LosslessCheckFailed`], which the
//! choose step turns into the original bytes and a warning.
//!
//! "Identical" means the same size, the same number of frames and the same RGBA value at every
//! position: at 16 bits per channel when either side has more than 8 and the output format
//! keeps them (PNG), at 8 otherwise. Where both sides are fully transparent the colour may
//! differ: nothing shows there, and encoders are allowed to reuse it. This module owns that
//! definition only: no encoding, no fallback policy.

use std::borrow::Cow;
use std::io::Cursor;

use image::{AnimationDecoder, DynamicImage, ImageDecoder, RgbaImage};

use super::probe;
use crate::codec::RgbaFrame;
use crate::error::CoreError;
use crate::format::ImageFormat;
use crate::limits::Limits;

/// Proves a still encoding: `bytes`, in `format`, decode to `expected`.
pub fn still(expected: &DynamicImage, bytes: &[u8], format: ImageFormat) -> Result<(), CoreError> {
    let actual = decode_still(bytes, format, None).map_err(|e| failed(format, &e))?;
    match image_difference(expected, &actual, format) {
        None => Ok(()),
        Some(difference) => Err(failed(format, &difference)),
    }
}

/// Proves an animation: `bytes`, in `format`, decode to exactly the frames in `expected`.
pub fn frames(expected: &[RgbaFrame], bytes: &[u8], format: ImageFormat) -> Result<(), CoreError> {
    let actual = decode_frames(bytes, format, None).map_err(|e| failed(format, &e))?;
    let expected: Vec<&RgbaImage> = expected.iter().map(|f| &f.image).collect();
    match frames_difference(&expected, &actual) {
        None => Ok(()),
        Some(difference) => Err(failed(format, &difference)),
    }
}

/// Proves a re-code in the input's own format: `output` shows the same pixels as `input`
/// (every frame when `animated`). The input is decoded within `limits`, as it was probed.
pub fn recode(
    input: &[u8],
    output: &[u8],
    format: ImageFormat,
    animated: bool,
    limits: &Limits,
) -> Result<(), CoreError> {
    let budget = Some(limits.max_alloc_bytes);
    let difference = if animated {
        let before = decode_frames(input, format, budget).map_err(CoreError::Corrupt)?;
        let after = decode_frames(output, format, budget).map_err(|e| failed(format, &e))?;
        frames_difference(&before.iter().collect::<Vec<_>>(), &after)
    } else {
        let before = decode_still(input, format, budget).map_err(CoreError::Corrupt)?;
        let after = decode_still(output, format, budget).map_err(|e| failed(format, &e))?;
        image_difference(&before, &after, format)
    };
    match difference {
        None => Ok(()),
        Some(difference) => Err(failed(format, &difference)),
    }
}

fn failed(format: ImageFormat, why: &str) -> CoreError {
    let name = format.name().to_uppercase();
    CoreError::LosslessCheckFailed(format!("the {name} output {why}"))
}

/// How two still images differ, in words; `None` when they are identical.
pub fn image_difference(
    expected: &DynamicImage,
    actual: &DynamicImage,
    format: ImageFormat,
) -> Option<String> {
    let deep = format == ImageFormat::Png && (is_deep(expected) || is_deep(actual));
    if deep {
        let (a, b) = (expected.to_rgba16(), actual.to_rgba16());
        size_difference(a.dimensions(), b.dimensions())
            .or_else(|| differing(a.as_raw(), b.as_raw(), a.width()))
    } else {
        rgba_difference(&rgba8(expected), &rgba8(actual))
    }
}

/// How two animations differ, in words; `None` when they show the same frames in the same
/// order. A run of identical frames counts as one: libwebp folds a frame identical to the one
/// before into that frame's duration, which changes timing bookkeeping, not what is seen.
pub fn frames_difference(expected: &[&RgbaImage], actual: &[RgbaImage]) -> Option<String> {
    let expected = distinct_runs(expected.iter().copied());
    let actual = distinct_runs(actual.iter());
    if expected.len() != actual.len() {
        return Some(format!(
            "has {} frames, its source {}",
            actual.len(),
            expected.len()
        ));
    }
    expected
        .iter()
        .zip(actual)
        .enumerate()
        .find_map(|(i, (a, b))| {
            rgba_difference(a, b).map(|d| format!("(frame {} of {}) {d}", i + 1, expected.len()))
        })
}

/// The frames with each run of identical neighbours reduced to its first.
fn distinct_runs<'a>(frames: impl Iterator<Item = &'a RgbaImage>) -> Vec<&'a RgbaImage> {
    let mut kept: Vec<&RgbaImage> = Vec::new();
    for frame in frames {
        if kept
            .last()
            .is_none_or(|last| rgba_difference(last, frame).is_some())
        {
            kept.push(frame);
        }
    }
    kept
}

fn rgba_difference(a: &RgbaImage, b: &RgbaImage) -> Option<String> {
    size_difference(a.dimensions(), b.dimensions())
        .or_else(|| differing(a.as_raw(), b.as_raw(), a.width()))
}

fn size_difference(expected: (u32, u32), actual: (u32, u32)) -> Option<String> {
    (expected != actual).then(|| {
        format!(
            "is {}x{}, its source {}x{}",
            actual.0, actual.1, expected.0, expected.1
        )
    })
}

fn is_deep(image: &DynamicImage) -> bool {
    let color = image.color();
    color.bytes_per_pixel() > color.channel_count()
}

fn rgba8(image: &DynamicImage) -> Cow<'_, RgbaImage> {
    match image {
        DynamicImage::ImageRgba8(buffer) => Cow::Borrowed(buffer),
        other => Cow::Owned(other.to_rgba8()),
    }
}

/// How many RGBA pixels differ and where the first is, in words; `None` when none do.
/// Pixels fully transparent on both sides are equal whatever their colour.
fn differing<T: Copy + PartialEq + Default>(a: &[T], b: &[T], width: u32) -> Option<String> {
    let transparent = T::default();
    let same = |pa: &[T], pb: &[T]| pa == pb || (pa[3] == transparent && pb[3] == transparent);
    let pixels = a.chunks_exact(4).zip(b.chunks_exact(4));
    let first = pixels.clone().position(|(pa, pb)| !same(pa, pb))?;
    let count = pixels.skip(first).filter(|&(pa, pb)| !same(pa, pb)).count();
    let total = a.len() / 4;
    let width = width.max(1) as usize;
    let (x, y) = (first % width, first / width);
    Some(format!(
        "differs from its source in {count} of {total} pixels, the first at ({x}, {y})"
    ))
}

fn decoder_limits(max_alloc: Option<u64>) -> image::Limits {
    let mut limits = image::Limits::default();
    if max_alloc.is_some() {
        limits.max_alloc = max_alloc;
    }
    limits
}

/// One image, at its own bit depth. `max_alloc`: the decoder's memory budget (`None`: image's
/// default, for our own outputs of pixels already in memory).
fn decode_still(
    bytes: &[u8],
    format: ImageFormat,
    max_alloc: Option<u64>,
) -> Result<DynamicImage, String> {
    let mut reader =
        image::ImageReader::with_format(Cursor::new(bytes), probe::image_format(format));
    reader.limits(decoder_limits(max_alloc));
    reader.decode().map_err(|e| format!("does not decode: {e}"))
}

/// Every frame on a full canvas, as a viewer composes them.
fn decode_frames(
    bytes: &[u8],
    format: ImageFormat,
    max_alloc: Option<u64>,
) -> Result<Vec<RgbaImage>, String> {
    let fail = |e: image::ImageError| format!("does not decode: {e}");
    let reader = Cursor::new(bytes);
    let limits = decoder_limits(max_alloc);
    let frames = match format {
        ImageFormat::Gif => {
            let mut decoder = image::codecs::gif::GifDecoder::new(reader).map_err(fail)?;
            decoder.set_limits(limits).map_err(fail)?;
            decoder.into_frames()
        }
        ImageFormat::Webp => {
            let mut decoder = image::codecs::webp::WebPDecoder::new(reader).map_err(fail)?;
            decoder.set_limits(limits).map_err(fail)?;
            decoder.into_frames()
        }
        ImageFormat::Png => {
            let mut decoder = image::codecs::png::PngDecoder::new(reader).map_err(fail)?;
            decoder.set_limits(limits).map_err(fail)?;
            decoder.apng().map_err(fail)?.into_frames()
        }
        other => return Err(format!("{} has no animation here", other.name())),
    };
    frames
        .map(|frame| frame.map(image::Frame::into_buffer))
        .collect::<Result<_, _>>()
        .map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<u8> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        std::fs::read(format!("{root}{name}")).expect("corpus file")
    }

    fn png_of(image: &DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .expect("png");
        bytes
    }

    fn checker(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgba8(RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([(x * 9) as u8, (y * 7) as u8, ((x + y) * 5) as u8, 255])
        }))
    }

    #[test]
    fn an_identical_encoding_passes() {
        let image = checker(20, 10);
        assert!(still(&image, &png_of(&image), ImageFormat::Png).is_ok());
    }

    #[test]
    fn one_changed_pixel_is_caught_and_located() {
        let image = checker(20, 10);
        let mut changed = image.to_rgba8();
        changed.put_pixel(7, 3, image::Rgba([1, 2, 3, 255]));
        let bytes = png_of(&DynamicImage::ImageRgba8(changed));
        let Err(CoreError::LosslessCheckFailed(why)) = still(&image, &bytes, ImageFormat::Png)
        else {
            panic!("a changed pixel passed the check");
        };
        assert!(why.contains("1 of 200 pixels"), "{why}");
        assert!(why.contains("(7, 3)"), "{why}");
    }

    #[test]
    fn colour_under_full_transparency_may_differ_but_alpha_may_not() {
        let mut a = checker(4, 4).to_rgba8();
        a.put_pixel(0, 0, image::Rgba([10, 20, 30, 0]));
        let mut b = a.clone();
        b.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        let (a, b) = (DynamicImage::ImageRgba8(a), DynamicImage::ImageRgba8(b));
        assert_eq!(image_difference(&a, &b, ImageFormat::Png), None);
        let mut c = b.to_rgba8();
        c.put_pixel(0, 0, image::Rgba([0, 0, 0, 1]));
        let c = DynamicImage::ImageRgba8(c);
        assert!(image_difference(&a, &c, ImageFormat::Png).is_some());
    }

    #[test]
    fn sixteen_bit_png_is_compared_at_sixteen_bits() {
        let deep = DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(4, 4, |x, _| {
            image::Rgba([1000 + x as u16, 2000, 3000, 65535])
        }));
        // The same image squeezed to 8 bits looks identical at 8 bits but is not lossless.
        let shallow = DynamicImage::ImageRgba8(deep.to_rgba8());
        assert!(image_difference(&deep, &shallow, ImageFormat::Png).is_some());
        assert_eq!(image_difference(&deep, &shallow, ImageFormat::Webp), None);
        assert!(still(&deep, &png_of(&deep), ImageFormat::Png).is_ok());
    }

    #[test]
    fn a_different_size_or_undecodable_output_is_caught() {
        let image = checker(20, 10);
        let smaller = png_of(&checker(10, 10));
        assert!(matches!(
            still(&image, &smaller, ImageFormat::Png),
            Err(CoreError::LosslessCheckFailed(why)) if why.contains("10x10")
        ));
        assert!(matches!(
            still(&image, b"not a png", ImageFormat::Png),
            Err(CoreError::LosslessCheckFailed(_))
        ));
    }

    #[test]
    fn a_gif_recode_is_compared_frame_by_frame() {
        let input = corpus("edge/gif_anim_transparency.gif");
        let limits = Limits::default();
        assert!(recode(&input, &input, ImageFormat::Gif, true, &limits).is_ok());
        let frames = decode_frames(&input, ImageFormat::Gif, None).unwrap();
        assert_eq!(frames.len(), 10);
        let expected: Vec<&RgbaImage> = frames.iter().collect();
        let mut altered = frames.clone();
        let last = altered.last_mut().unwrap();
        let p = *last.get_pixel(5, 5);
        last.put_pixel(5, 5, image::Rgba([p[0] ^ 0xff, p[1], p[2], 255]));
        let why = frames_difference(&expected, &altered).expect("caught");
        assert!(why.contains("frame 10 of 10"), "{why}");
    }

    #[test]
    fn a_repeated_frame_folded_into_one_is_the_same_animation() {
        let (a, b) = (checker(4, 4).to_rgba8(), checker(5, 4).to_rgba8());
        let b = image::imageops::crop_imm(&b, 1, 0, 4, 4).to_image();
        let expected = [&a, &a, &b];
        assert_eq!(frames_difference(&expected, &[a.clone(), b.clone()]), None);
        assert!(frames_difference(&expected, &[b.clone(), a.clone()]).is_some());
        assert!(frames_difference(&[&a], &[a.clone(), b.clone()]).is_some());
    }

    /// What the proof costs (run with `--ignored --nocapture`): per corpus PNG and GIF, the
    /// best of 3 runs of the re-code check (both decoded) and of the still check (the output
    /// decoded, compared with pixels already in memory, as the still path does it).
    #[test]
    #[ignore]
    fn cost_on_the_corpus() {
        use std::time::{Duration, Instant};
        let limits = Limits::default();
        let best = |work: &dyn Fn()| {
            (0..3)
                .map(|_| {
                    let start = Instant::now();
                    work();
                    start.elapsed()
                })
                .min()
                .unwrap_or(Duration::ZERO)
        };
        for name in [
            "png_astronaut_photo.png",
            "png_coffee_photo.png",
            "png_emerald_logo_rgba.png",
            "png_page_gray.png",
            "png_plasma_screenshot.png",
            "png_skimage_logo_rgba.png",
            "gif_chi_anim.gif",
        ] {
            let input = corpus(name);
            let (format, animated, output) = if name.ends_with(".gif") {
                let output = crate::codec::gif::transcode_lossless(&input, &limits).unwrap();
                (ImageFormat::Gif, true, output)
            } else {
                let output = crate::codec::png::optimize_lossless(&input).unwrap();
                (ImageFormat::Png, false, output)
            };
            let recoded = best(&|| recode(&input, &output, format, animated, &limits).unwrap());
            let source = decode_still(&input, format, None).unwrap();
            let stilled = best(&|| still(&source, &output, format).unwrap());
            println!(
                "{name}: {}x{}, re-code check {:.1} ms, still check {:.1} ms",
                source.width(),
                source.height(),
                recoded.as_secs_f64() * 1e3,
                stilled.as_secs_f64() * 1e3
            );
        }
    }
}
