//! Arbitrary bytes as request options: JSON parsing, the native and Kraken readers for both
//! endpoints, and the resize list on its own must answer Ok or a field error, never panic, and
//! every error must map to a 4xx, never a 500.
#![no_main]

use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use pixpress_server::http::error::ApiError;
use pixpress_server::http::kraken;
use pixpress_server::http::options::fields::OptionsError;
use pixpress_server::http::options::resize::parse_resize_list;
use pixpress_server::http::options::{parse, parse_json_body, Endpoint};

fuzz_target!(|data: &[u8]| {
    let value = match parse_json_body(data) {
        Ok(value) => value,
        Err(e) => return assert_client_error(e),
    };
    for endpoint in [Endpoint::Url, Endpoint::Upload] {
        if let Err(e) = parse(&value, endpoint) {
            assert_client_error(e);
        }
        if let Err(e) = kraken::parse(&value, endpoint) {
            assert_client_error(e);
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
