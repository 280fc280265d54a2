//! pixpress-core: the pure image pipeline.
//!
//! Bytes in, bytes out: probe the input (format, header dimensions, limits), plan the outputs,
//! decode, transform, encode, choose. This crate knows nothing about HTTP, API keys, databases,
//! object stores or async runtimes; the server crate maps its errors and warnings to the wire.
//!
//! Layers, each importing only those below it: the leaf modules (`error`, `format`, `limits`,
//! `warning`); `codec` (one file per output format behind one trait); `pipeline` (the steps).

pub mod error;
pub mod format;
pub mod limits;
pub mod warning;

mod codec;
mod pipeline;

pub use error::CoreError;
pub use format::{ImageFormat, InputFormat};
pub use limits::Limits;
pub use warning::Warning;

// The crate's public face: everything the server, the binary, the tests, the fuzz targets and
// the benchmarks use is named here, so the modules behind it can move without breaking them.
pub use codec::any::decode_any;
pub use pipeline::color::{parse_color, ColorError, Rgba};
pub use pipeline::memory::{largest_predicted_memory, predicted_decode_memory, predicted_memory};
pub use pipeline::plan::geometry::{
    plan_resize, Gravity, Rect, ResizeError, ResizePlan, ResizeSpec, ResizeWarning, Strategy,
    MAX_DIMENSION,
};
pub use pipeline::probe::Probe;
pub use pipeline::request::FormatSet;
pub use pipeline::score::Reference;
pub use pipeline::transform::apply_resize;
pub use pipeline::{
    dry_run, inspect, optimize, optimize_resized, DryRun, Metadata, Output, OutputFormat,
    PlannedOutput, Request, StepTimes,
};
