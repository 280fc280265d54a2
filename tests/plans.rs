//! Plans, rate limits, quotas and metering (SPEC §8), end to end, on both backends: embedded
//! (SQLite + in-memory limiter) and shared (PostgreSQL + Redis, started by scripts/services.sh).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// Which state backend a scenario runs on.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Embedded,
    Shared,
}

fn redis_url() -> String {
    std::env::var("PIXPRESS_TEST_REDIS_URL")
        .expect("PIXPRESS_TEST_REDIS_URL: run the tests with scripts/test.sh")
}

/// Backend flags plus a config file with the given plan overrides.
fn start(
    backend: Backend,
    data_dir: tempfile::TempDir,
    plans_toml: &str,
    database: Option<&str>,
) -> Server {
    let config = data_dir.path().join("plans.toml");
    std::fs::write(&config, plans_toml).unwrap();
    let mut args = vec!["--config".to_string(), config.display().to_string()];
    if let Backend::Shared = backend {
        args.extend([
            "--database".to_string(),
            database.expect("database url").to_string(),
        ]);
        args.extend(["--redis".to_string(), redis_url()]);
    }
    Server::start_raw(data_dir, &args)
}

async fn usage(server: &Server, key: &str) -> Value {
    let r = client()
        .get(server.url("/v1/usage"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn burst_then_refuse(backend: Backend) {
    let db = matches!(backend, Backend::Shared).then(fresh_postgres);
    let server = start(backend, tempfile::tempdir().unwrap(), "", db.as_deref());
    let file = corpus("edge/gray.jpg");
    let mut statuses = Vec::new();
    let mut retry_after = 0u64;
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let r = upload_with_key(&server, &server.key, &file, "in.jpg", serde_json::json!({})).await;
        for h in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            assert!(r.headers().contains_key(h), "{h} missing on {}", r.status());
        }
        assert_eq!(r.headers()["ratelimit-limit"], "1");
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            retry_after = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    // The burst is one request; a loop slower than a second (a loaded machine) earns refills.
    let refills = started.elapsed().as_secs() as usize;
    let passed = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(statuses[0], 200);
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{statuses:?}"
    );
    assert!(
        passed <= 1 + refills,
        "{backend:?}: the free plan's burst is one request: {statuses:?} in {:?}",
        started.elapsed()
    );
    if refills == 0 {
        assert_eq!(statuses, [200, 429, 429, 429, 429], "{backend:?}");
    }
    assert!((1..=2).contains(&retry_after), "retry-after {retry_after}");
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let r = upload_with_key(&server, &server.key, &file, "in.jpg", serde_json::json!({})).await;
    assert_eq!(
        r.status(),
        200,
        "{backend:?}: passes again after Retry-After"
    );
    let u = usage(&server, &server.key).await;
    assert_eq!(
        (u["requests"].as_u64(), u["bytes"].as_u64()),
        (Some(2), Some(2 * file.len() as u64)),
        "{u}"
    );
}

#[tokio::test]
async fn free_key_gets_exactly_its_burst_embedded() {
    burst_then_refuse(Backend::Embedded).await;
}

#[tokio::test]
async fn free_key_gets_exactly_its_burst_postgres_redis() {
    burst_then_refuse(Backend::Shared).await;
}

async fn quota_and_overage(backend: Backend) {
    let db = matches!(backend, Backend::Shared).then(fresh_postgres);
    let plans = "[plans.free]\nbytes_per_month = 10000\nrequests_per_second = 1000\n[plans.starter]\nbytes_per_month = 10000\nrequests_per_second = 1000\n";
    let dir = tempfile::tempdir().unwrap();
    let server = start(backend, dir, plans, db.as_deref());
    let file = corpus("edge/gray.jpg"); // 5353 bytes: one fits in 10000, two do not
    assert_eq!(
        upload_with_key(&server, &server.key, &file, "in.jpg", serde_json::json!({}))
            .await
            .status(),
        200
    );
    let r = upload_with_key(&server, &server.key, &file, "in.jpg", serde_json::json!({})).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    let u = usage(&server, &server.key).await;
    assert_eq!(
        u["bytes"],
        file.len() as u64,
        "a refused request is not billed: {u}"
    );
    assert_eq!(u["plan"], "free");

    // A paid key goes on past its quota and records the overage.
    let paid = server
        .keys_with(&["create", "--plan", "starter"], db.as_deref())
        .trim()
        .to_string();
    for _ in 0..3 {
        assert_eq!(
            upload_with_key(&server, &paid, &file, "in.jpg", serde_json::json!({}))
                .await
                .status(),
            200
        );
    }
    let u = usage(&server, &paid).await;
    assert_eq!(u["bytes"], 3 * file.len() as u64);
    assert_eq!(u["overage_bytes"], 3 * file.len() as u64 - 10000, "{u}");

    // Usage survives a restart.
    let data_dir = server.stop();
    let server = start(backend, data_dir, plans, db.as_deref());
    let again = usage(&server, &paid).await;
    assert_eq!(again["bytes"], u["bytes"]);
    assert_eq!(again["requests"], 3);
}

#[tokio::test]
async fn quota_exhaustion_and_overage_embedded() {
    quota_and_overage(Backend::Embedded).await;
}

#[tokio::test]
async fn quota_exhaustion_and_overage_postgres_redis() {
    quota_and_overage(Backend::Shared).await;
}

async fn concurrent_metering(backend: Backend) {
    let db = matches!(backend, Backend::Shared).then(fresh_postgres);
    let server = start(
        backend,
        tempfile::tempdir().unwrap(),
        "[plans.free]\nrequests_per_second = 10000\n",
        db.as_deref(),
    );
    let file = corpus("edge/gray.jpg");
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (url, key, file) = (server.url("/v1/upload"), server.key.clone(), file.clone());
        tasks.push(tokio::spawn(async move {
            let form = reqwest::multipart::Form::new()
                .part("image", reqwest::multipart::Part::bytes(file))
                .text("data", "{}");
            client()
                .post(url)
                .bearer_auth(key)
                .multipart(form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0u64;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 24);
    let u = usage(&server, &server.key).await;
    assert_eq!(
        (u["requests"].as_u64(), u["bytes"].as_u64()),
        (Some(ok), Some(ok * file.len() as u64)),
        "{backend:?}: {u}"
    );
}

#[tokio::test]
async fn concurrent_requests_never_lose_a_metered_byte_embedded() {
    concurrent_metering(Backend::Embedded).await;
}

#[tokio::test]
async fn concurrent_requests_never_lose_a_metered_byte_postgres_redis() {
    concurrent_metering(Backend::Shared).await;
}

#[tokio::test]
async fn two_instances_sharing_redis_enforce_one_limit() {
    let db = fresh_postgres();
    let plans = "[plans.starter]\nrequests_per_second = 4\n";
    let a = start(
        Backend::Shared,
        tempfile::tempdir().unwrap(),
        plans,
        Some(&db),
    );
    let b = start(
        Backend::Shared,
        tempfile::tempdir().unwrap(),
        plans,
        Some(&db),
    );
    // Both instances share PostgreSQL: a key made through one works on the other.
    let key = a
        .keys_with(&["create", "--plan", "starter"], Some(&db))
        .trim()
        .to_string();
    let file = corpus("edge/gray.jpg");
    let mut allowed = 0;
    let started = std::time::Instant::now();
    for i in 0..10 {
        let server = if i % 2 == 0 { &a } else { &b };
        if upload_with_key(server, &key, &file, "in.jpg", serde_json::json!({}))
            .await
            .status()
            == 200
        {
            allowed += 1;
        }
    }
    // One shared bucket: the burst of one second's worth (4), plus what refilled (4/s) while the
    // loop ran. Two separate limits would let 8 through a fast loop.
    let refilled = (started.elapsed().as_secs_f64() * 4.0).floor() as u64;
    assert!(
        allowed >= 4 && allowed <= 4 + refilled + 1,
        "combined limit broken: {allowed} of 10 allowed in {:?}",
        started.elapsed()
    );
    let u = usage(&b, &key).await;
    assert_eq!(u["requests"].as_u64(), Some(allowed));
}
