//! Asynchronous mode (`callback_url`, SPEC §11; Kraken's async mode): a request is accepted at
//! once with a job id, and the answer the synchronous call would have given is POSTed, signed,
//! to the caller's URL when it is ready. This module owns that path below the edge:
//! - `submit`: the checks made before the 202 (the callback URL's address, an upload's fit in
//!   a hard quota), the uploaded bytes parked in the object store, the job recorded and queued;
//! - `queue`: the durable queue (apalis over the same database, SQLite or PostgreSQL) and the
//!   worker every instance runs, so a job outlives the instance that accepted it;
//! - `jobs`: the `callback_jobs` table, pixpress's record of each job and of its answer;
//! - `run`: what one job does (optimise once, billed once under the job id, answer kept);
//! - `deliver`: the signed POST, its retries and backoff, through the guarded client;
//! - [`Callbacks::sweep_forever`]: finished tasks (they hold the options, store credentials
//!   included) leave the queue's table at the next sweep, job records after the result TTL.
//!
//! The edge decides what the options mean and what the answer looks like: it hands the queue
//! an opaque record of the request and implements [`Edge`] to read it back and to render the
//! outcome, so a callback carries exactly the JSON (and status) of the synchronous answer.

pub mod deliver;
pub mod jobs;
pub mod queue;
pub mod run;
pub mod submit;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::db::{now_unix_ms, Db};
use crate::service::answer::Answer;
use crate::service::error::ServiceError;
use crate::service::job::Job;

pub use deliver::{signature, Deliverer};
pub use queue::{Queue, QueueError};
pub use submit::Submission;

/// Where a queued job's image is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueuedInput {
    /// Fetched when the job runs, through the address policy like any URL.
    Url(String),
    /// An upload, parked in the object store under this name until the job ends.
    Stored(String),
}

/// What the queue carries: everything any instance needs to run the job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CallbackTask {
    pub job_id: String,
    /// The submitting key's id and plan, as admitted (the key itself is not kept).
    pub key_id: String,
    pub plan: String,
    pub callback_url: String,
    pub input: QueuedInput,
    /// The edge's record of the request, read back by [`Edge::job`] and [`Edge::render`].
    pub request: serde_json::Value,
}

/// An answer as it is delivered: the status the synchronous call would have had and its JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub status: u16,
    pub body: String,
}

/// The edge's half of a job: the options parser and the answer's shape, which only it knows.
pub trait Edge: Send + Sync + 'static {
    /// The job the recorded request asks for, read by the parser that accepted it (so it
    /// cannot fail but for a bug; then the error answer is what is delivered).
    fn job(&self, request: &serde_json::Value) -> Result<Job, Rendered>;
    /// The answer the synchronous call would have given for this outcome.
    fn render(
        &self,
        job_id: &str,
        request: &serde_json::Value,
        outcome: Result<Answer, ServiceError>,
    ) -> Rendered;
}

/// The callback machinery a [`crate::service::Service`] holds: the queue and the deliverer.
#[derive(Clone)]
pub struct Callbacks {
    pub queue: Queue,
    pub deliverer: Deliverer,
}

impl Callbacks {
    /// Every `interval`: finished tasks leave the queue's table (they hold the options),
    /// and the records of jobs that ended more than `keep` ago are deleted.
    pub async fn sweep_forever(self, db: Db, interval: Duration, keep: Duration) {
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            if let Err(e) = self.queue.purge_finished().await {
                tracing::warn!("purging finished callback tasks: {e}");
            }
            let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            if let Err(e) = jobs::sweep(&db, now_unix_ms().saturating_sub(keep_ms)).await {
                tracing::warn!("sweeping callback job records: {e}");
            }
        }
    }
}

/// A new job id: 32 hex digits, like result ids.
pub fn new_job_id() -> String {
    crate::storage::results::new_result_id()
}

/// The object-store name of a job's parked upload (not a result id, so never served).
pub fn input_object_name(job_id: &str) -> String {
    format!("callback-input-{job_id}")
}
