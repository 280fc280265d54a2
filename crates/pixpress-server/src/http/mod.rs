//! The HTTP edge: everything that knows about requests and responses, and nothing else.
//! `router` (routes, body limits, security headers), `handlers` (thin: extract → call the
//! service → answer), `error` (the one mapping from every typed error to status, code and
//! JSON), `options` (the one options parser), `kraken` (the Kraken.io dialect), `tinify` (the
//! Tinify / TinyPNG dialect's routes and shapes), `upload` (the multipart body), `request_id`,
//! `rate_headers`, `openapi` (the OpenAPI document) and `route_metrics` (per-route metrics);
//! `playground`, the page at `GET /`; `callback` (asynchronous mode's request record, 202
//! and rendering).
//! `deadline`: the request body's minimum rate (a slow body is a 408).

pub mod callback;
pub mod deadline;
pub mod error;
pub mod handlers;
pub mod kraken;
pub mod openapi;
pub mod options;
pub mod playground;
pub mod rate_headers;
pub mod request_id;
pub mod responses;
pub mod route_metrics;
pub mod router;
pub mod tinify;
pub mod upload;
