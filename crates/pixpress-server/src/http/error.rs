//! The one place where failures become HTTP: the only file that names a status code. Every
//! machine-readable error code users can script against is a variant of [`ErrorCode`]; every
//! layer's typed error (options, upload, service — and through it accounts, fetch, storage,
//! the gate and the core) maps to an [`ApiError`] through one `From` impl each, and an
//! [`ApiError`] answers as `{"error": {"code", "message", "request_id", "details"?}}`, or, for a
//! request in Kraken's dialect, as Kraken's `{"success": false, "message", …}` with the same
//! status.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pixpress_core::CoreError;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::accounts::ratelimit::Decision;
use crate::fetch::client::FetchError;
use crate::http::options::fields::OptionsError;
use crate::http::rate_headers::rate_headers;
use crate::http::request_id;
use crate::http::upload::UploadError;
use crate::service::admission::AdmissionError;
use crate::service::ServiceError;
use crate::storage::export::ExportError;

/// Declares [`ErrorCode`] from one list: the variant, the wire code and what it means. The
/// answers, the OpenAPI document and its tests all read this list, so they cannot disagree.
macro_rules! error_codes {
    ($($variant:ident => $code:literal: $doc:literal,)*) => {
        /// Every machine-readable error code the API answers with (`error.code`).
        /// The wire names are the variants in snake_case (a unit test holds them to the list).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the list.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// What the code means and with which status it comes.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $doc,)*
                }
            }
        }
    };
}

error_codes! {
    InvalidJson => "invalid_json": "400: the body or the `data` part is not a JSON object of options (also the status of an unreadable body).",
    InvalidMultipart => "invalid_multipart": "400: the upload is not a well-formed multipart/form-data body, or repeats a part.",
    MissingField => "missing_field": "400: a required option or part is absent (`details.field` names it).",
    InvalidField => "invalid_field": "400: an option of the wrong type or value (`details.field` names it).",
    NotSupportedYet => "not_supported_yet": "400: a valid option this server does not carry out yet.",
    InvalidUrl => "invalid_url": "400: `url` is not an absolute http(s) URL.",
    UrlNotAllowed => "url_not_allowed": "400: `url` resolves to an address the server does not fetch from (loopback, private, metadata, …).",
    MissingApiKey => "missing_api_key": "401: no key in `Authorization: Bearer`, `?api_key=` or the options.",
    InvalidApiKey => "invalid_api_key": "401: the key is not known.",
    RevokedApiKey => "revoked_api_key": "401: the key was revoked.",
    InvalidMetricsToken => "invalid_metrics_token": "401: `GET /metrics` without the server's `--metrics-token` as `Authorization: Bearer`.",
    NotFound => "not_found": "404: no such endpoint, or no such (or expired) hosted result.",
    InputTooLarge => "input_too_large": "413: the image (or the body) is over the byte limit.",
    TooManyPixels => "too_many_pixels": "413: the image has more pixels (counting frames) than allowed, or its decoder would need more memory than a single image may take.",
    UnsupportedMediaType => "unsupported_media_type": "415: not an image in an accepted format (the message names what was detected).",
    CorruptImage => "corrupt_image": "422: the image is corrupt or truncated.",
    BudgetUnreachable => "budget_unreachable": "422: `min_ssimulacra2` cannot be kept within `max_bytes` (or cannot be reached at all); `details` give the smallest size reached at the floor, with its format, quality and score.",
    FetchFailed => "fetch_failed": "422: the URL answered non-2xx, redirected too often, or could not be reached.",
    InternalError => "internal_error": "500: a bug or an environment failure; quote the request id.",
    Overloaded => "overloaded": "503: this instance is busy or cannot reach its database or store; retry after `Retry-After`.",
    RateLimited => "rate_limited": "429: the key's requests per second are used up; retry after `Retry-After`.",
    QuotaExceeded => "quota_exceeded": "429: the key's monthly byte quota is used up, or this input does not fit in what is left (hard-quota plans; bytes held by requests in progress count until they finish).",
    RateLimiterUnavailable => "rate_limiter_unavailable": "503: Redis, which holds the rate limits, cannot be reached and the server runs with `--redis-down fail-closed`; retry after `Retry-After`.",
    ExportFailed => "export_failed": "502: a `*_store` export was refused by the store; `details.hosted` is the answer the request would have had.",
    RequestTimeout => "request_timeout": "408: the request body arrived slower than the server's minimum rate (`--body-min-rate` after `--body-rate-grace`); the connection is closed.",
}

/// Which API's shape a request speaks, so its errors answer in the same shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    #[default]
    Native,
    /// Kraken.io's: the request carries `auth: {api_key, api_secret}`.
    Kraken,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    details: Option<serde_json::Value>,
    /// Extra response headers (rate-limit state); boxed to keep the error small.
    headers: Option<Box<HeaderMap>>,
    dialect: Dialect,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            headers: None,
            dialect: Dialect::Native,
        }
    }

    /// The same error, answered in `dialect`'s body shape.
    pub fn in_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds the `RateLimit-*` (and, when refused, `Retry-After`) headers of `decision`.
    pub fn with_rate_headers(mut self, decision: &Decision) -> Self {
        rate_headers(decision, self.headers.get_or_insert_with(Default::default));
        self
    }

    fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 naming the field that was wrong.
    fn field(code: ErrorCode, field: &str, message: impl Into<String>) -> Self {
        Self::bad_request(code, message).with_details(json!({ "field": field }))
    }

    fn unauthorized(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// 401 for a `GET /metrics` without the `--metrics-token` the server was started with.
    pub fn metrics_token() -> Self {
        Self::unauthorized(
            ErrorCode::InvalidMetricsToken,
            "GET /metrics needs the server's metrics token as Authorization: Bearer",
        )
    }

    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InputTooLarge,
            format!("the image is larger than the limit of {limit} bytes"),
        )
        .with_details(json!({ "limit_bytes": limit }))
    }

    /// 408 for a body slower than the minimum rate; the connection closes after it, as the
    /// rest of the body is not going to be read.
    pub fn body_too_slow(bytes_per_second: u64, grace: std::time::Duration) -> Self {
        let mut error = Self::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            format!(
                "the request body arrived slower than {bytes_per_second} bytes per second \
                 (averaged from its start, once {} s had passed)",
                grace.as_secs_f64()
            ),
        )
        .with_details(json!({
            "min_bytes_per_second": bytes_per_second,
            "grace_seconds": grace.as_secs_f64(),
        }));
        error
            .headers
            .get_or_insert_with(Default::default)
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        error
    }

    /// 503: this instance cannot serve right now (a `Retry-After` is added on the way out).
    fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Overloaded,
            message,
        )
    }

    /// A bug or an environment failure: the detail goes to the log (with the request id), the
    /// client gets the request id to quote.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current(), "{context}: {error}");
        Self::internal_logged()
    }

    /// [`ApiError::internal`] for an error whose own message already names its context.
    fn internal_from(error: &impl std::fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current(), "{error}");
        Self::internal_logged()
    }

    fn internal_logged() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "an internal error occurred; quote the request_id when reporting it",
        )
    }
}

/// The body of every error answer: `{"error": {"code", "message", "request_id", "details"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
    /// The id of this request (also the `x-request-id` header), to quote in a report.
    pub request_id: String,
    /// Machine-readable particulars: the `field` of a 400, the limits of a 413 or 429, the
    /// store's words and the `hosted` answer of a 502.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// The body in the dialect's shape.
    fn body(&self) -> serde_json::Value {
        match self.dialect {
            Dialect::Native => serde_json::to_value(ErrorBody {
                error: ErrorDetail {
                    code: self.code,
                    message: self.message.clone(),
                    request_id: request_id::current(),
                    details: self.details.clone(),
                },
            })
            .unwrap_or_default(),
            // Kraken's clients read `success` and `message`; the code and request id are ours.
            Dialect::Kraken => json!({
                "success": false,
                "message": self.message.clone(),
                "code": self.code,
                "request_id": request_id::current(),
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        finish(self.status, self.headers, body)
    }
}

/// An error answer with `body`: its status, its extra headers, and `Retry-After` on a 503,
/// whatever the dialect's body shape.
fn finish(
    status: StatusCode,
    headers: Option<Box<HeaderMap>>,
    body: serde_json::Value,
) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Some(headers) = headers {
        response.headers_mut().extend(*headers);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    response
}

impl ApiError {
    /// The same error in the Tinify dialect's shape: `{"error": "<Tinify kind>", "message"}`,
    /// with the same status and headers.
    pub fn into_tinify_response(self) -> Response {
        let body = json!({ "error": tinify_kind(self.code), "message": self.message });
        finish(self.status, self.headers, body)
    }
}

/// Tinify's error kinds (what its clients show next to the status) for the native codes.
fn tinify_kind(native: ErrorCode) -> &'static str {
    match native {
        ErrorCode::MissingApiKey | ErrorCode::InvalidApiKey | ErrorCode::RevokedApiKey => {
            "Unauthorized"
        }
        ErrorCode::RateLimited | ErrorCode::QuotaExceeded => "TooManyRequests",
        ErrorCode::UnsupportedMediaType => "Unsupported media type",
        ErrorCode::CorruptImage => "Decode error",
        ErrorCode::MissingField => "InputMissing",
        ErrorCode::InputTooLarge | ErrorCode::TooManyPixels => "InputTooLarge",
        ErrorCode::InvalidUrl | ErrorCode::UrlNotAllowed | ErrorCode::FetchFailed => {
            "Source not found"
        }
        ErrorCode::NotFound => "Not found",
        ErrorCode::NotSupportedYet => "NotSupportedYet",
        ErrorCode::ExportFailed => "Store failed",
        ErrorCode::Overloaded | ErrorCode::RateLimiterUnavailable => "ServiceUnavailable",
        ErrorCode::InternalError => "InternalServerError",
        _ => "BadRequest",
    }
}

/// `201 Created` with a `Location` and a JSON body (the Tinify dialect's `/shrink`).
pub fn created(location: HeaderValue, body: serde_json::Value) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}

/// `200 OK` with these bytes as the body (the caller sets the content type).
pub fn ok_bytes(bytes: bytes::Bytes) -> Response {
    (StatusCode::OK, bytes).into_response()
}

/// `200 OK` with no body.
pub fn ok_empty() -> Response {
    StatusCode::OK.into_response()
}

/// `304 Not Modified` for a hosted image the client already has. Not an error, but a status,
/// and statuses are picked in this file only.
pub fn not_modified(etag: HeaderValue) -> Response {
    (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response()
}

/// `307 Temporary Redirect` to a presigned store URL, never cached: the URL expires.
pub fn temporary_redirect(location: HeaderValue) -> Response {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::MissingKey => Self::unauthorized(ErrorCode::MissingApiKey, message),
            ServiceError::UnknownKey => Self::unauthorized(ErrorCode::InvalidApiKey, message),
            ServiceError::RevokedKey => Self::unauthorized(ErrorCode::RevokedApiKey, message),
            ServiceError::RateLimited { decision, .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                message,
            )
            .with_rate_headers(&decision),
            ServiceError::QuotaExceeded {
                quota,
                used,
                reserved,
                decision,
                ..
            } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::QuotaExceeded,
                message,
            )
            .with_details(json!({
                "quota_bytes": quota, "used_bytes": used, "reserved_bytes": reserved
            }))
            .with_rate_headers(&decision),
            ServiceError::RateLimiterUnavailable { decision } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RateLimiterUnavailable,
                message,
            )
            .with_rate_headers(&decision),
            ServiceError::Fetch(e) => e.into(),
            ServiceError::CallbackUrl(e) => Self::callback_url(e, message),
            ServiceError::Core(e) => e.into(),
            ServiceError::Admission(e) => e.into(),
            ServiceError::Export { error, hosted } => {
                let mut api = Self::from(error);
                if let Some(details) = api.details.as_mut() {
                    // The answer types serialise infallibly (no maps, no non-finite floats
                    // reach them), so a failure here has nothing better to say than null.
                    details["hosted"] = serde_json::to_value(&*hosted).unwrap_or_default();
                }
                api
            }
            ServiceError::NoSuchResult(_) => Self::not_found(message),
            ServiceError::DatabaseUnreachable(_) | ServiceError::StorageUnreachable(_) => {
                Self::unavailable(message)
            }
            ServiceError::KeyLookup(_)
            | ServiceError::UsageLookup(_)
            | ServiceError::Metering(_)
            | ServiceError::Hosting(_)
            | ServiceError::ResultLookup(_)
            | ServiceError::ResultRead(_)
            | ServiceError::Presigning(_)
            | ServiceError::Worker(_)
            | ServiceError::CallbackRecord(_)
            | ServiceError::CallbackQueue(_)
            | ServiceError::Parking(_)
            | ServiceError::NoOutput => Self::internal_from(&message),
        }
    }
}

impl ApiError {
    /// A refused `callback_url`: the 400 of a refused image URL, naming `callback_url`.
    fn callback_url(e: FetchError, message: String) -> Self {
        match e {
            FetchError::Refused(_) => {
                Self::field(ErrorCode::UrlNotAllowed, "callback_url", message)
            }
            _ => Self::field(ErrorCode::InvalidUrl, "callback_url", message),
        }
    }

    /// The status and the JSON body this error answers with, as a callback delivers them.
    pub fn status_and_body(self) -> (u16, serde_json::Value) {
        let status = self.status.as_u16();
        (status, self.body())
    }
}

/// The status of a successful answer, as a callback reports it.
pub const OK: u16 = StatusCode::OK.as_u16();

/// `202 Accepted` with a JSON body: a callback job was queued.
pub fn accepted(body: impl Serialize) -> Response {
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

impl From<AdmissionError> for ApiError {
    fn from(e: AdmissionError) -> Self {
        let message = e.to_string();
        match e {
            AdmissionError::Overloaded => Self::unavailable(message),
        }
    }
}

impl From<OptionsError> for ApiError {
    fn from(e: OptionsError) -> Self {
        match e {
            OptionsError::Json(message) => Self::bad_request(ErrorCode::InvalidJson, message),
            OptionsError::Missing(f) => Self::field(ErrorCode::MissingField, &f.field, f.message),
            OptionsError::Invalid(f) => Self::field(ErrorCode::InvalidField, &f.field, f.message),
            OptionsError::Unsupported(f) => {
                Self::field(ErrorCode::NotSupportedYet, &f.field, f.message)
            }
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        let message = e.to_string();
        match e {
            UploadError::NotMultipart(_) => Self::bad_request(ErrorCode::InvalidMultipart, message),
            UploadError::Malformed(e) => Self::from(e),
            UploadError::Duplicate(part) => Self::field(ErrorCode::InvalidMultipart, part, message),
            UploadError::ImageTooLarge(limit) => Self::too_large(limit),
            UploadError::DataTooLarge => Self::field(ErrorCode::InvalidField, "data", message),
            UploadError::DataNotUtf8 => Self::bad_request(ErrorCode::InvalidJson, message),
            UploadError::MissingImage => Self::field(ErrorCode::MissingField, "image", message),
        }
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InputTooLarge,
                e.body_text(),
            );
        }
        Self::bad_request(
            ErrorCode::InvalidMultipart,
            format!("malformed multipart body: {}", e.body_text()),
        )
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(e: MultipartRejection) -> Self {
        UploadError::NotMultipart(e).into()
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        Self::new(
            e.status(),
            ErrorCode::InvalidJson,
            format!("could not read the request body: {}", e.body_text()),
        )
    }
}

/// The only query parameter read is `api_key`; a query that does not parse (a repeated
/// `api_key`, bad percent-encoding) is a mistake in that field.
impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::field(
            ErrorCode::InvalidField,
            "api_key",
            format!("the query string could not be read: {}", e.body_text()),
        )
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Unsupported { detected } => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                format!("not an accepted image: detected {detected}; send JPEG, PNG, GIF or WebP"),
            ),
            CoreError::Corrupt(msg) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::CorruptImage,
                format!("the image is corrupt or truncated: {msg}"),
            ),
            CoreError::TooManyPixels { width, height, frames, pixels, limit } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooManyPixels,
                format!(
                    "the image has {pixels} pixels ({width}x{height}, {frames} frame(s)); the limit is {limit}"
                ),
            )
            .with_details(json!({
                "width": width, "height": height, "frames": frames, "limit_pixels": limit
            })),
            CoreError::LimitExceeded(msg) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooManyPixels,
                format!("the image needs more memory to decode than allowed: {msg}"),
            ),
            CoreError::InvalidOption { field, message } => {
                Self::field(ErrorCode::InvalidField, &field, format!("{field}: {message}"))
            }
            CoreError::NotSupported(what) => Self::bad_request(
                ErrorCode::NotSupportedYet,
                format!("{what} is not supported yet"),
            ),
            e @ CoreError::BudgetUnreachable {
                format,
                max_bytes,
                min_ssimulacra2,
                reached_floor,
                smallest_bytes,
                quality,
                ssimulacra2,
            } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::BudgetUnreachable,
                budget_message(&e, max_bytes, min_ssimulacra2),
            )
            .with_details(json!({
                "max_bytes": max_bytes,
                "min_ssimulacra2": min_ssimulacra2,
                "reached_floor": reached_floor,
                "smallest_bytes": smallest_bytes,
                "format": format.name(),
                "quality": quality,
                "ssimulacra2": ssimulacra2,
            })),
            e @ CoreError::Encode(_) => Self::internal("encoder failed", e),
            // The pipeline keeps the original when a lossless check fails; this is not reached.
            e @ CoreError::LosslessCheckFailed(_) => Self::internal("lossless check failed", e),
        }
    }
}

/// "max_bytes 5000 with min_ssimulacra2 70 cannot both hold: …".
fn budget_message(e: &CoreError, max_bytes: Option<u64>, floor: f64) -> String {
    match max_bytes {
        Some(max) => format!("max_bytes {max} with min_ssimulacra2 {floor} cannot both hold: {e}"),
        None => format!("min_ssimulacra2 {floor} cannot be kept: {e}"),
    }
}

impl From<FetchError> for ApiError {
    fn from(e: FetchError) -> Self {
        let message = e.to_string();
        match e {
            FetchError::InvalidUrl(_) => Self::field(ErrorCode::InvalidUrl, "url", message),
            FetchError::Refused(_) => Self::field(ErrorCode::UrlNotAllowed, "url", message),
            FetchError::TooLarge { limit } => Self::too_large(limit),
            FetchError::Status(status) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::FetchFailed,
                message,
            )
            .with_details(json!({ "upstream_status": status })),
            FetchError::TooManyRedirects | FetchError::Unreachable(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::FetchFailed,
                message,
            ),
        }
    }
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        let message = e.to_string();
        let ExportError {
            provider,
            bucket,
            path,
            message: store_message,
        } = e;
        // Secrets were redacted from the store's message where the error was made.
        tracing::warn!(request_id = %request_id::current(), provider, bucket = %bucket, "export failed: {store_message}");
        Self::new(StatusCode::BAD_GATEWAY, ErrorCode::ExportFailed, message).with_details(json!({
            "provider": provider,
            "bucket": bucket,
            "path": path,
            "store_message": store_message,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;

    use super::*;
    use crate::http::options::fields::FieldError;
    use crate::service::answer::{Answer, MultiResponse};

    /// The response to `error` as a request with id `req-1` would get it: status, headers, body.
    async fn answer(error: impl Into<ApiError>) -> (StatusCode, HeaderMap, Value) {
        let error = error.into();
        let response = request_id::scope("req-1".into(), async { error.into_response() }).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    fn refused_decision() -> Decision {
        Decision {
            allowed: false,
            limit: 1,
            remaining: 0,
            retry_after: Duration::from_millis(300),
            reset: Duration::from_millis(1300),
        }
    }

    #[tokio::test]
    async fn the_body_has_code_message_request_id_and_details() {
        let (status, headers, body) = answer(OptionsError::Invalid(FieldError::new(
            "quality",
            "Expected an integer",
        )))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let error = &body["error"];
        assert_eq!(error["code"], ErrorCode::InvalidField.as_str());
        assert_eq!(error["message"], "Expected an integer");
        assert_eq!(error["request_id"], "req-1");
        assert_eq!(error["details"]["field"], "quality");
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
        let (_, _, body) = answer(ServiceError::MissingKey).await;
        assert!(body["error"].get("details").is_none(), "{body}");
    }

    #[tokio::test]
    async fn the_kraken_dialect_keeps_the_status_and_answers_success_false() {
        let error = ApiError::from(ServiceError::UnknownKey).in_dialect(Dialect::Kraken);
        let (status, _, body) = answer(error).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["success"], false);
        assert_eq!(body["code"], "invalid_api_key");
        assert_eq!(body["request_id"], "req-1");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body.get("error").is_none(), "{body}");
    }

    #[tokio::test]
    async fn each_error_kind_has_its_status_and_code() {
        let cases: Vec<(ApiError, StatusCode, ErrorCode)> = vec![
            (
                ServiceError::MissingKey.into(),
                StatusCode::UNAUTHORIZED,
                ErrorCode::MissingApiKey,
            ),
            (
                ServiceError::UnknownKey.into(),
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidApiKey,
            ),
            (
                ServiceError::RevokedKey.into(),
                StatusCode::UNAUTHORIZED,
                ErrorCode::RevokedApiKey,
            ),
            (
                CoreError::Unsupported {
                    detected: "text".into(),
                }
                .into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            (
                CoreError::Corrupt("truncated".into()).into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::CorruptImage,
            ),
            (
                CoreError::LimitExceeded("big".into()).into(),
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooManyPixels,
            ),
            (
                CoreError::NotSupported("avif".into()).into(),
                StatusCode::BAD_REQUEST,
                ErrorCode::NotSupportedYet,
            ),
            (
                CoreError::Encode("bug".into()).into(),
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
            ),
            (
                FetchError::Refused("127.0.0.1".into()).into(),
                StatusCode::BAD_REQUEST,
                ErrorCode::UrlNotAllowed,
            ),
            (
                FetchError::InvalidUrl("x".into()).into(),
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidUrl,
            ),
            (
                FetchError::Status(404).into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::FetchFailed,
            ),
            (
                FetchError::TooLarge { limit: 10 }.into(),
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InputTooLarge,
            ),
            (
                AdmissionError::Overloaded.into(),
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Overloaded,
            ),
            (
                ServiceError::NoSuchResult("x.png".into()).into(),
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
            ),
            (
                ServiceError::NoOutput.into(),
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
            ),
            (
                OptionsError::Json("not JSON".into()).into(),
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidJson,
            ),
            (
                OptionsError::Missing(FieldError::new("url", "url is required")).into(),
                StatusCode::BAD_REQUEST,
                ErrorCode::MissingField,
            ),
            (
                OptionsError::Unsupported(FieldError::new("dry_run", "later")).into(),
                StatusCode::BAD_REQUEST,
                ErrorCode::NotSupportedYet,
            ),
            (
                UploadError::Duplicate("image").into(),
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidMultipart,
            ),
            (
                UploadError::MissingImage.into(),
                StatusCode::BAD_REQUEST,
                ErrorCode::MissingField,
            ),
            (
                UploadError::DataNotUtf8.into(),
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidJson,
            ),
            (
                ApiError::too_large(5),
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InputTooLarge,
            ),
        ];
        for (error, status, expected_code) in cases {
            let (got_status, _, body) = answer(error).await;
            assert_eq!(
                (got_status, body["error"]["code"].as_str()),
                (status, Some(expected_code.as_str())),
                "{body}"
            );
            assert_eq!(body["error"]["request_id"], "req-1");
        }
    }

    #[tokio::test]
    async fn limits_carry_their_headers_and_details() {
        let (status, headers, body) = answer(ServiceError::RateLimited {
            plan: "free".into(),
            per_second: 1,
            decision: refused_decision(),
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["code"], ErrorCode::RateLimited.as_str());
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["ratelimit-limit"], "1");
        assert_eq!(headers["ratelimit-remaining"], "0");
        assert_eq!(headers["ratelimit-reset"], "2");

        let (status, headers, body) = answer(ServiceError::QuotaExceeded {
            plan: "free".into(),
            quota: 100,
            used: 90,
            reserved: 5,
            decision: refused_decision(),
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["code"], ErrorCode::QuotaExceeded.as_str());
        assert_eq!(body["error"]["details"]["quota_bytes"], 100);
        assert_eq!(body["error"]["details"]["used_bytes"], 90);
        assert_eq!(body["error"]["details"]["reserved_bytes"], 5);
        assert!(headers.contains_key("ratelimit-limit"));

        let (status, headers, body) = answer(ServiceError::RateLimiterUnavailable {
            decision: Decision::unavailable(3),
        })
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "rate_limiter_unavailable");
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["ratelimit-limit"], "3");
        assert_eq!(headers["ratelimit-remaining"], "0");

        let (status, headers, _) = answer(AdmissionError::Overloaded).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers["retry-after"], "1");
    }

    #[tokio::test]
    async fn an_export_failure_is_a_bad_gateway_with_the_hosted_answer() {
        let hosted = Answer::Many(MultiResponse {
            original_size: 10,
            original_width: 2,
            original_height: 2,
            results: Vec::new(),
            warnings: Vec::new(),
        });
        let (status, _, body) = answer(ServiceError::Export {
            error: ExportError {
                provider: "s3",
                bucket: "b".into(),
                path: "p.png".into(),
                message: "NoSuchBucket: gone".into(),
            },
            hosted: Box::new(hosted),
        })
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        let error = &body["error"];
        assert_eq!(error["code"], ErrorCode::ExportFailed.as_str());
        assert_eq!(
            error["message"],
            "s3 refused the write to b/p.png: NoSuchBucket: gone"
        );
        assert_eq!(error["details"]["provider"], "s3");
        assert_eq!(error["details"]["store_message"], "NoSuchBucket: gone");
        assert_eq!(error["details"]["hosted"]["original_size"], 10);
    }
}
