//! Inputs beyond the five formats pixpress writes, end to end through the real server: BMP and
//! TIFF from the edge corpus, JPEG XL and animated AVIF made here from PNGs with Debian's `cjxl`
//! and `avifenc` (which `scripts/services.sh` installs), and the formats that stay 415. Each
//! output is fetched from its hosted URL, decoded, and compared with a reference decode of its
//! source: exactly for lossless outputs, by mean difference for lossy ones.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use image::{DynamicImage, GenericImageView, RgbImage, RgbaImage};
use serde_json::{json, Value};

/// Uploads `input` with `options` (plus the key) and expects 200; returns the answer.
async fn optimised(server: &Server, input: &[u8], name: &str, options: Value) -> Value {
    let mut data = options;
    data["api_key"] = json!(server.key);
    let (status, body) = json_of(upload(server, input, name, data).await).await;
    assert_eq!(status, 200, "{name}: {body}");
    body
}

/// The hosted output of an answer, decoded; asserts its media type is `format`'s.
async fn hosted_pixels(body: &Value, format: &str) -> DynamicImage {
    assert_eq!(body["format"], format, "{body}");
    let mime = format!("image/{format}");
    let bytes = fetch_hosted(body["url"].as_str().expect("url"), &mime).await;
    decode(&bytes)
}

fn warning_codes(body: &Value) -> Vec<String> {
    body["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["code"].as_str().map(str::to_string))
        .collect()
}

/// Mean absolute difference per RGB channel, after compositing both on the same terms (alpha
/// ignored: the callers compare opaque images).
fn mean_abs_diff(a: &DynamicImage, b: &DynamicImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

fn assert_size(body: &Value, width: u32, height: u32) {
    assert_eq!(
        (body["final_width"].as_u64(), body["final_height"].as_u64()),
        (Some(u64::from(width)), Some(u64::from(height))),
        "{body}"
    );
}

#[tokio::test]
async fn bmp_and_tiff_become_png_with_every_pixel_kept() {
    let server = Server::start(&[]);
    for (name, width, height) in [("bmp_pal8.bmp", 127, 64), ("tiff_rgb_lzw.tif", 128, 128)] {
        let input = corpus(&format!("edge/{name}"));
        let reference = image::load_from_memory(&input).expect("reference decode");
        assert_eq!(reference.dimensions(), (width, height), "{name}");

        // Default: lossless, written as PNG, pixel for pixel.
        let body = optimised(&server, &input, name, json!({})).await;
        assert_size(&body, width, height);
        assert_eq!(body["original_width"], width, "{body}");
        let output = hosted_pixels(&body, "png").await;
        assert_eq!(output.to_rgba8(), reference.to_rgba8(), "{name} lossless");

        // Lossy: a palette PNG close to the source.
        let body = optimised(&server, &input, name, json!({"lossy": true})).await;
        assert_size(&body, width, height);
        let output = hosted_pixels(&body, "png").await;
        let diff = mean_abs_diff(&output, &reference);
        assert!(diff < 6.0, "{name} lossy PNG: mean abs diff {diff}");

        // An explicit format and a resize work on these inputs like on any other.
        let body = optimised(
            &server,
            &input,
            name,
            json!({"format": "jpeg", "lossy": true, "resize": {"strategy": "exact", "width": 40, "height": 20}}),
        )
        .await;
        assert_size(&body, 40, 20);
        let output = hosted_pixels(&body, "jpeg").await;
        let expected = reference.resize_exact(40, 20, image::imageops::FilterType::Lanczos3);
        let diff = mean_abs_diff(&output, &expected);
        assert!(diff < 12.0, "{name} resized JPEG: mean abs diff {diff}");
    }
}

/// Runs a command-line encoder from Debian's packages; says how to get it when it is missing.
fn run_tool(tool: &str, args: &[&Path], extra: &[&str]) {
    let output = Command::new(tool)
        .args(args)
        .args(extra)
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool}: {e} (run `source scripts/services.sh`, which installs it)")
        });
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A 64x48 RGB picture with smooth ramps and a hard edge, so lossy coding has work to do.
fn rgb_source() -> RgbImage {
    RgbImage::from_fn(64, 48, |x, y| {
        let edge = if x > 40 { 200 } else { 30 };
        image::Rgb([(x * 4) as u8, (y * 5) as u8, edge])
    })
}

/// The same ramps with alpha: opaque on the left, half transparent in the middle, clear right.
fn rgba_source() -> RgbaImage {
    RgbaImage::from_fn(64, 48, |x, y| {
        let alpha = match x {
            0..=20 => 255,
            21..=42 => 128,
            _ => 0,
        };
        image::Rgba([(x * 4) as u8, (y * 5) as u8, 90, alpha])
    })
}

/// Writes `image` as PNG and encodes it with `cjxl` and `extra` options; returns the JPEG XL.
fn jpeg_xl(dir: &Path, name: &str, image: &DynamicImage, extra: &[&str]) -> Vec<u8> {
    let png = dir.join(format!("{name}.png"));
    let jxl = dir.join(format!("{name}.jxl"));
    image.save(&png).expect("write PNG");
    run_tool("cjxl", &[&png, &jxl], extra);
    std::fs::read(&jxl).expect("read JPEG XL")
}

#[tokio::test]
async fn jpeg_xl_becomes_png_when_lossless_or_with_alpha_and_jpeg_otherwise() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let rgb = DynamicImage::ImageRgb8(rgb_source());
    let rgba = DynamicImage::ImageRgba8(rgba_source());

    // Lossless JPEG XL (cjxl -d 0): PNG, the source's exact pixels.
    let input = jpeg_xl(dir.path(), "lossless", &rgb, &["-d", "0"]);
    let body = optimised(&server, &input, "lossless.jxl", json!({})).await;
    assert_size(&body, 64, 48);
    let output = hosted_pixels(&body, "png").await;
    assert_eq!(output.to_rgb8(), rgb.to_rgb8(), "lossless JPEG XL");

    // With alpha: PNG, colour and alpha exact where visible.
    let input = jpeg_xl(dir.path(), "alpha", &rgba, &["-d", "0"]);
    let body = optimised(&server, &input, "alpha.jxl", json!({})).await;
    let output = hosted_pixels(&body, "png").await.to_rgba8();
    for (x, y, pixel) in rgba_source().enumerate_pixels() {
        let got = output.get_pixel(x, y);
        assert_eq!(got[3], pixel[3], "alpha at ({x}, {y})");
        if pixel[3] > 0 {
            assert_eq!(got.0, pixel.0, "at ({x}, {y})");
        }
    }

    // Lossy JPEG XL (cjxl -d 1): JPEG by default, close to the source.
    let input = jpeg_xl(dir.path(), "lossy", &rgb, &["-d", "1"]);
    let body = optimised(&server, &input, "lossy.jxl", json!({"lossy": true})).await;
    assert_size(&body, 64, 48);
    let output = hosted_pixels(&body, "jpeg").await;
    let diff = mean_abs_diff(&output, &rgb);
    assert!(diff < 6.0, "lossy JPEG XL as JPEG: mean abs diff {diff}");

    // A resize of a JPEG XL input.
    let body = optimised(
        &server,
        &input,
        "lossy.jxl",
        json!({"resize": {"strategy": "landscape", "width": 32}}),
    )
    .await;
    assert_size(&body, 32, 24);
    assert_eq!(body["format"], "jpeg", "{body}");
}

#[tokio::test]
async fn an_animated_avif_gives_its_first_frame_with_a_warning() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let red = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 48, image::Rgb([200, 40, 40])));
    let blue = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 48, image::Rgb([40, 40, 200])));
    let (first, second, avif) = (
        dir.path().join("1.png"),
        dir.path().join("2.png"),
        dir.path().join("anim.avif"),
    );
    red.save(&first).expect("write");
    blue.save(&second).expect("write");
    run_tool("avifenc", &[&first, &second, &avif], &["--speed", "10"]);
    let input = std::fs::read(&avif).expect("read AVIF");
    assert_eq!(&input[8..12], b"avis", "avifenc wrote an image sequence");

    // Lossy AVIF again: the first frame, said in a warning.
    let body = optimised(&server, &input, "anim.avif", json!({"lossy": true})).await;
    assert_size(&body, 64, 48);
    assert!(
        warning_codes(&body).contains(&"animation_frames_dropped".to_string()),
        "{body}"
    );
    let output = hosted_pixels(&body, "avif").await;
    let diff = mean_abs_diff(&output, &red);
    assert!(diff < 8.0, "the red first frame: mean abs diff {diff}");

    // Converted to PNG losslessly: exactly the first frame as the decoder reads it.
    let body = optimised(&server, &input, "anim.avif", json!({"format": "png"})).await;
    assert!(
        warning_codes(&body).contains(&"animation_frames_dropped".to_string()),
        "{body}"
    );
    let output = hosted_pixels(&body, "png").await;
    assert_eq!(
        output.to_rgba8(),
        decode_rgba(&input),
        "first frame, pixel for pixel"
    );
}

#[tokio::test]
async fn formats_it_cannot_read_are_415_naming_what_was_seen() {
    let server = Server::start(&[]);
    for (name, needle) in [
        ("heif.heic", "HEIF/HEIC"),
        ("vector.svg", "SVG"),
        ("not_an_image.txt", "text"),
    ] {
        let input = corpus(&format!("edge/{name}"));
        for lossy in [false, true] {
            let data = json!({"api_key": server.key, "lossy": lossy});
            let (status, body) = json_of(upload(&server, &input, name, data).await).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (415, Some("unsupported_media_type")),
                "{name}: {body}"
            );
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(needle), "{name}: {message}");
        }
    }
}

#[tokio::test]
async fn a_bmp_bomb_is_refused_from_its_header() {
    let server = Server::start(&[]);
    // A BMP header claiming 60000x60000 at 24 bits (10.8 GB of pixels), and no pixels.
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0; 8]);
    bmp.extend_from_slice(&54u32.to_le_bytes());
    bmp.extend_from_slice(&40u32.to_le_bytes());
    bmp.extend_from_slice(&60_000i32.to_le_bytes());
    bmp.extend_from_slice(&60_000i32.to_le_bytes());
    bmp.extend_from_slice(&1u16.to_le_bytes());
    bmp.extend_from_slice(&24u16.to_le_bytes());
    bmp.extend_from_slice(&[0; 24]);
    let data = json!({"api_key": server.key});
    let (status, body) = json_of(upload(&server, &bmp, "bomb.bmp", data).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_many_pixels")),
        "{body}"
    );
}
