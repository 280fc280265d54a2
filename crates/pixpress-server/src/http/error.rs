//! The one place where failures become HTTP: the only file that names a status code. Every
//! machine-readable error code users can script against is a constant in [`code`]; every
//! layer's typed error (options, upload, service — and through it accounts, fetch, storage,
//! the gate and the core) maps to an [`ApiError`] through one `From` impl each, and an
//! [`ApiError`] answers as `{"error": {"code", "message", "request_id", "details"?}}`, or, for a
//! request in Kraken's dialect, as Kraken's `{"success": false, "message", …}` with the same
//! status.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pixpress_core::CoreError;
use serde_json::json;

use crate::accounts::ratelimit::Decision;
use crate::fetch::client::FetchError;
use crate::http::options::fields::OptionsError;
use crate::http::rate_headers::rate_headers;
use crate::http::request_id;
use crate::http::upload::UploadError;
use crate::service::admission::AdmissionError;
use crate::service::ServiceError;
use crate::storage::export::ExportError;

pub mod code {
    pub const INVALID_JSON: &str = "invalid_json";
    pub const INVALID_MULTIPART: &str = "invalid_multipart";
    pub const MISSING_FIELD: &str = "missing_field";
    pub const INVALID_FIELD: &str = "invalid_field";
    pub const NOT_SUPPORTED_YET: &str = "not_supported_yet";
    pub const INVALID_URL: &str = "invalid_url";
    pub const URL_NOT_ALLOWED: &str = "url_not_allowed";
    pub const MISSING_API_KEY: &str = "missing_api_key";
    pub const INVALID_API_KEY: &str = "invalid_api_key";
    pub const REVOKED_API_KEY: &str = "revoked_api_key";
    pub const NOT_FOUND: &str = "not_found";
    pub const INPUT_TOO_LARGE: &str = "input_too_large";
    pub const TOO_MANY_PIXELS: &str = "too_many_pixels";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const CORRUPT_IMAGE: &str = "corrupt_image";
    pub const FETCH_FAILED: &str = "fetch_failed";
    pub const INTERNAL_ERROR: &str = "internal_error";
    pub const OVERLOADED: &str = "overloaded";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const QUOTA_EXCEEDED: &str = "quota_exceeded";
    pub const EXPORT_FAILED: &str = "export_failed";
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
    code: &'static str,
    message: String,
    details: Option<serde_json::Value>,
    /// Extra response headers (rate-limit state); boxed to keep the error small.
    headers: Option<Box<HeaderMap>>,
    dialect: Dialect,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
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

    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 naming the field that was wrong.
    fn field(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::bad_request(code, message).with_details(json!({ "field": field }))
    }

    fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code::NOT_FOUND, message)
    }

    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::INPUT_TOO_LARGE,
            format!("the image is larger than the limit of {limit} bytes"),
        )
        .with_details(json!({ "limit_bytes": limit }))
    }

    /// 503: this instance cannot serve right now (a `Retry-After` is added on the way out).
    fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code::OVERLOADED, message)
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
            code::INTERNAL_ERROR,
            "an internal error occurred; quote the request_id when reporting it",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = request_id::current();
        let body = match self.dialect {
            Dialect::Native => {
                let mut error = json!({
                    "code": self.code,
                    "message": self.message,
                    "request_id": request_id,
                });
                if let Some(details) = self.details {
                    error["details"] = details;
                }
                json!({ "error": error })
            }
            // Kraken's clients read `success` and `message`; the code and request id are ours.
            Dialect::Kraken => json!({
                "success": false,
                "message": self.message,
                "code": self.code,
                "request_id": request_id,
            }),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(headers) = self.headers {
            response.headers_mut().extend(*headers);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        response
    }
}

impl ApiError {
    /// The same error in the Tinify dialect's shape: `{"error": "<Tinify kind>", "message"}`,
    /// with the same status and headers.
    pub fn into_tinify_response(self) -> Response {
        let body = json!({ "error": tinify_kind(self.code), "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(headers) = self.headers {
            response.headers_mut().extend(*headers);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        response
    }
}

/// Tinify's error kinds (what its clients show next to the status) for the native codes.
fn tinify_kind(native: &str) -> &'static str {
    match native {
        code::MISSING_API_KEY | code::INVALID_API_KEY | code::REVOKED_API_KEY => "Unauthorized",
        code::RATE_LIMITED | code::QUOTA_EXCEEDED => "TooManyRequests",
        code::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type",
        code::CORRUPT_IMAGE => "Decode error",
        code::MISSING_FIELD => "InputMissing",
        code::INPUT_TOO_LARGE | code::TOO_MANY_PIXELS => "InputTooLarge",
        code::INVALID_URL | code::URL_NOT_ALLOWED | code::FETCH_FAILED => "Source not found",
        code::NOT_FOUND => "Not found",
        code::NOT_SUPPORTED_YET => "NotSupportedYet",
        code::EXPORT_FAILED => "Store failed",
        code::OVERLOADED => "ServiceUnavailable",
        code::INTERNAL_ERROR => "InternalServerError",
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
            ServiceError::MissingKey => Self::unauthorized(code::MISSING_API_KEY, message),
            ServiceError::UnknownKey => Self::unauthorized(code::INVALID_API_KEY, message),
            ServiceError::RevokedKey => Self::unauthorized(code::REVOKED_API_KEY, message),
            ServiceError::RateLimited { decision, .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, code::RATE_LIMITED, message)
                    .with_rate_headers(&decision)
            }
            ServiceError::QuotaExceeded {
                quota,
                used,
                decision,
                ..
            } => Self::new(StatusCode::TOO_MANY_REQUESTS, code::QUOTA_EXCEEDED, message)
                .with_details(json!({ "quota_bytes": quota, "used_bytes": used }))
                .with_rate_headers(&decision),
            ServiceError::Fetch(e) => e.into(),
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
            | ServiceError::NoOutput => Self::internal_from(&message),
        }
    }
}

impl From<AdmissionError> for ApiError {
    fn from(e: AdmissionError) -> Self {
        let message = e.to_string();
        match e {
            AdmissionError::OverBudget { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::TOO_MANY_PIXELS,
                message,
            ),
            AdmissionError::Overloaded => Self::unavailable(message),
        }
    }
}

impl From<OptionsError> for ApiError {
    fn from(e: OptionsError) -> Self {
        match e {
            OptionsError::Json(message) => Self::bad_request(code::INVALID_JSON, message),
            OptionsError::Missing(f) => Self::field(code::MISSING_FIELD, &f.field, f.message),
            OptionsError::Invalid(f) => Self::field(code::INVALID_FIELD, &f.field, f.message),
            OptionsError::Unsupported(f) => {
                Self::field(code::NOT_SUPPORTED_YET, &f.field, f.message)
            }
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        let message = e.to_string();
        match e {
            UploadError::NotMultipart(_) => Self::bad_request(code::INVALID_MULTIPART, message),
            UploadError::Malformed(e) => Self::from(e),
            UploadError::Duplicate(part) => Self::field(code::INVALID_MULTIPART, part, message),
            UploadError::ImageTooLarge(limit) => Self::too_large(limit),
            UploadError::DataTooLarge => Self::field(code::INVALID_FIELD, "data", message),
            UploadError::DataNotUtf8 => Self::bad_request(code::INVALID_JSON, message),
            UploadError::MissingImage => Self::field(code::MISSING_FIELD, "image", message),
        }
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::INPUT_TOO_LARGE,
                e.body_text(),
            );
        }
        Self::bad_request(
            code::INVALID_MULTIPART,
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
            code::INVALID_JSON,
            format!("could not read the request body: {}", e.body_text()),
        )
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Unsupported { detected } => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::UNSUPPORTED_MEDIA_TYPE,
                format!("not an accepted image: detected {detected}; send JPEG, PNG, GIF or WebP"),
            ),
            CoreError::Corrupt(msg) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::CORRUPT_IMAGE,
                format!("the image is corrupt or truncated: {msg}"),
            ),
            CoreError::TooManyPixels { width, height, frames, pixels, limit } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::TOO_MANY_PIXELS,
                format!(
                    "the image has {pixels} pixels ({width}x{height}, {frames} frame(s)); the limit is {limit}"
                ),
            )
            .with_details(json!({
                "width": width, "height": height, "frames": frames, "limit_pixels": limit
            })),
            CoreError::LimitExceeded(msg) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::TOO_MANY_PIXELS,
                format!("the image needs more memory to decode than allowed: {msg}"),
            ),
            CoreError::InvalidOption { field, message } => {
                Self::field(code::INVALID_FIELD, &field, format!("{field}: {message}"))
            }
            CoreError::NotSupported(what) => Self::bad_request(
                code::NOT_SUPPORTED_YET,
                format!("{what} is not supported yet"),
            ),
            e @ CoreError::Encode(_) => Self::internal("encoder failed", e),
        }
    }
}

impl From<FetchError> for ApiError {
    fn from(e: FetchError) -> Self {
        let message = e.to_string();
        match e {
            FetchError::InvalidUrl(_) => Self::field(code::INVALID_URL, "url", message),
            FetchError::Refused(_) => Self::field(code::URL_NOT_ALLOWED, "url", message),
            FetchError::TooLarge { limit } => Self::too_large(limit),
            FetchError::Status(status) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::FETCH_FAILED,
                message,
            )
            .with_details(json!({ "upstream_status": status })),
            FetchError::TooManyRedirects | FetchError::Unreachable(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::FETCH_FAILED,
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
        Self::new(StatusCode::BAD_GATEWAY, code::EXPORT_FAILED, message).with_details(json!({
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
        assert_eq!(error["code"], code::INVALID_FIELD);
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
        assert_eq!(body["code"], code::INVALID_API_KEY);
        assert_eq!(body["request_id"], "req-1");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body.get("error").is_none(), "{body}");
    }

    #[tokio::test]
    async fn each_error_kind_has_its_status_and_code() {
        let cases: Vec<(ApiError, StatusCode, &str)> = vec![
            (
                ServiceError::MissingKey.into(),
                StatusCode::UNAUTHORIZED,
                code::MISSING_API_KEY,
            ),
            (
                ServiceError::UnknownKey.into(),
                StatusCode::UNAUTHORIZED,
                code::INVALID_API_KEY,
            ),
            (
                ServiceError::RevokedKey.into(),
                StatusCode::UNAUTHORIZED,
                code::REVOKED_API_KEY,
            ),
            (
                CoreError::Unsupported {
                    detected: "text".into(),
                }
                .into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                CoreError::Corrupt("truncated".into()).into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                code::CORRUPT_IMAGE,
            ),
            (
                CoreError::LimitExceeded("big".into()).into(),
                StatusCode::PAYLOAD_TOO_LARGE,
                code::TOO_MANY_PIXELS,
            ),
            (
                CoreError::NotSupported("avif".into()).into(),
                StatusCode::BAD_REQUEST,
                code::NOT_SUPPORTED_YET,
            ),
            (
                CoreError::Encode("bug".into()).into(),
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_ERROR,
            ),
            (
                FetchError::Refused("127.0.0.1".into()).into(),
                StatusCode::BAD_REQUEST,
                code::URL_NOT_ALLOWED,
            ),
            (
                FetchError::InvalidUrl("x".into()).into(),
                StatusCode::BAD_REQUEST,
                code::INVALID_URL,
            ),
            (
                FetchError::Status(404).into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                code::FETCH_FAILED,
            ),
            (
                FetchError::TooLarge { limit: 10 }.into(),
                StatusCode::PAYLOAD_TOO_LARGE,
                code::INPUT_TOO_LARGE,
            ),
            (
                AdmissionError::OverBudget {
                    cost_mib: 9,
                    budget_mib: 1,
                }
                .into(),
                StatusCode::PAYLOAD_TOO_LARGE,
                code::TOO_MANY_PIXELS,
            ),
            (
                ServiceError::NoSuchResult("x.png".into()).into(),
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
            ),
            (
                ServiceError::NoOutput.into(),
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_ERROR,
            ),
            (
                OptionsError::Json("not JSON".into()).into(),
                StatusCode::BAD_REQUEST,
                code::INVALID_JSON,
            ),
            (
                OptionsError::Missing(FieldError::new("url", "url is required")).into(),
                StatusCode::BAD_REQUEST,
                code::MISSING_FIELD,
            ),
            (
                OptionsError::Unsupported(FieldError::new("dry_run", "later")).into(),
                StatusCode::BAD_REQUEST,
                code::NOT_SUPPORTED_YET,
            ),
            (
                UploadError::Duplicate("image").into(),
                StatusCode::BAD_REQUEST,
                code::INVALID_MULTIPART,
            ),
            (
                UploadError::MissingImage.into(),
                StatusCode::BAD_REQUEST,
                code::MISSING_FIELD,
            ),
            (
                UploadError::DataNotUtf8.into(),
                StatusCode::BAD_REQUEST,
                code::INVALID_JSON,
            ),
            (
                ApiError::too_large(5),
                StatusCode::PAYLOAD_TOO_LARGE,
                code::INPUT_TOO_LARGE,
            ),
        ];
        for (error, status, expected_code) in cases {
            let (got_status, _, body) = answer(error).await;
            assert_eq!(
                (got_status, body["error"]["code"].as_str()),
                (status, Some(expected_code)),
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
        assert_eq!(body["error"]["code"], code::RATE_LIMITED);
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["ratelimit-limit"], "1");
        assert_eq!(headers["ratelimit-remaining"], "0");
        assert_eq!(headers["ratelimit-reset"], "2");

        let (status, headers, body) = answer(ServiceError::QuotaExceeded {
            plan: "free".into(),
            quota: 100,
            used: 90,
            decision: refused_decision(),
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["code"], code::QUOTA_EXCEEDED);
        assert_eq!(body["error"]["details"]["quota_bytes"], 100);
        assert_eq!(body["error"]["details"]["used_bytes"], 90);
        assert!(headers.contains_key("ratelimit-limit"));

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
        assert_eq!(error["code"], code::EXPORT_FAILED);
        assert_eq!(
            error["message"],
            "s3 refused the write to b/p.png: NoSuchBucket: gone"
        );
        assert_eq!(error["details"]["provider"], "s3");
        assert_eq!(error["details"]["store_message"], "NoSuchBucket: gone");
        assert_eq!(error["details"]["hosted"]["original_size"], 10);
    }
}
