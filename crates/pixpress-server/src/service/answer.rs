//! The optimise answer (SPEC §6): one [`OptimizeResponse`] per output, a [`MultiResponse`] for
//! a `resize` array, or for `dry_run: true` a [`DryRunAnswer`] in the same two shapes. The
//! service fills these; the edge serialises them as they are.

use pixpress_core::{ImageFormat, Output, PlannedOutput, Rect, Warning};
use serde::Serialize;
use utoipa::ToSchema;

use crate::storage::export::StoredEntry;

/// The response body of SPEC §6.
#[derive(Debug, Serialize, ToSchema)]
pub struct OptimizeResponse {
    /// The resize entry's `id`, in `results` of a resize array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub original_size: u64,
    pub original_width: u32,
    pub original_height: u32,
    pub final_size: u64,
    pub final_width: u32,
    pub final_height: u32,
    pub bytes_saved: u64,
    /// The hosted result, until `expires_at`.
    pub url: String,
    #[schema(value_type = String, example = "jpeg")]
    pub format: &'static str,
    /// The lossy quality used, when a lossy encoder made the output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// SSIMULACRA2 of the output against its source, when a lossy output was scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssimulacra2: Option<f64>,
    /// RFC 3339, UTC.
    pub expires_at: String,
    #[schema(value_type = Vec<WarningSchema>)]
    pub warnings: Vec<Warning>,
    /// One entry per `*_store` write.
    pub stored: Vec<StoredEntry>,
    /// The hosted result's `id.ext`, for dialects that answer with the bytes themselves.
    #[serde(skip)]
    pub hosted_file: String,
}

/// The response to a `resize` array: one [`OptimizeResponse`] per entry, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct MultiResponse {
    pub original_size: u64,
    pub original_width: u32,
    pub original_height: u32,
    pub results: Vec<OptimizeResponse>,
    #[schema(value_type = Vec<WarningSchema>)]
    pub warnings: Vec<Warning>,
}

/// A warning in an answer: the core's [`Warning`], described for the OpenAPI document.
#[derive(ToSchema)]
#[schema(as = Warning)]
#[allow(dead_code)] // only its schema is used; answers serialise the core's Warning
pub struct WarningSchema {
    /// A stable code, e.g. `unknown_field`, `original_returned_not_smaller`.
    code: String,
    message: String,
}

/// One output ([`OptimizeResponse`]), or one per entry of a `resize` array ([`MultiResponse`]);
/// for a dry run, what they would be ([`DryRunAnswer`]).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Answer {
    One(OptimizeResponse),
    Many(MultiResponse),
    DryRun(DryRunAnswer),
}

impl Answer {
    /// Each output's response, in request order (none for a dry run).
    pub fn responses_mut(&mut self) -> Vec<&mut OptimizeResponse> {
        match self {
            Answer::One(one) => vec![one],
            Answer::Many(many) => many.results.iter_mut().collect(),
            Answer::DryRun(_) => Vec::new(),
        }
    }
}

/// The answer to `dry_run: true`: what the same request would make, without making it. The
/// source as the viewer sees it, then one planned output, or `results` for a `resize` array.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunAnswer {
    /// Always `true`: nothing was encoded, hosted, exported or metered.
    pub dry_run: bool,
    pub original_size: u64,
    /// After EXIF orientation.
    pub original_width: u32,
    pub original_height: u32,
    #[schema(value_type = String, example = "jpeg")]
    pub original_format: &'static str,
    pub original_frames: u64,
    /// The one output (no `resize`, or a `resize` object).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub output: Option<DryRunOutput>,
    /// One per entry of a `resize` array, in request order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<DryRunOutput>>,
    /// The options' own warnings, beside `results` (a single output carries them itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<WarningSchema>>)]
    pub warnings: Option<Vec<Warning>>,
}

/// One output as the request would make it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunOutput {
    /// The resize entry's `id`, in `results` of a resize array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub final_width: u32,
    pub final_height: u32,
    /// The part of the upright source the output shows, in source pixels.
    pub crop: PixelRect,
    /// Where that part, resampled, lands in the output (all of it but for `fill`'s padding).
    pub placed: PixelRect,
    /// The format it is written in; `null` when `auto` (or a list) picks the smallest of
    /// `candidates` after encoding.
    #[schema(value_type = Option<String>, example = "jpeg")]
    pub format: Option<&'static str>,
    #[schema(value_type = Vec<String>)]
    pub candidates: Vec<&'static str>,
    pub animated: bool,
    /// The never-larger rule applies: the input itself comes back if the output is not smaller.
    pub original_may_be_returned: bool,
    /// The warnings known before encoding; an encoder's own (e.g. `alpha_flattened`,
    /// `quality_target_not_reached`) are only known from the real request.
    #[schema(value_type = Vec<WarningSchema>)]
    pub warnings: Vec<Warning>,
}

/// A rectangle in pixels.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct PixelRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl From<Rect> for PixelRect {
    fn from(r: Rect) -> PixelRect {
        PixelRect {
            x: r.x,
            y: r.y,
            width: r.width,
            height: r.height,
        }
    }
}

impl DryRunOutput {
    /// The core's planned output, with the entry's id and the warnings of the options first.
    pub fn new(planned: PlannedOutput, id: Option<String>, mut warnings: Vec<Warning>) -> Self {
        warnings.extend(planned.warnings);
        DryRunOutput {
            id,
            final_width: planned.width,
            final_height: planned.height,
            crop: planned.crop.into(),
            placed: planned.placed.into(),
            format: planned.format.map(ImageFormat::name),
            candidates: planned
                .candidates
                .into_iter()
                .map(ImageFormat::name)
                .collect(),
            animated: planned.animated,
            original_may_be_returned: planned.original_may_be_returned,
            warnings,
        }
    }
}

pub fn build_response(
    original_size: u64,
    output: Output,
    url: String,
    expires_at_ms: i64,
    id: Option<String>,
    mut warnings: Vec<Warning>,
) -> OptimizeResponse {
    let final_size = output.bytes.len() as u64;
    warnings.extend(output.warnings);
    OptimizeResponse {
        id,
        original_size,
        original_width: output.original_width,
        original_height: output.original_height,
        final_size,
        final_width: output.width,
        final_height: output.height,
        bytes_saved: original_size.saturating_sub(final_size),
        url,
        format: output.format.name(),
        quality: output.quality,
        ssimulacra2: output.ssimulacra2,
        expires_at: rfc3339(expires_at_ms),
        warnings,
        stored: Vec::new(),
        hosted_file: String::new(),
    }
}

fn rfc3339(unix_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
