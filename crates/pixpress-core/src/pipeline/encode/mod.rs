//! Codecs: one module per output format. Each takes pixels (or, for the lossless paths, the
//! encoded input) and options as plain values, and knows nothing of requests, plans or keys.

pub mod avif;
pub mod gif;
pub mod jpeg;
pub mod jpeg_lossless;
pub mod png;
pub mod webp;

/// Decodes any encoded output pixpress writes (AVIF through libaom, the rest through `image`),
/// for scoring a trial against its source.
pub fn decode_any(bytes: &[u8]) -> Result<image::DynamicImage, crate::CoreError> {
    if crate::format::sniff(bytes) == crate::format::Sniffed::Supported(crate::ImageFormat::Avif) {
        return avif::decode(bytes);
    }
    image::load_from_memory(bytes)
        .map_err(|e| crate::CoreError::Encode(format!("decoding a trial encode failed: {e}")))
}

/// Turns a caught panic payload (C libraries here report fatal errors by unwinding) into text.
pub(crate) fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "codec failure".to_string()
    }
}
