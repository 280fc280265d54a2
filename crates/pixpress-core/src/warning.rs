//! Warning codes: stable, machine-readable names for things pixpress did that the caller did not
//! literally ask for. Every code users can script against is listed here and nowhere else.

use serde::Serialize;

pub const ORIGINAL_RETURNED_NOT_SMALLER: &str = "original_returned_not_smaller";
pub const EXIF_ORIENTATION_KEPT_AS_TAG: &str = "exif_orientation_kept_as_tag";
pub const EXIF_ORIENTATION_APPLIED: &str = "exif_orientation_applied";
pub const LOSSY_NOT_AVAILABLE: &str = "lossy_not_available";
pub const LOSSLESS_NOT_AVAILABLE: &str = "lossless_not_available";
/// Only the first frame of an animation was used: the output format cannot animate, or the
/// input is an animated AVIF or JPEG XL, whose other frames pixpress does not decode.
pub const ANIMATION_FRAMES_DROPPED: &str = "animation_frames_dropped";
pub const UNKNOWN_FIELD: &str = "unknown_field";
pub const NOT_ENLARGED: &str = "not_enlarged";
pub const CROP_WINDOW_CLAMPED: &str = "crop_window_clamped";
pub const UNKNOWN_CROP_MODE: &str = "unknown_crop_mode";
pub const IGNORED_FIELD: &str = "ignored_field";
pub const ALPHA_FLATTENED: &str = "alpha_flattened";
pub const QUALITY_TARGET_NOT_REACHED: &str = "quality_target_not_reached";
pub const PALETTE_BELOW_TARGET: &str = "palette_below_target";
pub const METADATA_NOT_KEPT: &str = "metadata_not_kept";
pub const EDGE_TRIMMED_FOR_LOSSLESS_ROTATION: &str = "edge_trimmed_for_lossless_rotation";
/// A lossless output did not decode to the input's pixels, so the input was returned instead.
pub const LOSSLESS_CHECK_FAILED_ORIGINAL_KEPT: &str = "lossless_check_failed_original_kept";
/// A CMYK or YCCK JPEG without an ICC profile was converted to sRGB with an assumed profile.
pub const CMYK_PROFILE_ASSUMED: &str = "cmyk_profile_assumed";
/// `max_bytes` alone: even the codec's lowest quality does not fit, and that output was returned.
pub const MAX_BYTES_NOT_REACHED: &str = "max_bytes_not_reached";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub code: &'static str,
    pub message: String,
}

impl Warning {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Warning {
            code,
            message: message.into(),
        }
    }
}
