//! JPEG decoded at a reduced scale in the DCT domain (libjpeg's `scale_num / scale_denom`
//! through mozjpeg): at 1/2, 1/4 or 1/8 the inverse DCT is computed on the low-frequency
//! corner of each block only, so the decoder writes a quarter, a sixteenth or a sixty-fourth
//! of the pixels and skips most of the IDCT and colour-conversion work.
//!
//! This is an accelerator beside the general decoder (`image`'s zune-jpeg), never a
//! replacement: it answers `None` whenever its result could differ from what the general
//! decoder would make of the file in anything but resolution: a colour space other than
//! greyscale or YCbCr/RGB (CMYK and YCCK keep the general decoder's conversion), any libjpeg
//! warning (corrupt data that libjpeg would paper over while zune-jpeg might refuse it) and
//! any fatal libjpeg error (which unwinds). The caller then decodes at full size as before,
//! so a damaged file gets exactly the answer it got without this path.

use std::mem;
use std::os::raw::c_int;

use image::{DynamicImage, GrayImage, RgbImage};
use mozjpeg::{ColorSpace, Decompress};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, jpeg_std_error};

/// The scale denominators libjpeg's reduced IDCT offers below full size (numerator 1).
pub const SCALES: [u32; 3] = [2, 4, 8];

/// Decodes `input` at 1/`denominator` of its stored size (2, 4 or 8), in stored orientation,
/// as `Luma8` for greyscale and `Rgb8` for colour. Each side is the stored side divided by
/// `denominator`, rounded up (libjpeg's `jdiv_round_up`): the last column and row cover the
/// partial block at the edge. `None`: decode at full size with the general decoder instead.
pub fn decode_scaled(input: &[u8], denominator: u32) -> Option<DynamicImage> {
    if !SCALES.contains(&denominator) {
        return None;
    }
    // libjpeg reports fatal errors (and, with our error manager, warnings) by unwinding out of
    // the C code; the mozjpeg crate's drop releases libjpeg's memory on the way out.
    std::panic::catch_unwind(|| decode_unwinding(input, denominator))
        .ok()
        .flatten()
}

fn decode_unwinding(input: &[u8], denominator: u32) -> Option<DynamicImage> {
    let numerator = u8::try_from(8 / denominator).ok()?;
    let mut decompress = Decompress::builder()
        .with_err(error_mgr())
        .from_mem(input)
        .ok()?;
    decompress.scale(numerator);
    match decompress.color_space() {
        ColorSpace::JCS_GRAYSCALE => {
            let mut started = decompress.grayscale().ok()?;
            let (width, height) = output_size(started.width(), started.height())?;
            let pixels: Vec<u8> = started.read_scanlines().ok()?;
            started.finish().ok()?;
            GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8)
        }
        ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => {
            let mut started = decompress.rgb().ok()?;
            let (width, height) = output_size(started.width(), started.height())?;
            let pixels: Vec<u8> = started.read_scanlines().ok()?;
            started.finish().ok()?;
            RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8)
        }
        _ => None,
    }
}

fn output_size(width: usize, height: usize) -> Option<(u32, u32)> {
    Some((u32::try_from(width).ok()?, u32::try_from(height).ok()?))
}

/// libjpeg's standard error manager with fatal errors and warnings both unwinding: a warning
/// means libjpeg is repairing the data as it goes, and then the general decoder decides.
fn error_mgr() -> jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills every field of a zeroed struct, as libjpeg documents.
    let mut err: jpeg_error_mgr = unsafe { mem::zeroed() };
    unsafe { jpeg_std_error(&mut err) };
    err.error_exit = Some(unwind_on_error);
    err.emit_message = Some(unwind_on_warning);
    err
}

extern "C-unwind" fn unwind_on_error(_cinfo: &mut jpeg_common_struct) {
    std::panic::resume_unwind(Box::new("libjpeg fatal error"));
}

/// Level -1 is a warning (corrupt data, premature end of a segment); higher levels are trace
/// messages, which change nothing.
extern "C-unwind" fn unwind_on_warning(_cinfo: &mut jpeg_common_struct, level: c_int) {
    if level < 0 {
        std::panic::resume_unwind(Box::new("libjpeg warning"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        std::fs::read(format!("{path}{name}")).expect("corpus file")
    }

    #[test]
    fn sizes_round_up_and_colour_types_match_the_general_decoder() {
        // 204x247: neither side a multiple of 8.
        let input = corpus("edge/orientation_4_nonsquare.jpg");
        for (denominator, size) in [(2, (102, 124)), (4, (51, 62)), (8, (26, 31))] {
            let image = decode_scaled(&input, denominator).expect("decodes");
            assert_eq!((image.width(), image.height()), size, "1/{denominator}");
            assert!(matches!(image, DynamicImage::ImageRgb8(_)));
        }
        let grey = decode_scaled(&corpus("edge/gray.jpg"), 2).expect("decodes");
        assert!(matches!(grey, DynamicImage::ImageLuma8(_)));
        assert_eq!((grey.width(), grey.height()), (64, 64));
        let progressive = decode_scaled(&corpus("edge/progressive.jpg"), 4).expect("decodes");
        assert_eq!((progressive.width(), progressive.height()), (100, 79));
    }

    #[test]
    fn cmyk_damaged_and_odd_requests_fall_back_to_the_general_decoder() {
        assert!(decode_scaled(&corpus("edge/cmyk_adobe_ycck.jpg"), 2).is_none());
        assert!(decode_scaled(&corpus("edge/truncated.jpg"), 2).is_none());
        assert!(decode_scaled(b"\xFF\xD8\xFF\xE0 not a jpeg", 2).is_none());
        assert!(decode_scaled(&corpus("edge/gray.jpg"), 3).is_none());
        assert!(decode_scaled(&corpus("edge/gray.jpg"), 1).is_none());
    }
}
