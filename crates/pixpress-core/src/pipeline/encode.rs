//! Step 5: pixels → bytes, by the variant the pixels come in: a still image ([`still`]: format,
//! `auto`, flattening, fixed or searched quality), an animation ([`animated`]), or the input
//! itself for the lossless shortcut ([`recode`]). Every variant gives one [`Encoded`]. Codec
//! details live in [`crate::codec`]; this module only picks the variant.

mod animated;
mod encoded;
mod recode;
mod still;

pub use encoded::{round_score, Encoded, FALLBACK_QUALITY};
// What a dry run knows of this step without running it.
pub(crate) use animated::candidates as animated_candidates;
pub(crate) use recode::{known_warnings as recode_warnings, rotation_warnings};
pub(crate) use still::{auto_candidates, has_visible_alpha};

use super::job::Job;
use super::plan::Plan;
use super::transform::Pixels;
use crate::error::CoreError;

/// The step: encodes one output's pixels.
pub fn run(job: &Job<'_>, plan: &Plan, pixels: &Pixels<'_>) -> Result<Encoded, CoreError> {
    match pixels {
        Pixels::Untouched => recode::run(job.input, job.probe, job.request, job.limits),
        Pixels::Still { image, carried } => still::encode(image, plan.target, job.request, carried),
        Pixels::Frames { frames, loops } => {
            animated::encode(frames, *loops, job.probe.default_output, job.request)
        }
    }
}
