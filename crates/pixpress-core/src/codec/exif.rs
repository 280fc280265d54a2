//! EXIF blocks the JPEG paths write: the subset of tags a caller keeps (copyright, geotag,
//! creation date), the
//! orientation reset once pixels are upright, and the minimal block that carries only an
//! orientation. This module owns which tags each subset holds.

/// How much of an input's EXIF block survives, from the caller's metadata policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepExif {
    /// Dropped (an orientation-only block may still be written so the image shows upright).
    Nothing,
    /// Copied as it is.
    Whole,
    /// Rewritten with only the chosen tags (and the orientation).
    Subset(ExifTags),
}

/// The groups of EXIF tags a subset keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExifTags {
    /// Copyright and Artist.
    pub copyright: bool,
    /// The GPS IFD.
    pub geotag: bool,
    /// DateTime, DateTimeOriginal and DateTimeDigitized (with their sub-second and offset tags).
    pub creation: bool,
}

impl KeepExif {
    /// The block (TIFF payload) this policy writes for `tiff`: all of it, a rewritten subset,
    /// or nothing.
    pub fn apply(self, tiff: Vec<u8>) -> Option<Vec<u8>> {
        match self {
            KeepExif::Nothing => None,
            KeepExif::Whole => Some(tiff),
            KeepExif::Subset(tags) => exif_subset(&tiff, tags),
        }
    }
}

/// A new EXIF block (TIFF payload) holding only the chosen tags of `tiff`: Copyright and Artist
/// for `copyright`, the GPS IFD for `geotag`, the date-time tags for `creation`, and Orientation
/// always (so an image kept as stored still shows upright). `None` when none of them is present
/// or the block does not parse.
pub fn exif_subset(tiff: &[u8], tags: ExifTags) -> Option<Vec<u8>> {
    use exif::{Context, In, Tag};
    let parsed = exif::Reader::new().read_raw(tiff.to_vec()).ok()?;
    let wanted = |field: &exif::Field| {
        field.ifd_num == In::PRIMARY
            && ((tags.copyright && matches!(field.tag, Tag::Copyright | Tag::Artist))
                || (tags.geotag && field.tag.context() == Context::Gps)
                || (tags.creation && is_creation_tag(field.tag)))
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

fn is_creation_tag(tag: exif::Tag) -> bool {
    use exif::Tag;
    matches!(
        tag,
        Tag::DateTime
            | Tag::DateTimeOriginal
            | Tag::DateTimeDigitized
            | Tag::SubSecTime
            | Tag::SubSecTimeOriginal
            | Tag::SubSecTimeDigitized
            | Tag::OffsetTime
            | Tag::OffsetTimeOriginal
            | Tag::OffsetTimeDigitized
    )
}

/// Sets the EXIF Orientation tag to 1 (upright), because the pixels were already rotated.
/// Leaves data without a valid orientation as it is.
pub fn reset_orientation(exif: &mut [u8]) {
    let _ = image::metadata::Orientation::remove_from_exif_chunk(exif);
}

/// A big-endian TIFF block with one IFD entry: Orientation (0x0112), SHORT, count 1.
pub fn orientation_only_exif(orientation: u8) -> Vec<u8> {
    let mut exif = Vec::with_capacity(34);
    exif.extend_from_slice(b"Exif\0\0");
    exif.extend_from_slice(b"MM\0\x2A\0\0\0\x08");
    exif.extend_from_slice(&1u16.to_be_bytes());
    exif.extend_from_slice(&0x0112u16.to_be_bytes());
    exif.extend_from_slice(&3u16.to_be_bytes());
    exif.extend_from_slice(&1u32.to_be_bytes());
    exif.extend_from_slice(&u16::from(orientation).to_be_bytes());
    exif.extend_from_slice(&[0, 0]);
    exif.extend_from_slice(&0u32.to_be_bytes());
    exif
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

        let copyright = tags_of(&exif_subset(&tiff, tags(true, false)).unwrap());
        for tag in [Tag::Copyright, Tag::Artist, Tag::Orientation] {
            assert!(copyright.contains(&tag), "{tag} missing: {copyright:?}");
        }
        for tag in [Tag::Make, Tag::DateTimeOriginal, Tag::GPSLatitude] {
            assert!(!copyright.contains(&tag), "{tag} kept: {copyright:?}");
        }

        let geotag = tags_of(&exif_subset(&tiff, tags(false, true)).unwrap());
        for tag in [Tag::GPSLatitude, Tag::GPSLatitudeRef, Tag::Orientation] {
            assert!(geotag.contains(&tag), "{tag} missing: {geotag:?}");
        }
        assert!(!geotag.contains(&Tag::Copyright) && !geotag.contains(&Tag::Make));

        let no_gps = exif_block(&fields[..4]);
        assert_eq!(exif_subset(&no_gps, tags(false, true)), None);
        assert_eq!(exif_subset(b"not exif", tags(true, true)), None);

        let creation = ExifTags {
            creation: true,
            ..ExifTags::default()
        };
        let dated = tags_of(&exif_subset(&tiff, creation).unwrap());
        assert!(dated.contains(&Tag::DateTimeOriginal), "{dated:?}");
        assert!(!dated.contains(&Tag::Copyright) && !dated.contains(&Tag::GPSLatitude));
    }

    fn tags(copyright: bool, geotag: bool) -> ExifTags {
        ExifTags {
            copyright,
            geotag,
            creation: false,
        }
    }

    #[test]
    fn orientation_is_reset_in_both_byte_orders() {
        let mut big = orientation_only_exif(6)[6..].to_vec();
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
}
