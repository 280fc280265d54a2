//! End-to-end: the real binary on a free port, called over HTTP with a real client, on real
//! images from ../shared/corpus. Outputs are decoded and compared, not just status-checked.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn assert_int_fields(body: &serde_json::Value) {
    for field in [
        "original_size",
        "original_width",
        "original_height",
        "final_size",
        "final_width",
        "final_height",
        "bytes_saved",
    ] {
        assert!(body[field].is_u64(), "{field} must be an integer: {body}");
    }
    assert!(
        body["url"].is_string() && body["expires_at"].is_string(),
        "{body}"
    );
    assert!(
        body["warnings"].is_array() && body["stored"].is_array(),
        "{body}"
    );
}

#[tokio::test]
async fn upload_lossless_jpeg_keeps_every_pixel_and_shrinks() {
    let server = Server::start(&[]);
    let input = corpus("photo_blinds.jpg");
    let (status, body) = json_of(
        upload(
            &server,
            &input,
            "blinds.jpg",
            json!({"api_key": server.key}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_int_fields(&body);
    assert_eq!(body["original_size"], input.len() as u64);
    assert_eq!(
        (body["final_width"].as_u64(), body["final_height"].as_u64()),
        (Some(1920), Some(1200))
    );
    assert_eq!(body["format"], "jpeg");
    assert!(
        body.get("quality").is_none(),
        "lossless has no quality: {body}"
    );
    let saved = body["bytes_saved"].as_u64().unwrap();
    assert!(
        saved > 0,
        "a q98 JPEG with EXIF must shrink losslessly: {body}"
    );
    assert_eq!(
        body["final_size"].as_u64().unwrap() + saved,
        input.len() as u64
    );

    let hosted = fetch_hosted(body["url"].as_str().unwrap(), "image/jpeg").await;
    assert_eq!(hosted.len() as u64, body["final_size"].as_u64().unwrap());
    let (a, b) = (decode_rgba(&input), decode_rgba(&hosted));
    assert_eq!(a.dimensions(), b.dimensions());
    assert!(a.as_raw() == b.as_raw(), "lossless JPEG changed pixels");
}

#[tokio::test]
async fn upload_lossless_png_is_pixel_identical() {
    let server = Server::start(&[]);
    for name in [
        "png_emerald_logo_rgba.png",
        "png_page_gray.png",
        "edge/png16_rgba.png",
        "edge/png_gray_alpha.png",
    ] {
        let input = corpus(name);
        let (status, body) =
            json_of(upload(&server, &input, name, json!({"api_key": server.key})).await).await;
        assert_eq!(status, 200, "{name}: {body}");
        let hosted = fetch_hosted(body["url"].as_str().unwrap(), "image/png").await;
        assert!(hosted.len() <= input.len(), "{name} grew");
        assert_eq!(
            decode_rgba16(&input).as_raw(),
            decode_rgba16(&hosted).as_raw(),
            "{name} pixels changed"
        );
    }
    // Stored (uncompressed) deflate must shrink a lot.
    let input = corpus("edge/png_gray_alpha.png");
    let (_, body) =
        json_of(upload(&server, &input, "ga.png", json!({"api_key": server.key})).await).await;
    assert!(
        body["final_size"].as_u64().unwrap() * 2 < input.len() as u64,
        "{body}"
    );
}

#[tokio::test]
async fn url_fetch_lossy_jpeg_at_quality() {
    let files = start_static_server().await;
    let server = Server::start(&["--fetch-allow", "127.0.0.1/32"]);
    let input = corpus("photo_storm.jpg");
    let url = format!("http://{files}/corpus/photo_storm.jpg");
    let (status, body) = json_of(
        post_json(
            &server,
            json!({"api_key": server.key, "url": url, "lossy": true, "quality": 70}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_int_fields(&body);
    assert_eq!(body["quality"], 70);
    assert_eq!(body["original_size"], input.len() as u64);
    assert!(
        body["final_size"].as_u64().unwrap() * 2 < input.len() as u64,
        "q98 → q70 should halve: {body}"
    );
    let hosted = fetch_hosted(body["url"].as_str().unwrap(), "image/jpeg").await;
    let img = decode_rgba(&hosted);
    assert_eq!(img.dimensions(), (1920, 1280));
    // Lossy but close: mean absolute difference per channel stays small.
    let src = decode_rgba(&input);
    let diff: u64 = src
        .as_raw()
        .iter()
        .zip(img.as_raw())
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    let mean = diff as f64 / src.as_raw().len() as f64;
    assert!(mean < 6.0, "mean abs diff {mean}");

    // The alias and the Bearer header work too.
    let r = client()
        .post(server.url("/v1/url"))
        .bearer_auth(&server.key)
        .json(&json!({"url": url, "lossy": true}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 200, "{body}");
    // Without quality the perceptual search picks one and reports its score.
    assert!(body["quality"].is_u64(), "{body}");
    assert!(body["ssimulacra2"].as_f64().unwrap() >= 80.0, "{body}");
}

#[tokio::test]
async fn lossy_png_gif_webp_and_orientation() {
    let server = Server::start(&[]);
    // Lossy PNG: palette quantisation, alpha kept.
    let input = corpus("png_emerald_logo_rgba.png");
    let (status, body) = json_of(
        upload(
            &server,
            &input,
            "e.png",
            json!({"api_key": server.key, "lossy": true}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["final_size"].as_u64().unwrap() * 2 < input.len() as u64,
        "{body}"
    );
    let out = decode_rgba(&fetch_hosted(body["url"].as_str().unwrap(), "image/png").await);
    let src = decode_rgba(&input);
    assert_eq!(out.dimensions(), src.dimensions());
    let alpha_diff = src
        .pixels()
        .zip(out.pixels())
        .filter(|(a, b)| a[3].abs_diff(b[3]) > 32)
        .count();
    assert!(
        alpha_diff < (src.len() / 1000) as usize,
        "alpha lost in {alpha_diff} pixels"
    );

    // Animated GIF keeps all its frames.
    let gif = corpus("gif_chi_anim.gif");
    let (status, body) =
        json_of(upload(&server, &gif, "chi.gif", json!({"api_key": server.key})).await).await;
    assert_eq!(status, 200, "{body}");
    let hosted = fetch_hosted(body["url"].as_str().unwrap(), "image/gif").await;
    assert!(hosted.len() <= gif.len());
    assert_eq!(gif_frames(&hosted), 31);

    // Lossless WebP stays pixel-identical; lossy WebP gets smaller than lossless input.
    let webp = corpus("edge/webp_lossless.webp");
    let (status, body) =
        json_of(upload(&server, &webp, "l.webp", json!({"api_key": server.key})).await).await;
    assert_eq!(status, 200, "{body}");
    let hosted = fetch_hosted(body["url"].as_str().unwrap(), "image/webp").await;
    assert_eq!(decode_rgba(&hosted).as_raw(), decode_rgba(&webp).as_raw());
    let (status, body) = json_of(
        upload(
            &server,
            &webp,
            "l.webp",
            json!({"api_key": server.key, "lossy": true, "quality": 60}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["final_size"].as_u64().unwrap() < webp.len() as u64,
        "{body}"
    );

    // EXIF orientation 8 on a 2x1 image: lossy output is upright 1x2.
    let o8 = corpus("edge/orientation_8_2x1.jpg");
    let (status, body) = json_of(
        upload(
            &server,
            &o8,
            "o.jpg",
            json!({"api_key": server.key, "lossy": true}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["original_width"].as_u64(),
            body["original_height"].as_u64()
        ),
        (Some(1), Some(2))
    );
}

fn gif_frames(bytes: &[u8]) -> usize {
    use image::AnimationDecoder;
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).expect("gif");
    decoder.into_frames().count()
}

#[tokio::test]
async fn client_mistakes_get_the_right_status_and_a_json_error() {
    let files = start_static_server().await;
    let server = Server::start(&["--fetch-allow", "127.0.0.1/32"]);
    let key = server.key.clone();
    let img = format!("http://{files}/corpus/photo_garden.jpg");

    let cases: Vec<(serde_json::Value, u16, &str)> = vec![
        (json!({"api_key": key}), 400, "missing_field"),
        (
            json!({"api_key": key, "url": img, "quality": 101}),
            400,
            "invalid_field",
        ),
        (
            json!({"api_key": key, "url": img, "quality": "high"}),
            400,
            "invalid_field",
        ),
        (
            json!({"api_key": key, "url": img, "format": "tiff"}),
            400,
            "invalid_field",
        ),
        (
            json!({"api_key": key, "url": "ftp://example.com/a.jpg"}),
            400,
            "invalid_url",
        ),
        (json!({"url": img}), 401, "missing_api_key"),
        (
            json!({"api_key": "pxk_00000000_0000", "url": img}),
            401,
            "invalid_api_key",
        ),
        (
            json!({"api_key": key, "url": format!("http://{files}/status/404")}),
            422,
            "fetch_failed",
        ),
        (
            json!({"api_key": key, "url": format!("http://{files}/corpus/edge/truncated.jpg"), "lossy": true}),
            422,
            "corrupt_image",
        ),
        (
            json!({"api_key": key, "url": format!("http://{files}/corpus/edge/not_an_image.txt")}),
            415,
            "unsupported_media_type",
        ),
        (
            json!({"api_key": key, "url": format!("http://{files}/corpus/edge/bomb_gif_65535x66601.gif")}),
            413,
            "too_many_pixels",
        ),
        (
            json!({"api_key": key, "url": format!("http://{files}/big")}),
            413,
            "input_too_large",
        ),
        (
            json!({"api_key": key, "url": format!("http://{files}/redirect/6")}),
            422,
            "fetch_failed",
        ),
        (
            json!({"api_key": key, "url": "http://10.0.0.1/x.jpg"}),
            400,
            "url_not_allowed",
        ),
        (
            json!({"api_key": key, "url": "http://[::ffff:169.254.169.254]/latest/meta-data"}),
            400,
            "url_not_allowed",
        ),
    ];
    for (body, status, code) in cases {
        let (got, err) = json_of(post_json(&server, body.clone()).await).await;
        assert_eq!(got, status, "{body} → {err}");
        assert_eq!(err["error"]["code"], code, "{body} → {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| m.len() > 10),
            "{err}"
        );
        assert!(err["error"]["request_id"].is_string(), "{err}");
    }
    // Redirects up to five are followed.
    let (got, body) = json_of(
        post_json(
            &server,
            json!({"api_key": key, "url": format!("http://{files}/redirect/4")}),
        )
        .await,
    )
    .await;
    assert_eq!(got, 200, "{body}");

    // Malformed JSON.
    let r = client()
        .post(server.url("/v1/"))
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    let (got, err) = json_of(r).await;
    assert_eq!(
        (got, err["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );

    // A truncated PNG upload is 422, a text file 415, an unknown result 404.
    let mut png = corpus("png_coffee_photo.png");
    png.truncate(png.len() / 2);
    let (got, err) = json_of(upload(&server, &png, "cut.png", json!({"api_key": key})).await).await;
    assert_eq!(got, 422, "{err}");
    let (got, err) = json_of(
        upload(
            &server,
            &corpus("edge/not_an_image.txt"),
            "a.txt",
            json!({"api_key": key}),
        )
        .await,
    )
    .await;
    assert_eq!(got, 415, "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("text"),
        "{err}"
    );
    let (got, err) = json_of(
        upload(
            &server,
            &corpus("edge/heif.heic"),
            "a.heic",
            json!({"api_key": key}),
        )
        .await,
    )
    .await;
    assert_eq!(got, 415, "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("HEIF"),
        "{err}"
    );
    let (got, _) = json_of(
        client()
            .get(server.url("/v1/images/0123456789abcdef0123456789abcdef.jpg"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got, 404);
    let (got, _) = json_of(client().get(server.url("/nowhere")).send().await.unwrap()).await;
    assert_eq!(got, 404);

    // Multipart without the image part, and with it twice.
    let form = reqwest::multipart::Form::new().text("data", json!({"api_key": key}).to_string());
    let (got, err) = json_of(
        client()
            .post(server.url("/v1/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (got, err["error"]["code"].as_str()),
        (400, Some("missing_field")),
        "{err}"
    );
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(corpus("edge/gray.jpg")),
        )
        .part(
            "image",
            reqwest::multipart::Part::bytes(corpus("edge/gray.jpg")),
        )
        .text("data", json!({"api_key": key}).to_string());
    let (got, err) = json_of(
        client()
            .post(server.url("/v1/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (got, err["error"]["code"].as_str()),
        (400, Some("invalid_multipart")),
        "{err}"
    );

    // Revoked key: 401 with its own code, after `pixpress keys revoke`.
    let new_key = server
        .keys(&["create", "--plan", "pro", "--label", "ci"])
        .trim()
        .to_string();
    let (got, _) = json_of(
        upload(
            &server,
            &corpus("edge/gray.jpg"),
            "g.jpg",
            json!({"api_key": new_key}),
        )
        .await,
    )
    .await;
    assert_eq!(got, 200);
    let id = new_key.split('_').nth(1).unwrap().to_string();
    assert!(server.keys(&["list"]).contains(&id));
    server.keys(&["revoke", &id]);
    assert!(server.keys(&["list"]).contains("revoked"));
    let (got, err) = json_of(
        upload(
            &server,
            &corpus("edge/gray.jpg"),
            "g.jpg",
            json!({"api_key": new_key}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (got, err["error"]["code"].as_str()),
        (401, Some("revoked_api_key")),
        "{err}"
    );
}

#[tokio::test]
async fn loopback_is_refused_without_fetch_allow_and_uploads_over_the_limit_are_413() {
    let files = start_static_server().await;
    let server = Server::start(&["--max-input-bytes", "100000"]);
    let (got, err) = json_of(post_json(&server, json!({"api_key": server.key, "url": format!("http://{files}/corpus/photo_garden.jpg")})).await).await;
    assert_eq!(
        (got, err["error"]["code"].as_str()),
        (400, Some("url_not_allowed")),
        "{err}"
    );
    let (got, err) = json_of(post_json(&server, json!({"api_key": server.key, "url": format!("http://localhost:{}/corpus/photo_garden.jpg", files.port())})).await).await;
    assert_eq!(
        (got, err["error"]["code"].as_str()),
        (400, Some("url_not_allowed")),
        "{err}"
    );
    let (got, err) = json_of(
        upload(
            &server,
            &corpus("photo_garden.jpg"),
            "g.jpg",
            json!({"api_key": server.key}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (got, err["error"]["code"].as_str()),
        (413, Some("input_too_large")),
        "{err}"
    );
}

#[tokio::test]
async fn results_expire_after_the_ttl_and_are_swept_from_disk() {
    let server = Server::start(&["--result-ttl", "2s", "--sweep-interval", "300ms"]);
    let (status, body) = json_of(
        upload(
            &server,
            &corpus("edge/gray.jpg"),
            "g.jpg",
            json!({"api_key": server.key}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let url = body["url"].as_str().unwrap().to_string();
    let file = url.rsplit('/').next().unwrap().to_string();
    let on_disk = server.data_dir.path().join("results").join(&file);
    assert!(on_disk.exists());
    fetch_hosted(&url, "image/jpeg").await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let (status, err) = json_of(client().get(&url).send().await.unwrap()).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{err}"
    );
    assert!(!on_disk.exists(), "the sweep must delete expired files");
}

#[tokio::test]
async fn never_larger_than_the_input() {
    let server = Server::start(&[]);
    // Already optimised: the original comes back, bytes_saved 0, with a warning saying so.
    let input = corpus("edge/progressive.jpg");
    let (status, body) =
        json_of(upload(&server, &input, "p.jpg", json!({"api_key": server.key})).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["final_size"].as_u64().unwrap() <= input.len() as u64);
    if body["bytes_saved"] == 0 {
        let hosted = fetch_hosted(body["url"].as_str().unwrap(), "image/jpeg").await;
        assert_eq!(hosted, input);
        assert!(
            body["warnings"]
                .to_string()
                .contains("original_returned_not_smaller"),
            "{body}"
        );
    }
    // Lossy WebP input recompressed losslessly would grow: the original is returned.
    let webp = corpus("edge/webp_lossy.webp");
    let (status, body) =
        json_of(upload(&server, &webp, "w.webp", json!({"api_key": server.key})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bytes_saved"], 0);
    assert_eq!(
        fetch_hosted(body["url"].as_str().unwrap(), "image/webp").await,
        webp
    );
}

#[tokio::test]
async fn etag_revalidation_gives_304() {
    let server = Server::start(&[]);
    let (_, body) = json_of(
        upload(
            &server,
            &corpus("edge/gray.jpg"),
            "g.jpg",
            json!({"api_key": server.key}),
        )
        .await,
    )
    .await;
    let url = body["url"].as_str().unwrap();
    let first = client().get(url).send().await.unwrap();
    let etag = first.headers()["etag"].clone();
    let again = client()
        .get(url)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(first.headers()["x-content-type-options"], "nosniff");
}
