//! HTTPS with `--tls-cert/--tls-key`: a certificate generated here (rcgen), a real TLS client
//! for the API, and `openssl s_client` to show TLS 1.1 refused by the server while 1.2 and 1.3
//! are accepted.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

fn write_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("cert");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    (cert_path, key_path, cert.cert.pem().into_bytes())
}

/// Runs `openssl s_client` with one protocol version; returns (handshake ok, output).
fn s_client(addr: &str, version_flag: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            version_flag,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client (install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok =
        out.status.success() && text.contains("Cipher is") && !text.contains("Cipher is (NONE)");
    (ok, text)
}

#[tokio::test]
async fn https_only_with_tls_1_2_minimum() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, pem) = write_cert(certs.path());
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(server.base.starts_with("https://"), "{}", server.base);

    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("https works");
    assert_eq!(r.status(), 200);
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(corpus("edge/gray.jpg")),
        )
        .text("data", json!({"api_key": server.key}).to_string());
    let r = client
        .post(server.url("/v1/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["url"].as_str().unwrap().starts_with("https://"),
        "{body}"
    );

    // Plain HTTP to the TLS port does not get an API answer.
    let plain = server.base.replace("https://", "http://");
    assert!(client
        .get(format!("{plain}/healthz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true));

    let addr = server.base.trim_start_matches("https://").to_string();
    let (ok12, out12) = s_client(&addr, "-tls1_2");
    assert!(ok12, "TLS 1.2 must be accepted:\n{out12}");
    let (ok13, out13) = s_client(&addr, "-tls1_3");
    assert!(ok13, "TLS 1.3 must be accepted:\n{out13}");
    let (ok11, out11) = s_client(&addr, "-tls1_1");
    assert!(!ok11, "TLS 1.1 must be refused:\n{out11}");
    // The refusal came from the server (a protocol alert), not from the client declining to try.
    assert!(
        out11.contains("alert") || out11.contains("protocol version"),
        "{out11}"
    );
}
