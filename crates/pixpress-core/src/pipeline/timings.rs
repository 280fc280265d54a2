//! How long the pixel steps of one output took, measured by [`super::run`] and handed back on
//! the [`super::Output`] so a caller can report them (the core itself records nothing).

use std::time::{Duration, Instant};

/// Wall time of the decode, transform and encode steps behind one output. An image is decoded
/// once for all its outputs, so only the first output of a job carries the decode time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepTimes {
    pub decode: Duration,
    pub transform: Duration,
    pub encode: Duration,
}

/// Runs `step` and adds its wall time to `total`.
pub fn timed<T>(total: &mut Duration, step: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = step();
    *total += start.elapsed();
    result
}
