//! Colour profiles: convert an embedded ICC profile to sRGB with qcms (Firefox's colour
//! management), for the decode step when the caller does not keep the profile.

use image::DynamicImage;

/// Converts 8-bit RGB(A) pixels from `icc` to sRGB. `None` when nothing needed doing or the
/// profile is not one qcms can apply (grey or CMYK profiles, broken data); the pixels are then
/// used as they are.
pub fn to_srgb(image: &DynamicImage, icc: &[u8]) -> Option<DynamicImage> {
    let input = qcms::Profile::new_from_slice(icc, false)?;
    if input.is_sRGB() {
        return None;
    }
    let srgb = qcms::Profile::new_sRGB();
    let intent = qcms::Intent::default();
    if image.color().has_alpha() {
        let mut rgba = image.to_rgba8();
        let transform = qcms::Transform::new(&input, &srgb, qcms::DataType::RGBA8, intent)?;
        transform.apply(&mut rgba);
        Some(DynamicImage::ImageRgba8(rgba))
    } else if image.color().channel_count() >= 3 {
        let mut rgb = image.to_rgb8();
        let transform = qcms::Transform::new(&input, &srgb, qcms::DataType::RGB8, intent)?;
        transform.apply(&mut rgb);
        Some(DynamicImage::ImageRgb8(rgb))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The corpus's Apple "Generic RGB Profile" (gamma 1.8): mid-grey must come out darker in
    /// sRGB at a different value; black and white stay put.
    #[test]
    fn a_gamma_18_profile_moves_mid_tones_and_keeps_black_and_white() {
        use image::ImageDecoder;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/edge/icc_apple_generic_rgb.jpg"
        );
        let data = std::fs::read(path).expect("corpus file");
        let mut decoder =
            image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(&data)).expect("jpeg");
        let icc = decoder.icc_profile().expect("read").expect("has a profile");
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(3, 1, |x, _| {
            image::Rgb([[0, 128, 255][x as usize]; 3])
        }));
        let converted = to_srgb(&image, &icc).expect("converted").to_rgb8();
        assert_eq!(converted.get_pixel(0, 0).0, [0, 0, 0]);
        assert!(converted.get_pixel(2, 0).0.iter().all(|&c| c >= 250));
        let mid = converted.get_pixel(1, 0).0;
        assert!(
            mid.iter().all(|&c| c.abs_diff(128) >= 6),
            "mid-grey moved: {mid:?}"
        );
    }

    #[test]
    fn srgb_profile_needs_no_conversion_and_garbage_is_ignored() {
        let image = DynamicImage::ImageRgb8(image::RgbImage::new(4, 4));
        assert!(to_srgb(&image, b"not a profile").is_none());
    }
}
