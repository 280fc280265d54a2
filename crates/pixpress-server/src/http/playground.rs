//! The playground at `GET /`: a page, one script and one stylesheet, compiled into the binary
//! (no CDN, nothing read from disk at run time), served with their content types and a strict
//! Content-Security-Policy. The page calls the public API like any other client.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("../../assets/playground/index.html");
const APP_JS: &str = include_str!("../../assets/playground/app.js");
const APP_CSS: &str = include_str!("../../assets/playground/app.css");

/// Scripts, styles and API calls come from this server only. Images may also come from any
/// http(s) origin: a URL-mode original is shown from where it lives, and a hosted result may be
/// a redirect to an object store's presigned URL.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' blob: data: http: https:; connect-src 'self'; \
     form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The assets change only with the binary, so a short cache keeps an upgrade visible quickly.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The playground's routes, to be merged into the API router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/playground/app.js", get(script))
        .route("/playground/app.css", get(stylesheet))
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    (headers, body).into_response()
}
