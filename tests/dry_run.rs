//! End-to-end dry runs (issue 21): `dry_run: true` answers what the same request would make —
//! the upright source size, each output's crop rectangle in source pixels, its size and
//! format, the warnings known before encoding — without hosting or metering anything. Every
//! prediction is checked against the real request: same size and format, and the real output's
//! pixels are the source cut at the predicted rectangle (and resampled to the predicted place),
//! closer to it than to the same window moved.

mod common;

use common::*;
use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};
use serde_json::{json, Value};

/// 2560x1600.
const PHOTO: &str = "photo_garden.jpg";

async fn answer(server: &Server, file: &[u8], mut options: Value) -> Value {
    options["api_key"] = json!(server.key);
    let (status, body) = json_of(upload(server, file, "in", options).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The dry run and the real answer of the same options.
async fn both(server: &Server, file: &[u8], options: Value) -> (Value, Value) {
    let mut dry = options.clone();
    dry["dry_run"] = json!(true);
    let planned = answer(server, file, dry).await;
    assert_eq!(planned["dry_run"], json!(true), "{planned}");
    assert!(
        planned.get("url").is_none(),
        "a dry run hosts nothing: {planned}"
    );
    (planned, answer(server, file, options).await)
}

fn rect(value: &Value) -> (u32, u32, u32, u32) {
    let field = |name: &str| {
        value[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} in {value}")) as u32
    };
    (field("x"), field("y"), field("width"), field("height"))
}

fn codes(body: &Value) -> Vec<String> {
    body["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|w| w["code"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn hosted(body: &Value) -> DynamicImage {
    let url = body["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no url: {body}"));
    let r = client().get(url).send().await.expect("get hosted");
    assert_eq!(r.status(), 200);
    decode(&r.bytes().await.expect("bytes"))
}

/// Mean absolute difference over RGB samples of two same-sized images.
fn mean_difference(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.len() as f64
}

/// `source` cut at `crop` and resampled to `size`.
fn cut(source: &DynamicImage, crop: (u32, u32, u32, u32), size: (u32, u32)) -> DynamicImage {
    let (x, y, w, h) = crop;
    let window = source.crop_imm(x, y, w, h);
    if (w, h) == size {
        window
    } else {
        window.resize_exact(size.0, size.1, FilterType::Lanczos3)
    }
}

/// The same window moved by a quarter of its size, where the source leaves room.
fn moved(crop: (u32, u32, u32, u32), source: (u32, u32)) -> Option<(u32, u32, u32, u32)> {
    let (x, y, w, h) = crop;
    let shift = |at: u32, len: u32, room: u32| {
        let step = (len / 4).max(1);
        if at + len + step <= room {
            Some(at + step)
        } else if at >= step {
            Some(at - step)
        } else {
            None
        }
    };
    match (shift(x, w, source.0), shift(y, h, source.1)) {
        (Some(nx), _) => Some((nx, y, w, h)),
        (None, Some(ny)) => Some((x, ny, w, h)),
        (None, None) => None,
    }
}

/// Checks one planned output against the real one: size, format, the geometry warnings, and
/// the pixels of the placed region (within `tolerance`: lossless outputs differ from the
/// reference only by the resampler, lossy ones by the encoder too).
fn check_output(
    what: &str,
    source: &DynamicImage,
    planned: &Value,
    real: &Value,
    output: &DynamicImage,
    tolerance: f64,
) {
    for field in ["final_width", "final_height"] {
        assert_eq!(planned[field], real[field], "{what}: {field}");
    }
    assert_eq!(
        output.dimensions(),
        (
            real["final_width"].as_u64().unwrap() as u32,
            real["final_height"].as_u64().unwrap() as u32
        ),
        "{what}"
    );
    assert_eq!(planned["format"], real["format"], "{what}: format");
    let (planned_codes, real_codes) = (codes(planned), codes(real));
    for code in &planned_codes {
        assert!(
            real_codes.contains(code),
            "{what}: {code} predicted, real {real_codes:?}"
        );
    }
    for geometry in ["not_enlarged", "crop_window_clamped"] {
        assert_eq!(
            planned_codes.iter().any(|c| c == geometry),
            real_codes.iter().any(|c| c == geometry),
            "{what}: {geometry}"
        );
    }
    let crop = rect(&planned["crop"]);
    let (px, py, pw, ph) = rect(&planned["placed"]);
    let region = output.crop_imm(px, py, pw, ph);
    let predicted = mean_difference(&cut(source, crop, (pw, ph)), &region);
    assert!(
        predicted < tolerance,
        "{what}: the output differs from the source cut at {crop:?} by {predicted:.2}"
    );
    if let Some(other) = moved(crop, source.dimensions()) {
        let elsewhere = mean_difference(&cut(source, other, (pw, ph)), &region);
        assert!(
            elsewhere > predicted * 2.0 && elsewhere > 2.0,
            "{what}: the window {crop:?} ({predicted:.2}) is no closer than {other:?} \
             ({elsewhere:.2})"
        );
    }
}

#[tokio::test]
async fn dry_runs_predict_every_strategy_and_gravity_exactly() {
    let server = Server::start(&[]);
    let photo = corpus(PHOTO);
    let source = decode(&photo);
    let mut cases = vec![
        json!({"strategy": "exact", "width": 300, "height": 200}),
        json!({"strategy": "portrait", "height": 400}),
        json!({"strategy": "landscape", "width": 640}),
        json!({"strategy": "auto", "width": 400, "height": 400}),
        json!({"strategy": "portrait", "height": 4000}),
        json!({"strategy": "crop", "width": 200, "height": 100, "x": 10, "y": 20, "scale": 50}),
        json!({"strategy": "crop", "width": 300, "height": 200, "x": 2400, "y": 1500}),
        json!({"strategy": "fill", "width": 400, "height": 400, "background": "#f60"}),
    ];
    for gravity in ["nw", "n", "ne", "w", "c", "e", "sw", "s", "se", "smart"] {
        cases.push(json!({"strategy": "crop", "width": 320, "height": 240, "crop_mode": gravity}));
        cases.push(json!({"strategy": "fit", "width": 300, "height": 300, "crop_mode": gravity}));
    }
    for gravity in ["c", "smart"] {
        cases.push(json!({"strategy": "square", "size": 256, "crop_mode": gravity}));
    }
    for resize in cases {
        let options = json!({"resize": resize, "format": "png"});
        let (planned, real) = both(&server, &photo, options).await;
        assert_eq!(
            (
                planned["original_width"].as_u64(),
                planned["original_height"].as_u64()
            ),
            (Some(2560), Some(1600))
        );
        assert_eq!(planned["original_format"], "jpeg");
        let output = hosted(&real).await;
        check_output(&resize.to_string(), &source, &planned, &real, &output, 3.0);
    }
}

#[tokio::test]
async fn a_resize_array_is_planned_entry_by_entry_and_nothing_is_metered() {
    let server = Server::start(&[]);
    let photo = corpus(PHOTO);
    let source = decode(&photo);
    let usage = || async {
        let r = client()
            .get(server.url("/v1/usage"))
            .bearer_auth(&server.key)
            .send()
            .await
            .expect("usage");
        let (status, body) = json_of(r).await;
        assert_eq!(status, 200, "{body}");
        (body["requests"].as_u64(), body["bytes"].as_u64())
    };
    let before = usage().await;
    let options = json!({
        "lossy": true,
        "quality": 85,
        "resize": [
            {"id": "thumb", "strategy": "square", "size": 128, "crop_mode": "smart"},
            {"id": "wide", "strategy": "landscape", "width": 800},
            {"id": "box", "strategy": "crop", "width": 500, "height": 300, "crop_mode": "se"}
        ]
    });
    let mut dry = options.clone();
    dry["dry_run"] = json!(true);
    let planned = answer(&server, &photo, dry).await;
    assert_eq!(usage().await, before, "a dry run is not metered");
    let results = planned["results"].as_array().expect("results");
    let ids: Vec<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["thumb", "wide", "box"]);

    let real = answer(&server, &photo, options).await;
    assert_ne!(usage().await, before, "the real request is metered");
    for (planned, real) in results
        .iter()
        .zip(real["results"].as_array().expect("results"))
    {
        assert_eq!(planned["id"], real["id"]);
        assert_eq!(planned["format"], "jpeg");
        let output = hosted(real).await;
        check_output(
            planned["id"].as_str().unwrap(),
            &source,
            planned,
            real,
            &output,
            6.0,
        );
    }
}

#[tokio::test]
async fn lossless_rotation_is_predicted_with_its_trimmed_edges() {
    // 204x247, 4:2:0: 12 columns and 7 rows past the last whole 16x16 block group.
    let server = Server::start(&[]);
    for orientation in 1..=8u8 {
        let input = jpeg_with_orientation("edge/orientation_4_nonsquare.jpg", orientation);
        let (planned, real) = both(&server, &input, json!({"lossy": false})).await;
        let what = format!("orientation {orientation}");
        let mut upright = decode(&input);
        upright.apply_orientation(image::metadata::Orientation::from_exif(orientation).unwrap());
        let (x, y, w, h) = rect(&planned["crop"]);
        assert_eq!(
            (
                planned["final_width"].as_u64(),
                planned["final_height"].as_u64()
            ),
            (Some(u64::from(w)), Some(u64::from(h))),
            "{what}"
        );
        if orientation > 1 {
            assert!(codes(&planned).contains(&"exif_orientation_applied".to_string()));
        }
        // Every turn but the transpose (5) reverses an axis with a partial block group.
        assert_eq!(
            (w, h) != upright.dimensions(),
            ![1, 5].contains(&orientation),
            "{what}: crop {:?}",
            (x, y, w, h)
        );
        assert_eq!(planned["original_may_be_returned"], json!(true));
        let output = hosted(&real).await;
        if real["warnings"].as_array().is_some_and(|w| {
            w.iter()
                .any(|w| w["code"] == "original_returned_not_smaller")
        }) {
            continue;
        }
        check_output(&what, &upright, &planned, &real, &output, 3.0);
        assert!(x + w <= upright.width() && y + h <= upright.height());
    }
}

#[tokio::test]
async fn auto_and_animations_name_their_candidates() {
    let server = Server::start(&[]);
    let photo = corpus(PHOTO);
    let (planned, real) = both(
        &server,
        &photo,
        json!({"lossy": true, "quality": 80, "format": "auto", "resize": {"strategy": "landscape", "width": 320}}),
    )
    .await;
    assert_eq!(planned["format"], Value::Null);
    assert_eq!(planned["candidates"], json!(["jpeg", "webp", "avif"]));
    assert!(planned["candidates"]
        .as_array()
        .unwrap()
        .contains(&real["format"]));
    assert_eq!(planned["final_width"], real["final_width"]);

    let gif = corpus("gif_chi_anim.gif");
    let source = decode(&gif);
    let (planned, real) = both(
        &server,
        &gif,
        json!({"format": "webp", "resize": {"strategy": "crop", "width": 60, "height": 60, "crop_mode": "smart"}}),
    )
    .await;
    assert_eq!(planned["animated"], json!(true));
    assert_eq!(planned["format"], "webp");
    assert!(planned["original_frames"].as_u64().unwrap() > 1);
    let output = hosted(&real).await;
    check_output(
        "animated smart crop",
        &source,
        &planned,
        &real,
        &output,
        3.0,
    );
}

#[tokio::test]
async fn a_dry_run_of_a_bad_request_fails_as_the_request_would() {
    let server = Server::start(&[]);
    let photo = corpus(PHOTO);
    let mut options = json!({
        "api_key": server.key,
        "dry_run": true,
        "format": "jpeg",
        "resize": {"strategy": "fill", "width": 100, "height": 100, "background": "transparent"}
    });
    let (status, body) = json_of(upload(&server, &photo, "in", options.clone()).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_field");
    options["dry_run"] = json!("yes");
    let (status, body) = json_of(upload(&server, &photo, "in", options).await).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("dry_run"));
    let (status, body) = json_of(
        upload(
            &server,
            b"not an image",
            "in",
            json!({"api_key": server.key, "dry_run": true}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 415, "{body}");
}
