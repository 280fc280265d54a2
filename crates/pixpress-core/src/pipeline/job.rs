//! The job the steps run on: one input, what its header said, what the caller asked for and
//! which outputs to make. This module owns those names; what each step makes is handed to the
//! next by the pipeline's `run`, not stored here.

use super::plan::geometry::ResizeSpec;
use super::probe::Probe;
use super::request::Request;
use crate::limits::Limits;

/// One job: the input, what the header said, what the caller asked for, and which outputs.
/// The steps read it; what each step makes is handed to the next by the pipeline's `run`.
pub struct Job<'a> {
    pub input: &'a [u8],
    /// From `inspect`: format, stored size, frames, orientation.
    pub probe: &'a Probe,
    pub request: &'a Request,
    pub limits: &'a Limits,
    pub sizes: Sizes<'a>,
}

/// Which outputs a job makes.
#[derive(Clone, Copy, Debug)]
pub enum Sizes<'a> {
    /// `optimize`: one output at the source size, which the lossless shortcut may serve and
    /// the original competes with (SPEC §5).
    Original,
    /// `optimize_resized`: one newly encoded output per spec, in order (none: one output at
    /// the source size).
    Resized(&'a [ResizeSpec]),
}
