//! The Kraken.io dialect end to end (SPEC §12), driven by Kraken's own Python client (`krakenio`
//! from PyPI, installed by scripts/services.sh) with only its base address changed, through
//! tests/kraken_client.py. The images it is handed back are downloaded and decoded here: their
//! format, dimensions and sizes must match what the Kraken-shaped answer says.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn run_client(python: &str, base: &str, key: &str, static_base: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kraken_client.py");
    let out = Command::new(python)
        .arg(script)
        .args([base, key, static_base])
        .arg(corpus_dir())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .expect("run kraken_client.py");
    assert!(
        out.status.success(),
        "kraken_client.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("kraken_client.py prints JSON")
}

fn u64_of(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

/// Downloads `kraked_url` and checks the bytes against the answer: size, format, dimensions.
async fn check_kraked(image: &Value, content_type: &str, format: image::ImageFormat) {
    let url = image["kraked_url"].as_str().expect("kraked_url");
    let bytes = fetch_hosted(url, content_type).await;
    assert_eq!(bytes.len() as u64, u64_of(image, "kraked_size"), "{image}");
    assert_eq!(image::guess_format(&bytes).expect("format"), format);
    let decoded = decode(&bytes);
    assert_eq!(
        (u64::from(decoded.width()), u64::from(decoded.height())),
        (
            u64_of(image, "kraked_width"),
            u64_of(image, "kraked_height")
        ),
        "{image}"
    );
    assert_eq!(
        u64_of(image, "saved_bytes"),
        u64_of(image, "original_size") - u64_of(image, "kraked_size")
    );
}

fn ok_body<'a>(results: &'a Value, call: &str) -> &'a Value {
    let result = &results[call];
    assert_eq!(result["status"], 200, "{call}: {result}");
    assert_eq!(result["body"]["success"], true, "{call}: {result}");
    &result["body"]
}

// Multi-threaded: the static server must answer the server's fetches while the client runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_python_client_uploads_fetches_resizes_converts_and_reads_its_status() {
    let Some(python) = kraken_python() else {
        return;
    };
    let server = Server::start(&["--fetch-allow", "127.0.0.1/32"]);
    let static_base = format!("http://{}", start_static_server().await);
    let (base, key) = (server.base.clone(), server.key.clone());
    let results =
        tokio::task::spawn_blocking(move || run_client(&python, &base, &key, &static_base))
            .await
            .expect("client thread");

    let garden = corpus("photo_garden.jpg");
    let upload = ok_body(&results, "upload");
    assert_eq!(upload["file_name"], "photo_garden.jpg");
    assert_eq!(u64_of(upload, "original_size"), garden.len() as u64);
    assert!(
        u64_of(upload, "kraked_size") < garden.len() as u64,
        "{upload}"
    );
    let source = decode(&garden);
    assert_eq!(
        (
            u64_of(upload, "original_width"),
            u64_of(upload, "original_height")
        ),
        (u64::from(source.width()), u64::from(source.height()))
    );
    assert_eq!(upload["kraked_width"], upload["original_width"]);
    check_kraked(upload, "image/jpeg", image::ImageFormat::Jpeg).await;

    let gray = corpus("png_page_gray.png");
    let by_url = ok_body(&results, "url");
    assert_eq!(by_url["file_name"], "png_page_gray.png");
    assert_eq!(u64_of(by_url, "original_size"), gray.len() as u64);
    check_kraked(by_url, "image/png", image::ImageFormat::Png).await;
    // Lossless: not one pixel changed.
    let kraked = fetch_hosted(by_url["kraked_url"].as_str().unwrap(), "image/png").await;
    assert_eq!(decode_rgba(&kraked), decode_rgba(&gray));
    let warnings = by_url["warnings"].to_string();
    assert!(
        warnings.contains("kraken_option_ignored")
            && warnings.contains("dev")
            && warnings.contains("date"),
        "unmapped Kraken options are named: {warnings}"
    );

    let set = ok_body(&results, "set");
    let aqua = decode(&corpus("photo_aqua.jpg"));
    let expected = [
        ("small", 100u32, 75u32),
        ("thumb", 64, 64),
        (
            "wide",
            300,
            (300 * aqua.height() + aqua.width() / 2) / aqua.width(),
        ),
    ];
    assert!(
        aqua.width() > 300,
        "the landscape entry must be a reduction"
    );
    assert_eq!(
        set["results"].as_object().map(|r| r.len()),
        Some(3),
        "{set}"
    );
    for (id, width, height) in expected {
        let image = &set["results"][id];
        assert_eq!(
            (
                u64_of(image, "kraked_width"),
                u64_of(image, "kraked_height")
            ),
            (u64::from(width), u64::from(height)),
            "{id}: {image}"
        );
        assert_eq!(image["file_name"], "photo_aqua.jpg");
        check_kraked(image, "image/jpeg", image::ImageFormat::Jpeg).await;
    }

    let coffee = corpus("png_coffee_photo.png");
    let convert = ok_body(&results, "convert");
    assert_eq!(convert["file_name"], "coffee.png");
    assert!(convert["kraked_url"].as_str().unwrap().ends_with(".webp"));
    assert!(u64_of(convert, "kraked_size") < coffee.len() as u64);
    check_kraked(convert, "image/webp", image::ImageFormat::WebP).await;
    assert_eq!(convert["kraked_width"], convert["original_width"]);

    let callback = &results["callback"];
    assert_eq!(callback["status"], 400, "{callback}");
    assert_eq!(callback["body"]["success"], false);
    let message = callback["body"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("callback_url"), "{message}");
    assert_eq!(callback["body"]["code"], "url_not_allowed", "{callback}");

    // Metered exactly as native requests: each successful request's input bytes.
    let status = ok_body(&results, "user_status");
    let metered = [
        garden.len(),
        gray.len(),
        corpus("photo_aqua.jpg").len(),
        coffee.len(),
    ];
    let used: u64 = metered.iter().map(|n| *n as u64).sum();
    assert_eq!(status["active"], true);
    assert_eq!(status["plan_name"], "free");
    assert_eq!(u64_of(status, "quota_used"), used, "{status}");
    assert_eq!(u64_of(status, "quota_total"), 1_000_000_000_000_000);
    assert_eq!(
        u64_of(status, "quota_remaining"),
        u64_of(status, "quota_total") - used
    );

    for call in ["bad_key", "bad_key_status"] {
        let refused = &results[call];
        assert_eq!(refused["status"], 401, "{call}: {refused}");
        assert_eq!(refused["body"]["success"], false);
        assert_eq!(refused["body"]["code"], "invalid_api_key");
        assert!(refused["body"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}

/// Without a key the Kraken answer is Kraken's 401; native requests keep their own error shape
/// and answer, even when the upload part is named `file`.
#[tokio::test]
async fn kraken_errors_and_native_answers_keep_their_own_shapes() {
    let server = Server::start(&[]);
    let (status, body) = json_of(
        client()
            .post(server.url("/v1/url"))
            .json(&serde_json::json!({"auth": {"api_secret": "s"}, "url": "http://example.com/a.jpg", "wait": true}))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(
        (status, &body["success"]),
        (401, &Value::Bool(false)),
        "{body}"
    );
    assert_eq!(body["code"], "missing_api_key");

    let (status, body) = json_of(
        client()
            .post(server.url("/user_status"))
            .body("not json")
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(
        (status, &body["success"]),
        (400, &Value::Bool(false)),
        "{body}"
    );

    let aqua = corpus("photo_aqua.jpg");
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(aqua.clone()).file_name("a.jpg"),
        )
        .text(
            "data",
            serde_json::json!({"api_key": server.key}).to_string(),
        );
    let (status, body) = json_of(
        client()
            .post(server.url("/v1/upload"))
            .multipart(form)
            .send()
            .await
            .expect("upload"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("success").is_none() && body.get("kraked_url").is_none(),
        "{body}"
    );
    assert_eq!(body["original_size"], aqua.len() as u64);
    let bytes = fetch_hosted(body["url"].as_str().unwrap(), "image/jpeg").await;
    assert_eq!(bytes.len() as u64, body["final_size"].as_u64().unwrap());
    assert_eq!(decode(&bytes).width(), decode(&aqua).width());
}
