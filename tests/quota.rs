//! Exact hard quotas under concurrency (bytes reserved atomically before work, committed on
//! success, released on failure) on SQLite, on PostgreSQL and across two instances; the
//! `RateLimit-*` headers on every answer to an authenticated request; and the `--redis-down`
//! policy, checked by killing a private Redis started by the test (never the shared one).

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// 5353 bytes.
const GOOD: &str = "edge/gray.jpg";
/// 6698 bytes, cut inside the entropy data: 422 `corrupt_image`.
const TRUNCATED: &str = "edge/truncated.jpg";

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

fn shared_redis() -> String {
    std::env::var("PIXPRESS_TEST_REDIS_URL")
        .expect("PIXPRESS_TEST_REDIS_URL: run the tests with scripts/test.sh")
}

/// A server whose free plan holds `quota` bytes a month and (unless given) no real rate limit.
fn start(quota: u64, rate: u32, extra: &[String]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plans.toml");
    std::fs::write(
        &config,
        format!("[plans.free]\nbytes_per_month = {quota}\nrequests_per_second = {rate}\n"),
    )
    .unwrap();
    let mut args = vec!["--config".to_string(), config.display().to_string()];
    args.extend(extra.iter().cloned());
    Server::start_raw(dir, &args)
}

fn postgres_args(db: &str) -> Vec<String> {
    vec![
        "--database".into(),
        db.into(),
        "--redis".into(),
        shared_redis(),
    ]
}

async fn upload_as(base: &str, key: &str, file: &[u8]) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(file.to_vec()))
        .text("data", "{}");
    client()
        .post(format!("{base}/v1/upload"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

async fn usage(server: &Server, key: &str) -> reqwest::Response {
    client()
        .get(server.url("/v1/usage"))
        .bearer_auth(key)
        .send()
        .await
        .expect("usage")
}

async fn billed(server: &Server, key: &str) -> (u64, u64) {
    let (status, u) = json_of(usage(server, key).await).await;
    assert_eq!(status, 200, "{u}");
    (
        u["bytes"].as_u64().unwrap(),
        u["requests"].as_u64().unwrap(),
    )
}

fn assert_rate_headers(response: &reqwest::Response, what: &str) {
    for h in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(
            response.headers().contains_key(h),
            "{h} missing on {what} ({})",
            response.status()
        );
    }
}

/// Fires `count` uploads of `file` at once, spread over `bases`; returns (ok, quota refusals).
async fn fire(bases: &[String], key: &str, file: &[u8], count: usize) -> (u64, u64) {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let (base, key, file) = (
                bases[i % bases.len()].clone(),
                key.to_string(),
                file.to_vec(),
            );
            tokio::spawn(async move {
                let r = upload_as(&base, &key, &file).await;
                assert_rate_headers(&r, "a concurrent upload");
                let (status, body) = json_of(r).await;
                (status, body)
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (200, body) => {
                assert_eq!(body["original_size"], file.len() as u64, "{body}");
                ok += 1;
            }
            (429, body) => {
                assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
                refused += 1;
            }
            (status, body) => panic!("unexpected {status}: {body}"),
        }
    }
    (ok, refused)
}

const N: u64 = 4;

/// A quota that fits exactly N uploads (plus less than one more).
fn quota_for_n(size: u64) -> u64 {
    N * size + size / 2
}

async fn exactly_n_of_3n(backend: Backend) {
    let file = corpus(GOOD);
    let size = file.len() as u64;
    let db = matches!(backend, Backend::Postgres).then(fresh_postgres);
    let extra = db.as_deref().map(postgres_args).unwrap_or_default();
    let server = start(quota_for_n(size), 10_000, &extra);
    let (ok, refused) = fire(
        std::slice::from_ref(&server.base),
        &server.key,
        &file,
        3 * N as usize,
    )
    .await;
    assert_eq!(
        (ok, refused),
        (N, 2 * N),
        "{backend:?}: exactly N of 3N fit"
    );
    assert_eq!(
        billed(&server, &server.key).await,
        (N * size, N),
        "{backend:?}"
    );
}

#[tokio::test]
async fn exactly_n_concurrent_uploads_fit_the_quota_sqlite() {
    exactly_n_of_3n(Backend::Sqlite).await;
}

#[tokio::test]
async fn exactly_n_concurrent_uploads_fit_the_quota_postgres() {
    exactly_n_of_3n(Backend::Postgres).await;
}

#[tokio::test]
async fn two_instances_share_one_exact_quota() {
    let file = corpus(GOOD);
    let size = file.len() as u64;
    let db = fresh_postgres();
    let a = start(quota_for_n(size), 10_000, &postgres_args(&db));
    let b = start(quota_for_n(size), 10_000, &postgres_args(&db));
    let key = a
        .keys_with(&["create", "--plan", "free"], Some(&db))
        .trim()
        .to_string();
    let bases = [a.base.clone(), b.base.clone()];
    let (ok, refused) = fire(&bases, &key, &file, 3 * N as usize).await;
    assert_eq!((ok, refused), (N, 2 * N), "one quota across both instances");
    assert_eq!(billed(&a, &key).await, (N * size, N));
    assert_eq!(billed(&b, &key).await, (N * size, N));
}

#[tokio::test]
async fn a_failure_after_the_reservation_is_not_billed_and_frees_the_bytes() {
    let truncated = corpus(TRUNCATED);
    let good = corpus(GOOD);
    // Room for one truncated upload, or one good one, never both.
    let server = start(truncated.len() as u64, 10_000, &[]);
    for _ in 0..3 {
        let r = upload_as(&server.base, &server.key, &truncated).await;
        assert_rate_headers(&r, "a 422");
        let (status, body) = json_of(r).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("corrupt_image")),
            "{body}"
        );
    }
    assert_eq!(billed(&server, &server.key).await, (0, 0));
    // Had a failed request kept its reservation, this would not fit.
    let (status, body) = json_of(upload_as(&server.base, &server.key, &good).await).await;
    assert_eq!(status, 200, "{body}");
    let r = upload_as(&server.base, &server.key, &good).await;
    assert_rate_headers(&r, "a 429 quota_exceeded");
    let (status, body) = json_of(r).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("quota_exceeded")),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["used_bytes"], good.len() as u64);
    assert_eq!(billed(&server, &server.key).await, (good.len() as u64, 1));
}

#[tokio::test]
async fn rate_headers_come_with_every_authenticated_answer() {
    let server = start(1 << 30, 20, &[]);
    let key = server.key.clone();
    let file = corpus(GOOD);

    // 400: bad options, the key in the header (upload) or inside the options (URL).
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(file.clone()))
        .text(
            "data",
            json!({"quality": "high", "lossy": true}).to_string(),
        );
    let r = client()
        .post(server.url("/v1/upload"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_rate_headers(&r, "a 400 upload");
    assert_eq!(r.headers()["ratelimit-limit"], "20");
    assert_eq!(r.status(), 400);
    let r = post_json(&server, json!({"api_key": key, "url": 12})).await;
    assert_rate_headers(&r, "a 400 URL request");
    assert_eq!(r.status(), 400);
    // Kraken's dialect: the key in `auth`.
    let r = post_json(
        &server,
        json!({"auth": {"api_key": key, "api_secret": "s"}, "url": 12, "wait": true}),
    )
    .await;
    assert_rate_headers(&r, "a 400 Kraken request");
    assert_eq!(r.status(), 400);

    // 415 and 422 after admission.
    let r = upload_as(&server.base, &key, &corpus("edge/not_an_image.txt")).await;
    assert_rate_headers(&r, "a 415");
    assert_eq!(r.status(), 415);
    let r = upload_as(&server.base, &key, &corpus(TRUNCATED)).await;
    assert_rate_headers(&r, "a 422");
    assert_eq!(r.status(), 422);

    // Non-optimise answers: the native usage report and Kraken's user_status, which do not
    // spend the limit (their remaining count is the optimise requests' one).
    let before = upload_as(&server.base, &key, &file).await;
    assert_eq!(before.status(), 200);
    let remaining: u32 = before.headers()["ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = usage(&server, &key).await;
    assert_rate_headers(&r, "GET /v1/usage");
    assert_eq!(r.status(), 200);
    let peeked: u32 = r.headers()["ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(peeked >= remaining, "usage peeked {peeked} < {remaining}");
    let r = client()
        .post(server.url("/user_status"))
        .json(&json!({"auth": {"api_key": key, "api_secret": "s"}}))
        .send()
        .await
        .unwrap();
    assert_rate_headers(&r, "POST /user_status");
    let (status, body) = json_of(r).await;
    assert_eq!(
        (status, body["success"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    // Tinify's dialect: an error after the Basic-auth key was admitted.
    let r = client()
        .post(server.url("/shrink"))
        .basic_auth("api", Some(&key))
        .body(corpus("edge/not_an_image.txt"))
        .send()
        .await
        .unwrap();
    assert_rate_headers(&r, "a Tinify 415");
    assert_eq!(r.status(), 415);

    // No key, no headers: an unauthenticated answer says nothing about anyone's limit.
    let r = client().get(server.url("/v1/usage")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.headers().contains_key("ratelimit-limit"));
}

/// A private `redis-server` on a free port, killed by the test (or on drop).
struct PrivateRedis {
    child: Child,
    url: String,
}

impl PrivateRedis {
    fn start() -> Option<PrivateRedis> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var("PIXPRESS_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "redis-server is required (scripts/services.sh installs it)"
            );
            eprintln!("redis-server not installed: skipping");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(PrivateRedis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn with_redis(redis: &PrivateRedis, policy: &str) -> Vec<String> {
    vec![
        "--redis".into(),
        redis.url.clone(),
        "--redis-down".into(),
        policy.into(),
    ]
}

async fn backend_errors(server: &Server, policy: &str) -> u64 {
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("pixpress_ratelimit_backend_errors_total{{policy=\"{policy}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

#[tokio::test]
async fn redis_down_fail_open_lets_through_and_counts() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let server = start(1 << 30, 100, &with_redis(&redis, "fail-open"));
    let file = corpus(GOOD);
    assert_eq!(
        upload_as(&server.base, &server.key, &file).await.status(),
        200
    );
    assert_eq!(backend_errors(&server, "fail_open").await, 0);
    redis.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let r = upload_as(&server.base, &server.key, &file).await;
        assert_rate_headers(&r, "a fail-open answer");
        let (status, body) = json_of(r).await;
        assert_eq!(status, 200, "fail-open lets it through: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a dead Redis must not stall requests: {:?}",
            started.elapsed()
        );
    }
    assert!(
        backend_errors(&server, "fail_open").await >= 3,
        "each let-through is counted"
    );
    assert_eq!(billed(&server, &server.key).await.1, 4);
}

#[tokio::test]
async fn redis_down_fail_closed_answers_503() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let server = start(1 << 30, 100, &with_redis(&redis, "fail-closed"));
    let file = corpus(GOOD);
    assert_eq!(
        upload_as(&server.base, &server.key, &file).await.status(),
        200
    );
    redis.kill();
    for _ in 0..2 {
        let r = upload_as(&server.base, &server.key, &file).await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        assert_rate_headers(&r, "a fail-closed 503");
        let (_, body) = json_of(r).await;
        assert_eq!(body["error"]["code"], "rate_limiter_unavailable", "{body}");
        assert!(body["error"]["request_id"].as_str().is_some(), "{body}");
    }
    assert!(backend_errors(&server, "fail_closed").await >= 2);
    // Refused requests are not billed.
    assert_eq!(billed(&server, &server.key).await, (file.len() as u64, 1));
}
