//! End-to-end tests of the lossless proof (issue 20): every `lossy: false` output the real
//! server returns is decoded here, with the test's own decoder, and compared pixel for pixel
//! (16 bits per channel where the input has them, every frame of an animation, colour under
//! fully transparent pixels excepted) with the input; none carries the fallback warning. A CMYK
//! JPEG converted to pixels says which profile was assumed, and its colours match ImageMagick's
//! conversion of the same file.

mod common;

use common::*;
use image::{AnimationDecoder, DynamicImage, RgbaImage};
use serde_json::{json, Value};

const CHECK_FAILED: &str = "lossless_check_failed_original_kept";

async fn lossless(server: &Server, file: &[u8], name: &str, extra: Value) -> (Value, Vec<u8>) {
    let mut data = json!({"api_key": server.key, "lossy": false});
    if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
        data.extend(extra.clone());
    }
    let (status, body) = json_of(upload(server, file, name, data).await).await;
    assert_eq!(status, 200, "{name}: {body}");
    let mime = format!("image/{}", body["format"].as_str().unwrap_or_default());
    let bytes = fetch_hosted(body["url"].as_str().expect("url"), &mime).await;
    (body, bytes)
}

fn codes(body: &Value) -> Vec<String> {
    body["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|w| w["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every frame on a full canvas, as a viewer shows it (one frame for a still image).
fn frames_of(bytes: &[u8]) -> Vec<RgbaImage> {
    let cursor = std::io::Cursor::new(bytes);
    let frames = match image::guess_format(bytes).expect("format") {
        image::ImageFormat::Gif => image::codecs::gif::GifDecoder::new(cursor)
            .expect("gif")
            .into_frames()
            .collect_frames(),
        image::ImageFormat::WebP => {
            let decoder = image::codecs::webp::WebPDecoder::new(cursor).expect("webp");
            if !decoder.has_animation() {
                return vec![decode_rgba(bytes)];
            }
            decoder.into_frames().collect_frames()
        }
        image::ImageFormat::Png => {
            let decoder = image::codecs::png::PngDecoder::new(cursor).expect("png");
            if !decoder.is_apng().expect("png header") {
                return vec![decode_rgba(bytes)];
            }
            decoder.apng().expect("apng").into_frames().collect_frames()
        }
        _ => return vec![decode_rgba(bytes)],
    };
    frames
        .expect("frames decode")
        .into_iter()
        .map(image::Frame::into_buffer)
        .collect()
}

/// Pixels that differ, fully transparent pixels being equal whatever their colour.
fn differing<T: PartialEq + Default + Copy>(a: &[T], b: &[T]) -> usize {
    assert_eq!(a.len(), b.len(), "sizes differ");
    let clear = T::default();
    a.chunks_exact(4)
        .zip(b.chunks_exact(4))
        .filter(|(p, q)| p != q && !(p[3] == clear && q[3] == clear))
        .count()
}

/// libwebp folds a frame identical to the previous one into its duration: a run of identical
/// frames counts as one.
fn distinct_runs(frames: Vec<RgbaImage>) -> Vec<RgbaImage> {
    let mut kept: Vec<RgbaImage> = Vec::new();
    for frame in frames {
        if kept
            .last()
            .is_none_or(|last| differing(last.as_raw(), frame.as_raw()) > 0)
        {
            kept.push(frame);
        }
    }
    kept
}

fn is_deep(image: &DynamicImage) -> bool {
    image.color().bytes_per_pixel() > image.color().channel_count()
}

/// Asserts `output` shows exactly `input`'s pixels: at 16 bits when the input has them and the
/// output is a PNG, every frame of an animation.
fn assert_same_pixels(name: &str, input: &[u8], output: &[u8]) {
    let (before, after) = (decode(input), decode(output));
    assert_eq!(
        (before.width(), before.height()),
        (after.width(), after.height()),
        "{name}: size"
    );
    let png_out = image::guess_format(output).ok() == Some(image::ImageFormat::Png);
    if is_deep(&before) && png_out {
        let (a, b) = (before.to_rgba16(), after.to_rgba16());
        assert_eq!(
            differing(a.as_raw(), b.as_raw()),
            0,
            "{name}: 16-bit pixels"
        );
    }
    let (a, b) = (
        distinct_runs(frames_of(input)),
        distinct_runs(frames_of(output)),
    );
    assert_eq!(a.len(), b.len(), "{name}: frame count");
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        assert_eq!(a.dimensions(), b.dimensions(), "{name}: frame {i} size");
        assert_eq!(differing(a.as_raw(), b.as_raw()), 0, "{name}: frame {i}");
    }
}

/// The lossless shortcut (same format, no resize) on the corpus PNGs, the animated GIFs, the
/// WebPs and the 16-bit / palette / grey edge PNGs: pixels identical, the check passed.
#[tokio::test]
async fn recoded_pngs_gifs_and_webps_keep_every_pixel() {
    let server = Server::start(&[]);
    let files = [
        "png_astronaut_photo.png",
        "png_coffee_photo.png",
        "png_emerald_logo_rgba.png",
        "png_page_gray.png",
        "png_plasma_screenshot.png",
        "png_skimage_logo_rgba.png",
        "gif_chi_anim.gif",
        "edge/gif_anim_transparency.gif",
        "edge/webp_lossless.webp",
        "edge/webp_alpha_lossy.webp",
        "edge/webp_lossy.webp",
        "edge/png16_rgba.png",
        "edge/png_interlaced_palette_trns.png",
        "edge/png_palette_trns.png",
        "edge/png_gray_alpha.png",
        "edge/apng_palette_alpha_3frames.png",
    ];
    let mut shrank = 0;
    for name in files {
        let input = corpus(name);
        let (body, output) = lossless(&server, &input, name, json!({})).await;
        assert!(
            !codes(&body).contains(&CHECK_FAILED.to_string()),
            "{name}: {body}"
        );
        assert_same_pixels(name, &input, &output);
        if output.len() < input.len() {
            shrank += 1;
        }
    }
    // Most of them get smaller, so the check ran on real re-codes, not only on the originals.
    assert!(shrank >= 10, "only {shrank} files got smaller");
}

/// Every valid PngSuite file (colour types, bit depths 1–16, interlacing, transparency):
/// the oxipng re-code is pixel-identical at the input's own depth.
#[tokio::test]
async fn every_valid_pngsuite_file_is_recoded_pixel_identically() {
    let server = Server::start(&[]);
    let dir = corpus_dir().join("pngsuite");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("pngsuite")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        // x*: the suite's deliberately corrupt files.
        .filter(|n| n.ends_with(".png") && !n.starts_with('x') && n != "PngSuite.png")
        .collect();
    names.sort();
    assert!(names.len() > 140, "{} files", names.len());
    let mut shrank = 0;
    for name in &names {
        let input = corpus(&format!("pngsuite/{name}"));
        let (body, output) = lossless(&server, &input, name, json!({})).await;
        assert!(
            !codes(&body).contains(&CHECK_FAILED.to_string()),
            "{name}: {body}"
        );
        assert_same_pixels(name, &input, &output);
        shrank += usize::from(output.len() < input.len());
    }
    assert!(
        shrank > names.len() / 2,
        "{shrank} of {} shrank",
        names.len()
    );
}

/// Conversions with `lossy: false` go through the lossless encoders and are proven too: PNG to
/// WebP (8-bit), an animated GIF to animated WebP (every frame), and `auto`. An animation whose
/// re-encode is not pixel-identical (libwebp's animation encoder changes a few hundred pixels
/// of some frames of gif_chi_anim.gif) is kept, converted, and says it is not lossless.
#[tokio::test]
async fn lossless_conversions_keep_every_pixel() {
    let server = Server::start(&[]);
    for (name, format) in [
        ("png_skimage_logo_rgba.png", "webp"),
        ("edge/png_palette_trns.png", "webp"),
        ("edge/webp_alpha_lossy.webp", "png"),
        ("gif_chi_anim.gif", "webp"),
        ("edge/gif_anim_transparency.gif", "webp"),
        ("png_plasma_screenshot.png", "auto"),
    ] {
        let input = corpus(name);
        let (body, output) = lossless(&server, &input, name, json!({"format": format})).await;
        let warnings = codes(&body);
        assert!(
            !warnings.contains(&CHECK_FAILED.to_string()),
            "{name}: {body}"
        );
        if format != "auto" {
            assert_eq!(body["format"], format, "{name}: {body}");
        }
        if warnings.contains(&"lossless_not_available".to_string()) {
            assert!(
                name.ends_with(".gif"),
                "{name}: only animations may say so: {body}"
            );
            continue;
        }
        assert_same_pixels(name, &input, &output);
    }
}

/// GIF holds 256 colours: a photo asked for as lossless GIF is the closest palette and says so
/// (`lossless_not_available`); a palette image within GIF's limits is proven identical.
#[tokio::test]
async fn gif_output_is_proven_or_says_it_is_not_lossless() {
    let server = Server::start(&[]);
    let photo = corpus("png_coffee_photo.png");
    let (body, output) = lossless(&server, &photo, "photo.png", json!({"format": "gif"})).await;
    assert_eq!(body["format"], "gif", "{body}");
    assert!(
        codes(&body).contains(&"lossless_not_available".to_string()),
        "{body}"
    );
    let (a, b) = (decode_rgba(&photo), decode_rgba(&output));
    assert!(
        differing(a.as_raw(), b.as_raw()) > 0,
        "a photo cannot fit 256 colours"
    );

    let palette = corpus("pngsuite/basn3p08.png");
    let (body, output) = lossless(&server, &palette, "p.png", json!({"format": "gif"})).await;
    assert_eq!(body["format"], "gif", "{body}");
    let warnings = codes(&body);
    assert!(
        !warnings.contains(&"lossless_not_available".to_string())
            && !warnings.contains(&CHECK_FAILED.to_string()),
        "{body}"
    );
    assert_same_pixels("basn3p08.png as GIF", &palette, &output);
}

/// Mean RGB of a region of an upright image.
fn mean_rgb(image: &RgbaImage, x: u32, y: u32, w: u32, h: u32) -> [f64; 3] {
    let mut sum = [0f64; 3];
    for py in y..y + h {
        for px in x..x + w {
            let p = image.get_pixel(px, py);
            for (s, &c) in sum.iter_mut().zip(&p.0[..3]) {
                *s += f64::from(c);
            }
        }
    }
    sum.map(|s| s / f64::from(w * h))
}

/// The YCCK JPEG without a profile, converted to pixels (PNG output): warning
/// `cmyk_profile_assumed`, and colours within 4/255 of ImageMagick 6.9.11's conversion of the
/// same file (`convert cmyk_adobe_ycck.jpg -colorspace sRGB -crop WxH+X+Y -format
/// '%[fx:mean.r*255] …' info:`, computed once; the constants are its answers). The picture is
/// red letters on black: inverted inks would give cyan on white. The lossless JPEG re-code keeps
/// the inks as they are, so it converts nothing and warns nothing.
#[tokio::test]
async fn a_cmyk_jpeg_without_a_profile_is_converted_with_a_named_assumption() {
    let server = Server::start(&[]);
    let input = corpus("edge/cmyk_adobe_ycck.jpg");
    let (body, output) = lossless(&server, &input, "cmyk.jpg", json!({"format": "png"})).await;
    let warning = body["warnings"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["code"] == "cmyk_profile_assumed"))
        .unwrap_or_else(|| panic!("no cmyk_profile_assumed: {body}"));
    let message = warning["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("YCCK") && message.contains("no ICC profile"),
        "{message}"
    );
    let rgba = decode_rgba(&output);
    assert_eq!(rgba.dimensions(), (100, 100));
    let imagemagick = [
        ((0, 0, 100, 100), [30.465, 5.562, 7.044]),
        ((0, 75, 100, 25), [1.276, 4.117, 4.510]),
        ((0, 0, 16, 3), [255.0, 13.333, 24.333]),
    ];
    for ((x, y, w, h), expected) in imagemagick {
        let mean = mean_rgb(&rgba, x, y, w, h);
        for (m, e) in mean.iter().zip(expected) {
            assert!(
                (m - e).abs() <= 4.0,
                "region {w}x{h}+{x}+{y}: {mean:?} against ImageMagick's {expected:?}"
            );
        }
    }

    let (body, _) = lossless(&server, &input, "cmyk.jpg", json!({})).await;
    assert!(
        !codes(&body).contains(&"cmyk_profile_assumed".to_string()),
        "{body}"
    );
}
