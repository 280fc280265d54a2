//! Hostile and odd inputs end to end: the whole edge corpus with the status its SOURCES.md
//! expects, the full PngSuite (valid files pixel-identical, corrupt `x*` files a 4xx), oversized
//! and deeply nested JSON, overload (503 with Retry-After, never a pile-up), and a restart under
//! load that loses no hosted result.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn every_edge_file_gets_its_expected_status() {
    let server = Server::start(&[]);
    let expected: &[(&str, u16)] = &[
        ("orientation_2_mirror.jpg", 200),
        ("orientation_3_rot180.jpg", 200),
        ("orientation_4_nonsquare.jpg", 200),
        ("orientation_6_rot90.jpg", 200),
        ("orientation_8_2x1.jpg", 200),
        ("cmyk_adobe_ycck.jpg", 200),
        ("gray.jpg", 200),
        ("progressive.jpg", 200),
        ("icc_apple_generic_rgb.jpg", 200),
        ("exif_huge_canon_makernote.jpg", 200),
        ("png16_rgba.png", 200),
        ("png_interlaced_palette_trns.png", 200),
        ("png_palette_trns.png", 200),
        ("png_gray_alpha.png", 200),
        ("apng_palette_alpha_3frames.png", 200),
        ("webp_lossy.webp", 200),
        ("webp_lossless.webp", 200),
        ("webp_alpha_lossy.webp", 200),
        ("webp_animated.webp", 200),
        ("gif_anim_transparency.gif", 200),
        ("png_ztxt_bomb.png", 200),
        ("avif.avif", 200),
        ("avif_alpha.avif", 200),
        ("heif.heic", 415),
        ("tiff_rgb_lzw.tif", 200),
        ("bmp_pal8.bmp", 200),
        ("zero_bytes.jpg", 415),
        ("not_an_image.txt", 415),
        ("vector.svg", 415),
        ("truncated.jpg", 422),
        ("png_zero_width.png", 422),
        ("bomb_gif_65535x66601.gif", 413),
    ];
    for (name, status) in expected {
        let input = corpus(&format!("edge/{name}"));
        for lossy in [false, true] {
            let (got, body) = json_of(
                upload(
                    &server,
                    &input,
                    name,
                    json!({"api_key": server.key, "lossy": lossy}),
                )
                .await,
            )
            .await;
            assert_eq!(got, *status, "{name} lossy={lossy}: {body}");
            // BMP and TIFF are read only: their output is always a conversion (to PNG), to
            // which the never-larger rule does not apply.
            let converted = name.ends_with(".bmp") || name.ends_with(".tif");
            if got == 200 && !converted {
                assert!(
                    body["final_size"].as_u64().unwrap() <= input.len() as u64,
                    "{name} grew: {body}"
                );
            } else if got != 200 {
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                    "{name}: {body}"
                );
            }
        }
    }
    // Metadata stripping: a JPEG that is 97 % EXIF becomes a small fraction of itself.
    let input = corpus("edge/exif_huge_canon_makernote.jpg");
    let (_, body) =
        json_of(upload(&server, &input, "c.jpg", json!({"api_key": server.key})).await).await;
    assert!(
        body["final_size"].as_u64().unwrap() * 4 < input.len() as u64,
        "{body}"
    );
    // zTXt bomb: text chunks are dropped, never inflated.
    let input = corpus("edge/png_ztxt_bomb.png");
    let (_, body) =
        json_of(upload(&server, &input, "z.png", json!({"api_key": server.key})).await).await;
    assert!(body["final_size"].as_u64().unwrap() < 1000, "{body}");
    // The server is still healthy after all of that.
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn pngsuite_valid_files_stay_pixel_identical_and_corrupt_ones_are_4xx() {
    let server = Server::start(&[]);
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir().join("pngsuite"))
        .expect("pngsuite")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    assert!(names.len() >= 170, "PngSuite has {} files", names.len());
    let mut valid = 0;
    for name in &names {
        let input = corpus(&format!("pngsuite/{name}"));
        let (status, body) =
            json_of(upload(&server, &input, name, json!({"api_key": server.key})).await).await;
        if name.starts_with('x') {
            assert!(
                (400..500).contains(&status),
                "{name} is corrupt but got {status}: {body}"
            );
            continue;
        }
        assert_eq!(status, 200, "{name}: {body}");
        let url = body["url"].as_str().unwrap();
        let hosted = client()
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let (a, b) = (decode_rgba16(&input), decode_rgba16(&hosted));
        assert_eq!(a.dimensions(), b.dimensions(), "{name}");
        assert!(
            a.as_raw() == b.as_raw(),
            "{name}: lossless output changed pixels"
        );
        valid += 1;
    }
    assert!(valid >= 150, "only {valid} valid files processed");
}

#[tokio::test]
async fn hostile_json_is_a_4xx() {
    let server = Server::start(&[]);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = client()
        .post(server.url("/v1/"))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 400, "{body}");
    // 10 MB of JSON: refused from its Content-Length before the body is read.
    let status = raw_post_status(&server, "/v1/", 10 * 1024 * 1024).await;
    assert_eq!(status, 413);
    for bad in [
        json!({"api_key": server.key, "url": ["x"]}),
        json!({"api_key": 5, "url": "http://x"}),
        json!("just a string"),
        json!(null),
    ] {
        let (status, body) = json_of(post_json(&server, bad.clone()).await).await;
        assert_eq!(status / 100, 4, "{bad} → {body}");
    }
    // An upload whose data part is not JSON.
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(corpus("edge/gray.jpg")),
        )
        .text("data", "{not json");
    let (status, body) = json_of(
        client()
            .post(server.url("/v1/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{body}"
    );
    // A wrong file name changes nothing: the format comes from the bytes.
    let (status, body) = json_of(
        upload(
            &server,
            &corpus("png_page_gray.png"),
            "scan.jpg",
            json!({"api_key": server.key}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["format"].as_str()),
        (200, Some("png")),
        "{body}"
    );
    // A body that is not multipart at all.
    let r = client()
        .post(server.url("/v1/upload"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn overload_answers_503_with_retry_after_instead_of_queueing_without_bound() {
    let server = Server::start(&["--workers", "1", "--max-queue", "1"]);
    let photo = corpus("photo_elephants_art.jpg");
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let photo = photo.clone();
        let url = server.url("/v1/upload");
        let key = server.key.clone();
        tasks.push(tokio::spawn(async move {
            let form = reqwest::multipart::Form::new()
                .part("image", reqwest::multipart::Part::bytes(photo))
                .text("data", json!({"api_key": key, "lossy": true}).to_string());
            let r = client().post(url).multipart(form).send().await.unwrap();
            let retry_after = r.headers().get("retry-after").is_some();
            let (status, body) = json_of(r).await;
            (status, retry_after, body)
        }));
    }
    let mut ok = 0;
    let mut overloaded = 0;
    for t in tasks {
        let (status, retry_after, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            503 => {
                assert!(retry_after, "503 without Retry-After");
                assert_eq!(body["error"]["code"], "overloaded");
                overloaded += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        ok >= 1 && overloaded >= 1,
        "ok={ok} overloaded={overloaded}"
    );
    assert!(
        ok <= 3,
        "with one worker and a queue of one, at most a few fit: ok={ok}"
    );
}

#[tokio::test]
async fn restart_under_load_loses_no_hosted_result() {
    let server = Server::start(&[]);
    let key = server.key.clone();
    let mut issued: Vec<(String, Vec<u8>)> = Vec::new();
    for name in [
        "edge/gray.jpg",
        "png_page_gray.png",
        "edge/png_palette_trns.png",
    ] {
        let (status, body) =
            json_of(upload(&server, &corpus(name), name, json!({"api_key": key})).await).await;
        assert_eq!(status, 200);
        let url = body["url"].as_str().unwrap().to_string();
        let bytes = client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        issued.push((url, bytes));
    }
    // Requests in flight when SIGTERM arrives still finish.
    let in_flight = {
        let url = server.url("/v1/upload");
        let key = key.clone();
        tokio::spawn(async move {
            let form = reqwest::multipart::Form::new()
                .part(
                    "image",
                    reqwest::multipart::Part::bytes(corpus("photo_elephants_art.jpg")),
                )
                .text("data", json!({"api_key": key, "lossy": true}).to_string());
            json_of(client().post(url).multipart(form).send().await.unwrap()).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let data_dir = server.terminate();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "in-flight request must complete: {body}");
    issued.push((body["url"].as_str().unwrap().to_string(), Vec::new()));

    let restarted = Server::start_in(data_dir, &[]);
    for (old_url, bytes) in issued {
        let path = &old_url[old_url.find("/v1/images/").unwrap()..];
        let r = client().get(restarted.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} lost across restart");
        let served = r.bytes().await.unwrap();
        if !bytes.is_empty() {
            assert_eq!(served.to_vec(), bytes);
        }
    }
    let _: Value = json!(null);
}

/// Sends only the headers and the first KiB of a `len`-byte JSON body and returns the status
/// the server answers with (a well-behaved server answers before the body arrives).
async fn raw_post_status(server: &Server, path: &str, len: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n{{\"url\": \""
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(&vec![b'a'; 1024]).await.expect("write");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn every_internal_address_form_is_refused_also_after_a_redirect() {
    let files = start_static_server().await;
    let server = Server::start(&["--fetch-allow", "127.0.0.1/32"]);
    let refused = [
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/a.jpg".to_string(),
        "http://192.168.1.1/a.jpg".to_string(),
        "http://172.16.0.1/a.jpg".to_string(),
        "http://100.64.0.1/a.jpg".to_string(),
        "http://0.0.0.0/a.jpg".to_string(),
        "http://224.0.0.1/a.jpg".to_string(),
        "http://127.0.0.2/a.jpg".to_string(),
        "http://167772161/a.jpg".to_string(),
        "http://[::1]/a.jpg".to_string(),
        "http://[fd00::1]/a.jpg".to_string(),
        "http://[fe80::1]/a.jpg".to_string(),
        "http://[::ffff:10.0.0.1]/a.jpg".to_string(),
        "http://[64:ff9b::a00:1]/a.jpg".to_string(),
        "http://[2002:a00:1::1]/a.jpg".to_string(),
        // Allowed first hop, refused second hop.
        format!(
            "http://{files}/redirect-to?to=http://127.0.0.2:{}/corpus/photo_garden.jpg",
            files.port()
        ),
        format!("http://{files}/redirect-to?to=http://169.254.169.254/latest/meta-data/"),
    ];
    for url in refused {
        let (status, body) =
            json_of(post_json(&server, json!({"api_key": server.key, "url": url})).await).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("url_not_allowed")),
            "{url}: {body}"
        );
    }
    // The allowed address itself still works, through a redirect too.
    let ok = format!("http://{files}/redirect-to?to=/corpus/edge/gray.jpg");
    let (status, body) =
        json_of(post_json(&server, json!({"api_key": server.key, "url": ok})).await).await;
    assert_eq!(status, 200, "{body}");
}
