//! What the caller asks for, already validated at the edge: the output format, lossy or not and
//! at what quality or perceptual target, which metadata survives, the flattening colour. This
//! module owns those options and the names of their defaults; the steps only read them.

use super::quality;
use crate::codec::exif::{ExifTags, KeepExif};
use crate::format::ImageFormat;

/// The output format a request asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// The input's format (the default).
    #[default]
    Same,
    Jpeg,
    Png,
    Webp,
    Gif,
    Avif,
    /// The smallest suitable format at the same perceptual target.
    Auto,
    /// The smallest of the caller's own list of formats, each at the same perceptual target
    /// (Tinify's `convert.type` list).
    Among(FormatSet),
}

/// A set of output formats, for [`OutputFormat::Among`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FormatSet(u8);

impl FormatSet {
    /// Every format, in the order candidates are tried.
    const ALL: [ImageFormat; 5] = [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Webp,
        ImageFormat::Avif,
        ImageFormat::Gif,
    ];

    fn bit(format: ImageFormat) -> u8 {
        let index = Self::ALL.iter().position(|f| *f == format).unwrap_or(0);
        1 << index
    }

    /// The set with `format` added.
    pub fn with(self, format: ImageFormat) -> FormatSet {
        FormatSet(self.0 | Self::bit(format))
    }

    pub fn contains(self, format: ImageFormat) -> bool {
        self.0 & Self::bit(format) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The formats in the set, in trial order.
    pub fn formats(self) -> Vec<ImageFormat> {
        Self::ALL
            .into_iter()
            .filter(|f| self.contains(*f))
            .collect()
    }

    /// The one format of a one-format set.
    pub fn single(self) -> Option<ImageFormat> {
        match self.formats().as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    }
}

impl OutputFormat {
    /// The concrete format a still image is written in; `None` for `auto` (and a list of
    /// several), which chooses among several once the pixels are known.
    pub fn resolve(self, input: ImageFormat) -> Option<ImageFormat> {
        match self {
            OutputFormat::Same => Some(input),
            OutputFormat::Jpeg => Some(ImageFormat::Jpeg),
            OutputFormat::Png => Some(ImageFormat::Png),
            OutputFormat::Webp => Some(ImageFormat::Webp),
            OutputFormat::Gif => Some(ImageFormat::Gif),
            OutputFormat::Avif => Some(ImageFormat::Avif),
            OutputFormat::Auto => None,
            OutputFormat::Among(set) => set.single(),
        }
    }
}

/// Which metadata survives (SPEC §3). The default strips everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub exif: bool,
    /// Keep the embedded colour profile instead of converting the pixels to sRGB.
    pub icc: bool,
    pub xmp: bool,
    /// Keep only EXIF's Copyright and Artist tags (when `exif` is not kept whole).
    pub copyright: bool,
    /// Keep only EXIF's GPS tags (when `exif` is not kept whole).
    pub geotag: bool,
    /// Keep only EXIF's date-time tags (when `exif` is not kept whole).
    pub creation: bool,
}

impl Metadata {
    /// Every kind of metadata kept (`metadata: "keep"`).
    pub fn everything() -> Metadata {
        Metadata {
            exif: true,
            icc: true,
            xmp: true,
            copyright: true,
            geotag: true,
            creation: true,
        }
    }

    /// Some part of the EXIF block is to be kept.
    pub fn wants_exif(&self) -> bool {
        self.exif || self.copyright || self.geotag || self.creation
    }

    /// Only chosen EXIF tags are kept: the block must be rewritten, not copied.
    pub fn exif_subset(&self) -> bool {
        !self.exif && (self.copyright || self.geotag || self.creation)
    }

    /// How much of the EXIF block survives, as the codecs take it.
    pub fn keep_exif(&self) -> KeepExif {
        if self.exif {
            KeepExif::Whole
        } else if self.exif_subset() {
            KeepExif::Subset(ExifTags {
                copyright: self.copyright,
                geotag: self.geotag,
                creation: self.creation,
            })
        } else {
            KeepExif::Nothing
        }
    }
}

/// What the caller asked for, already validated at the edge.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub lossy: bool,
    /// 0–100; `None` means "choose by the perceptual target".
    pub quality: Option<u8>,
    /// SSIMULACRA2 the automatic quality must reach; `None` is [`quality::DEFAULT_TARGET`].
    pub quality_target: Option<f64>,
    pub format: OutputFormat,
    pub metadata: Metadata,
    /// Opaque colour transparent pixels are flattened on when the output has no alpha.
    pub background: Option<[u8; 4]>,
    /// Measure SSIMULACRA2 even when the quality is fixed. Off by default: a fixed-quality
    /// request does not pay for a score it did not ask for (an automatic quality is always
    /// scored, since the score is how it is chosen).
    pub score: bool,
    /// A byte budget: the output must fit in it (`max_bytes`; lossy only).
    pub max_bytes: Option<u64>,
    /// A score floor: the smallest output that keeps this SSIMULACRA2 (`min_ssimulacra2`;
    /// lossy only; with `max_bytes`, both must hold or the request fails).
    pub min_ssimulacra2: Option<f64>,
}

impl Request {
    pub fn target(&self) -> f64 {
        self.quality_target.unwrap_or(quality::DEFAULT_TARGET)
    }

    /// Whether a byte budget or a score floor decides the quality ([`super::budget`]).
    pub fn has_budget(&self) -> bool {
        self.lossy && (self.max_bytes.is_some() || self.min_ssimulacra2.is_some())
    }

    /// Whether an output encoded at a fixed quality is scored for the answer.
    pub fn scores_fixed_quality(&self) -> bool {
        self.score
    }
}
