//! Arbitrary bytes as request options: JSON parsing, option validation and resize parsing must
//! answer Ok or a field error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixpress_server::options::{parse, parse_json_body, Endpoint};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = parse_json_body(data) {
        let _ = parse(&value, Endpoint::Url);
        let _ = parse(&value, Endpoint::Upload);
        if let Some(resize) = value.get("resize") {
            let _ = pixpress_server::resize_json::parse_resize_list(resize);
        }
    }
});
