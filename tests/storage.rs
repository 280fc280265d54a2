//! Storage end to end (SPEC §6 stores, §10): hosted results on S3 shared by two instances, expiry
//! on S3, presigned redirects, and exports to S3, Azure Blob and GCS — against real emulators
//! started by scripts/services.sh (moto, Azurite, gcp-storage-emulator). What pixpress wrote is
//! read back with an independent client (boto3, azure-storage-blob, the GCS emulator's JSON API)
//! through tests/store_client.py, and compared byte for byte with what pixpress served.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name}: run the tests with scripts/test.sh (it starts the object-store emulators)")
    })
}

fn s3_endpoint() -> String {
    env("PIXPRESS_TEST_S3_ENDPOINT")
}

fn azure_endpoint() -> String {
    env("PIXPRESS_TEST_AZURITE_ENDPOINT")
}

fn gcs_endpoint() -> String {
    env("PIXPRESS_TEST_GCS_ENDPOINT")
}

/// A bucket name no other test run uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{:x}", std::process::id(), nanos % 0xffff_ffff)
}

/// Runs the independent client: `provider endpoint verb args…` → its JSON answer.
fn store_client(provider: &str, verb: &str, args: &[&str]) -> Value {
    let endpoint = match provider {
        "s3" => s3_endpoint(),
        "azure" => azure_endpoint(),
        _ => gcs_endpoint(),
    };
    run_store_client(provider, &endpoint, verb, args)
}

fn create(provider: &str, bucket: &str) {
    store_client(provider, "create", &[bucket]);
}

/// The object's bytes and metadata as the store itself has them, or None when absent.
fn object(provider: &str, bucket: &str, key: &str) -> Option<(Vec<u8>, Value)> {
    use base64::Engine;
    let v = store_client(provider, "get", &[bucket, key]);
    if v["exists"] != true {
        return None;
    }
    let body = base64::engine::general_purpose::STANDARD
        .decode(v["body_b64"].as_str().unwrap())
        .unwrap();
    Some((body, v))
}

fn keys(provider: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = store_client(provider, "list", &[bucket, prefix])["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

/// A server with unlimited plans, S3 credentials for the emulator in its config file, and
/// these flags.
fn start(flags: &[String]) -> Server {
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[plans.free]\nrequests_per_second = 100000\nbytes_per_month = 1000000000000000\n\
         [storage]\naccess_key_id = \"test\"\nsecret_access_key = \"test\"\n",
    )
    .unwrap();
    let mut args = vec!["--config".to_string(), config.display().to_string()];
    args.extend(flags.iter().cloned());
    Server::start_raw(data_dir, &args)
}

fn s3_storage_flags(bucket: &str, prefix: &str) -> Vec<String> {
    vec![
        "--storage".into(),
        format!("s3://{bucket}/{prefix}"),
        "--storage-endpoint".into(),
        s3_endpoint(),
        // Exports in these tests go to the emulators on loopback.
        "--fetch-allow".into(),
        "127.0.0.0/8".into(),
    ]
}

async fn upload_ok(server: &Server, data: Value) -> Value {
    let (status, body) =
        json_of(upload(server, &corpus("edge/gray.jpg"), "g.jpg", data).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `http://host:port/v1/images/ID.EXT` → `ID.EXT`.
fn file_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn two_instances_sharing_s3_and_postgres_serve_each_others_urls() {
    let bucket = unique("hosted");
    create("s3", &bucket);
    let database = fresh_postgres();
    let mut flags = s3_storage_flags(&bucket, "results");
    flags.extend(["--database".to_string(), database.clone()]);
    let a = start(&flags);
    let b = start(&flags);
    for server in [&a, &b] {
        let r = client().get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 200, "readyz checks the store too");
    }
    // A key made on A is valid on B: same database.
    let body = upload_ok(&a, json!({"api_key": a.key})).await;
    let file = file_of(body["url"].as_str().unwrap());
    assert!(body["url"].as_str().unwrap().starts_with(&a.base));
    let via_b = fetch_hosted(&b.url(&format!("/v1/images/{file}")), "image/jpeg").await;
    let via_a = fetch_hosted(body["url"].as_str().unwrap(), "image/jpeg").await;
    assert_eq!(via_a, via_b);
    assert_eq!(via_a.len() as u64, body["final_size"].as_u64().unwrap());
    // The bytes are in the bucket, under the prefix, as the store itself reports them.
    let (in_bucket, meta) =
        object("s3", &bucket, &format!("results/{file}")).expect("object in the bucket");
    assert_eq!(in_bucket, via_b);
    assert_eq!(meta["content_type"], "image/jpeg");
    // And the other way round: a result hosted by B is served by A.
    let body = upload_ok(&b, json!({"api_key": a.key})).await;
    let file = file_of(body["url"].as_str().unwrap());
    let via_a = fetch_hosted(&a.url(&format!("/v1/images/{file}")), "image/jpeg").await;
    assert_eq!(
        object("s3", &bucket, &format!("results/{file}")).unwrap().0,
        via_a
    );
}

#[tokio::test]
async fn results_on_s3_expire_and_the_sweep_deletes_the_objects() {
    let bucket = unique("expiry");
    create("s3", &bucket);
    let mut flags = s3_storage_flags(&bucket, "");
    flags.extend(["--result-ttl", "2s", "--sweep-interval", "300ms"].map(String::from));
    let server = start(&flags);
    let body = upload_ok(&server, json!({"api_key": server.key})).await;
    let url = body["url"].as_str().unwrap().to_string();
    let file = file_of(&url);
    assert!(object("s3", &bucket, &file).is_some());
    fetch_hosted(&url, "image/jpeg").await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let (status, err) = json_of(client().get(&url).send().await.unwrap()).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    // The sweep runs every 300 ms: the bucket is empty soon after.
    let mut left = keys("s3", &bucket, "");
    for _ in 0..20 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        left = keys("s3", &bucket, "");
    }
    assert!(
        left.is_empty(),
        "the sweep must delete the expired object from the bucket: {left:?}"
    );
    assert!(object("s3", &bucket, &file).is_none());
}

#[tokio::test]
async fn storage_redirect_answers_with_a_presigned_url() {
    let bucket = unique("redirect");
    create("s3", &bucket);
    let mut flags = s3_storage_flags(&bucket, "r");
    flags.push("--storage-redirect".into());
    let server = start(&flags);
    let body = upload_ok(&server, json!({"api_key": server.key})).await;
    let no_follow = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow
        .get(body["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&s3_endpoint()), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let direct = client().get(&location).send().await.unwrap();
    assert_eq!(direct.status(), 200);
    let bytes = direct.bytes().await.unwrap().to_vec();
    let file = file_of(body["url"].as_str().unwrap());
    assert_eq!(
        object("s3", &bucket, &format!("r/{file}")).unwrap().0,
        bytes
    );
    assert_eq!(bytes.len() as u64, body["final_size"].as_u64().unwrap());
}

fn s3_store(bucket: &str, path: &str) -> Value {
    json!({"key": "test", "secret": "test-secret-value", "bucket": bucket, "path": path,
           "region": "us-east-1", "endpoint": s3_endpoint()})
}

fn azure_store(container: &str, path: &str, key: &str) -> Value {
    json!({"account": AZURITE_ACCOUNT, "key": key, "container": container, "path": path,
           "endpoint": azure_endpoint()})
}

fn gcs_store(bucket: &str, path: &str) -> Value {
    json!({"credentials": "emulator-access-token", "bucket": bucket, "path": path,
           "endpoint": gcs_endpoint()})
}

#[tokio::test]
async fn exports_to_s3_azure_and_gcs_are_read_back_byte_for_byte() {
    let (s3b, azc, gcsb) = (unique("export"), unique("export"), unique("export"));
    create("s3", &s3b);
    create("azure", &azc);
    create("gcs", &gcsb);
    let server = start(&s3_storage_flags(&s3b, "hosted"));
    let mut s3 = s3_store(&s3b, "/user/photo.jpg");
    s3["headers"] = json!({"Cache-Control": "max-age=3600", "x-amz-meta-owner": "tests"});
    s3["acl"] = json!("public-read");
    let body = upload_ok(
        &server,
        json!({"api_key": server.key, "lossy": true,
               "s3_store": s3,
               "azure_store": azure_store(&azc, "user/photo.jpg", AZURITE_KEY),
               "gcs_store": gcs_store(&gcsb, "user/")}),
    )
    .await;
    let hosted = fetch_hosted(body["url"].as_str().unwrap(), "image/jpeg").await;
    let stored = body["stored"].as_array().expect("stored");
    assert_eq!(stored.len(), 3, "{body}");
    let id = file_of(body["url"].as_str().unwrap()).replace(".jpg", "");
    let expected = [
        ("s3", s3b.as_str(), "user/photo.jpg".to_string()),
        ("azure", azc.as_str(), "user/photo.jpg".to_string()),
        ("gcs", gcsb.as_str(), format!("user/{id}.jpg")),
    ];
    for (entry, (provider, bucket, path)) in stored.iter().zip(&expected) {
        assert_eq!(entry["provider"], *provider, "{entry}");
        assert_eq!(entry["bucket"], *bucket, "{entry}");
        assert_eq!(entry["path"], path.as_str(), "{entry}");
        assert!(entry["url"].as_str().unwrap().contains(bucket), "{entry}");
        let (bytes, meta) = object(provider, bucket, path)
            .unwrap_or_else(|| panic!("{provider}: {bucket}/{path} was not written"));
        assert_eq!(
            bytes, hosted,
            "{provider} holds other bytes than pixpress served"
        );
        assert_eq!(meta["content_type"], "image/jpeg", "{provider} {meta}");
        if *provider == "s3" {
            assert_eq!(meta["cache_control"], "max-age=3600");
            assert_eq!(meta["metadata"]["owner"], "tests");
            assert_eq!(meta["public_read"], true, "acl public-read: {meta}");
        }
    }
    let text = body.to_string();
    assert!(!text.contains("test-secret-value") && !text.contains(AZURITE_KEY));
}

#[tokio::test]
async fn resize_arrays_export_with_placeholders_or_suffixes() {
    let bucket = unique("sizes");
    create("s3", &bucket);
    let server = start(&s3_storage_flags(&bucket, "hosted"));
    let resize = json!([
        {"id": "small", "strategy": "exact", "width": 8, "height": 6},
        {"id": "big", "strategy": "exact", "width": 20, "height": 10}
    ]);
    let body = upload_ok(
        &server,
        json!({"api_key": server.key, "resize": resize,
               "s3_store": s3_store(&bucket, "t/{id}_{width}x{height}.{ext}")}),
    )
    .await;
    assert_eq!(
        keys("s3", &bucket, "t/"),
        vec!["t/big_20x10.jpg".to_string(), "t/small_8x6.jpg".to_string()]
    );
    for result in body["results"].as_array().unwrap() {
        let entry = &result["stored"][0];
        let hosted = fetch_hosted(result["url"].as_str().unwrap(), "image/jpeg").await;
        let (bytes, meta) = object("s3", &bucket, entry["path"].as_str().unwrap()).unwrap();
        assert_eq!(bytes, hosted);
        assert_eq!(meta["public_read"], false, "no acl asked: {meta}");
    }
    // Without placeholders, each output gets its id as a suffix.
    upload_ok(
        &server,
        json!({"api_key": server.key, "resize": resize,
               "s3_store": s3_store(&bucket, "plain/photo.jpg")}),
    )
    .await;
    assert_eq!(
        keys("s3", &bucket, "plain/"),
        vec![
            "plain/photo-big.jpg".to_string(),
            "plain/photo-small.jpg".to_string()
        ]
    );
}

#[tokio::test]
async fn a_refused_export_is_502_and_nothing_else_is_lost() {
    let (bucket, container) = (unique("present"), unique("present"));
    create("s3", &bucket);
    create("azure", &container);
    let server = start(&s3_storage_flags(&bucket, "hosted"));

    // A missing bucket: 502 naming the provider, the bucket and S3's own message; the hosted
    // result is still produced and its URL is in the error.
    let missing = unique("missing");
    let (status, err) = json_of(
        upload(
            &server,
            &corpus("edge/gray.jpg"),
            "g.jpg",
            json!({"api_key": server.key, "s3_store": s3_store(&missing, "a.jpg")}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 502, "{err}");
    let e = &err["error"];
    assert_eq!(e["code"], "export_failed");
    assert_eq!(e["details"]["provider"], "s3");
    assert_eq!(e["details"]["bucket"], missing.as_str());
    assert!(
        e["details"]["store_message"]
            .as_str()
            .unwrap()
            .contains("NoSuchBucket"),
        "{err}"
    );
    assert!(e["message"].as_str().unwrap().contains(&missing));
    let url = e["details"]["hosted"]["url"].as_str().expect("hosted url");
    let hosted = fetch_hosted(url, "image/jpeg").await;
    assert_eq!(
        object("s3", &bucket, &format!("hosted/{}", file_of(url)))
            .unwrap()
            .0,
        hosted
    );

    // Bad credentials on the second store: the first store's write stands and is listed.
    let wrong_key = "V3Jvbmcga2V5IGZvciBBenVyaXRl";
    let (status, err) = json_of(
        upload(
            &server,
            &corpus("edge/gray.jpg"),
            "g.jpg",
            json!({"api_key": server.key,
                   "s3_store": s3_store(&bucket, "ok/first.jpg"),
                   "azure_store": azure_store(&container, "second.jpg", wrong_key)}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 502, "{err}");
    let e = &err["error"];
    assert_eq!(e["details"]["provider"], "azure");
    assert_eq!(e["details"]["bucket"], container.as_str());
    let text = err.to_string();
    assert!(
        !text.contains(wrong_key) && !text.contains("test-secret-value"),
        "{text}"
    );
    let first = &e["details"]["hosted"]["stored"][0];
    assert_eq!(first["provider"], "s3", "{err}");
    assert_eq!(first["path"], "ok/first.jpg");
    let hosted = fetch_hosted(
        e["details"]["hosted"]["url"].as_str().unwrap(),
        "image/jpeg",
    )
    .await;
    assert_eq!(object("s3", &bucket, "ok/first.jpg").unwrap().0, hosted);
    assert!(object("azure", &container, "second.jpg").is_none());

    // Both requests did the work and are metered.
    let usage: Value = client()
        .get(server.url("/v1/usage"))
        .bearer_auth(&server.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["requests"], 2, "{usage}");
}

#[tokio::test]
async fn export_endpoints_on_private_addresses_are_refused_without_fetch_allow() {
    let server = start(&[]);
    let (status, err) = json_of(
        upload(
            &server,
            &corpus("edge/gray.jpg"),
            "g.jpg",
            json!({"api_key": server.key, "s3_store": s3_store("any-bucket", "a.jpg")}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 502, "{err}");
    assert_eq!(err["error"]["code"], "export_failed");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not allowed"),
        "{err}"
    );
    assert!(err["error"]["details"]["hosted"]["url"].is_string());
}

/// Credentials never reach the log, even at debug level: the server's stderr is captured while
/// exports succeed and fail with distinctive secrets.
#[tokio::test]
async fn credentials_never_appear_in_logs() {
    use std::io::{BufRead, BufReader};
    let (bucket, container) = (unique("logs"), unique("logs"));
    create("s3", &bucket);
    create("azure", &container);
    let data_dir = tempfile::tempdir().unwrap();
    let log_path = data_dir.path().join("stderr.log");
    let config = data_dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[plans.free]\nrequests_per_second = 100000\n\
         [storage]\naccess_key_id = \"test\"\nsecret_access_key = \"hosted-secret-4af1c9\"\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .arg("--config")
        .arg(&config)
        .args(s3_storage_flags(&bucket, "hosted"))
        .env("RUST_LOG", "debug,sqlx=warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut key = String::new();
    let mut base = String::new();
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if line.trim().starts_with("pxk_") {
            key = line.trim().to_string();
        }
        if let Some(url) = line.strip_prefix("pixpress listening on ") {
            base = url.to_string();
            break;
        }
    }
    let secret = "user-secret-77d2e1";
    let azure_key = "QmFkIGtleSBmb3IgbG9nIHRlc3Q=";
    let cases = [
        (
            json!({"s3_store": {"key": "AKIALOGTEST12345", "secret": secret, "bucket": bucket,
                                "path": "a.jpg", "endpoint": s3_endpoint()}}),
            200,
        ),
        (
            json!({"s3_store": {"key": "AKIALOGTEST12345", "secret": secret,
                                "bucket": unique("nobucket"), "path": "a.jpg",
                                "endpoint": s3_endpoint()}}),
            502,
        ),
        (
            json!({"azure_store": {"account": AZURITE_ACCOUNT, "key": azure_key,
                                   "container": container, "path": "a.jpg",
                                   "endpoint": azure_endpoint()}}),
            502,
        ),
    ];
    for (stores, expected) in cases {
        let mut data = stores;
        data["api_key"] = json!(key);
        let form = reqwest::multipart::Form::new()
            .part(
                "image",
                reqwest::multipart::Part::bytes(corpus("edge/gray.jpg")),
            )
            .text("data", data.to_string());
        let r = client()
            .post(format!("{base}/v1/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected);
        let text = r.text().await.unwrap();
        assert!(
            !text.contains(secret) && !text.contains(azure_key),
            "{text}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("export failed"), "the failures are logged");
    for s in [secret, azure_key, "hosted-secret-4af1c9"] {
        assert!(!log.contains(s), "{s} appears in the log");
    }
}

/// The same store abstraction on Azure Blob (Azurite): hosted results, presigned (SAS) redirects.
#[tokio::test]
async fn hosted_results_on_azure_blob_stream_and_redirect() {
    let container = unique("hosted");
    create("azure", &container);
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[plans.free]\nrequests_per_second = 100000\n\
             [storage]\nurl = \"azblob://{container}/px\"\nendpoint = \"{}\"\n\
             account_name = \"{AZURITE_ACCOUNT}\"\naccount_key = \"{AZURITE_KEY}\"\n",
            azure_endpoint()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let server = Server::start_raw(data_dir, &["--config".to_string(), config.clone()]);
    let body = upload_ok(&server, json!({"api_key": server.key})).await;
    let url = body["url"].as_str().unwrap();
    let hosted = fetch_hosted(url, "image/jpeg").await;
    let (in_container, meta) = object("azure", &container, &format!("px/{}", file_of(url)))
        .expect("blob in the container");
    assert_eq!(in_container, hosted);
    assert_eq!(meta["content_type"], "image/jpeg");
    let ready = client().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // OpenDAL presigns Azure URLs with a SAS token only: with the account key alone, a
    // redirecting server refuses to start rather than serving broken links.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--storage-redirect",
            "--config",
            &config,
        ])
        .arg("--data-dir")
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sas_token"));
    let sas = store_client("azure", "sas", &[&container])["sas"]
        .as_str()
        .unwrap()
        .to_string();
    let data_dir = tempfile::tempdir().unwrap();
    let with_sas = data_dir.path().join("sas.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&with_sas, format!("{text}sas_token = \"{sas}\"\n")).unwrap();
    let redirecting = Server::start_raw(
        data_dir,
        &[
            "--config".to_string(),
            with_sas.display().to_string(),
            "--storage-redirect".to_string(),
        ],
    );
    let body = upload_ok(&redirecting, json!({"api_key": redirecting.key})).await;
    let no_follow = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow
        .get(body["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&azure_endpoint()) && location.contains("sig="),
        "{location}"
    );
    let direct = client().get(&location).send().await.unwrap();
    assert_eq!(direct.status(), 200, "{location}");
    let bytes = direct.bytes().await.unwrap().to_vec();
    let file = file_of(body["url"].as_str().unwrap());
    assert_eq!(
        object("azure", &container, &format!("px/{file}"))
            .unwrap()
            .0,
        bytes
    );
}
