//! The router: which path and method reach which handler, the body limit of each route (a
//! declared oversize is refused before a byte is read), the request-id and route-metrics
//! middleware and the security headers every response carries.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::error::ApiError;
use crate::http::handlers;
use crate::http::openapi;
use crate::http::playground;
use crate::http::request_id;
use crate::http::route_metrics;
use crate::http::tinify;
use crate::service::Service;

/// JSON option bodies are small; the image itself comes by URL or in the multipart upload.
const MAX_JSON_BODY: usize = 1024 * 1024;

/// `metrics_token`: when set, `GET /metrics` needs it as `Authorization: Bearer`.
pub fn router(service: Service, max_upload_bytes: u64, metrics_token: Option<String>) -> Router {
    let metrics_token: Option<Arc<str>> = metrics_token.map(Arc::from);
    let upload_limit = usize::try_from(max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(MAX_JSON_BODY);
    let v1 = Router::new()
        .route("/v1/", limited(post(handlers::optimize_url), MAX_JSON_BODY))
        .route(
            "/v1/url",
            limited(post(handlers::optimize_url_alias), MAX_JSON_BODY),
        )
        .route(
            "/v1/upload",
            limited(post(handlers::optimize_upload), upload_limit),
        )
        .route("/v1/images/{file}", get(handlers::hosted_image))
        .route("/v1/usage", get(handlers::usage_report))
        .route(
            "/user_status",
            limited(post(handlers::user_status), MAX_JSON_BODY),
        )
        .route("/shrink", limited(post(tinify::shrink), upload_limit))
        .route(
            "/output/{handle}",
            limited(
                get(tinify::output_get).post(tinify::output_post),
                MAX_JSON_BODY,
            ),
        )
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/v1/openapi.json", get(openapi::openapi_document))
        .route(
            "/metrics",
            get(move |headers| handlers::metrics_text(metrics_token.clone(), headers)),
        )
        .merge(playground::routes());
    v1.fallback(handlers::not_found_fallback)
        .layer(axum::middleware::from_fn(route_metrics::middleware))
        .layer(axum::middleware::from_fn(request_id::middleware))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(service)
}

/// Caps a route's body at `limit` bytes: declared lengths are refused before reading, and
/// undeclared (chunked) bodies are cut off by axum's limit while streaming.
fn limited(route: MethodRouter<Service>, limit: usize) -> MethodRouter<Service> {
    route
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            limit,
            reject_declared_oversize,
        ))
}

/// Answers 413 from the Content-Length header alone, before a byte of an oversized body is read.
async fn reject_declared_oversize(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => ApiError::too_large(limit as u64).into_response(),
        _ => next.run(request).await,
    }
}
