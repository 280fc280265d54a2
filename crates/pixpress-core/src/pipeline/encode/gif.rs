//! GIF: lossless re-coding from palette indices. Every frame keeps its palette, position,
//! delay, disposal and transparency; the loop count is kept. Only the LZW streams are rewritten
//! and extension blocks (comments, XMP) dropped, so no pixel can change.

use std::io::Cursor;

use crate::{CoreError, Limits};

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

fn encode_err(e: gif::EncodingError) -> CoreError {
    CoreError::Encode(format!("gif: {e}"))
}

/// Encodes one frame of pixels as a GIF, quantised to a 256-colour palette (NeuQuant);
/// fully transparent pixels stay transparent.
pub fn encode_still(image: &image::DynamicImage) -> Result<Vec<u8>, CoreError> {
    let (width, height) = (image.width(), image.height());
    let (w16, h16) = match (u16::try_from(width), u16::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => {
            return Err(CoreError::InvalidOption {
                field: "resize".into(),
                message: format!(
                    "GIF output is limited to 65535x65535; {width}x{height} was asked"
                ),
            })
        }
    };
    let mut rgba = image.to_rgba8().into_raw();
    let frame = gif::Frame::from_rgba_speed(w16, h16, &mut rgba, 10);
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w16, h16, &[]).map_err(encode_err)?;
        encoder.write_frame(&frame).map_err(encode_err)?;
    }
    Ok(out)
}
