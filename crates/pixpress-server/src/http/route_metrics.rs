//! The HTTP-level metrics: one middleware that counts every answer by its route template (the
//! matched path, e.g. `/v1/images/{file}`, never the raw path, so ids cannot blow up the label
//! set) and status, and times it. The names and the recorder are `crate::metrics`'.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics;

/// The route label of a request no route matched (the 404 fallback).
const UNMATCHED: &str = "unmatched";

pub async fn middleware(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |m| m.as_str().to_string());
    let start = Instant::now();
    let response = next.run(request).await;
    metrics::record_http(&route, response.status().as_u16(), start.elapsed());
    response
}
