//! The playground at `GET /`: its embedded assets over HTTP, and the page itself driven in
//! headless Chromium (Debian's `chromium`, through `playwright-core`, both installed by
//! scripts/services.sh) against the real server. tests/playground.js does the clicking and
//! prints what it saw as JSON; this file checks that against the API and the hosted bytes, and
//! runs the curl line the page shows to see that it reproduces the call.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const PHOTO: &str = "photo_garden.jpg";
const URL_PHOTO: &str = "png_coffee_photo.png";

/// A tool's location from the environment services.sh sets up. Missing: a failure under CI or
/// PIXPRESS_REQUIRE_TOOLS, otherwise the browser test is skipped with a note.
fn tool(name: &str) -> Option<String> {
    if let Ok(value) = std::env::var(name) {
        return Some(value);
    }
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("PIXPRESS_REQUIRE_TOOLS").is_some();
    assert!(
        !required,
        "{name} is not set: run the tests with scripts/test.sh (it installs chromium and playwright-core)"
    );
    eprintln!("skipping the browser test: {name} is not set (source scripts/services.sh)");
    None
}

#[tokio::test]
async fn playground_assets_are_embedded_and_served_with_their_types() {
    let server = Server::start(&[]);
    for (path, content_type, needle) in [
        (
            "/",
            "text/html; charset=utf-8",
            "<title>pixpress playground</title>",
        ),
        (
            "/playground/app.js",
            "text/javascript; charset=utf-8",
            "STRATEGY_FIELDS",
        ),
        ("/playground/app.css", "text/css; charset=utf-8", ".compare"),
    ] {
        let r = client().get(server.url(path)).send().await.expect("get");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], content_type, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(
            csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        let body = r.text().await.expect("body");
        assert!(body.contains(needle), "{path} lacks {needle}");
        // Nothing is loaded from elsewhere: no CDN scripts, styles or fonts.
        for external in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "//fonts.",
        ] {
            assert!(
                !body.contains(external),
                "{path} loads from elsewhere: {external}"
            );
        }
    }
    // Unknown paths still answer the API's JSON 404.
    let (status, body) = json_of(
        client()
            .get(server.url("/playground/nope.js"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playground_optimises_a_photo_in_chromium() {
    let (Some(node_path), Some(chromium)) = (
        tool("PIXPRESS_TEST_NODE_PATH"),
        tool("PIXPRESS_TEST_CHROMIUM"),
    ) else {
        return;
    };
    let files = start_static_server().await;
    let server = Server::start(&["--fetch-allow", "127.0.0.1/32"]);
    let key = server
        .keys(&["create", "--plan", "free", "--label", "playground"])
        .trim()
        .to_string();
    assert!(key.starts_with("pxk_"), "{key}");
    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/playground.png");
    let _ = std::fs::remove_file(&screenshot);

    let image_url = format!("http://{files}/corpus/{URL_PHOTO}");
    let seen = {
        let browser = Browser {
            node_path,
            chromium,
            base: server.base.clone(),
            key: key.clone(),
            image_url: image_url.clone(),
            screenshot: screenshot.clone(),
        };
        // The static file server answers on this runtime while node runs.
        tokio::task::spawn_blocking(move || browser.run())
            .await
            .expect("browser thread")
    };
    let api = &seen["answer"];

    // Each strategy shows the fields SPEC's resize table gives it, and no others.
    assert_eq!(
        seen["fields_shown"],
        serde_json::json!({
            "none": [],
            "exact": ["width", "height"],
            "portrait": ["height", "enlarge"],
            "landscape": ["width", "enlarge"],
            "auto": ["width", "height", "enlarge"],
            "fit": ["width", "height", "crop_mode"],
            "crop": ["width", "height", "x", "y", "scale", "crop_mode"],
            "square": ["size", "crop_mode"],
            "fill": ["width", "height", "background"],
        }),
        "{seen}"
    );

    // The API's answer: a 400×300 lossy JPEG with an automatically chosen quality.
    assert_eq!(
        (api["final_width"].as_u64(), api["final_height"].as_u64()),
        (Some(400), Some(300)),
        "{api}"
    );
    assert_eq!(
        (
            api["original_width"].as_u64(),
            api["original_height"].as_u64()
        ),
        (Some(2560), Some(1600))
    );
    let original_size = corpus(PHOTO).len() as u64;
    assert_eq!(api["original_size"].as_u64(), Some(original_size));
    let final_size = api["final_size"].as_u64().expect("final_size");
    let saved = api["bytes_saved"].as_u64().expect("bytes_saved");
    assert_eq!(saved, original_size - final_size);
    let quality = api["quality"]
        .as_u64()
        .expect("automatic quality is reported");
    let ssim = api["ssimulacra2"]
        .as_f64()
        .expect("ssimulacra2 is reported");

    // What the page showed: the result image at its natural size, and the answer's numbers.
    assert_eq!(
        seen["after_natural"],
        serde_json::json!([400, 300]),
        "{seen}"
    );
    assert_eq!(
        seen["before_natural"],
        serde_json::json!([2560, 1600]),
        "{seen}"
    );
    let text = |id: &str| seen["text"][id].as_str().unwrap_or_default().to_string();
    assert!(
        text("original").contains(&format!("({original_size} bytes), 2560×1600")),
        "{seen}"
    );
    assert!(
        text("final").contains(&format!("({final_size} bytes), 400×300")),
        "{seen}"
    );
    let percent = 100.0 * saved as f64 / original_size as f64;
    assert_eq!(text("saved"), format!("{saved} bytes ({percent:.1}%)"));
    assert_eq!(text("out-quality"), quality.to_string());
    assert_eq!(text("out-ssim"), format!("{ssim:.2}"));
    assert_eq!(text("out-format"), "jpeg");

    // The hosted result the page displayed is that JPEG.
    let hosted = fetch_hosted(api["url"].as_str().expect("url"), "image/jpeg").await;
    assert_eq!(hosted.len() as u64, final_size);
    let decoded = decode(&hosted);
    assert_eq!((decoded.width(), decoded.height()), (400, 300));

    // The curl line carries the options, never the key, and makes the same call.
    let curl = text("curl");
    for needle in [
        "\"lossy\":true",
        "\"strategy\":\"fit\"",
        "\"width\":400",
        "\"height\":300",
        "image=@photo_garden.jpg",
        "Bearer $PIXPRESS_KEY",
        "/v1/upload",
    ] {
        assert!(curl.contains(needle), "curl line lacks {needle}: {curl}");
    }
    assert!(!curl.contains(&key), "the curl line must not show the key");
    let again = run_curl_line(&curl, &key);
    assert_eq!(again["final_width"], api["final_width"], "{again}");
    assert_eq!(again["final_height"], api["final_height"], "{again}");
    assert_eq!(again["format"], api["format"], "{again}");
    assert_eq!(again["final_size"], api["final_size"], "{again}");

    // The key was remembered across a reload; the slider followed the drag.
    assert_eq!(seen["key_after_reload"].as_str(), Some(key.as_str()));
    let slider = seen["slider_after_drag"].as_f64().expect("slider value");
    assert!((slider - 80.0).abs() < 2.0, "slider at {slider}");
    assert_eq!(
        seen["split_after_drag"].as_str(),
        Some(format!("{slider}%").as_str())
    );
    assert!(
        seen["clip_after_drag"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("{slider}%")),
        "{seen}"
    );

    // A bad key: the API's 401 message is what the page shows.
    let bad = &seen["bad_key"];
    assert_eq!(bad["status"].as_u64(), Some(401), "{bad}");
    let message = bad["answer"]["error"]["message"]
        .as_str()
        .expect("error message");
    assert!(
        bad["shown"].as_str().unwrap_or_default().contains(message),
        "{bad}"
    );
    assert_eq!(bad["answer_hidden"], true, "{bad}");

    // By URL: the original is shown from where it lives, the result is a 200×200 WebP at 70,
    // and the curl line (JSON this time) makes the same call.
    let by_url = &seen["by_url"];
    let url_api = &by_url["answer"];
    assert_eq!(
        by_url["before_natural"],
        serde_json::json!([600, 400]),
        "{by_url}"
    );
    assert_eq!(
        by_url["after_natural"],
        serde_json::json!([200, 200]),
        "{by_url}"
    );
    assert_eq!(
        (url_api["format"].as_str(), url_api["quality"].as_u64()),
        (Some("webp"), Some(70)),
        "{url_api}"
    );
    assert_eq!(by_url["text"]["out-quality"], "70");
    let webp = fetch_hosted(url_api["url"].as_str().expect("url"), "image/webp").await;
    let decoded = decode(&webp);
    assert_eq!((decoded.width(), decoded.height()), (200, 200));
    let url_curl = by_url["text"]["curl"].as_str().unwrap_or_default();
    for needle in [
        format!("\"url\":\"{image_url}\""),
        "\"format\":\"webp\"".to_string(),
        "\"quality\":70".to_string(),
        "\"strategy\":\"square\"".to_string(),
        "\"size\":200".to_string(),
        "/v1/url".to_string(),
    ] {
        assert!(
            url_curl.contains(&needle),
            "curl line lacks {needle}: {url_curl}"
        );
    }
    let again = run_curl_line(url_curl, &key);
    assert_eq!(again["final_size"], url_api["final_size"], "{again}");
    assert_eq!(
        (again["final_width"].as_u64(), again["format"].as_str()),
        (Some(200), Some("webp"))
    );

    // No script errors and no CSP violations (Chromium reports both on the console).
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen}");

    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    let shot = image::load_from_memory(&png).expect("a PNG");
    assert!(
        shot.width() >= 1200 && shot.height() >= 700,
        "{}x{}",
        shot.width(),
        shot.height()
    );
}

/// What tests/playground.js needs to drive the page.
struct Browser {
    node_path: String,
    chromium: String,
    base: String,
    key: String,
    image_url: String,
    screenshot: PathBuf,
}

impl Browser {
    /// Runs tests/playground.js and returns what it printed.
    fn run(self) -> Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/playground.js");
        let out = Command::new("node")
            .arg(script)
            .env("NODE_PATH", &self.node_path)
            .env("PLAYGROUND_CHROMIUM", &self.chromium)
            .env("PLAYGROUND_BASE", &self.base)
            .env("PLAYGROUND_KEY", &self.key)
            .env("PLAYGROUND_IMAGE", corpus_dir().join(PHOTO))
            .env("PLAYGROUND_IMAGE_URL", &self.image_url)
            .env("PLAYGROUND_SCREENSHOT", &self.screenshot)
            .output()
            .expect("run node");
        assert!(
            out.status.success(),
            "playground.js failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "playground.js printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// Runs the page's curl line with a shell in the corpus folder, the key in $PIXPRESS_KEY.
fn run_curl_line(line: &str, key: &str) -> Value {
    let dir: PathBuf = corpus_dir();
    let out = Command::new("sh")
        .args(["-c", &format!("{line} --silent --show-error --noproxy '*'")])
        .current_dir(dir)
        .env("PIXPRESS_KEY", key)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "curl answer not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
