//! The request body deadline: a minimum transfer rate. Once a body has been read for longer
//! than the grace period, its average rate since its first read must stay at or above the
//! minimum (Kestrel's `MinRequestBodyDataRate` model), else reading it fails and the answer is
//! `408 request_timeout` with `Connection: close`, whatever the handler made of the failed
//! read. A per-chunk idle timeout (tower-http's) would not do: a client trickling a byte every
//! second never goes idle. The clock starts at the first read, so time the server spends
//! before reading (key checks) is not counted against the client. The connection-level
//! deadlines (headers, keep-alive idle, the cap) are `conn`'s.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::http::error::ApiError;
use crate::http::request_id;

/// The slowest body accepted: `bytes_per_second` on average once `grace` has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinRate {
    pub bytes_per_second: u64,
    pub grace: Duration,
}

impl MinRate {
    /// Whether `received` bytes after `elapsed` is below the minimum.
    fn too_slow(self, received: u64, elapsed: Duration) -> bool {
        elapsed > self.grace
            && u128::from(received) * 1000 < u128::from(self.bytes_per_second) * elapsed.as_millis()
    }

    /// When, counted from the first read, `received` bytes stop being enough.
    fn deadline(self, received: u64) -> Duration {
        let enough_for = received.saturating_mul(1000) / self.bytes_per_second.max(1);
        self.grace.max(Duration::from_millis(enough_for))
    }
}

/// Reading the body failed because it came in slower than the minimum rate.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived slower than {0} bytes per second")]
pub struct BodyTooSlow(u64);

/// Wraps every request body in the minimum-rate check; when it tripped, the handler's answer
/// (typically a 400 for a body that could not be read) is replaced by the 408.
pub async fn middleware(State(rule): State<MinRate>, request: Request, next: Next) -> Response {
    if rule.bytes_per_second == 0 {
        return next.run(request).await;
    }
    let tripped = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&tripped);
    let request = request.map(|body| Body::new(MinRateBody::new(body, rule, flag)));
    let response = next.run(request).await;
    if tripped.load(Ordering::Acquire) {
        too_slow_answer(response, rule).await
    } else {
        response
    }
}

/// The 408, carrying the headers the inner layers put on their answer (request id, security
/// headers) and answering with the same request id.
async fn too_slow_answer(inner: Response, rule: MinRate) -> Response {
    let mut headers = inner.into_parts().0.headers;
    headers.remove(header::CONTENT_TYPE);
    headers.remove(header::CONTENT_LENGTH);
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(request_id::new_id, str::to_string);
    let mut answer = request_id::scope(id, async {
        ApiError::body_too_slow(rule.bytes_per_second, rule.grace).into_response()
    })
    .await;
    for (name, value) in &headers {
        answer
            .headers_mut()
            .entry(name)
            .or_insert_with(|| value.clone());
    }
    answer
}

/// A request body that fails once it is slower than its [`MinRate`], and says so in `tripped`.
struct MinRateBody {
    inner: Body,
    rule: MinRate,
    started: Option<Instant>,
    received: u64,
    /// Wakes the reader when the bytes received so far stop being enough.
    timer: Option<Pin<Box<Sleep>>>,
    tripped: Arc<AtomicBool>,
}

impl MinRateBody {
    fn new(inner: Body, rule: MinRate, tripped: Arc<AtomicBool>) -> Self {
        MinRateBody {
            inner,
            rule,
            started: None,
            received: 0,
            timer: None,
            tripped,
        }
    }

    fn trip(&mut self) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.tripped.store(true, Ordering::Release);
        Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow(
            self.rule.bytes_per_second,
        )))))
    }

    /// Arms the timer for the current byte count and reports whether it has already fired.
    fn deadline_passed(&mut self, started: Instant, cx: &mut Context<'_>) -> bool {
        let deadline = started + self.rule.deadline(self.received);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx).is_ready()
    }
}

impl HttpBody for MinRateBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.tripped.load(Ordering::Acquire) {
            return this.trip();
        }
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, Bytes::len);
                this.received = this.received.saturating_add(len as u64);
                if this.rule.too_slow(this.received, started.elapsed()) {
                    return this.trip();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            // The end, or the connection's own failure: the handler answers those as before.
            other @ Poll::Ready(_) => other,
            Poll::Pending => {
                if this.deadline_passed(started, cx) {
                    return this.trip();
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: MinRate = MinRate {
        bytes_per_second: 1000,
        grace: Duration::from_secs(3),
    };

    #[test]
    fn within_the_grace_period_any_rate_is_fine() {
        assert!(!RULE.too_slow(0, Duration::from_millis(2999)));
        assert!(RULE.too_slow(0, Duration::from_millis(3001)));
    }

    #[test]
    fn after_the_grace_period_the_average_since_the_start_counts() {
        assert!(!RULE.too_slow(5000, Duration::from_secs(5)));
        assert!(RULE.too_slow(4999, Duration::from_secs(5)));
    }

    #[test]
    fn the_deadline_moves_with_the_bytes_received() {
        assert_eq!(RULE.deadline(10), Duration::from_secs(3));
        assert_eq!(RULE.deadline(8000), Duration::from_secs(8));
    }
}
