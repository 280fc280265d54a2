//! The one place where failures become HTTP. Every machine-readable error code users can script
//! against is a constant in [`code`]; every core, fetch and storage error maps to an
//! [`ApiError`] through one `From` impl each.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pixpress_core::CoreError;
use serde_json::json;

use crate::export::ExportError;
use crate::fetch::FetchError;
use crate::request_id;

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

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<serde_json::Value>,
    /// Extra response headers (rate-limit state); boxed to keep the error small.
    pub headers: Option<Box<HeaderMap>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            headers: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds the `RateLimit-*` (and, when refused, `Retry-After`) headers of `decision`.
    pub fn with_rate_headers(mut self, decision: &crate::ratelimit::Decision) -> Self {
        crate::routes::rate_headers(decision, self.headers.get_or_insert_with(Default::default));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 naming the field that was wrong.
    pub fn field(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::bad_request(code, message).with_details(json!({ "field": field }))
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
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

    /// A bug or an environment failure: the detail goes to the log (with the request id), the
    /// client gets the request id to quote.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current(), "{context}: {error}");
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
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        });
        if let Some(details) = self.details {
            error["details"] = details;
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
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
        match e {
            ExportError::Invalid { field, .. } => Self::field(code::INVALID_FIELD, &field, message),
            ExportError::Unsupported { field, .. } => {
                Self::field(code::NOT_SUPPORTED_YET, &field, message)
            }
            ExportError::Refused {
                provider,
                bucket,
                path,
                message: store_message,
            } => {
                // Secrets were redacted from the store's message where the error was made.
                tracing::warn!(request_id = %request_id::current(), provider, bucket = %bucket, "export failed: {store_message}");
                Self::new(StatusCode::BAD_GATEWAY, code::EXPORT_FAILED, message).with_details(
                    json!({
                        "provider": provider,
                        "bucket": bucket,
                        "path": path,
                        "store_message": store_message,
                    }),
                )
            }
        }
    }
}
