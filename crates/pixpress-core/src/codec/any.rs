//! Decoding any output pixpress writes, told apart by its magic bytes: for callers that hold
//! bytes but not the codec that made them (tests, the benchmark tool).

use image::DynamicImage;

use super::{avif, decode_with_image};
use crate::error::CoreError;
use crate::format::InputFormat;
use crate::format::{self, Sniffed};

/// Decodes any encoded output pixpress writes (AVIF through libaom, the rest through `image`).
pub fn decode_any(bytes: &[u8]) -> Result<DynamicImage, CoreError> {
    if format::sniff(bytes) == Sniffed::Supported(InputFormat::Avif) {
        return avif::decode(bytes);
    }
    decode_with_image(bytes)
}
