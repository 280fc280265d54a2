//! Arbitrary bytes as a `POST /v1/upload` request, without a socket: the first line is the
//! `Content-Type` header (boundary and all), the rest the body. The multipart extractor, the
//! upload reader (`http::upload::read_parts`: part names, duplicates, the byte limits, UTF-8)
//! and then the options parser on the `data` part, in the dialect it speaks, must answer Ok or
//! an error that maps to a 4xx, never panic or answer 500.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use pixpress_server::http::error::{ApiError, Dialect};
use pixpress_server::http::kraken;
use pixpress_server::http::options::{self, Endpoint};
use pixpress_server::http::upload::{self, Parts};

/// Small, so the "image larger than the limit" path is reached by small inputs too.
const MAX_IMAGE_BYTES: u64 = 4096;

/// Used when the first line is not a valid header value.
const DEFAULT_CONTENT_TYPE: &str = "multipart/form-data; boundary=fuzz";

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = split_request(data);
    let request = Request::builder()
        .method("POST")
        .uri("/v1/upload")
        .header(CONTENT_TYPE, content_type)
        .body(Body::from(body.to_vec()))
        .expect("a request from a valid header value");
    let outcome = runtime().block_on(async {
        let multipart = Multipart::from_request(request, &()).await?;
        upload::read_parts(multipart, MAX_IMAGE_BYTES)
            .await
            .map_err(ApiError::from)
    });
    match outcome {
        Ok(parts) => read_options(&parts),
        Err(e) => assert_client_error(e, Dialect::Native),
    }
});

/// The header line (when it is a valid header value) and the body after it.
fn split_request(data: &[u8]) -> (HeaderValue, &[u8]) {
    if let Some(newline) = data.iter().position(|&b| b == b'\n') {
        let line = data[..newline]
            .strip_suffix(b"\r")
            .unwrap_or(&data[..newline]);
        if let Ok(value) = HeaderValue::from_bytes(line) {
            return (value, &data[newline + 1..]);
        }
    }
    (HeaderValue::from_static(DEFAULT_CONTENT_TYPE), data)
}

/// The `data` part as the upload handler reads it: JSON, then the dialect's options reader.
fn read_options(parts: &Parts) {
    let Some(text) = &parts.data else {
        return;
    };
    let value = match options::parse_json_body(text.as_bytes()) {
        Ok(value) => value,
        Err(e) => return assert_client_error(e.into(), Dialect::Native),
    };
    let dialect = kraken::dialect_of(&value);
    let parsed = match dialect {
        Dialect::Native => options::parse(&value, Endpoint::Upload),
        Dialect::Kraken => kraken::parse(&value, Endpoint::Upload),
    };
    if let Err(e) = parsed {
        assert_client_error(e.into(), dialect);
    }
}

/// A malformed upload is the client's mistake: a 4xx in the request's dialect.
fn assert_client_error(e: ApiError, dialect: Dialect) {
    let status = e.in_dialect(dialect).into_response().status();
    assert!(
        status.is_client_error(),
        "an upload error answered {status}"
    );
}

/// One current-thread runtime for every input: the multipart body is in memory, so nothing
/// here waits on I/O.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}
