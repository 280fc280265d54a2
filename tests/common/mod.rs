//! Test harness: starts the real `pixpress` binary on a free loopback port with its own data
//! directory, and a tiny static file server on 127.0.0.1 for URL fetches. No mocks.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::extract::Path as AxPath;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

pub const BIN: &str = env!("CARGO_BIN_EXE_pixpress");

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

pub fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).unwrap_or_else(|e| panic!("corpus file {name}: {e}"))
}

/// The corpus JPEG `name` with its EXIF orientation (a big-endian SHORT) set to `orientation`.
pub fn jpeg_with_orientation(name: &str, orientation: u8) -> Vec<u8> {
    let mut bytes = corpus(name);
    let entry = b"\x01\x12\x00\x03\x00\x00\x00\x01\x00";
    let at = bytes
        .windows(entry.len())
        .position(|w| w == entry)
        .expect("the orientation entry");
    bytes[at + entry.len()] = orientation;
    bytes
}

/// A fresh PostgreSQL database on the server scripts/services.sh started, for one test (never
/// dropped: the test databases go with the service's data directory).
pub fn fresh_postgres() -> String {
    let admin = std::env::var("PIXPRESS_TEST_DATABASE_URL").expect(
        "PIXPRESS_TEST_DATABASE_URL: run the tests with scripts/test.sh (it starts PostgreSQL)",
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!(
        "pixpress_test_{}_{:x}",
        std::process::id(),
        nanos % 0xffff_ffff_ffff
    );
    let status = Command::new("psql")
        .args([
            admin.as_str(),
            "-q",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .status()
        .expect("psql");
    assert!(status.success(), "could not create database {name}");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

pub struct Server {
    child: Child,
    pub base: String,
    pub key: String,
    pub data_dir: tempfile::TempDir,
}

/// `--config` with a free plan without effective limits, written into `data_dir`, then `extra`.
fn unlimited_plan_args(data_dir: &tempfile::TempDir, extra: &[&str]) -> Vec<String> {
    let config = data_dir.path().join("unlimited.toml");
    std::fs::write(
        &config,
        "[plans.free]\nrequests_per_second = 100000\nbytes_per_month = 1000000000000000\n",
    )
    .expect("write config");
    let mut args: Vec<String> = vec!["--config".into(), config.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

impl Server {
    /// Starts a server whose free plan has effectively no rate limit or quota, so tests that
    /// are not about plans can make many requests quickly.
    pub fn start(extra: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(data_dir, extra)
    }

    pub fn start_in(data_dir: tempfile::TempDir, extra: &[&str]) -> Server {
        let args = unlimited_plan_args(&data_dir, extra);
        Self::start_raw(data_dir, &args)
    }

    /// [`Server::start`] with these environment variables set for the server process.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let args = unlimited_plan_args(&data_dir, extra);
        Self::start_raw_with_env(data_dir, &args, env)
    }

    /// Starts a server with exactly these extra arguments (no test config).
    pub fn start_raw(data_dir: tempfile::TempDir, extra: &[String]) -> Server {
        Self::start_raw_with_env(data_dir, extra, &[])
    }

    fn start_raw_with_env(
        data_dir: tempfile::TempDir,
        extra: &[String],
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .args(extra)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn pixpress");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut key = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(k) = line.trim().strip_prefix("pxk_") {
                    if !line.contains("curl") {
                        key = format!("pxk_{k}");
                    }
                }
                if let Some(url) = line.strip_prefix("pixpress listening on ") {
                    let _ = tx.send((url.to_string(), key.clone()));
                }
            }
        });
        let (base, key) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not start");
        Server {
            child,
            base,
            key,
            data_dir,
        }
    }

    /// The server process's id, to read its memory from /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Runs `pixpress keys …` against this server's data directory.
    pub fn keys(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .arg("keys")
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .output()
            .expect("run keys");
        assert!(
            out.status.success(),
            "keys {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends SIGTERM and waits for a clean exit (in-flight requests finish first).
    pub fn terminate(mut self) -> tempfile::TempDir {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "server exited with {status}");
        std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("tempdir"))
    }

    /// Runs `pixpress keys …` against this server's state (its data dir, or `database`).
    pub fn keys_with(&self, args: &[&str], database: Option<&str>) -> String {
        let mut cmd = Command::new(BIN);
        cmd.arg("keys")
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir.path());
        if let Some(url) = database {
            cmd.args(["--database", url]);
        }
        let out = cmd.output().expect("run keys");
        assert!(
            out.status.success(),
            "keys {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("tempdir"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A static server on 127.0.0.1: `/corpus/<path>` serves corpus files, `/status/<n>` answers
/// that status, `/redirect/<n>` redirects n times before landing on a corpus JPEG, `/big`
/// streams 40 MB without a Content-Length, `/redirect-to?to=URL` redirects anywhere.
pub async fn start_static_server() -> SocketAddr {
    let app = Router::new()
        .route("/corpus/{*path}", get(serve_corpus))
        .route(
            "/status/{code}",
            get(|AxPath(code): AxPath<u16>| async move {
                StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT)
            }),
        )
        .route(
            "/redirect/{n}",
            get(|AxPath(n): AxPath<u32>| async move {
                if n == 0 {
                    Redirect::temporary("/corpus/photo_garden.jpg")
                } else {
                    Redirect::temporary(&format!("/redirect/{}", n - 1))
                }
            }),
        )
        .route("/redirect-to", get(redirect_to))
        .route(
            "/big",
            get(|| async {
                let chunk = bytes::Bytes::from(vec![0u8; 1024 * 1024]);
                let stream = futures_util::stream::iter(
                    (0..40).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                );
                axum::body::Body::from_stream(stream)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn redirect_to(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Redirect {
    Redirect::temporary(query.get("to").map_or("/", String::as_str))
}

async fn serve_corpus(AxPath(path): AxPath<String>) -> Response {
    match std::fs::read(corpus_dir().join(&path)) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// POSTs a multipart upload like the seed's curl example.
pub async fn upload(
    server: &Server,
    file: &[u8],
    name: &str,
    data: serde_json::Value,
) -> reqwest::Response {
    client()
        .post(server.url("/v1/upload"))
        .multipart(upload_form(file, name, &data))
        .send()
        .await
        .expect("upload")
}

/// [`upload`] with the key as a bearer token rather than in `data`.
pub async fn upload_with_key(
    server: &Server,
    key: &str,
    file: &[u8],
    name: &str,
    data: serde_json::Value,
) -> reqwest::Response {
    client()
        .post(server.url("/v1/upload"))
        .bearer_auth(key)
        .multipart(upload_form(file, name, &data))
        .send()
        .await
        .expect("upload")
}

fn upload_form(file: &[u8], name: &str, data: &serde_json::Value) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(file.to_vec()).file_name(name.to_string()),
        )
        .text("data", data.to_string())
}

/// The venv's python with `krakenio` (scripts/services.sh), or None (the test is skipped)
/// when it is not installed and the run does not require the tools.
pub fn kraken_python() -> Option<String> {
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("PIXPRESS_REQUIRE_TOOLS").is_some();
    let python = std::env::var("PIXPRESS_TEST_PYTHON").ok();
    let usable = python.as_ref().is_some_and(|py| {
        Command::new(py)
            .args(["-c", "import krakenio"])
            .status()
            .is_ok_and(|s| s.success())
    });
    match (usable, required) {
        (true, _) => python,
        (false, true) => panic!(
            "PIXPRESS_TEST_PYTHON with krakenio is required: source scripts/services.sh first"
        ),
        (false, false) => {
            eprintln!(
                "skipped: no PIXPRESS_TEST_PYTHON with krakenio (source scripts/services.sh)"
            );
            None
        }
    }
}

pub async fn post_json(server: &Server, body: serde_json::Value) -> reqwest::Response {
    client()
        .post(server.url("/v1/"))
        .json(&body)
        .send()
        .await
        .expect("post")
}

pub async fn json_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

/// Fetches a hosted result and returns its bytes, asserting the caching headers.
pub async fn fetch_hosted(url: &str, content_type: &str) -> Vec<u8> {
    let r = client().get(url).send().await.expect("get hosted");
    assert_eq!(r.status(), 200, "hosted {url}");
    assert_eq!(r.headers()[header::CONTENT_TYPE.as_str()], content_type);
    assert!(r.headers().contains_key("etag"));
    let cc = r.headers()["cache-control"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        cc.contains("max-age=") && cc.contains("public"),
        "cache-control {cc}"
    );
    r.bytes().await.expect("bytes").to_vec()
}

/// Decodes any format pixpress writes or reads (AVIF through the same libaom decoder the server
/// uses, everything else through `image`).
pub fn decode(bytes: &[u8]) -> image::DynamicImage {
    pixpress_core::decode_any(bytes).expect("decodes")
}

pub fn decode_rgba(bytes: &[u8]) -> image::RgbaImage {
    decode(bytes).to_rgba8()
}

pub fn decode_rgba16(bytes: &[u8]) -> image::ImageBuffer<image::Rgba<u16>, Vec<u16>> {
    decode(bytes).to_rgba16()
}

/// Runs tests/store_client.py, the independent object-store client (boto3, azure-storage-blob,
/// the GCS JSON API) in the venv `scripts/services.sh` built: `provider endpoint verb args…` →
/// its JSON answer.
pub fn run_store_client(
    provider: &str,
    endpoint: &str,
    verb: &str,
    args: &[&str],
) -> serde_json::Value {
    let python = std::env::var("PIXPRESS_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("PIXPRESS_TEST_PYTHON: run the tests with scripts/test.sh (scripts/services.sh sets it)")
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/store_client.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([provider, endpoint, verb])
        .args(args)
        .output()
        .expect("run store_client.py");
    assert!(
        out.status.success(),
        "store_client {provider} {verb} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("store_client prints JSON")
}
