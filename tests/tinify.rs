//! The Tinify (TinyPNG) dialect end to end, driven by Tinify's own clients: the Python client
//! from PyPI (tests/tinify_client.py) and the Node.js client from npm (tests/tinify_client.js),
//! installed by scripts/services.sh and changed only in their base URL and trusted CA. The server
//! runs with TLS (the clients insist on https), the S3 export goes to the moto emulator, and the
//! images the clients hand back are checked here: formats, dimensions, sizes, pixels, EXIF.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name}: run the tests with scripts/test.sh (scripts/services.sh installs Tinify's clients)")
    })
}

/// A CA and a server certificate it signed for 127.0.0.1 / localhost: OpenSSL (Python's `ssl`)
/// does not take a self-signed leaf as its own trust anchor. Returns (server cert, server key,
/// CA cert) paths.
fn write_cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // Distinct names: a leaf whose issuer equals its subject looks self-signed to OpenSSL.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pixpress test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    );
    std::fs::write(&paths.0, leaf.pem()).unwrap();
    std::fs::write(&paths.1, leaf_key.serialize_pem()).unwrap();
    std::fs::write(&paths.2, ca.pem()).unwrap();
    paths
}

/// A bucket name no other test run uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{:x}", std::process::id(), nanos % 0xffff_ffff)
}

/// Reads the S3 emulator with the independent client (boto3).
fn s3_client(verb: &str, args: &[&str]) -> Value {
    run_store_client("s3", &env("PIXPRESS_TEST_S3_ENDPOINT"), verb, args)
}

/// A JPEG carrying Make, Copyright, Artist, DateTimeOriginal and GPS tags.
fn jpeg_with_exif(source: &[u8]) -> Vec<u8> {
    use exif::{Field, In, Tag, Value};
    let ascii = |tag, text: &str| Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    };
    let fields = [
        ascii(Tag::Make, "PixCam"),
        ascii(Tag::Copyright, "(c) Ada Lovelace"),
        ascii(Tag::Artist, "Ada Lovelace"),
        ascii(Tag::DateTimeOriginal, "2024:05:06 07:08:09"),
        ascii(Tag::GPSLatitudeRef, "N"),
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![(48, 1).into(), (51, 1).into(), (24, 1).into()]),
        },
    ];
    let mut writer = exif::experimental::Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    let payload = [b"Exif\0\0".as_slice(), tiff.get_ref()].concat();
    let mut out = source[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&source[2..]);
    out
}

fn exif_tags(jpeg: &[u8]) -> Vec<exif::Tag> {
    match exif::Reader::new().read_from_container(&mut std::io::Cursor::new(jpeg)) {
        Ok(parsed) => parsed.fields().map(|f| f.tag).collect(),
        Err(_) => Vec::new(),
    }
}

/// What a client run left behind: its report and the images it saved.
struct Run {
    dir: tempfile::TempDir,
    results: Value,
}

impl Run {
    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn format(&self, name: &str) -> image::ImageFormat {
        image::guess_format(&self.file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn dimensions(&self, name: &str) -> (u32, u32) {
        let image = decode(&self.file(name));
        (image.width(), image.height())
    }

    /// The client's own report of a result agrees with the file it saved.
    fn reported(&self, entry: &str, name: &str, content_type: &str) -> (u32, u32) {
        let meta = &self.results[entry];
        let (width, height) = self.dimensions(name);
        assert_eq!(meta["width"], width, "{entry}: {meta}");
        assert_eq!(meta["height"], height, "{entry}: {meta}");
        assert_eq!(meta["size"], self.file(name).len(), "{entry}: {meta}");
        assert_eq!(meta["content_type"], content_type, "{entry}: {meta}");
        (width, height)
    }
}

enum Client {
    Python,
    Node,
}

/// Starts a TLS server, runs one client's script against it with a fresh key, and checks all
/// it brought back.
async fn drive(client: Client) {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, ca) = write_cert(certs.path());
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--fetch-allow",
        "127.0.0.1/32",
    ]);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let api_key = server.keys(&["create"]).trim().to_string();
    let statics = start_static_server().await;
    let bucket = unique("tinify");
    s3_client("create", &[&bucket]);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("exif_input.jpg"),
        jpeg_with_exif(&corpus("edge/progressive.jpg")),
    )
    .unwrap();
    let corpus_dir = corpus_dir().display().to_string();
    let args = [
        server.base.clone(),
        ca.display().to_string(),
        api_key,
        corpus_dir,
        format!("http://{statics}"),
        env("PIXPRESS_TEST_S3_ENDPOINT"),
        bucket.clone(),
        dir.path().display().to_string(),
    ];
    let (mut command, name) = match client {
        Client::Python => {
            let mut c = Command::new(env("PIXPRESS_TEST_PYTHON"));
            c.arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/tinify_client.py"
            ));
            (c, "python")
        }
        Client::Node => {
            let mut c = Command::new("node");
            c.arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/tinify_client.js"
            ))
            .arg(env("PIXPRESS_TEST_TINIFY_NODE"));
            (c, "node")
        }
    };
    // requests lets these override a session's own CA file, the one thing the test changes.
    command
        .args(&args)
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE");
    let out = tokio::task::spawn_blocking(move || command.output().expect("run the client"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{name} client failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    let run = Run { dir, results };
    check(&run, name, &bucket);
}

fn check(run: &Run, name: &str, bucket: &str) {
    use image::ImageFormat::{Jpeg, Png, WebP};
    let r = &run.results;

    // Sources: a file, a buffer and a URL, each compressed below its input.
    assert_eq!(run.format("from_file.png"), Png);
    assert_eq!(
        run.reported("from_file", "from_file.png", "image/png"),
        (600, 338)
    );
    let png_input = corpus("png_plasma_screenshot.png").len();
    assert!(run.file("from_file.png").len() < png_input, "{r}");
    assert_eq!(r["count_after_first"], 1, "{r}");
    let jpeg_input = corpus("edge/progressive.jpg").len();
    for (entry, file) in [
        ("from_buffer", "from_buffer.jpg"),
        ("from_url", "from_url.jpg"),
    ] {
        assert_eq!(run.format(file), Jpeg);
        assert_eq!(run.reported(entry, file, "image/jpeg"), (400, 313));
        assert!(run.file(file).len() <= jpeg_input, "{entry}: {r}");
    }

    // Resizing, from the 400×313 source.
    let (w, h) = run.reported("fit", "fit.jpg", "image/jpeg");
    assert!(w == 150 && (117..=118).contains(&h), "fit: {w}x{h}");
    assert_eq!(run.reported("cover", "cover.jpg", "image/jpeg"), (100, 100));
    assert_eq!(run.reported("thumb", "thumb.jpg", "image/jpeg"), (80, 120));
    let (w, h) = run.reported("scale", "scale.jpg", "image/jpeg");
    assert!(w == 200 && (156..=157).contains(&h), "scale: {w}x{h}");

    // Converting: one type, and the smallest of a list.
    assert_eq!(run.format("convert.webp"), WebP);
    assert_eq!(
        run.reported("webp", "convert.webp", "image/webp"),
        (400, 313)
    );
    let smallest = run.format("smallest.bin");
    let content_type = match smallest {
        WebP => "image/webp",
        Png => "image/png",
        other => panic!("the smallest of webp and png came back as {other:?}"),
    };
    assert_eq!(
        run.reported("smallest", "smallest.bin", content_type),
        (600, 338)
    );
    assert!(
        run.file("smallest.bin").len() <= run.file("from_file.png").len(),
        "the list's winner is no larger than the PNG alone: {r}"
    );

    // Transparent pixels flattened on the requested background.
    assert_eq!(run.format("on_black.jpg"), Jpeg);
    assert_eq!(
        run.reported("on_black", "on_black.jpg", "image/jpeg"),
        (128, 128)
    );
    let logo = decode_rgba(&corpus("edge/png_gray_alpha.png"));
    let on_black = decode_rgba(&run.file("on_black.jpg"));
    let (x, y, _) = logo
        .enumerate_pixels()
        .find(|(x, y, p)| {
            // A transparent pixel well inside a transparent area, away from JPEG ringing.
            p[3] == 0
                && (0..8).all(|d| {
                    logo.get_pixel((x + d).min(127), *y)[3] == 0
                        && logo.get_pixel(x.saturating_sub(d), *y)[3] == 0
                })
        })
        .expect("the logo has transparent pixels");
    let p = on_black.get_pixel(x, y);
    assert!(
        p[0] < 40 && p[1] < 40 && p[2] < 40,
        "({x}, {y}) is {p:?}, not black"
    );

    // Metadata: kept only when asked, and only what was asked.
    use exif::Tag;
    let kept = exif_tags(&run.file("preserved.jpg"));
    assert!(
        kept.contains(&Tag::Copyright) && kept.contains(&Tag::DateTimeOriginal),
        "{kept:?}"
    );
    assert!(
        !kept.contains(&Tag::GPSLatitude) && !kept.contains(&Tag::Make),
        "{kept:?}"
    );
    assert!(exif_tags(&run.file("stripped.jpg")).is_empty());

    // Storing to S3: the object is there, as the client was told.
    let store = &r["store"];
    let key = format!("tinify/{name}.jpg");
    let location = store["location"].as_str().unwrap_or_default();
    assert!(location.ends_with(&format!("{bucket}/{key}")), "{store}");
    assert_eq!(store["width"], 120, "{store}");
    let object = s3_client("get", &[bucket, &key]);
    assert_eq!(object["exists"], true, "{object}");
    use base64::Engine;
    let stored = base64::engine::general_purpose::STANDARD
        .decode(object["body_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(image::guess_format(&stored).unwrap(), Jpeg);
    let stored = decode(&stored);
    assert_eq!(
        (stored.width(), u64::from(stored.height())),
        (120, store["height"].as_u64().unwrap())
    );

    // 5 shrinks and 9 commands (the plain download is free), as Compression-Count says.
    assert_eq!(r["count"], 14, "{r}");

    // Errors, as the clients classify them.
    assert_eq!(r["not_an_image"]["status"], 415, "{r}");
    assert_eq!(r["bad_key"]["status"], 401, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinify_python_client() {
    drive(Client::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinify_node_client() {
    drive(Client::Node).await;
}
