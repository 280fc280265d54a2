//! Admission under memory pressure (issue 20): every image within the documented limits is
//! processed, queued or answered `503` — never `413` — and the server's peak memory stays within
//! its configured budget plus a fixed allowance, because each job is charged its predicted
//! working memory (`pixpress_core::predicted_memory`, which covers decoding, the codecs and the
//! quality search) before any pixel is decoded; afterwards the resident set comes back near a
//! warmed-up idle. Memory is read from /proc (VmHWM: the peak resident set; VmRSS: now). The calibration that gave the prediction's figures is the ignored
//! test `memory_per_pixel_by_kind` (`bash bench/admission.sh`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use image::{DynamicImage, RgbImage};
use serde_json::{json, Value};

/// The budget the pressure test configures (the default: the 90 MP PNG's re-code is predicted
/// at 1.7 GiB, so it fits; an image predicted over the whole budget would run alone and could
/// exceed it, which the server warns about at start), and what peak RSS may exceed it by (the
/// process itself, its runtime, and the request bodies in flight).
const BUDGET_MIB: u64 = 2048;
const ALLOWANCE_MIB: u64 = 150;

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

fn mib(kib: u64) -> u64 {
    kib / 1024
}

/// A 12 MP JPEG (4000x3000) from a corpus photo.
fn photo_12mp() -> Vec<u8> {
    let photo = decode(&corpus("photo_elephants_art.jpg"));
    let big = photo.resize_exact(4000, 3000, image::imageops::FilterType::Triangle);
    let mut out = std::io::Cursor::new(Vec::new());
    big.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg");
    out.into_inner()
}

/// A 90 MP RGB PNG (9500x9474): gradients and a checkerboard, so it compresses to a few MB.
fn png_90mp() -> Vec<u8> {
    let image = RgbImage::from_fn(9500, 9474, |x, y| {
        image::Rgb([
            (x / 40) as u8,
            (y / 40) as u8,
            (((x / 8) ^ (y / 8)) & 1) as u8 * 64,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

async fn send(server: &Server, file: &[u8], name: &str, options: &Value) -> (u16, Value) {
    let mut data = options.clone();
    data["api_key"] = json!(server.key);
    let response = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client")
        .post(server.url("/v1/upload"))
        .multipart(
            reqwest::multipart::Form::new()
                .part(
                    "image",
                    reqwest::multipart::Part::bytes(file.to_vec()).file_name(name.to_string()),
                )
                .text("data", data.to_string()),
        )
        .send()
        .await
        .expect("upload");
    json_of(response).await
}

/// The server's resident set once it has given back what it can: sampled every second until it
/// is within `ceiling` or has not fallen for 12 s (idle blocking-pool threads exit after 10 s,
/// and freed memory is collected every 2 s), at most 60 s.
async fn settled_rss_kib(pid: u32, ceiling: u64) -> u64 {
    let mut lowest = status_kib(pid, "VmRSS:");
    let mut unchanged = 0;
    for _ in 0..60 {
        if lowest <= ceiling || unchanged >= 12 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = status_kib(pid, "VmRSS:");
        if now < lowest {
            lowest = now;
            unchanged = 0;
        } else {
            unchanged += 1;
        }
    }
    lowest
}

/// What one burst measured: settled RSS before and after it, and the peak, in KiB.
struct Burst {
    idle: u64,
    after: u64,
    peak: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_12mp_photos_and_a_90mp_png_are_processed_or_503_within_the_budget() {
    // As deployed by default (transparent huge pages allowed): back near idle.
    let Burst { idle, after, peak } = burst(&[]).await;
    // Measured 6–33 % over in eight runs (idle 58–72 MiB, after 63–88 MiB): huge pages keep a
    // thread's partly used 2 MiB regions resident. This holds the bound every run met, 50 %.
    assert!(
        after * 10 <= idle * 15,
        "RSS {} MiB after the burst, more than 50 % over idle {} MiB (peak {} MiB)",
        mib(after),
        mib(idle),
        mib(peak)
    );
    // Without huge pages (deploy/'s setting): within 20 %, as issue 20 asks (measured 43 MiB
    // after against 37 MiB idle, twice).
    let Burst { idle, after, peak } = burst(&[("MIMALLOC_ALLOW_THP", "0")]).await;
    assert!(
        after * 10 <= idle * 12,
        "without huge pages: RSS {} MiB after the burst, more than 20 % over idle {} MiB \
         (peak {} MiB)",
        mib(after),
        mib(idle),
        mib(peak)
    );
}

/// 16 concurrent 12 MP JPEGs (half with the perceptual search) and a 90 MP PNG against a
/// server started with `env`: only 200 or 503, peak RSS within the budget and its allowance.
async fn burst(env: &[(&str, &str)]) -> Burst {
    let server = Server::start_with_env(
        &[
            "--memory-budget-mib",
            &BUDGET_MIB.to_string(),
            "--workers",
            "2",
            "--max-queue",
            "12",
        ],
        env,
    );
    let pid = server.pid();
    let photo = photo_12mp();
    let png = png_90mp();
    // Warm up as the burst will run, with small images: as many requests at once, of the same
    // kinds (so the same threads, connections, pools and codec tables exist), then take the
    // settled idle. What the burst leaves above that is what its big images left behind.
    let small_jpeg = corpus("photo_storm.jpg");
    let small_png = corpus("png_page_gray.png");
    let warm_up: Vec<(&[u8], &str, Value)> = (0..17)
        .map(|i| match i % 4 {
            0 | 2 => (small_jpeg.as_slice(), "w.jpg", json!({"lossy": true})),
            1 => (small_jpeg.as_slice(), "w.jpg", json!({})),
            _ => (small_png.as_slice(), "w.png", json!({})),
        })
        .collect();
    // Twice: the first round grows the pools and caches, the second shows them at rest.
    for _ in 0..2 {
        let sent = warm_up
            .iter()
            .map(|(file, name, options)| send(&server, file, name, options));
        for (status, body) in futures_util::future::join_all(sent).await {
            assert!(status == 200 || status == 503, "warm-up: {status} {body}");
        }
    }
    let idle = settled_rss_kib(pid, 0).await;

    let started = Instant::now();
    let server = std::sync::Arc::new(server);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (server, photo) = (server.clone(), photo.clone());
        // Half lossy with the perceptual search (the scoring path), half the lossless re-code.
        let options = if i % 2 == 0 {
            json!({"lossy": true})
        } else {
            json!({})
        };
        tasks.push(tokio::spawn(async move {
            let (status, body) = send(&server, &photo, "p.jpg", &options).await;
            ("12 MP JPEG", status, body)
        }));
    }
    {
        let (server, png) = (server.clone(), png.clone());
        tasks.push(tokio::spawn(async move {
            let (status, body) = send(&server, &png, "big.png", &json!({})).await;
            ("90 MP PNG", status, body)
        }));
    }
    let mut ok = 0;
    let mut busy = 0;
    let mut png_status = 0;
    for task in tasks {
        let (what, status, body) = task.await.expect("task");
        assert!(
            status == 200 || status == 503,
            "{what}: only 200 or 503 within the limits, got {status}: {body}"
        );
        if status == 503 {
            assert_eq!(body["error"]["code"], "overloaded", "{body}");
            busy += 1;
        } else {
            ok += 1;
        }
        if what == "90 MP PNG" {
            png_status = status;
        }
    }
    let peak = status_kib(pid, "VmHWM:");
    eprintln!(
        "{ok} × 200, {busy} × 503 in {:.1} s; idle {} MiB, peak {} MiB (budget {BUDGET_MIB} MiB)",
        started.elapsed().as_secs_f64(),
        mib(idle),
        mib(peak)
    );
    assert!(ok >= 2, "some work got through: {ok} × 200, {busy} × 503");
    assert!(
        mib(peak) <= BUDGET_MIB + ALLOWANCE_MIB,
        "peak RSS {} MiB over the budget {BUDGET_MIB} MiB + {ALLOWANCE_MIB} MiB",
        mib(peak)
    );
    // A 503 is only "busy": alone, the 90 MP PNG is processed.
    if png_status == 503 {
        let (status, body) = send(&server, &png, "big.png", &json!({})).await;
        assert_eq!(status, 200, "the 90 MP PNG alone: {body}");
    }
    let peak = status_kib(pid, "VmHWM:");
    assert!(
        mib(peak) <= BUDGET_MIB + ALLOWANCE_MIB,
        "peak RSS {} MiB (the 90 MP PNG retried alone) over the budget",
        mib(peak)
    );
    let after = settled_rss_kib(pid, idle * 12 / 10).await;
    eprintln!(
        "{env:?}: RSS after: {} MiB (idle {} MiB)",
        mib(after),
        mib(idle)
    );
    Burst { idle, after, peak }
}

/// Calibration, not a check: one request of each kind on a fresh server, its peak RSS over idle
/// per source pixel beside the prediction. `bash bench/admission.sh` runs it on a release build.
#[tokio::test]
#[ignore]
async fn memory_per_pixel_by_kind() {
    let photo = photo_12mp();
    let png = png_90mp();
    let garden = corpus("photo_garden.jpg");
    let cases: Vec<(&str, &[u8], Value)> = vec![
        (
            "4 MP JPEG, lossy auto quality",
            &garden,
            json!({"lossy": true}),
        ),
        (
            "4 MP JPEG, lossy q80",
            &garden,
            json!({"lossy": true, "quality": 80}),
        ),
        (
            "4 MP JPEG → AVIF auto",
            &garden,
            json!({"lossy": true, "format": "avif"}),
        ),
        (
            "4 MP JPEG → AVIF q70",
            &garden,
            json!({"lossy": true, "quality": 70, "format": "avif"}),
        ),
        ("12 MP JPEG → PNG", &photo, json!({"format": "png"})),
        ("12 MP JPEG, lossless re-code", &photo, json!({})),
        (
            "12 MP JPEG, lossy auto quality",
            &photo,
            json!({"lossy": true}),
        ),
        (
            "12 MP JPEG, lossy q80",
            &photo,
            json!({"lossy": true, "quality": 80}),
        ),
        (
            "12 MP JPEG → 800 px",
            &photo,
            json!({"lossy": true, "quality": 80, "resize": {"strategy": "landscape", "width": 800}}),
        ),
        (
            "12 MP JPEG → WebP auto",
            &photo,
            json!({"lossy": true, "format": "webp"}),
        ),
        ("90 MP PNG, lossless re-code", &png, json!({})),
        (
            "90 MP PNG → 800 px",
            &png,
            json!({"resize": {"strategy": "landscape", "width": 800}}),
        ),
        (
            "90 MP PNG → JPEG q80",
            &png,
            json!({"lossy": true, "quality": 80, "format": "jpeg"}),
        ),
    ];
    println!("| request | pixels | idle MiB | peak MiB | B/pixel over idle | predicted B/pixel |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (what, file, options) in cases {
        let server = Server::start(&["--workers", "1", "--memory-budget-mib", "100000"]);
        let pid = server.pid();
        let (status, _) = send(&server, &corpus("photo_storm.jpg"), "w.jpg", &json!({})).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let idle = status_kib(pid, "VmRSS:");
        let started = Instant::now();
        let (status, body) = send(&server, file, "in", &options).await;
        assert_eq!(status, 200, "{what}: {body}");
        let peak = status_kib(pid, "VmHWM:");
        let probe = pixpress_core::inspect(file, &pixpress_core::Limits::default()).expect("probe");
        let pixels = u64::from(probe.width) * u64::from(probe.height);
        let predicted = predicted_for(file, &options);
        println!(
            "| {what} ({:.1} s) | {pixels} | {} | {} | {:.1} | {:.1} |",
            started.elapsed().as_secs_f64(),
            mib(idle),
            mib(peak),
            (peak.saturating_sub(idle) * 1024) as f64 / pixels as f64,
            predicted as f64 / pixels as f64
        );
    }
}

/// The core's prediction for a request, from its options as the server parses and charges them.
fn predicted_for(file: &[u8], options: &Value) -> u64 {
    use pixpress_server::http::options::{parse, Endpoint};
    let limits = pixpress_core::Limits::default();
    let probe = pixpress_core::inspect(file, &limits).expect("probe");
    let job = parse(options, Endpoint::Upload).expect("valid options").job;
    let specs = job.resize.as_ref().map(|resize| resize.specs());
    pixpress_core::predicted_memory(&probe, &job.request, specs.as_deref())
}
