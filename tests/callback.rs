//! Asynchronous mode (`callback_url`, SPEC §11) end to end: the real server on loopback, a real
//! receiver inside the test (an axum server on 127.0.0.1 that records every POST and answers
//! with the statuses it is given), and the signature checked as a receiver would check it, with
//! the secret `pixpress keys create` printed. Results are downloaded and decoded.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// One POST the receiver got.
#[derive(Clone, Debug)]
struct Delivery {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Delivery {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("header {name} missing: {:?}", self.headers))
            .to_str()
            .expect("ascii header")
            .to_string()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the callback body is JSON")
    }
}

#[derive(Clone, Default)]
struct Recorded {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    /// Statuses to answer with, in order; 200 once they are used up.
    script: Arc<Mutex<Vec<u16>>>,
}

struct Receiver {
    addr: SocketAddr,
    recorded: Recorded,
}

impl Receiver {
    async fn start(script: &[u16]) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::start_on(listener, script)
    }

    fn start_on(listener: tokio::net::TcpListener, script: &[u16]) -> Receiver {
        let addr = listener.local_addr().expect("addr");
        let recorded = Recorded {
            script: Arc::new(Mutex::new(script.iter().rev().copied().collect())),
            ..Default::default()
        };
        let app = Router::new()
            .route("/cb", post(record))
            .with_state(recorded.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, recorded }
    }

    fn url(&self) -> String {
        format!("http://{}/cb", self.addr)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.recorded.deliveries.lock().expect("lock").clone()
    }

    /// Waits until `n` deliveries have arrived (panics after `within`), then `settle` more to
    /// catch any extra one, and returns them all.
    async fn wait_for(&self, n: usize, within: Duration, settle: Duration) -> Vec<Delivery> {
        let start = Instant::now();
        while self.deliveries().len() < n {
            assert!(
                start.elapsed() < within,
                "{} of {n} callbacks arrived within {within:?}",
                self.deliveries().len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(settle).await;
        self.deliveries()
    }
}

async fn record(
    State(recorded): State<Recorded>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> StatusCode {
    recorded.deliveries.lock().expect("lock").push(Delivery {
        headers,
        body: body.to_vec(),
    });
    let status = recorded.script.lock().expect("lock").pop().unwrap_or(200);
    StatusCode::from_u16(status).expect("status")
}

/// `pixpress keys create` against the server's data dir: (key from stdout, signing secret from
/// the `callback signing secret:` line on stderr).
fn create_key(server: &Server, database: Option<&str>) -> (String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["keys", "create", "--plan", "free", "--data-dir"])
        .arg(server.data_dir.path());
    if let Some(url) = database {
        cmd.args(["--database", url]);
    }
    let out = cmd.output().expect("run keys create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let secret = stderr
        .lines()
        .find_map(|l| l.strip_prefix("callback signing secret: "))
        .unwrap_or_else(|| panic!("no secret in {stderr}"))
        .trim()
        .to_string();
    assert!(
        key.starts_with("pxk_") && secret.starts_with("pxs_"),
        "{key} {secret}"
    );
    (key, secret)
}

/// What a receiver does: HMAC-SHA256 of `<timestamp>.<body>` with the secret, compared with
/// the `X-Pixpress-Signature` header (`sha256=<hex>`).
fn signature_verifies(secret: &str, delivery: &Delivery) -> bool {
    let timestamp = delivery.header("x-pixpress-timestamp");
    let presented = delivery.header("x-pixpress-signature");
    let Some(hex_sig) = presented.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(presented) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&delivery.body);
    mac.verify_slice(&presented).is_ok()
}

fn keys_of(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn is_job_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// This month's (bytes, requests) for `key`.
async fn billed(server: &Server, key: &str) -> (u64, u64) {
    let r = client()
        .get(server.url("/v1/usage"))
        .bearer_auth(key)
        .send()
        .await
        .expect("usage");
    let (status, u) = json_of(r).await;
    assert_eq!(status, 200, "{u}");
    (
        u["bytes"].as_u64().expect("bytes"),
        u["requests"].as_u64().expect("requests"),
    )
}

async fn decoded_dimensions(url: &str) -> (u32, u32) {
    let r = client().get(url).send().await.expect("get hosted");
    assert_eq!(r.status(), 200, "{url}");
    let bytes = r.bytes().await.expect("bytes");
    let image = decode(&bytes);
    (image.width(), image.height())
}

/// The callback files parked for jobs still in the store.
fn parked_inputs(server: &Server) -> usize {
    std::fs::read_dir(server.data_dir.path().join("results"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("callback-input-")
                })
                .count()
        })
        .unwrap_or(0)
}

const LOOPBACK: [&str; 2] = ["--fetch-allow", "127.0.0.1/32"];

#[tokio::test]
async fn a_native_upload_is_accepted_at_once_and_its_answer_arrives_signed() {
    let server = Server::start(&LOOPBACK);
    let (key, secret) = create_key(&server, None);
    let receiver = Receiver::start(&[]).await;
    let photo = corpus("photo_garden.jpg");
    let options =
        json!({"lossy": true, "resize": {"strategy": "exact", "width": 160, "height": 100}});

    let mut with_callback = options.clone();
    with_callback["callback_url"] = json!(receiver.url());
    let started = Instant::now();
    let (status, accepted) =
        json_of(upload_with_key(&server, &key, &photo, "garden.jpg", with_callback).await).await;
    let answered_in = started.elapsed();
    assert_eq!(status, 202, "{accepted}");
    assert!(
        answered_in < Duration::from_secs(5),
        "the 202 took {answered_in:?}"
    );
    let id = accepted["id"].as_str().expect("id").to_string();
    assert!(is_job_id(&id), "{accepted}");
    assert_eq!(accepted["status"], "queued");
    assert_eq!(
        keys_of(&accepted),
        BTreeSet::from(["id".into(), "status".into()])
    );

    let deliveries = receiver
        .wait_for(1, Duration::from_secs(90), Duration::from_secs(2))
        .await;
    assert_eq!(deliveries.len(), 1, "exactly one POST");
    let delivery = &deliveries[0];
    assert_eq!(delivery.header("x-pixpress-job-id"), id);
    assert_eq!(delivery.header("x-pixpress-status"), "200");
    assert_eq!(delivery.header("x-pixpress-delivery-attempt"), "1");
    assert_eq!(delivery.header("content-type"), "application/json");
    assert!(
        signature_verifies(&secret, delivery),
        "the signature verifies with the key's secret"
    );
    let wrong = format!("pxs_{}", "0".repeat(64));
    assert!(
        !signature_verifies(&wrong, delivery),
        "and not with another secret"
    );
    let mut tampered = delivery.clone();
    tampered.body.push(b' ');
    assert!(
        !signature_verifies(&secret, &tampered),
        "nor over other bytes"
    );

    // The body is the synchronous answer: the same fields as the same call made with no callback.
    let body = delivery.json();
    let (status, sync) =
        json_of(upload_with_key(&server, &key, &photo, "garden.jpg", options).await).await;
    assert_eq!(status, 200, "{sync}");
    assert_eq!(
        keys_of(&body),
        keys_of(&sync),
        "callback {body}\nsync {sync}"
    );
    assert_eq!(
        (body["final_width"].as_u64(), body["final_height"].as_u64()),
        (Some(160), Some(100))
    );
    assert_eq!(body["original_size"], photo.len());
    let url = body["url"].as_str().expect("url");
    assert_eq!(decoded_dimensions(url).await, (160, 100));
    assert_eq!(
        parked_inputs(&server),
        0,
        "the parked upload is deleted once the job ends"
    );
    // Metered once for each of the two calls.
    assert_eq!(billed(&server, &key).await, (2 * photo.len() as u64, 2));
}

#[tokio::test]
async fn a_kraken_request_by_url_gets_a_kraken_answer_with_its_id() {
    let server = Server::start(&LOOPBACK);
    let (key, secret) = create_key(&server, None);
    let files = start_static_server().await;
    let receiver = Receiver::start(&[]).await;
    let r = client()
        .post(server.url("/v1/url"))
        .json(&json!({
            "auth": {"api_key": key, "api_secret": "unused"},
            "url": format!("http://{files}/corpus/png_coffee_photo.png"),
            "callback_url": receiver.url(),
            "lossy": true,
            "resize": {"strategy": "landscape", "width": 300},
        }))
        .send()
        .await
        .expect("post");
    let (status, accepted) = json_of(r).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        keys_of(&accepted),
        BTreeSet::from(["id".into()]),
        "Kraken answers {{\"id\"}}"
    );
    let id = accepted["id"].as_str().expect("id").to_string();

    let deliveries = receiver
        .wait_for(1, Duration::from_secs(90), Duration::from_secs(1))
        .await;
    assert_eq!(deliveries.len(), 1);
    let body = deliveries[0].json();
    assert!(signature_verifies(&secret, &deliveries[0]));
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["file_name"], "png_coffee_photo.png");
    assert_eq!(
        (
            body["kraked_width"].as_u64(),
            body["kraked_height"].as_u64()
        ),
        (Some(300), Some(200))
    );
    assert_eq!(
        (
            body["original_width"].as_u64(),
            body["original_height"].as_u64()
        ),
        (Some(600), Some(400))
    );
    for field in ["original_size", "kraked_size", "saved_bytes"] {
        assert!(body[field].is_u64(), "{field} in {body}");
    }
    let kraked = body["kraked_url"].as_str().expect("kraked_url");
    assert_eq!(decoded_dimensions(kraked).await, (300, 200));
}

/// Kraken's own Python client, only its base address changed, asking for a callback.
const KRAKEN_CLIENT: &str = r#"
import json, sys
from krakenio import Client
base, key, image, callback = sys.argv[1:5]
kraken = Client(key, "unused")
kraken.api_base_url = base.rstrip("/") + "/"
kraken.api_v1_url = kraken.api_base_url + "v1/"
print(json.dumps(kraken.url(image, {"callback_url": callback, "lossy": True,
                                    "resize": {"strategy": "exact", "width": 64, "height": 48}})))
"#;

#[tokio::test]
async fn kraken_s_python_client_asks_for_a_callback_and_gets_one() {
    let Some(python) = kraken_python() else {
        return;
    };
    let server = Server::start(&LOOPBACK);
    let (key, secret) = create_key(&server, None);
    let files = start_static_server().await;
    let receiver = Receiver::start(&[]).await;
    let image = format!("http://{files}/corpus/photo_aqua.jpg");
    let out = Command::new(python)
        .args([
            "-c",
            KRAKEN_CLIENT,
            &server.base,
            &key,
            &image,
            &receiver.url(),
        ])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .expect("run krakenio");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accepted: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let id = accepted["id"]
        .as_str()
        .expect("the client hands back the id")
        .to_string();
    let deliveries = receiver
        .wait_for(1, Duration::from_secs(90), Duration::from_secs(1))
        .await;
    let body = deliveries[0].json();
    assert!(signature_verifies(&secret, &deliveries[0]));
    assert_eq!(
        (body["success"].clone(), body["id"].clone()),
        (json!(true), json!(id))
    );
    let kraked = body["kraked_url"].as_str().expect("kraked_url");
    assert_eq!(decoded_dimensions(kraked).await, (64, 48));
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_the_same_signed_body_and_the_job_billed_once() {
    let server = Server::start(&LOOPBACK);
    let (key, secret) = create_key(&server, None);
    let receiver = Receiver::start(&[500, 500]).await;
    let gray = corpus("edge/gray.jpg");
    let r = upload_with_key(
        &server,
        &key,
        &gray,
        "gray.jpg",
        json!({"callback_url": receiver.url()}),
    )
    .await;
    let (status, accepted) = json_of(r).await;
    assert_eq!(status, 202, "{accepted}");
    // Two failures wait 1 s and 4 s; then a settle longer than the next backoff (16 s) is not
    // needed: the third attempt succeeds and nothing follows it.
    let deliveries = receiver
        .wait_for(3, Duration::from_secs(90), Duration::from_secs(3))
        .await;
    assert_eq!(
        deliveries.len(),
        3,
        "two failures, then the one that is taken"
    );
    let attempts: Vec<String> = deliveries
        .iter()
        .map(|d| d.header("x-pixpress-delivery-attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    for d in &deliveries {
        assert_eq!(d.body, deliveries[0].body, "the same body every time");
        assert_eq!(
            d.header("x-pixpress-signature"),
            deliveries[0].header("x-pixpress-signature")
        );
        assert_eq!(
            d.header("x-pixpress-timestamp"),
            deliveries[0].header("x-pixpress-timestamp")
        );
        assert_eq!(
            d.header("x-pixpress-job-id"),
            accepted["id"].as_str().expect("id")
        );
        assert!(signature_verifies(&secret, d));
    }
    let body = deliveries[0].json();
    assert_eq!(body["original_size"], gray.len());
    let url = body["url"].as_str().expect("url");
    let (w, h) = decoded_dimensions(url).await;
    assert!(w > 0 && h > 0);
    assert_eq!(
        billed(&server, &key).await,
        (gray.len() as u64, 1),
        "metered once"
    );
}

#[tokio::test]
async fn a_callback_to_a_refused_address_is_a_400_and_nothing_is_delivered() {
    let receiver = Receiver::start(&[]).await;
    let gray = corpus("edge/gray.jpg");

    // Without --fetch-allow, loopback is refused: the receiver on 127.0.0.1 never hears a thing.
    let strict = Server::start(&[]);
    let (key, _) = create_key(&strict, None);
    let r = upload_with_key(
        &strict,
        &key,
        &gray,
        "gray.jpg",
        json!({"callback_url": receiver.url()}),
    )
    .await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "url_not_allowed", "{body}");
    assert_eq!(body["error"]["details"]["field"], "callback_url", "{body}");

    // With loopback allowed, private and metadata addresses are still refused, in both dialects.
    let server = Server::start(&LOOPBACK);
    let (key2, _) = create_key(&server, None);
    for refused in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/cb",
        "http://[::1]:9/cb",
    ] {
        let r = upload_with_key(
            &server,
            &key2,
            &gray,
            "gray.jpg",
            json!({"callback_url": refused}),
        )
        .await;
        let (status, body) = json_of(r).await;
        assert_eq!(status, 400, "{refused}: {body}");
        assert_eq!(
            body["error"]["code"], "url_not_allowed",
            "{refused}: {body}"
        );
    }
    let files = start_static_server().await;
    let r = client()
        .post(server.url("/v1/url"))
        .json(&json!({
            "auth": {"api_key": key2, "api_secret": "x"},
            "url": format!("http://{files}/corpus/edge/gray.jpg"),
            "callback_url": "http://169.254.169.254/cb",
        }))
        .send()
        .await
        .expect("post");
    let (status, body) = json_of(r).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        (body["success"].clone(), body["code"].clone()),
        (json!(false), json!("url_not_allowed"))
    );
    let r = upload_with_key(
        &server,
        &key2,
        &gray,
        "gray.jpg",
        json!({"callback_url": "ftp://example.com/cb"}),
    )
    .await;
    let (status, body) = json_of(r).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid_url")),
        "{body}"
    );
    // dry_run answers at once: with a callback it is a 400 naming the field.
    let r = upload_with_key(
        &server,
        &key2,
        &gray,
        "gray.jpg",
        json!({"callback_url": receiver.url(), "dry_run": true}),
    )
    .await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["field"], "callback_url", "{body}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(receiver.deliveries().is_empty(), "nothing was delivered");
    assert_eq!(billed(&strict, &key).await, (0, 0));
    assert_eq!(billed(&server, &key2).await, (0, 0));
    assert_eq!(parked_inputs(&server) + parked_inputs(&strict), 0);
}

#[tokio::test]
async fn a_corrupt_image_delivers_the_synchronous_error_and_is_not_metered() {
    let server = Server::start(&LOOPBACK);
    let (key, secret) = create_key(&server, None);
    let receiver = Receiver::start(&[]).await;
    let truncated = corpus("edge/truncated.jpg");
    let (sync_status, sync) =
        json_of(upload_with_key(&server, &key, &truncated, "t.jpg", json!({"lossy": true})).await)
            .await;
    assert_eq!(
        (sync_status, sync["error"]["code"].clone()),
        (422, json!("corrupt_image")),
        "{sync}"
    );

    let r = upload_with_key(
        &server,
        &key,
        &truncated,
        "t.jpg",
        json!({"lossy": true, "callback_url": receiver.url()}),
    )
    .await;
    let (status, accepted) = json_of(r).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("id").to_string();
    let deliveries = receiver
        .wait_for(1, Duration::from_secs(90), Duration::from_secs(1))
        .await;
    assert_eq!(
        deliveries.len(),
        1,
        "an error answer is delivered once, like any answer"
    );
    let d = &deliveries[0];
    assert!(signature_verifies(&secret, d));
    assert_eq!(d.header("x-pixpress-status"), "422");
    let body = d.json();
    assert_eq!(keys_of(&body), keys_of(&sync));
    assert_eq!(keys_of(&body["error"]), keys_of(&sync["error"]));
    assert_eq!(body["error"]["code"], "corrupt_image");
    assert_eq!(body["error"]["message"], sync["error"]["message"]);
    assert_eq!(
        body["error"]["request_id"],
        id.as_str(),
        "the job id stands for the request id"
    );
    assert_eq!(billed(&server, &key).await, (0, 0), "nothing metered");
    assert_eq!(parked_inputs(&server), 0);
}

/// A free loopback port with nothing listening on it (yet).
fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Submit, kill the server (SIGKILL) while the receiver is not listening yet, start a new
/// server on the same database and store: the job is picked up and delivered once, billed once.
async fn a_job_survives_a_kill(database: Option<String>) {
    let mut args: Vec<&str> = LOOPBACK.to_vec();
    if let Some(url) = &database {
        args.extend(["--database", url.as_str()]);
    }
    let server = Server::start(&args);
    let (key, secret) = create_key(&server, database.as_deref());
    let port = unused_port();
    let callback = format!("http://127.0.0.1:{port}/cb");
    let photo = corpus("png_coffee_photo.png");
    let options = json!({
        "callback_url": callback,
        "resize": {"strategy": "exact", "width": 90, "height": 60},
    });
    let (status, accepted) =
        json_of(upload_with_key(&server, &key, &photo, "coffee.png", options).await).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("id").to_string();
    // Long enough for the job to be picked up and, most likely, its first attempt refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let data_dir = server.stop();

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the callback port");
    let receiver = Receiver::start_on(listener, &[]);
    let server = Server::start_in(data_dir, &args);
    let deliveries = receiver
        .wait_for(1, Duration::from_secs(120), Duration::from_secs(3))
        .await;
    assert_eq!(
        deliveries.len(),
        1,
        "delivered exactly once after the restart"
    );
    let d = &deliveries[0];
    assert_eq!(d.header("x-pixpress-job-id"), id);
    assert!(signature_verifies(&secret, d));
    let body = d.json();
    assert_eq!(
        (body["final_width"].as_u64(), body["final_height"].as_u64()),
        (Some(90), Some(60))
    );
    // The answer may have been made by the first server, whose address (not fixed by a
    // --public-url here) died with it: the hosted result is read through the new one.
    let url = body["url"].as_str().expect("url");
    let path = &url[url.find("/v1/images/").expect("a hosted URL")..];
    assert_eq!(decoded_dimensions(&server.url(path)).await, (90, 60));
    assert_eq!(
        billed(&server, &key).await,
        (photo.len() as u64, 1),
        "billed once"
    );
    assert_eq!(parked_inputs(&server), 0);
}

#[tokio::test]
async fn a_job_survives_a_kill_on_sqlite() {
    a_job_survives_a_kill(None).await;
}

#[tokio::test]
async fn a_job_survives_a_kill_on_postgres() {
    a_job_survives_a_kill(Some(fresh_postgres())).await;
}

/// A bucket name no other test run uses.
fn unique_bucket(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{:x}", std::process::id(), nanos % 0xffff_ffff)
}

/// A server on the S3 emulator's `bucket` (prefix `results`) and `database`, loopback allowed.
fn start_on_s3(s3: &str, bucket: &str, database: &str) -> Server {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let config = data_dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[plans.free]\nrequests_per_second = 100000\nbytes_per_month = 1000000000000000\n\
         [storage]\naccess_key_id = \"test\"\nsecret_access_key = \"test\"\n",
    )
    .expect("write config");
    let args: Vec<String> = vec![
        "--config".into(),
        config.display().to_string(),
        "--storage".into(),
        format!("s3://{bucket}/results"),
        "--storage-endpoint".into(),
        s3.into(),
        "--database".into(),
        database.into(),
        "--fetch-allow".into(),
        "127.0.0.0/8".into(),
    ];
    Server::start_raw(data_dir, &args)
}

/// Two instances sharing PostgreSQL and an S3 result store (the emulator): a job accepted by
/// one that is killed at once is run by the other, from the upload the first parked in S3.
#[tokio::test]
async fn a_job_accepted_by_one_instance_is_run_by_another_sharing_postgres_and_s3() {
    let s3 = std::env::var("PIXPRESS_TEST_S3_ENDPOINT")
        .expect("PIXPRESS_TEST_S3_ENDPOINT: run the tests with scripts/test.sh");
    let bucket = unique_bucket("callbacks");
    run_store_client("s3", &s3, "create", &[&bucket]);
    let database = fresh_postgres();
    let first = start_on_s3(&s3, &bucket, &database);
    let (key, secret) = create_key(&first, Some(&database));
    let receiver = Receiver::start(&[]).await;
    let photo = corpus("png_coffee_photo.png");
    let options = json!({
        "callback_url": receiver.url(),
        "resize": {"strategy": "exact", "width": 90, "height": 60},
    });
    let (status, accepted) =
        json_of(upload_with_key(&first, &key, &photo, "coffee.png", options).await).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("id").to_string();
    drop(first.stop());
    // apalis re-queues a dead worker's running job when the next one starts, if its last
    // heartbeat is from an earlier second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = start_on_s3(&s3, &bucket, &database);

    let deliveries = receiver
        .wait_for(1, Duration::from_secs(120), Duration::from_secs(3))
        .await;
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert_eq!(d.header("x-pixpress-job-id"), id);
    assert!(signature_verifies(&secret, d));
    let body = d.json();
    assert_eq!(body["original_size"], photo.len());
    let url = body["url"].as_str().expect("url");
    let path = &url[url.find("/v1/images/").expect("a hosted URL")..];
    assert_eq!(decoded_dimensions(&second.url(path)).await, (90, 60));
    assert_eq!(billed(&second, &key).await, (photo.len() as u64, 1));
    let listed = run_store_client("s3", &s3, "list", &[&bucket, "results/"]);
    let names: Vec<&str> = listed["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!names.is_empty(), "the result is in the bucket");
    assert!(
        names.iter().all(|k| !k.contains("callback-input-")),
        "the parked upload is deleted: {names:?}"
    );
}
