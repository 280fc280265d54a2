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
pub use warning::Warning;

// The crate's public face: everything the server, the binary, the tests, the fuzz targets and
// the benchmarks use is named here, so the modules behind it can move without breaking them.
pub use pipeline::color::{parse_color, Rgba};
pub use pipeline::encode::decode_any;
pub use pipeline::plan::{Gravity, ResizeSpec, Strategy, MAX_DIMENSION};
pub use pipeline::probe::Probe;
pub use pipeline::quality::scoring_memory_bytes;
pub use pipeline::score::Reference;
pub use pipeline::{inspect, optimize, optimize_resized, Metadata, Output, OutputFormat, Request};
