//! A random id per request: set in a task-local for the duration of the request so error bodies
//! and log lines can carry it, and echoed in the `x-request-id` response header. This module
//! owns the id, its task-local and the middleware that sets both.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id, or "-" outside a request.
pub fn current() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_string())
}

pub fn new_id() -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Runs `work` with `id` as the current request's id.
pub async fn scope<F: std::future::Future>(id: String, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}

/// Runs `work` with `id` as the current request's id, outside any request (a callback job).
pub fn sync_scope<T>(id: String, work: impl FnOnce() -> T) -> T {
    REQUEST_ID.sync_scope(id, work)
}

pub async fn middleware(request: Request, next: Next) -> Response {
    let id = new_id();
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let mut response = scope(
        id.clone(),
        tracing::Instrument::instrument(next.run(request), span),
    )
    .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
