//! The OpenAPI document against the real server: it is OpenAPI 3.1 and lists every error
//! code, and schemathesis (from PyPI, installed by scripts/services.sh) generates requests from
//! it and checks that no answer is a 5xx and every answer matches the document (status code,
//! content type, JSON schema).
//!
//! No request may leave the machine. The server's fetch guard already refuses loopback and
//! private addresses, but a generated `url` could name a public host (a DNS lookup, then a
//! fetch) and a generated `*_store` could name a cloud endpoint. So schemathesis runs against a
//! copy of the served document in which the options' `url` and `callback_url` fields may only
//! be one of a few loopback/private/malformed values (all refused before any connection), and the
//! `*_store` objects are left out; the URL calls run in positive mode only, so no value outside
//! that list is ever generated. Everything else is the served document, unchanged.

mod common;

use std::path::Path;
use std::process::Command;

use common::{client, Server};
use serde_json::{json, Value};

/// Test cases per operation and phase: enough to reach every option, bounded to ~1–2 minutes.
const MAX_EXAMPLES: &str = "40";

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Values a generated `url` or store `endpoint` may take: refused by the address policy or not
/// a URL at all, so nothing is resolved or connected to.
fn refused_urls() -> Value {
    json!([
        "http://127.0.0.1:9/none.png",
        "http://10.0.0.1/x.jpg",
        "http://[::1]:9/y.webp",
        "ftp://127.0.0.1/z.gif",
        "not a url"
    ])
}

fn schemathesis() -> String {
    let python = std::env::var("PIXPRESS_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "PIXPRESS_TEST_PYTHON: run the tests with scripts/test.sh (it installs schemathesis)"
        )
    });
    let bin = Path::new(&python).with_file_name("schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: source scripts/services.sh to install it",
        bin.display()
    );
    bin.display().to_string()
}

/// Rewrites the `url` / `endpoint` / `callback_url` properties under `value` to [`refused_urls`] and drops
/// `*_store` (so no store `endpoint` is left to generate).
fn confine(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // An answer's `url` is the hosted result's address, not an option: left as it is.
            let is_answer = map
                .get("properties")
                .is_some_and(|p| p.get("final_size").is_some());
            if let (false, Some(Value::Object(properties))) = (is_answer, map.get_mut("properties"))
            {
                for store in ["s3_store", "azure_store", "gcs_store"] {
                    properties.remove(store);
                }
                for field in ["url", "endpoint", "callback_url"] {
                    if let Some(p) = properties.get_mut(field) {
                        *p = json!({"type": "string", "enum": refused_urls()});
                    }
                }
            }
            for v in map.values_mut() {
                confine(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(confine),
        _ => {}
    }
}

async fn served_document(server: &Server) -> Value {
    let response = client()
        .get(server.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_error_code() {
    let server = Server::start(&[]);
    let doc = served_document(&server).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Every code this test suite sees the server answer with elsewhere is in the list.
    for code in [
        "invalid_json",
        "invalid_multipart",
        "missing_field",
        "invalid_field",
        "not_supported_yet",
        "invalid_url",
        "url_not_allowed",
        "missing_api_key",
        "invalid_api_key",
        "revoked_api_key",
        "not_found",
        "input_too_large",
        "too_many_pixels",
        "unsupported_media_type",
        "corrupt_image",
        "fetch_failed",
        "internal_error",
        "overloaded",
        "rate_limited",
        "quota_exceeded",
        "export_failed",
        "invalid_metrics_token",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    let options = &doc["components"]["schemas"]["UrlOptions"]["properties"];
    for field in [
        "url",
        "lossy",
        "quality",
        "quality_target",
        "resize",
        "format",
        "metadata",
        "background",
        "s3_store",
        "azure_store",
        "gcs_store",
        "callback_url",
    ] {
        assert!(
            options.get(field).is_some(),
            "option {field} is not documented"
        );
    }
    // Asynchronous mode's 202 and its job id, on every optimise path.
    for path in ["/v1/", "/v1/url", "/v1/upload"] {
        let accepted = &doc["paths"][path]["post"]["responses"]["202"];
        let schema = &accepted["content"]["application/json"]["schema"];
        assert_eq!(schema["required"], json!(["id"]), "{path}: {accepted}");
        assert!(
            schema["properties"]["status"].is_object(),
            "{path}: {accepted}"
        );
    }
    // A real error answer has the documented shape and a listed code.
    let response = client()
        .post(server.url("/v1/"))
        .header("content-type", "application/json")
        .body(r#"{"url": 5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        codes.contains(&body["error"]["code"].as_str().unwrap()),
        "{body}"
    );
}

/// Runs schemathesis on `schema` with `args`; panics with its output if it found anything.
fn run_schemathesis(server: &Server, schema: &Path, args: &[&str]) -> String {
    let output = Command::new(schemathesis())
        .arg("run")
        .arg(schema)
        .args(["--url", &server.base])
        .args(["-H", &format!("Authorization: Bearer {}", server.key)])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--seed", "1"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "60"])
        .args(["--suppress-health-check", "all"])
        .args(args)
        // Its cache goes beside the schema copy, not into the repository.
        .current_dir(schema.parent().expect("the schema copy is in a directory"))
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let server = Server::start(&[]);
    let mut doc = served_document(&server).await;
    confine(&mut doc);
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("openapi.json");
    std::fs::write(&schema, serde_json::to_vec(&doc).unwrap()).unwrap();
    let report = |name: &str| dir.path().join(name).display().to_string();

    let url_calls = run_schemathesis(
        &server,
        &schema,
        &[
            "--include-path-regex",
            "^/v1/(url)?$",
            "--mode",
            "positive",
            "--report",
            "junit",
            "--report-junit-path",
            &report("url.xml"),
        ],
    );
    let other_calls = run_schemathesis(
        &server,
        &schema,
        &[
            "--exclude-path-regex",
            "^/v1/(url)?$",
            "--mode",
            "all",
            "--report",
            "junit",
            "--report-junit-path",
            &report("other.xml"),
        ],
    );
    // Each run really exercised its operations (a filter matching nothing also "passes").
    for (text, file, operations) in [(&url_calls, "url.xml", 2), (&other_calls, "other.xml", 7)] {
        let junit = std::fs::read_to_string(dir.path().join(file)).unwrap_or_default();
        let cases = junit.matches("<testcase").count();
        assert_eq!(cases, operations, "{file}: {junit}\n{text}");
    }
    // The server is still healthy afterwards.
    let response = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}
