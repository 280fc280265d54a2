//! Arbitrary bytes through the whole core pipeline (probe, decode, lossless and lossy
//! re-encode, and a resize): it may refuse, it must not panic, hang or blow past its limits.
//!
//! The pipeline's panic boundaries exist for the C codecs and third-party decoders (mozjpeg
//! reports a corrupt JPEG by unwinding), so a panic raised inside a registry crate and caught
//! there is the designed 422, not a finding. Any other panic (in pixpress's own code, or in the
//! standard library on its behalf: an index, an overflow, an unwrap) aborts, even when a boundary
//! would have caught it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixpress_core::{
    inspect, optimize, optimize_resized, Gravity, Limits, OutputFormat, Request, ResizeSpec, Rgba,
    Strategy,
};

fuzz_target!(
    init: {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_dependency = info
                .location()
                .is_some_and(|l| l.file().contains("registry/src/"));
            if !in_dependency {
                default_hook(info);
                std::process::abort();
            }
        }));
    },
    |data: &[u8]| {
        // Small limits keep each run fast while still exercising the refusal paths.
        let limits = Limits { max_pixels: 4_000_000, max_alloc_bytes: 256 * 1024 * 1024 };
        let selector = data.first().copied().unwrap_or(0);
        let shape = data.get(1).copied().unwrap_or(0);
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
            let spec = ResizeSpec { strategy: strategy(shape), enlarge: shape & 0x80 != 0 };
            let _ = optimize_resized(data, &probe, &request, &[spec], &limits);
        }
    }
);

/// A small target (the resize code paths, not the pixel count, are what is fuzzed), chosen
/// by the second input byte.
fn strategy(shape: u8) -> Strategy {
    let side = u32::from(shape & 0x1f) + 1;
    match (shape >> 5) & 3 {
        0 => Strategy::Fit {
            width: 17,
            height: side,
            gravity: Gravity::Smart,
        },
        1 => Strategy::Crop {
            width: side,
            height: 9,
            gravity: Gravity::SouthEast,
            origin: (shape & 1 == 1).then_some((side, 3)),
            scale_percent: (shape & 2 == 2).then_some(150.0),
        },
        2 => Strategy::Square {
            size: side,
            gravity: Gravity::Center,
        },
        _ => Strategy::Fill {
            width: side,
            height: 13,
            background: Rgba {
                r: 10,
                g: 20,
                b: 30,
                a: u8::from(shape & 1 == 1) * 255,
            },
        },
    }
}
