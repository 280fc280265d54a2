//! The rate-limit response headers (SPEC §8): `RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset` (seconds), and `Retry-After` when the request was refused.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::accounts::ratelimit::Decision;

/// Writes `decision` into `headers`.
pub fn rate_headers(decision: &Decision, headers: &mut HeaderMap) {
    let secs = |d: std::time::Duration| d.as_secs_f64().ceil() as u64;
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(secs(decision.reset)));
    if !decision.allowed {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(secs(decision.retry_after).max(1)),
        );
    }
}
