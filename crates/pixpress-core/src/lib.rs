//! pixpress-core: the pure image pipeline.
//!
//! Bytes in, bytes out: sniff and probe the input (format, header dimensions, limits), decode,
//! plan and transform, encode. This crate knows nothing about HTTP, API keys, databases, object
//! stores or async runtimes; the server crate maps its errors and warnings to the wire.

pub mod error;
pub mod format;
pub mod limits;
pub mod pipeline;
pub mod warning;

pub use error::CoreError;
pub use format::ImageFormat;
pub use limits::Limits;
pub use pipeline::{optimize, Output, Request};
pub use warning::Warning;
