//! End-to-end resize and crop (SPEC §4): every strategy through the HTTP API on real photos,
//! gravity and fill proved on pixels, resize arrays, orientation, and the 400s.

mod common;

use common::*;
use image::{DynamicImage, GenericImageView, Rgba, RgbaImage};
use serde_json::{json, Value};

async fn resize_upload(server: &Server, file: &[u8], resize: Value) -> (u16, Value) {
    json_of(
        upload(
            server,
            file,
            "in",
            json!({"api_key": server.key, "resize": resize}),
        )
        .await,
    )
    .await
}

async fn hosted_image(body: &Value) -> DynamicImage {
    let url = body["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no url in {body}"));
    let r = client().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let img = image::load_from_memory(&bytes).expect("decodes");
    assert_eq!(
        (u64::from(img.width()), u64::from(img.height())),
        (
            body["final_width"].as_u64().unwrap(),
            body["final_height"].as_u64().unwrap()
        ),
        "hosted bytes must decode to the reported size"
    );
    img
}

fn png_bytes(img: &RgbaImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn every_strategy_gives_the_promised_size_on_a_real_photo() {
    let server = Server::start(&[]);
    let photo = corpus("photo_garden.jpg"); // 2560x1600
    let cases = [
        (
            json!({"strategy": "exact", "width": 300, "height": 200}),
            (300, 200),
        ),
        (json!({"strategy": "portrait", "height": 400}), (640, 400)),
        (json!({"strategy": "landscape", "width": 800}), (800, 500)),
        (
            json!({"strategy": "auto", "width": 400, "height": 400}),
            (400, 250),
        ),
        (
            json!({"strategy": "fit", "width": 300, "height": 300}),
            (300, 300),
        ),
        (
            json!({"strategy": "fit", "width": 300, "height": 300, "crop_mode": "smart"}),
            (300, 300),
        ),
        (
            json!({"strategy": "crop", "width": 100, "height": 50, "crop_mode": "se"}),
            (100, 50),
        ),
        (
            json!({"strategy": "crop", "width": 200, "height": 100, "x": 10, "y": 20, "scale": 50}),
            (100, 50),
        ),
        (json!({"strategy": "square", "size": 256}), (256, 256)),
        (
            json!({"strategy": "fill", "width": 400, "height": 400, "background": "#f60"}),
            (400, 400),
        ),
    ];
    for (resize, (w, h)) in cases {
        let (status, body) = resize_upload(&server, &photo, resize.clone()).await;
        assert_eq!(status, 200, "{resize} → {body}");
        assert_eq!(
            (body["final_width"].as_u64(), body["final_height"].as_u64()),
            (Some(w), Some(h)),
            "{resize}"
        );
        assert_eq!(
            (
                body["original_width"].as_u64(),
                body["original_height"].as_u64()
            ),
            (Some(2560), Some(1600))
        );
        let img = hosted_image(&body).await;
        if resize["strategy"] == "fill" {
            // 2560x1600 into 400x400 → 400x250 centred: 75 px bands of #ff6600 above and below.
            for (x, y) in [(200, 10), (5, 390)] {
                let p = img.get_pixel(x, y).0;
                assert!(
                    p[0] > 245 && p[1].abs_diff(102) < 8 && p[2] < 10,
                    "padding at ({x},{y}) is {p:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn gravity_picks_the_region_and_custom_crop_is_exact() {
    let server = Server::start(&[]);
    let colour = |region: u32| {
        Rgba([
            (region * 25) as u8,
            255 - (region * 25) as u8,
            (region * 10) as u8,
            255,
        ])
    };
    let mut grid = RgbaImage::new(300, 300);
    for (x, y, p) in grid.enumerate_pixels_mut() {
        *p = colour((y / 100) * 3 + x / 100);
    }
    let file = png_bytes(&grid);
    let modes = [
        ("nw", 0),
        ("n", 1),
        ("tr", 2),
        ("w", 3),
        ("c", 4),
        ("r", 5),
        ("bl", 6),
        ("s", 7),
        ("se", 8),
    ];
    for (mode, region) in modes {
        let (status, body) = resize_upload(
            &server,
            &file,
            json!({"strategy": "crop", "width": 100, "height": 100, "crop_mode": mode}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let img = hosted_image(&body).await.to_rgba8();
        assert!(
            img.pixels().all(|p| *p == colour(region)),
            "crop_mode {mode} should give region {region}"
        );
    }
    // Unknown crop mode → centre, named in warnings.
    let (status, body) = resize_upload(
        &server,
        &file,
        json!({"strategy": "crop", "width": 100, "height": 100, "crop_mode": "middle"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["warnings"].to_string().contains("unknown_crop_mode"),
        "{body}"
    );
    assert!(hosted_image(&body)
        .await
        .to_rgba8()
        .pixels()
        .all(|p| *p == colour(4)));

    // Custom rectangle: exactly those source pixels.
    let (status, body) = resize_upload(
        &server,
        &file,
        json!({"strategy": "crop", "x": 90, "y": 190, "width": 30, "height": 20}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let img = hosted_image(&body).await.to_rgba8();
    for (x, y, p) in img.enumerate_pixels() {
        assert_eq!(*p, *grid.get_pixel(90 + x, 190 + y));
    }
    // A window larger than the image is clamped and said so.
    let (status, body) = resize_upload(
        &server,
        &file,
        json!({"strategy": "crop", "x": 250, "y": 0, "width": 100, "height": 50}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["final_width"], 50);
    assert!(
        body["warnings"].to_string().contains("crop_window_clamped"),
        "{body}"
    );
}

#[tokio::test]
async fn smart_crop_keeps_the_detailed_region_and_fill_can_be_transparent() {
    let server = Server::start(&[]);
    // Flat grey except a checkerboard in the right third.
    let mut img = RgbaImage::from_pixel(600, 200, Rgba([128, 128, 128, 255]));
    for (x, y, p) in img.enumerate_pixels_mut() {
        if x >= 400 && ((x / 4) + (y / 4)) % 2 == 0 {
            *p = Rgba([255, 255, 255, 255]);
        }
    }
    let file = png_bytes(&img);
    let (status, body) = resize_upload(
        &server,
        &file,
        json!({"strategy": "fit", "width": 200, "height": 200, "crop_mode": "smart"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let out = hosted_image(&body).await.to_rgba8();
    let white = out.pixels().filter(|p| p[0] == 255).count();
    assert!(
        white > out.len() as usize / 4 / 3,
        "smart crop should land on the checkerboard ({white} white)"
    );

    let (status, body) = resize_upload(
        &server,
        &file,
        json!({"strategy": "fill", "width": 300, "height": 300, "background": "transparent"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let out = hosted_image(&body).await.to_rgba8();
    assert_eq!(out.get_pixel(150, 5)[3], 0, "padding is transparent");
    assert_eq!(out.get_pixel(150, 150)[3], 255);
}

#[tokio::test]
async fn resize_array_gives_one_hosted_output_per_entry() {
    let server = Server::start(&[]);
    let photo = corpus("photo_wood.jpg"); // 2560x1920
    let (status, body) = resize_upload(
        &server,
        &photo,
        json!([
            {"id": "thumb", "strategy": "square", "size": 64},
            {"id": "wide", "strategy": "landscape", "width": 640},
            {"id": "tall", "strategy": "exact", "width": 90, "height": 160}
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().expect("results");
    let expect = [("thumb", 64, 64), ("wide", 640, 480), ("tall", 90, 160)];
    assert_eq!(results.len(), 3);
    for (result, (id, w, h)) in results.iter().zip(expect) {
        assert_eq!(result["id"], id);
        assert_eq!(
            (
                result["final_width"].as_u64(),
                result["final_height"].as_u64()
            ),
            (Some(w), Some(h))
        );
        assert_eq!(result["original_size"], photo.len() as u64);
        hosted_image(result).await;
    }
    let urls: std::collections::HashSet<_> = results
        .iter()
        .map(|r| r["url"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls.len(), 3);
}

#[tokio::test]
async fn orientation_is_applied_before_planning() {
    let server = Server::start(&[]);
    // Stored 2x1 with orientation 8: the viewer sees 1x2, so portrait height 4 is 2 wide.
    let (status, body) = resize_upload(
        &server,
        &corpus("edge/orientation_8_2x1.jpg"),
        json!({"strategy": "portrait", "height": 4, "enlarge": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["final_width"].as_u64(), body["final_height"].as_u64()),
        (Some(2), Some(4))
    );
    // Portrait never enlarges unless asked, and says so.
    let (status, body) = resize_upload(
        &server,
        &corpus("edge/orientation_4_nonsquare.jpg"),
        json!({"strategy": "portrait", "height": 1000}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["final_width"].as_u64(), body["final_height"].as_u64()),
        (Some(204), Some(247))
    );
    assert!(
        body["warnings"].to_string().contains("not_enlarged"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_resize_requests_are_400_naming_the_field() {
    let server = Server::start(&[]);
    let photo = corpus("edge/gray.jpg");
    let cases = [
        (
            json!({"strategy": "stretch", "width": 10}),
            "resize.strategy",
        ),
        (json!({"strategy": "exact", "width": 10}), "resize.height"),
        (
            json!({"strategy": "exact", "width": 0, "height": 10}),
            "resize.width",
        ),
        (
            json!({"strategy": "exact", "width": 20000, "height": 10}),
            "resize.width",
        ),
        (
            json!({"strategy": "landscape", "width": "100"}),
            "resize.width",
        ),
        (
            json!({"strategy": "fill", "width": 10, "height": 10, "background": "#ggg"}),
            "resize.background",
        ),
        (
            json!({"strategy": "fill", "width": 10, "height": 10, "background": "transparent"}),
            "resize.background",
        ),
        (json!({"strategy": "square"}), "resize.size"),
    ];
    for (resize, field) in cases {
        let (status, body) = resize_upload(&server, &photo, resize.clone()).await;
        assert_eq!(status, 400, "{resize} → {body}");
        assert_eq!(
            body["error"]["details"]["field"], field,
            "{resize} → {body}"
        );
    }
    let eleven: Vec<Value> = (0..11)
        .map(|_| json!({"strategy": "square", "size": 8}))
        .collect();
    let (status, body) = resize_upload(&server, &photo, Value::Array(eleven)).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = resize_upload(&server, &photo, json!([{"id": "a", "strategy": "square", "size": 8}, {"id": "a", "strategy": "square", "size": 9}])).await;
    assert_eq!(status, 400, "{body}");
}
