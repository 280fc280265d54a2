//! The optimise service: what a request does, with no HTTP in sight. `optimise` reads one
//! request in order (key → rate limit → quota → fetch → pipeline → host → export → meter);
//! `admission` is the work gate (CPU slots, memory budget, bounded queue); `job` is the typed
//! input, `answer` the typed output; `dry_run` answers `dry_run: true` without encoding;
//! `hosted` reads results back, `reprocess` keeps a source hosted for later re-processing (the
//! Tinify dialect's `/output`), `reports` answers usage and readiness; `state` holds the shared
//! components; `error` is the one error type, wrapping every lower layer's. `callback` is the
//! asynchronous mode: jobs accepted with a 202, queued durably, and answered by a signed POST.

pub mod admission;
pub mod answer;
pub mod callback;
pub mod dry_run;
pub mod error;
pub mod hosted;
pub mod job;
pub mod optimise;
pub mod reports;
pub mod reprocess;
pub mod state;

pub use error::ServiceError;
pub use state::Service;
