//! pixpress-server: the HTTP face of pixpress — the axum app with accounts, limits and storage.
//! Pixels are the core crate's business: this crate hands it bytes and options and never
//! touches a codec.
//!
//! Layers, each importing only the ones below it:
//! - `http`: the edge — router, thin handlers, the one options parser, request ids, and the one
//!   mapping from every typed error to a status, code and JSON body.
//! - `service`: the optimise service (key → rate limit → quota → fetch → pipeline → host →
//!   export → meter), the work gate, hosted reads and reports.
//! - `accounts` (keys, plans, rate limits, usage), `storage` (hosted results, exports, the one
//!   OpenDAL operator builder), `fetch` (the URL client and its address guard), `db` (the pool).
//!
//! - `metrics`: the Prometheus names and the recorder, called by `service` and the `http`
//!   middleware.
//!
//! `app` wires them at start-up; `config` is what the binary fills in; `conn` is the accept
//! loop (connection cap, header and idle deadlines) both listeners share.

pub mod accounts;
pub mod app;
pub mod config;
pub mod conn;
pub mod db;
pub mod fetch;
pub mod http;
pub mod metrics;
pub mod service;
pub mod storage;

pub use app::serve;
pub use config::ServerConfig;
