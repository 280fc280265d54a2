//! [`ServiceError`]: every way a request can fail once it reaches the service, wrapping each
//! lower layer's own typed error. It says what went wrong, never how to answer it: the status,
//! code and body are chosen in `http::error`, the one mapping.

use pixpress_core::CoreError;

use crate::accounts::keys::KeyError;
use crate::accounts::ratelimit::Decision;
use crate::accounts::usage::UsageError;
use crate::fetch::client::FetchError;
use crate::service::admission::AdmissionError;
use crate::service::answer::Answer;
use crate::service::callback::QueueError;
use crate::storage::export::ExportError;
use crate::storage::hosted::StorageError;
use crate::storage::results::ResultError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("an API key is required: send \"api_key\" in the options, ?api_key=, or Authorization: Bearer")]
    MissingKey,
    #[error("the API key is not valid")]
    UnknownKey,
    #[error("the API key has been revoked")]
    RevokedKey,
    /// The key's rate limit refused this request; `decision` fills the `RateLimit-*` headers.
    #[error("the {plan} plan allows {per_second} request(s) per second; retry in {wait} s", wait = retry_secs(decision))]
    RateLimited {
        plan: String,
        per_second: u32,
        decision: Decision,
    },
    /// A hard monthly quota is used up, or this input would go past it: `used` is billed this
    /// month, `reserved` held by requests still in progress.
    #[error("the {plan} plan's monthly quota of {quota} bytes is used up ({used} bytes this month, {reserved} more held by requests in progress); it renews on the 1st (UTC) or upgrade the plan")]
    QuotaExceeded {
        plan: String,
        quota: u64,
        used: u64,
        reserved: u64,
        decision: Decision,
    },
    /// Redis, which holds the rate limits, cannot be reached and the policy is fail-closed.
    #[error("the rate limiter is unavailable; retry after the Retry-After delay")]
    RateLimiterUnavailable { decision: Decision },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// A store refused the export. The outputs were hosted (and metered): `hosted` is the answer
    /// the caller would have had, so nothing that was produced is lost.
    #[error("{error}")]
    Export {
        error: ExportError,
        hosted: Box<Answer>,
    },
    /// `GET /v1/images/{file}` for a result that is unknown or expired.
    #[error("no result {0:?}: unknown id, or it has expired")]
    NoSuchResult(String),
    #[error("database not reachable: {0}")]
    DatabaseUnreachable(sqlx::Error),
    #[error("result storage not reachable: {0}")]
    StorageUnreachable(StorageError),

    // Bugs and environment failures: logged with the request id, answered as internal errors.
    #[error("key lookup: {0}")]
    KeyLookup(#[from] KeyError),
    #[error("usage lookup: {0}")]
    UsageLookup(UsageError),
    #[error("recording usage: {0}")]
    Metering(UsageError),
    #[error("storing the result: {0}")]
    Hosting(ResultError),
    #[error("result lookup: {0}")]
    ResultLookup(ResultError),
    #[error("reading a result: {0}")]
    ResultRead(StorageError),
    #[error("presigning a result: {0}")]
    Presigning(StorageError),
    /// `callback_url` is not an http(s) URL or resolves to an address the policy refuses.
    #[error("callback_url: {0}")]
    CallbackUrl(FetchError),
    #[error("recording a callback job: {0}")]
    CallbackRecord(sqlx::Error),
    #[error("queueing a callback job: {0}")]
    CallbackQueue(QueueError),
    #[error("a callback job's parked input: {0}")]
    Parking(StorageError),
    #[error("image worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
    #[error("resize: no output")]
    NoOutput,
}

/// Whole seconds until a refused request would be let through, at least 1.
fn retry_secs(decision: &Decision) -> f64 {
    decision.retry_after.as_secs_f64().ceil().max(1.0)
}
