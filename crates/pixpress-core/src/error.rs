//! The one error type of the core pipeline. Each variant says *why* an image could not be
//! processed; the server maps each to an HTTP status in exactly one place.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CoreError {
    /// The bytes are not an image format pixpress reads. `detected` names what was seen.
    #[error("unsupported input: {detected}")]
    Unsupported { detected: String },

    /// The image is recognised but corrupt or truncated.
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),

    /// Width × height × frames from the header exceeds the configured pixel limit.
    #[error(
        "the image has {pixels} pixels ({width}x{height}, {frames} frame(s)); the limit is {limit}"
    )]
    TooManyPixels {
        width: u64,
        height: u64,
        frames: u64,
        pixels: u64,
        limit: u64,
    },

    /// Decoding would need more memory than a single image may take.
    #[error("the image needs more memory to decode than allowed: {0}")]
    LimitExceeded(String),

    /// An option cannot be honoured for this image (e.g. a field out of range).
    #[error("{field}: {message}")]
    InvalidOption { field: String, message: String },

    /// An option is valid but the feature behind it is not built yet.
    #[error("{0} is not supported yet")]
    NotSupported(String),

    /// An encoder failed on pixels it was given: a bug on our side, not the client's.
    #[error("encoding failed: {0}")]
    Encode(String),

    #[error("lossless check failed: {0}")]
    LosslessCheckFailed(String),

    /// `min_ssimulacra2` (with `max_bytes`, if given) cannot hold: `smallest_bytes` is the
    /// smallest output at the floor, or, when `reached_floor` is false, the best the format
    /// reaches (at `quality`, scoring `ssimulacra2`).
    #[error(
        "{}: {smallest_bytes} bytes at {} quality {quality} (SSIMULACRA2 {ssimulacra2})",
        budget_reason(.reached_floor),
        .format.name()
    )]
    BudgetUnreachable {
        format: crate::format::ImageFormat,
        max_bytes: Option<u64>,
        min_ssimulacra2: f64,
        reached_floor: bool,
        smallest_bytes: u64,
        quality: u8,
        ssimulacra2: f64,
    },
}

fn budget_reason(reached_floor: &bool) -> &'static str {
    if *reached_floor {
        "the smallest output that keeps the score floor is over max_bytes"
    } else {
        "no quality reaches the score floor; the best is"
    }
}

impl CoreError {
    pub fn corrupt(e: impl std::fmt::Display) -> Self {
        CoreError::Corrupt(e.to_string())
    }
}
