//! Image formats: sniffing from magic bytes (never from file names or Content-Type), the
//! formats pixpress reads ([`InputFormat`]: the five it writes and three it only reads), and
//! the extension and media type each is served with.

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

/// A format pixpress reads: the five it also writes, and BMP, TIFF and JPEG XL, which it reads
/// only (their output is PNG or JPEG, chosen by the probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Avif,
    Bmp,
    Tiff,
    Jxl,
}

impl InputFormat {
    /// The same format as an output, for the five pixpress writes; `None` for read-only ones.
    pub fn writable(self) -> Option<ImageFormat> {
        match self {
            InputFormat::Jpeg => Some(ImageFormat::Jpeg),
            InputFormat::Png => Some(ImageFormat::Png),
            InputFormat::Gif => Some(ImageFormat::Gif),
            InputFormat::Webp => Some(ImageFormat::Webp),
            InputFormat::Avif => Some(ImageFormat::Avif),
            InputFormat::Bmp | InputFormat::Tiff | InputFormat::Jxl => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self.writable() {
            Some(format) => format.name(),
            None => match self {
                InputFormat::Bmp => "bmp",
                InputFormat::Tiff => "tiff",
                _ => "jxl",
            },
        }
    }

    /// The extension a hosted copy of the input is stored under.
    pub fn extension(self) -> &'static str {
        match (self.writable(), self) {
            (Some(format), _) => format.extension(),
            (None, InputFormat::Tiff) => "tif",
            (None, _) => self.name(),
        }
    }

    pub fn mime(self) -> &'static str {
        match (self.writable(), self) {
            (Some(format), _) => format.mime(),
            (None, InputFormat::Bmp) => "image/bmp",
            (None, InputFormat::Tiff) => "image/tiff",
            (None, _) => "image/jxl",
        }
    }
}

impl From<ImageFormat> for InputFormat {
    fn from(format: ImageFormat) -> Self {
        match format {
            ImageFormat::Jpeg => InputFormat::Jpeg,
            ImageFormat::Png => InputFormat::Png,
            ImageFormat::Gif => InputFormat::Gif,
            ImageFormat::Webp => InputFormat::Webp,
            ImageFormat::Avif => InputFormat::Avif,
        }
    }
}

/// What the first bytes of an input say it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sniffed {
    Supported(InputFormat),
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
        return Sniffed::Supported(InputFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::Supported(InputFormat::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Sniffed::Supported(InputFormat::Gif);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Sniffed::Supported(InputFormat::Webp);
    }
    if is_avif(bytes) {
        return Sniffed::Supported(InputFormat::Avif);
    }
    sniff_read_only(bytes).map_or_else(|| sniff_unsupported(bytes), Sniffed::Supported)
}

/// The formats pixpress reads but does not write.
fn sniff_read_only(bytes: &[u8]) -> Option<InputFormat> {
    // Classic TIFF (42) and BigTIFF (43), little- and big-endian; the `tiff` crate reads both.
    const TIFF: [&[u8]; 4] = [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"];
    if TIFF.iter().any(|magic| bytes.starts_with(magic)) {
        return Some(InputFormat::Tiff);
    }
    if is_bmp(bytes) {
        return Some(InputFormat::Bmp);
    }
    // A bare codestream, or the ISO-BMFF-style container with its `JXL ` signature box.
    if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(b"\0\0\0\x0CJXL \r\n\x87\n") {
        return Some(InputFormat::Jxl);
    }
    None
}

/// "BM" and a DIB header of one of the sizes BMP versions use: two letters alone would take a
/// text file starting "BMW" for a broken BMP (422) instead of text (415).
fn is_bmp(bytes: &[u8]) -> bool {
    const DIB_HEADER_SIZES: [u32; 7] = [12, 40, 52, 56, 64, 108, 124];
    match bytes.get(14..18) {
        Some(&[a, b, c, d]) if bytes.starts_with(b"BM") => {
            DIB_HEADER_SIZES.contains(&u32::from_le_bytes([a, b, c, d]))
        }
        _ => false,
    }
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
        "unrecognised binary data, not a JPEG, PNG, GIF, WebP, AVIF, BMP, TIFF or JPEG XL \
         image"
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_four_formats_and_names_others() {
        assert_eq!(
            sniff(b"\xFF\xD8\xFF\xE0xx"),
            Sniffed::Supported(InputFormat::Jpeg)
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\nxxxx"),
            Sniffed::Supported(InputFormat::Png)
        );
        assert_eq!(sniff(b"GIF89a...."), Sniffed::Supported(InputFormat::Gif));
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Sniffed::Supported(InputFormat::Webp)
        );
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic"),
            Sniffed::Unsupported("HEIF/HEIC")
        );
        assert_eq!(
            sniff(b"\0\0\0\x1cftypavif"),
            Sniffed::Supported(InputFormat::Avif)
        );
        assert_eq!(sniff(b""), Sniffed::Empty);
        assert_eq!(sniff(b"hello world"), Sniffed::Unknown);
        assert_eq!(describe_unknown(b"hello world"), "plain text, not an image");
    }

    fn corpus(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");
        std::fs::read(format!("{path}{name}")).expect("corpus file")
    }

    #[test]
    fn sniffs_the_read_only_formats() {
        let bmp = corpus("edge/bmp_pal8.bmp");
        assert_eq!(sniff(&bmp), Sniffed::Supported(InputFormat::Bmp));
        let tiff = corpus("edge/tiff_rgb_lzw.tif");
        assert_eq!(sniff(&tiff), Sniffed::Supported(InputFormat::Tiff));
        assert_eq!(
            sniff(b"MM\0*\0\0\0\x08"),
            Sniffed::Supported(InputFormat::Tiff)
        );
        assert_eq!(sniff(b"\xFF\x0A\xFA"), Sniffed::Supported(InputFormat::Jxl));
        assert_eq!(
            sniff(b"\0\0\0\x0CJXL \r\n\x87\n\0\0\0\x14ftypjxl "),
            Sniffed::Supported(InputFormat::Jxl)
        );
        // "BM" with no plausible DIB header is text, not a broken bitmap.
        assert_eq!(sniff(b"BMW is a car maker, not an image"), Sniffed::Unknown);
    }

    #[test]
    fn read_only_formats_have_no_output_of_their_own() {
        for (format, name, mime) in [
            (InputFormat::Bmp, "bmp", "image/bmp"),
            (InputFormat::Tiff, "tiff", "image/tiff"),
            (InputFormat::Jxl, "jxl", "image/jxl"),
        ] {
            assert_eq!(format.writable(), None);
            assert_eq!((format.name(), format.mime()), (name, mime));
        }
        assert_eq!(InputFormat::Tiff.extension(), "tif");
        assert_eq!(InputFormat::Jpeg.writable(), Some(ImageFormat::Jpeg));
        assert_eq!(InputFormat::from(ImageFormat::Webp), InputFormat::Webp);
    }
}
