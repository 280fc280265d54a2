//! Slow and idle clients (SPEC §9, README "Slow clients and connections"), end to end on raw
//! TCP: dozens of slow-loris connections trickling headers and dozens trickling an upload
//! body at 2 bytes/s are each closed by the server within its deadlines (the body ones with the
//! 408 JSON error), an idle keep-alive connection is closed after the header timeout, and
//! normal uploads made meanwhile stay as fast as on an idle server. With a connection cap, a
//! new client waits for a slot (never refused) and is served as soon as one frees; over TLS,
//! connections that never finish their handshake free their slots at the header timeout.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The deadlines the servers here run with, short so the test is quick.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_GRACE: Duration = Duration::from_secs(3);
const DEADLINE_ARGS: [&str; 6] = [
    "--header-timeout",
    "2s",
    "--body-min-rate",
    "16384",
    "--body-rate-grace",
    "3s",
];
/// Scheduling and a busy machine: how much later than its deadline a close may come.
const SLACK: Duration = Duration::from_millis(2500);
/// How much earlier than its deadline a close may come (timer granularity).
const EARLY: Duration = Duration::from_millis(300);
/// The gap between two trickled bytes: 2 bytes per second.
const TRICKLE_GAP: Duration = Duration::from_millis(500);
/// Each kind of trickling connection held at once.
const TRICKLERS: usize = 40;

fn address(server: &Server) -> SocketAddr {
    server
        .base
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .parse()
        .expect("server address")
}

/// What a trickling connection saw: when the server closed it, and what it answered first.
struct Closed {
    after: Duration,
    answer: Vec<u8>,
}

/// Connects, sends `head` at once, then trickles `tail` at 2 bytes/s while reading whatever
/// the server answers, until the server closes the connection (or `give_up` passes).
async fn trickle(
    addr: SocketAddr,
    head: Vec<u8>,
    mut tail: impl Iterator<Item = u8> + Send,
    give_up: Duration,
) -> Closed {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    write.write_all(&head).await.expect("send head");
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut tick = tokio::time::interval(TRICKLE_GAP);
    let mut writing = true;
    loop {
        tokio::select! {
            n = read.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            _ = tick.tick(), if writing => {
                // Once the server has stopped reading, a write fails; the read then sees the end.
                let byte = tail.next().unwrap_or(b'x');
                writing = write.write_all(&[byte]).await.is_ok();
            }
            () = tokio::time::sleep(give_up.saturating_sub(start.elapsed())) => {
                panic!("the server kept a trickling connection open for {give_up:?}");
            }
        }
    }
    Closed {
        after: start.elapsed(),
        answer,
    }
}

/// A request line and then header lines, all to be trickled: the head never ends.
fn endless_head() -> impl Iterator<Item = u8> + Send {
    let start = b"POST /v1/upload HTTP/1.1\r\nHost: pixpress\r\n".to_vec();
    let pads = (0u64..).flat_map(|i| format!("X-Pad-{i}: x\r\n").into_bytes());
    start.into_iter().chain(pads)
}

/// A complete upload head declaring a 100 kB multipart body, and that body, to be trickled.
fn upload_head(key: &str) -> (Vec<u8>, impl Iterator<Item = u8> + Send) {
    let head = format!(
        "POST /v1/upload HTTP/1.1\r\nHost: pixpress\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: multipart/form-data; boundary=trickle\r\nContent-Length: 100000\r\n\r\n"
    );
    let part = concat!(
        "--trickle\r\n",
        "Content-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n",
        "Content-Type: image/jpeg\r\n\r\n",
    );
    (
        head.into_bytes(),
        part.bytes().chain(std::iter::repeat(0xff)),
    )
}

/// Status, lower-cased headers and body of the one HTTP/1.1 answer in `raw`.
fn parse_answer(raw: &[u8]) -> (u16, String, Vec<u8>) {
    let text = String::from_utf8_lossy(raw);
    let (head, _) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer head in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = raw[head.len() + 4..].to_vec();
    (status, head.to_ascii_lowercase(), body)
}

async fn timed_upload(server: &Server, image: &[u8]) -> (Duration, Value) {
    let start = Instant::now();
    let (status, body) =
        json_of(upload(server, image, "gray.jpg", json!({"api_key": server.key})).await).await;
    let took = start.elapsed();
    assert_eq!(status, 200, "{body}");
    (took, body)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn assert_closed_at(closed: &Closed, deadline: Duration, what: &str) {
    assert!(
        closed.after + EARLY >= deadline && closed.after <= deadline + SLACK,
        "{what} closed after {:?}, expected about {deadline:?}",
        closed.after
    );
}

#[tokio::test]
async fn trickling_clients_are_cut_off_and_never_delay_others() {
    let server = Server::start(&DEADLINE_ARGS);
    let addr = address(&server);
    let image = corpus("edge/gray.jpg");

    // Latency of the same upload on the idle server first, each on a new connection.
    let mut idle = Vec::new();
    let mut expected_width = None;
    for _ in 0..5 {
        let (took, body) = timed_upload(&server, &image).await;
        expected_width = body["final_width"].as_u64();
        idle.push(took);
    }
    let idle_median = median(idle);
    assert!(expected_width.unwrap_or(0) > 0, "no width in the answer");

    let give_up = BODY_GRACE + SLACK + Duration::from_secs(5);
    let loris: Vec<_> = (0..TRICKLERS)
        .map(|_| tokio::spawn(trickle(addr, Vec::new(), endless_head(), give_up)))
        .collect();
    let bodies: Vec<_> = (0..TRICKLERS)
        .map(|_| {
            let (head, tail) = upload_head(&server.key);
            tokio::spawn(trickle(addr, head, tail, give_up))
        })
        .collect();
    let keep_alive = tokio::spawn(idle_keep_alive(addr));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Normal uploads every half second while the tricklers hold their connections, and after
    // the server has cut them off.
    let mut busy = Vec::new();
    let until = Instant::now() + BODY_GRACE + Duration::from_secs(2);
    while Instant::now() < until {
        let (took, body) = timed_upload(&server, &image).await;
        assert_eq!(body["final_width"].as_u64(), expected_width, "{body}");
        assert!(
            took < Duration::from_secs(2),
            "an upload took {took:?} during the slow-client flood"
        );
        busy.push(took);
        tokio::time::sleep(TRICKLE_GAP.saturating_sub(took)).await;
    }
    let busy_median = median(busy.clone());
    let allowed = (idle_median * 3).max(idle_median + Duration::from_millis(250));
    assert!(
        busy_median <= allowed,
        "median upload {busy_median:?} during the flood vs {idle_median:?} idle (all: {busy:?})"
    );

    for task in loris {
        let closed = task.await.expect("slow-loris task");
        assert_closed_at(&closed, HEADER_TIMEOUT, "a slow-loris connection");
    }
    let mut answered = 0;
    for task in bodies {
        let closed = task.await.expect("body trickler task");
        assert_closed_at(&closed, BODY_GRACE, "a body-trickling connection");
        if closed.answer.is_empty() {
            continue;
        }
        answered += 1;
        let (status, headers, body) = parse_answer(&closed.answer);
        assert_eq!(status, 408, "{headers}");
        assert!(headers.contains("connection: close"), "{headers}");
        assert!(headers.contains("x-request-id: "), "{headers}");
        let body: Value = serde_json::from_slice(&body).expect("408 body is JSON");
        assert_eq!(body["error"]["code"], "request_timeout", "{body}");
        assert_eq!(body["error"]["details"]["min_bytes_per_second"], 16384);
        assert!(!body["error"]["request_id"]
            .as_str()
            .unwrap_or("")
            .is_empty());
    }
    // The answer is written before the close; losing it to the close's reset would be rare.
    assert!(
        answered * 10 >= TRICKLERS * 9,
        "only {answered} of {TRICKLERS} body tricklers got the 408"
    );
    keep_alive.await.expect("keep-alive task");
    println!(
        "upload median idle {idle_median:?}, during the flood {busy_median:?} ({} uploads)",
        busy.len()
    );
}

/// One request on a kept-alive connection, then silence: the server closes it after the
/// header timeout, the time it gives a client to start its next request.
async fn idle_keep_alive(addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: pixpress\r\n\r\n")
        .await
        .expect("send");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let mut answered_at = None;
    let closed = tokio::time::timeout(HEADER_TIMEOUT + SLACK * 2, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    answered_at.get_or_insert_with(Instant::now);
                }
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle keep-alive connection stayed open");
    let (status, _, body) = parse_answer(&answer);
    assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
    let idle_for = answered_at.map(|t| t.elapsed()).unwrap_or_default();
    assert!(
        idle_for + EARLY >= HEADER_TIMEOUT && idle_for <= HEADER_TIMEOUT + SLACK,
        "an idle keep-alive connection was closed after {idle_for:?}"
    );
}

/// Opens `n` connections that send nothing, and waits until the server holds them all.
async fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    held
}

async fn healthz(server: &Server) -> Duration {
    let start = Instant::now();
    let response = client()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .expect("healthz");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "ok");
    start.elapsed()
}

#[tokio::test]
async fn beyond_the_connection_cap_a_client_waits_for_a_slot() {
    let mut args = DEADLINE_ARGS.to_vec();
    args.extend(["--max-connections", "20"]);
    let server = Server::start(&args);
    let addr = address(&server);
    assert!(healthz(&server).await < Duration::from_secs(1));

    // The cap is full: a new client is not served until a slot frees, then at once.
    let held = idle_connections(addr, 20).await;
    let waiting = tokio::spawn({
        let url = server.url("/healthz");
        async move {
            let response = client().get(url).send().await.expect("healthz");
            (Instant::now(), response.status())
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "a 21st connection was served while 20 were open"
    );
    let released = Instant::now();
    drop(held);
    let (served, status) = waiting.await.expect("waiting client");
    assert_eq!(status, 200);
    let after_release = served.duration_since(released);
    assert!(
        after_release < Duration::from_millis(800),
        "served {after_release:?} after the slots were released"
    );

    // Slots held by clients that never send a request free at the header timeout, so a client
    // waiting behind them is served then, without anyone letting go. (First the connections
    // above finish closing.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut held = idle_connections(addr, 20).await;
    let waited = healthz(&server).await;
    assert!(
        waited + EARLY + Duration::from_millis(300) >= HEADER_TIMEOUT
            && waited <= HEADER_TIMEOUT + SLACK,
        "a client behind 20 idle connections waited {waited:?}"
    );
    for stream in &mut held {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "an idle connection was not closed by the server: {read:?}"
        );
    }
    assert!(healthz(&server).await < Duration::from_secs(1));
}

#[tokio::test]
async fn tls_handshakes_that_never_come_free_their_slots() {
    let certs = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let (cert_path, key_path) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let mut args = DEADLINE_ARGS.to_vec();
    args.extend(["--max-connections", "20", "--tls-cert"]);
    args.push(cert_path.to_str().expect("path"));
    args.push("--tls-key");
    args.push(key_path.to_str().expect("path"));
    let server = Server::start(&args);
    let addr = address(&server);
    let https = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("pem"),
        )
        .build()
        .expect("client");

    // 20 TCP connections that never start a handshake fill the cap; an HTTPS client behind
    // them is served once the handshake deadline has closed them.
    let mut held = idle_connections(addr, 20).await;
    let start = Instant::now();
    let response = https
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .expect("https healthz");
    let waited = start.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "ok");
    assert!(
        waited + EARLY + Duration::from_millis(300) >= HEADER_TIMEOUT
            && waited <= HEADER_TIMEOUT + SLACK,
        "an HTTPS client behind 20 silent connections waited {waited:?}"
    );
    for stream in &mut held {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a connection without a handshake was not closed: {read:?}"
        );
    }
}
