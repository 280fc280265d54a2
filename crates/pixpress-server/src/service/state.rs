//! The [`Service`]: every component a request needs (database, stores, fetcher, gate, plans,
//! limiter, exporter), built once at start-up and shared by every request.

use crate::accounts::plans::Plans;
use crate::accounts::ratelimit::RateLimiter;
use crate::db::Db;
use crate::fetch::client::Fetcher;
use crate::service::admission::WorkGate;
use crate::service::callback::Callbacks;
use crate::storage::export::Exporter;
use crate::storage::results::ResultStore;

#[derive(Clone)]
pub struct Service {
    pub db: Db,
    pub results: ResultStore,
    pub fetcher: Fetcher,
    /// The core's input limits (pixels); the byte limit is the fetcher's and the edge's.
    pub input_limits: pixpress_core::Limits,
    /// Base of hosted result URLs.
    pub public_url: String,
    pub gate: WorkGate,
    pub plans: Plans,
    pub limiter: RateLimiter,
    /// Writes to the users' own buckets (`s3_store`, `azure_store`, `gcs_store`).
    pub exporter: Exporter,
    /// `callback_url`: the durable job queue and the signed delivery.
    pub callbacks: Callbacks,
}
