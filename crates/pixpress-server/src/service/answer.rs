//! The optimise answer (SPEC §6): one [`OptimizeResponse`] per output, a [`MultiResponse`] for
//! a `resize` array. The service fills these; the edge serialises them as they are.

use pixpress_core::{Output, Warning};
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

/// One output ([`OptimizeResponse`]), or one per entry of a `resize` array ([`MultiResponse`]).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Answer {
    One(OptimizeResponse),
    Many(MultiResponse),
}

impl Answer {
    /// Each output's response, in request order.
    pub fn responses_mut(&mut self) -> Vec<&mut OptimizeResponse> {
        match self {
            Answer::One(one) => vec![one],
            Answer::Many(many) => many.results.iter_mut().collect(),
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
