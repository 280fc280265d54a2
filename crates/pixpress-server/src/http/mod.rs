//! The HTTP edge: everything that knows about requests and responses, and nothing else.
//! `router` (routes, body limits, security headers), `handlers` (thin: extract → call the
//! service → answer), `error` (the one mapping from every typed error to status, code and
//! JSON), `options` (the one options parser), `upload` (the multipart body), `request_id`,
//! `rate_headers`, `openapi` (the OpenAPI document) and `route_metrics` (per-route metrics).

pub mod error;
pub mod handlers;
pub mod openapi;
pub mod options;
pub mod rate_headers;
pub mod request_id;
pub mod route_metrics;
pub mod router;
pub mod upload;
