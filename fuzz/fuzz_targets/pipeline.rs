//! Arbitrary bytes through the whole core pipeline (probe, decode, lossless and lossy
//! re-encode, and a resize): it may refuse, it must not panic, hang or blow past its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixpress_core::{
    inspect, optimize, optimize_resized, Gravity, Limits, OutputFormat, Request, ResizeSpec,
    Strategy,
};

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast while still exercising the refusal paths.
    let limits = Limits { max_pixels: 4_000_000, max_alloc_bytes: 256 * 1024 * 1024 };
    let selector = data.first().copied().unwrap_or(0);
    let format = match (selector >> 2) % 6 {
        0 => OutputFormat::Jpeg,
        1 => OutputFormat::Png,
        2 => OutputFormat::Webp,
        3 => OutputFormat::Gif,
        4 => OutputFormat::Auto,
        _ => OutputFormat::Same,
    };
    let request = Request {
        lossy: selector & 1 == 1,
        quality: (selector & 0x80 != 0).then_some(selector % 101),
        format,
        ..Request::default()
    };
    let Ok(probe) = inspect(data, &limits) else {
        return;
    };
    if selector & 2 == 0 {
        let _ = optimize(data, &probe, &request, &limits);
    } else {
        let spec = ResizeSpec {
            strategy: Strategy::Fit { width: 17, height: 9, gravity: Gravity::Smart },
            enlarge: false,
        };
        let _ = optimize_resized(data, &probe, &request, &[spec], &limits);
    }
});
