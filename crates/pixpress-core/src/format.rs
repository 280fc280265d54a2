//! Image formats: sniffing from magic bytes (never from file names or Content-Type), and the
//! extension and media type each output format is served with.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Avif,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
            ImageFormat::Avif => "avif",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Avif => "image/avif",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
            ImageFormat::Avif => "avif",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
            "png" => Some(ImageFormat::Png),
            "gif" => Some(ImageFormat::Gif),
            "webp" => Some(ImageFormat::Webp),
            "avif" => Some(ImageFormat::Avif),
            _ => None,
        }
    }
}

/// What the first bytes of an input say it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sniffed {
    Supported(ImageFormat),
    /// A known format pixpress does not read yet; the string names it for the error message.
    Unsupported(&'static str),
    Empty,
    Unknown,
}

pub fn sniff(bytes: &[u8]) -> Sniffed {
    if bytes.is_empty() {
        return Sniffed::Empty;
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Sniffed::Supported(ImageFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::Supported(ImageFormat::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Sniffed::Supported(ImageFormat::Gif);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Sniffed::Supported(ImageFormat::Webp);
    }
    if is_avif(bytes) {
        return Sniffed::Supported(ImageFormat::Avif);
    }
    sniff_unsupported(bytes)
}

fn sniff_unsupported(bytes: &[u8]) -> Sniffed {
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let brand = &bytes[8..12];
        return match brand {
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"mif1" | b"msf1" | b"heim" | b"heis" => {
                Sniffed::Unsupported("HEIF/HEIC")
            }
            _ => Sniffed::Unsupported("an ISO-BMFF container (MP4/HEIF family)"),
        };
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return Sniffed::Unsupported("TIFF");
    }
    if bytes.starts_with(b"BM") {
        return Sniffed::Unsupported("BMP");
    }
    if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(b"\0\0\0\x0CJXL ") {
        return Sniffed::Unsupported("JPEG XL");
    }
    if looks_like_svg(bytes) {
        return Sniffed::Unsupported("SVG (vector images are not accepted)");
    }
    Sniffed::Unknown
}

/// An ISO-BMFF file whose major or compatible brand is AVIF (still `avif` or sequence `avis`).
fn is_avif(bytes: &[u8]) -> bool {
    bytes.len() >= 12
        && &bytes[4..8] == b"ftyp"
        && (is_avif_brand(&bytes[8..12]) || compatible_brands(bytes).any(is_avif_brand))
}

fn is_avif_brand(brand: &[u8]) -> bool {
    brand == b"avif" || brand == b"avis"
}

/// The compatible-brand list of an ISO-BMFF `ftyp` box (a HEIF file may carry `mif1` as its
/// major brand and say `avif` only here).
fn compatible_brands(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let box_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = box_len.min(bytes.len()).min(256);
    bytes.get(16..end).unwrap_or(&[]).chunks_exact(4)
}

fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.contains("<svg")
}

/// A short description of unknown bytes, for the 415 message.
pub fn describe_unknown(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(512)];
    let printable = head
        .iter()
        .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b));
    if printable {
        "plain text, not an image".to_string()
    } else {
        "unrecognised binary data, not a JPEG, PNG, GIF, WebP or AVIF image".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_four_formats_and_names_others() {
        assert_eq!(
            sniff(b"\xFF\xD8\xFF\xE0xx"),
            Sniffed::Supported(ImageFormat::Jpeg)
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\nxxxx"),
            Sniffed::Supported(ImageFormat::Png)
        );
        assert_eq!(sniff(b"GIF89a...."), Sniffed::Supported(ImageFormat::Gif));
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Sniffed::Supported(ImageFormat::Webp)
        );
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic"),
            Sniffed::Unsupported("HEIF/HEIC")
        );
        assert_eq!(
            sniff(b"\0\0\0\x1cftypavif"),
            Sniffed::Supported(ImageFormat::Avif)
        );
        assert_eq!(sniff(b"BM...."), Sniffed::Unsupported("BMP"));
        assert_eq!(sniff(b""), Sniffed::Empty);
        assert_eq!(sniff(b"hello world"), Sniffed::Unknown);
        assert_eq!(describe_unknown(b"hello world"), "plain text, not an image");
    }
}
