//! Arbitrary bytes as request options: JSON parsing, the native and Kraken readers for both
//! endpoints, and the resize list on its own must answer Ok or a field error, never panic, and
//! every error must map to a 4xx, never a 500. Every resize the readers accept is then planned
//! (the core's geometry) against a few source sizes, from 1×1 to the largest side.
#![no_main]

use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use pixpress_server::http::error::ApiError;
use pixpress_server::http::kraken;
use pixpress_server::http::options::fields::OptionsError;
use pixpress_server::http::options::resize::parse_resize_list;
use pixpress_server::http::options::{parse, parse_json_body, Endpoint, ParsedOptions};

/// Source sizes the accepted resizes are planned against: degenerate, extreme and ordinary.
const SOURCES: [(u32, u32); 5] = [(1, 1), (1, 16384), (16384, 3), (16384, 16384), (640, 427)];

fuzz_target!(|data: &[u8]| {
    let value = match parse_json_body(data) {
        Ok(value) => value,
        Err(e) => return assert_client_error(e),
    };
    for endpoint in [Endpoint::Url, Endpoint::Upload] {
        for parsed in [parse(&value, endpoint), kraken::parse(&value, endpoint)] {
            match parsed {
                Ok(options) => plan_every_resize(&options),
                Err(e) => assert_client_error(e),
            }
        }
    }
    if let Err(e) = kraken::auth_key(&value) {
        assert_client_error(e);
    }
    if let Some(resize) = value.get("resize") {
        let _ = parse_resize_list(resize);
    }
});

/// A refused option is the client's mistake: its answer is a 4xx with a JSON body.
fn assert_client_error(e: OptionsError) {
    let status = ApiError::from(e).into_response().status();
    assert!(
        status.is_client_error(),
        "an options error answered {status}"
    );
}

/// An accepted resize may still be refused for a given source, but planning it must not panic.
fn plan_every_resize(options: &ParsedOptions) {
    let Some(resize) = &options.job.resize else {
        return;
    };
    for spec in resize.specs() {
        for (width, height) in SOURCES {
            let _ = pixpress_core::plan_resize(width, height, &spec);
        }
    }
}
