//! pixpress-server: the HTTP face of pixpress.
//!
//! axum routes (`routes`), the request-options edge (`options`), API keys (`keys`), the URL
//! fetcher and its SSRF guard (`fetch`, `fetch_guard`), hosted results (`results`) over the object
//! store (`storage`), exports to the user's own buckets (`export`) and the one
//! error type that maps everything to HTTP (`error`). Pixels are the core crate's business: this
//! crate hands it bytes and options and never touches a codec.

pub mod app;
pub mod config;
pub mod db;
pub mod error;
pub mod export;
pub mod fetch;
pub mod fetch_guard;
pub mod gate;
pub mod keys;
pub mod options;
pub mod plans;
pub mod ratelimit;
pub mod request_id;
pub mod resize_json;
pub mod results;
pub mod routes;
pub mod storage;
pub mod usage;

pub use app::serve;
pub use config::ServerConfig;
