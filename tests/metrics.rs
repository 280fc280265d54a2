//! `GET /metrics` against the real server: after real optimise calls (a 200 by upload, a 200 by
//! URL, a 401, and 429s for the rate limit and the quota), the Prometheus text scraped with a
//! real client shows each counter moved by exactly what happened, the step histograms counted
//! each step, and `--metrics-token` guards the endpoint.

mod common;

use std::collections::BTreeMap;

use common::{client, corpus, json_of, start_static_server, Server};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

const TOKEN: &str = "metrics-test-token";

/// One sample: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format: `name{a="x",b="y"} value`, `#` lines skipped.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().unwrap_or_else(|_| panic!("{line}")),
            }
        })
        .collect()
}

/// The value of the series `name` with exactly these labels (among others absent), or 0.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .find(|s| {
            s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map_or(0.0, |s| s.value)
}

async fn upload(server: &Server, key: &str, file: &[u8]) -> (u16, Value) {
    let form = Form::new().part("image", Part::bytes(file.to_vec()).file_name("a.jpg"));
    let response = client()
        .post(server.url("/v1/upload"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    json_of(response).await
}

async fn scrape(server: &Server, token: Option<&str>) -> reqwest::Response {
    let mut request = client().get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_and_step_histograms_follow_real_calls() {
    let files = start_static_server().await;
    let data_dir = tempfile::tempdir().unwrap();
    // Free keys: one request per second and a one-byte monthly quota; the pro key is roomy.
    let config = data_dir.path().join("plans.toml");
    std::fs::write(
        &config,
        "[plans.free]\nrequests_per_second = 1\nbytes_per_month = 1\n",
    )
    .unwrap();
    let server = Server::start_raw(
        data_dir,
        &[
            "--config".into(),
            config.display().to_string(),
            "--fetch-allow".into(),
            "127.0.0.1/32".into(),
            "--metrics-token".into(),
            TOKEN.into(),
        ],
    );
    let pro = server.keys(&["create", "--plan", "pro"]).trim().to_string();
    let jpg = corpus("edge/gray.jpg");

    let (status, by_upload) = upload(&server, &pro, &jpg).await;
    assert_eq!(status, 200, "{by_upload}");
    let response = client()
        .post(server.url("/v1/"))
        .bearer_auth(&pro)
        .json(
            &json!({"url": format!("http://{files}/corpus/photo_garden.jpg"),
                      "resize": {"strategy": "landscape", "width": 200}}),
        )
        .send()
        .await
        .unwrap();
    let (status, by_url) = json_of(response).await;
    assert_eq!(status, 200, "{by_url}");
    assert_eq!(by_url["final_width"], 200);
    let (status, body) = upload(&server, "pxk_00000000_nope", &jpg).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    // The free key: its first request is over the one-byte quota, its second over the rate.
    let (status, body) = upload(&server, &server.key, &jpg).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("quota_exceeded"))
    );
    let (status, body) = upload(&server, &server.key, &jpg).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );

    assert_eq!(scrape(&server, None).await.status(), 401);
    assert_eq!(scrape(&server, Some("wrong")).await.status(), 401);
    let response = scrape(&server, Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let samples = parse(&response.text().await.unwrap());

    let requests = |route: &str, status: &str| {
        value(
            &samples,
            "pixpress_http_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("/v1/upload", "200"), 1.0);
    assert_eq!(requests("/v1/", "200"), 1.0);
    assert_eq!(requests("/v1/upload", "401"), 1.0);
    assert_eq!(requests("/v1/upload", "429"), 2.0);
    assert_eq!(requests("/metrics", "401"), 2.0);
    let timed = |route: &str| {
        value(
            &samples,
            "pixpress_http_request_duration_seconds_count",
            &[("route", route)],
        )
    };
    assert_eq!(timed("/v1/upload"), 4.0);
    assert_eq!(timed("/v1/"), 1.0);

    let refusals = |reason: &str| value(&samples, "pixpress_refusals_total", &[("reason", reason)]);
    assert_eq!(refusals("rate_limit"), 1.0);
    assert_eq!(refusals("quota"), 1.0);

    let garden = corpus("photo_garden.jpg");
    let field = |answer: &Value, name: &str| answer[name].as_u64().unwrap() as f64;
    assert_eq!(
        value(&samples, "pixpress_bytes_in_total", &[]),
        (jpg.len() + garden.len()) as f64
    );
    assert_eq!(
        value(&samples, "pixpress_bytes_out_total", &[]),
        field(&by_upload, "final_size") + field(&by_url, "final_size")
    );
    assert_eq!(
        value(&samples, "pixpress_bytes_saved_total", &[]),
        field(&by_upload, "bytes_saved") + field(&by_url, "bytes_saved")
    );
    assert!(field(&by_url, "bytes_saved") > 0.0, "{by_url}");

    let steps = |step: &str| {
        value(
            &samples,
            "pixpress_step_duration_seconds_count",
            &[("step", step)],
        )
    };
    assert_eq!(steps("fetch"), 1.0);
    for step in ["decode", "transform", "encode", "store"] {
        assert_eq!(steps(step), 2.0, "{step}");
    }
    assert_eq!(steps("export"), 0.0);
    let decode_seconds = value(
        &samples,
        "pixpress_step_duration_seconds_sum",
        &[("step", "decode")],
    );
    assert!(decode_seconds > 0.0, "decoding two images took no time?");

    assert!(samples.iter().any(|s| s.name == "pixpress_queue_depth"));
    assert_eq!(value(&samples, "pixpress_queue_depth", &[]), 0.0);
    let rss = value(&samples, "process_resident_memory_bytes", &[]);
    assert!(rss > 4.0 * 1024.0 * 1024.0, "rss {rss}");
}
