//! GIF: lossless re-coding from palette indices (every frame keeps its palette, position,
//! delay, disposal and transparency; the loop count is kept; only the LZW streams are rewritten
//! and extension blocks dropped, so no pixel can change), and encoding of RGBA frames through
//! libimagequant: one palette per frame at a quality, which is also how lossy GIF reduces its
//! palettes. Alpha becomes GIF's one transparent index (below half opacity is transparent).
//! After the first frame only the rectangle that changed is written.

use std::io::Cursor;

use image::{DynamicImage, RgbaImage};

use super::png::quantize_indices;
use super::{Codec, RgbaFrame};
use crate::error::CoreError;
use crate::format::ImageFormat;
use crate::limits::Limits;

/// Still GIF through [`Codec`]: one palette at a quality; "lossless" is the best 256 colours.
pub struct Gif;

impl Codec for Gif {
    fn format(&self) -> ImageFormat {
        ImageFormat::Gif
    }

    /// imagequant's whole quality scale.
    fn quality_range(&self) -> std::ops::RangeInclusive<u8> {
        0..=100
    }

    fn encode_lossless(&self, image: &DynamicImage) -> Result<Option<Vec<u8>>, CoreError> {
        encode_still(image, 100).map(Some)
    }

    fn encode_lossy(
        &self,
        image: &DynamicImage,
        quality: u8,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        encode_still(image, quality).map(Some)
    }
}

pub fn transcode_lossless(input: &[u8], limits: &Limits) -> Result<Vec<u8>, CoreError> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    let budget = std::num::NonZeroU64::new(limits.max_alloc_bytes)
        .map_or(gif::MemoryLimit::Unlimited, gif::MemoryLimit::Bytes);
    options.set_memory_limit(budget);
    let mut decoder = options
        .read_info(Cursor::new(input))
        .map_err(CoreError::corrupt)?;
    let global_palette = decoder
        .global_palette()
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let (width, height) = (decoder.width(), decoder.height());
    let mut out = Vec::with_capacity(input.len());
    {
        let mut encoder =
            gif::Encoder::new(&mut out, width, height, &global_palette).map_err(encode_err)?;
        let repeat = decoder.repeat();
        let mut frames = 0usize;
        while let Some(frame) = decoder.read_next_frame().map_err(CoreError::corrupt)? {
            if frames == 0 && repeat != gif::Repeat::Finite(0) {
                encoder.set_repeat(repeat).map_err(encode_err)?;
            }
            encoder.write_frame(frame).map_err(encode_err)?;
            frames += 1;
        }
        if frames == 0 {
            return Err(CoreError::Corrupt("the GIF has no frames".into()));
        }
    }
    Ok(out)
}

/// The loop count in the header: `None` plays once, `Some(0)` forever.
pub fn loop_count(input: &[u8]) -> Option<u16> {
    let decoder = gif::DecodeOptions::new()
        .read_info(Cursor::new(input))
        .ok()?;
    match decoder.repeat() {
        gif::Repeat::Infinite => Some(0),
        gif::Repeat::Finite(0) => None,
        gif::Repeat::Finite(n) => Some(n),
    }
}

fn encode_err(e: gif::EncodingError) -> CoreError {
    CoreError::Encode(format!("gif: {e}"))
}

/// Encodes one image as a single-frame GIF at palette `quality` (100: as close as 256 colours get).
pub fn encode_still(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, CoreError> {
    let frame = RgbaFrame {
        image: image.to_rgba8(),
        delay_ms: 0,
    };
    encode_animation(std::slice::from_ref(&frame), None, quality)
}

/// Encodes full-canvas frames; `loops` as in [`loop_count`].
pub fn encode_animation(
    frames: &[RgbaFrame],
    loops: Option<u16>,
    quality: u8,
) -> Result<Vec<u8>, CoreError> {
    let Some(first) = frames.first() else {
        return Err(CoreError::Encode("gif: no frames to write".into()));
    };
    let (width, height) = gif_size(first.image.width(), first.image.height())?;
    let images: Vec<RgbaImage> = frames.iter().map(|f| binary_alpha(&f.image)).collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, width, height, &[]).map_err(encode_err)?;
        if let Some(n) = loops {
            let repeat = if n == 0 {
                gif::Repeat::Infinite
            } else {
                gif::Repeat::Finite(n)
            };
            encoder.set_repeat(repeat).map_err(encode_err)?;
        }
        for (i, (image, source)) in images.iter().zip(frames).enumerate() {
            let previous = i.checked_sub(1).map(|p| &images[p]);
            let next_clears = images.get(i + 1).is_some_and(|next| uncovers(image, next));
            let clears = previous.is_some_and(|p| uncovers(p, image));
            let rect = match previous {
                Some(p) if !clears => changed_rect(p, image),
                _ => (0, 0, image.width(), image.height()),
            };
            let mut frame = quantized_frame(image, rect, quality)?;
            // GIF delays are in hundredths of a second.
            frame.delay = u16::try_from(source.delay_ms.div_ceil(10)).unwrap_or(u16::MAX);
            frame.dispose = if next_clears {
                gif::DisposalMethod::Background
            } else {
                gif::DisposalMethod::Keep
            };
            encoder.write_frame(&frame).map_err(encode_err)?;
        }
    }
    Ok(out)
}

fn gif_size(width: u32, height: u32) -> Result<(u16, u16), CoreError> {
    match (u16::try_from(width), u16::try_from(height)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(CoreError::InvalidOption {
            field: "format".into(),
            message: format!("GIF is limited to 65535x65535; the output would be {width}x{height}"),
        }),
    }
}

/// GIF has one transparent index: pixels below half opacity become fully transparent black
/// (so they share one palette entry), the rest fully opaque.
fn binary_alpha(image: &RgbaImage) -> RgbaImage {
    let mut out = image.clone();
    for p in out.pixels_mut() {
        if p[3] < 128 {
            p.0 = [0, 0, 0, 0];
        } else {
            p[3] = 255;
        }
    }
    out
}

/// True when a pixel visible in `before` is transparent in `after`: drawing `after` over
/// `before` would leave it showing, so the canvas must be cleared first.
fn uncovers(before: &RgbaImage, after: &RgbaImage) -> bool {
    before
        .pixels()
        .zip(after.pixels())
        .any(|(b, a)| b[3] != 0 && a[3] == 0)
}

/// The bounding box (x, y, w, h) of pixels that differ; 1×1 at the origin when none do.
fn changed_rect(before: &RgbaImage, after: &RgbaImage) -> (u32, u32, u32, u32) {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in after.enumerate_pixels() {
        if before.get_pixel(x, y) != p {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    if x0 == u32::MAX {
        return (0, 0, 1, 1);
    }
    (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
}

fn quantized_frame(
    image: &RgbaImage,
    (x, y, w, h): (u32, u32, u32, u32),
    quality: u8,
) -> Result<gif::Frame<'static>, CoreError> {
    let region = image::imageops::crop_imm(image, x, y, w, h).to_image();
    let (palette, indices) = quantize_indices(&region, 0, quality)?
        .ok_or_else(|| CoreError::Encode("gif: palette quantisation failed".into()))?;
    let transparent = palette.iter().position(|c| c.a == 0).map(|i| i as u8);
    // Sizes were checked against u16 by gif_size for the whole canvas.
    let frame = gif::Frame {
        left: x as u16,
        top: y as u16,
        width: w as u16,
        height: h as u16,
        palette: Some(palette.iter().flat_map(|c| [c.r, c.g, c.b]).collect()),
        transparent,
        buffer: std::borrow::Cow::Owned(indices),
        ..gif::Frame::default()
    };
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_rect_bounds_the_difference() {
        let a = RgbaImage::from_pixel(10, 8, image::Rgba([1, 2, 3, 255]));
        let mut b = a.clone();
        b.put_pixel(3, 2, image::Rgba([9, 9, 9, 255]));
        b.put_pixel(6, 5, image::Rgba([9, 9, 9, 255]));
        assert_eq!(changed_rect(&a, &b), (3, 2, 4, 4));
        assert_eq!(changed_rect(&a, &a), (0, 0, 1, 1));
    }
}
