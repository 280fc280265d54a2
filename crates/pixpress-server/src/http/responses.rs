//! The response sets the OpenAPI paths share (`#[utoipa::path(responses(...))]`): which status
//! comes with which body, for the optimise calls and the usage report. Declarations only; the
//! answers themselves are built by the service and rendered by `error`.

use utoipa::IntoResponses;

use crate::accounts::usage::UsageReport;
use crate::http::callback::Queued;
use crate::http::error::ErrorBody;
use crate::service::answer::Answer;

/// The answers of `POST /v1/`, `/v1/url` and `/v1/upload`.
#[derive(IntoResponses)]
#[allow(dead_code)] // only the responses' schemas are used
pub enum OptimiseResponses {
    /// The optimised image is hosted at `url`; `RateLimit-Limit`, `RateLimit-Remaining` and
    /// `RateLimit-Reset` headers come with it.
    #[response(status = 200)]
    Ok(#[to_schema] Answer),
    /// With `callback_url`: the job is queued; its answer is POSTed to the callback URL.
    #[response(status = 202)]
    Accepted(#[to_schema] Queued),
    /// `invalid_json`, `invalid_multipart`, `missing_field`, `invalid_field`,
    /// `not_supported_yet`, `invalid_url`, `url_not_allowed`.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `missing_api_key`, `invalid_api_key`, `revoked_api_key`.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// `input_too_large`, `too_many_pixels` (also `invalid_json` for a body over its limit).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `unsupported_media_type`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// `corrupt_image`, `fetch_failed`, `budget_unreachable`.
    #[response(status = 422)]
    Unprocessable(ErrorBody),
    /// `rate_limited` (with `Retry-After`), `quota_exceeded`.
    #[response(status = 429)]
    TooManyRequests(ErrorBody),
    /// `internal_error`: quote the request id.
    #[response(status = 500)]
    Internal(ErrorBody),
    /// `export_failed`: a `*_store` refused the write; `details.hosted` is the answer.
    #[response(status = 502)]
    BadGateway(ErrorBody),
    /// `overloaded`, `rate_limiter_unavailable` (with `Retry-After`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The answers of `GET /v1/usage`.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum UsageResponses {
    /// This month's usage of the key.
    #[response(status = 200)]
    Ok(#[to_schema] UsageReport),
    /// `invalid_field`: the query string could not be read.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `missing_api_key`, `invalid_api_key`, `revoked_api_key`.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// `internal_error`.
    #[response(status = 500)]
    Internal(ErrorBody),
    /// `overloaded`: the database cannot be reached.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}
