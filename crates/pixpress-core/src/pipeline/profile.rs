//! Colour profiles and metadata the pixels carry: convert an embedded ICC profile to sRGB with
//! qcms (Firefox's colour management) unless the caller keeps the profile, and tidy the EXIF
//! block that is kept so that it agrees with pixels that were already turned upright.

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

/// A new EXIF block (TIFF payload) holding only the chosen tags of `tiff`: Copyright and Artist
/// for `copyright`, the GPS IFD for `geotag`, and Orientation always (so an image kept as stored
/// still shows upright). `None` when none of them is present or the block does not parse.
pub fn exif_subset(tiff: &[u8], copyright: bool, geotag: bool) -> Option<Vec<u8>> {
    use exif::{Context, In, Tag};
    let parsed = exif::Reader::new().read_raw(tiff.to_vec()).ok()?;
    let wanted = |field: &exif::Field| {
        field.ifd_num == In::PRIMARY
            && ((copyright && matches!(field.tag, Tag::Copyright | Tag::Artist))
                || (geotag && field.tag.context() == Context::Gps))
    };
    let kept: Vec<&exif::Field> = parsed.fields().filter(|f| wanted(f)).collect();
    if kept.is_empty() {
        return None;
    }
    let mut writer = exif::experimental::Writer::new();
    for field in &kept {
        writer.push_field(field);
    }
    if let Some(orientation) = parsed.get_field(Tag::Orientation, In::PRIMARY) {
        writer.push_field(orientation);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    writer.write(&mut out, parsed.little_endian()).ok()?;
    Some(out.into_inner())
}

/// Sets the EXIF Orientation tag to 1 (upright), because the pixels were already rotated.
/// Leaves data without a valid orientation as it is.
pub fn reset_orientation(exif: &mut [u8]) {
    let _ = image::metadata::Orientation::remove_from_exif_chunk(exif);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exif_block(fields: &[exif::Field]) -> Vec<u8> {
        let mut writer = exif::experimental::Writer::new();
        for field in fields {
            writer.push_field(field);
        }
        let mut out = std::io::Cursor::new(Vec::new());
        writer.write(&mut out, false).unwrap();
        out.into_inner()
    }

    fn tags_of(tiff: &[u8]) -> Vec<exif::Tag> {
        let parsed = exif::Reader::new().read_raw(tiff.to_vec()).unwrap();
        parsed.fields().map(|f| f.tag).collect()
    }

    #[test]
    fn exif_subsets_keep_only_the_chosen_tags_and_orientation() {
        use exif::{Field, In, Tag, Value};
        let ascii = |tag, text: &str| Field {
            tag,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![text.as_bytes().to_vec()]),
        };
        let fields = [
            ascii(Tag::Make, "Camera"),
            ascii(Tag::Copyright, "(c) Ada"),
            ascii(Tag::Artist, "Ada"),
            ascii(Tag::DateTimeOriginal, "2020:01:01 00:00:00"),
            ascii(Tag::GPSLatitudeRef, "N"),
            Field {
                tag: Tag::GPSLatitude,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![(48, 1).into(), (51, 1).into(), (24, 1).into()]),
            },
            Field {
                tag: Tag::Orientation,
                ifd_num: In::PRIMARY,
                value: Value::Short(vec![6]),
            },
        ];
        let tiff = exif_block(&fields);

        let copyright = tags_of(&exif_subset(&tiff, true, false).unwrap());
        for tag in [Tag::Copyright, Tag::Artist, Tag::Orientation] {
            assert!(copyright.contains(&tag), "{tag} missing: {copyright:?}");
        }
        for tag in [Tag::Make, Tag::DateTimeOriginal, Tag::GPSLatitude] {
            assert!(!copyright.contains(&tag), "{tag} kept: {copyright:?}");
        }

        let geotag = tags_of(&exif_subset(&tiff, false, true).unwrap());
        for tag in [Tag::GPSLatitude, Tag::GPSLatitudeRef, Tag::Orientation] {
            assert!(geotag.contains(&tag), "{tag} missing: {geotag:?}");
        }
        assert!(!geotag.contains(&Tag::Copyright) && !geotag.contains(&Tag::Make));

        let no_gps = exif_block(&fields[..4]);
        assert_eq!(exif_subset(&no_gps, false, true), None);
        assert_eq!(exif_subset(b"not exif", true, true), None);
    }

    #[test]
    fn orientation_is_reset_in_both_byte_orders() {
        let mut big =
            crate::pipeline::encode::jpeg_lossless::orientation_only_exif(6)[6..].to_vec();
        reset_orientation(&mut big);
        assert_eq!(&big[16..18], &[0, 1]);

        let mut little = vec![
            b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0,
        ];
        reset_orientation(&mut little);
        assert_eq!(&little[18..20], &[1, 0]);
        let mut junk = vec![1, 2, 3];
        reset_orientation(&mut junk);
        assert_eq!(junk, vec![1, 2, 3]);
    }

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
